//! An environment's release ledger, rolling it back, and blocking a bad release.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use ferry_workflows::Quiet;
use ferry_workflows::releases::{
    self, BlockInput, BlockReport, ReleasesReport, RollbackInput, RollbackReport, UnblockReport,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::executions_types::{BlockBody, RollbackBody};
use super::{ApiError, AppState, Audit, Body, Client, Endpoint, Params, require};
use crate::auth::Role;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/api/v1/environments/{pipeline}/{env}/releases", "An environment's release ledger, newest first", get(list))
            .role(Role::Viewer)
            .query::<ReleasesQuery>()
            .answers::<ReleasesReport>(200, "the releases, with verdicts and approvers"),
        Endpoint::new(Method::POST, "/api/v1/environments/{pipeline}/{env}/rollback", "Return each deploy of the environment (or `target`) to its last release verified good (or release `to`)", post(rollback))
            .role(Role::Operator)
            .body::<RollbackBody>()
            .answers::<RollbackReport>(200, "each deploy, back on its release")
            .answers::<RollbackReport>(409, "a deploy could not be rolled back: the report says which and why"),
        Endpoint::new(Method::POST, "/api/v1/releases/{pipeline}/{release}/block", "Mark a release (an execution's, by id or number) bad: it enters no environment and no approval of it is accepted; with `rollback`, every environment that runs it goes back to its last good release", post(block))
            .role(Role::Operator)
            .body::<BlockBody>()
            .answers::<BlockReport>(200, "blocked, and each rollback asked for done")
            .answers::<BlockReport>(409, "blocked, but a rollback failed: the report says which and why"),
        Endpoint::new(Method::POST, "/api/v1/releases/{pipeline}/{release}/unblock", "Lift a release's block", post(unblock))
            .role(Role::Operator)
            .answers::<UnblockReport>(200, "the block lifted (`unblocked` is null when there was none)"),
    ]
}

async fn block(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path((pipeline, release)): Path<(String, String)>,
    Body(body): Body<BlockBody>,
) -> Response {
    let target = format!("{pipeline} {release}");
    let (caller, audit) = match Audit::begin(
        &state,
        &headers,
        client,
        Role::Operator,
        "release-block",
        &target,
    ) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let result = async {
        let project = state.current_project(&pipeline).await?;
        let input = BlockInput {
            release,
            reason: body.reason,
            identity: caller.name.clone(),
            rollback: body.rollback,
        };
        let report = releases::block(&project, &input, &Quiet).await?;
        let status = if report.ok() {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        Ok::<_, ApiError>((status, report))
    }
    .await;
    audit.finish(result)
}

async fn unblock(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path((pipeline, release)): Path<(String, String)>,
) -> Response {
    let target = format!("{pipeline} {release}");
    let (caller, audit) = match Audit::begin(
        &state,
        &headers,
        client,
        Role::Operator,
        "release-unblock",
        &target,
    ) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let result = async {
        let project = state.current_project(&pipeline).await?;
        let report = releases::unblock(&project, &release, &caller.name)?;
        Ok::<_, ApiError>((StatusCode::OK, report))
    }
    .await;
    audit.finish(result)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ReleasesQuery {
    /// How many (default 50, at most 500).
    pub limit: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((pipeline, env)): Path<(String, String)>,
    Params(q): Params<ReleasesQuery>,
) -> Result<axum::Json<ReleasesReport>, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let project = state.current_project(&pipeline).await?;
    let report = releases::releases(&project, &env, q.limit.unwrap_or(50).clamp(1, 500))?;
    Ok(axum::Json(report))
}

async fn rollback(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path((pipeline, env)): Path<(String, String)>,
    Body(body): Body<RollbackBody>,
) -> Response {
    let target = format!("{pipeline} {env}");
    let (caller, audit) = match Audit::begin(
        &state,
        &headers,
        client,
        Role::Operator,
        "rollback",
        &target,
    ) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let result = async {
        let project = state.current_project(&pipeline).await?;
        let input = RollbackInput {
            environment: env.clone(),
            target: body.target,
            to: body.to,
            identity: caller.name.clone(),
            only_running: None,
        };
        let report = releases::rollback(&project, &input, &Quiet).await?;
        let status = if report.ok() {
            StatusCode::OK
        } else {
            StatusCode::CONFLICT
        };
        Ok::<_, ApiError>((status, report))
    }
    .await;
    audit.finish(result)
}
