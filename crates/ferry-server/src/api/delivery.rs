//! What the dashboard shows beyond the executions: what runs where, the delivery measures,
//! and what an approver reviews before a release goes into an environment.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use ferry_engine::model::now_ms;
use ferry_workflows::delivery::{self, DeliveryReport, EnvironmentStatus};
use ferry_workflows::review::{self, DeployChange};
use ferry_workflows::verify::{EnvironmentCheck, environment_check};
use ferry_workflows::view::ExecutionView;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Endpoint, Params, require};
use crate::auth::Role;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/api/v1/pipelines/{pipeline}/environments", "What runs where: each environment's deploys with the release running now; with `live`, what each account runs and whether it drifted from the ledger", get(environments))
            .role(Role::Viewer)
            .query::<EnvironmentsQuery>()
            .answers::<Vec<EnvironmentStatus>>(200, "each environment, in the manifest's order"),
        Endpoint::new(Method::GET, "/api/v1/pipelines/{pipeline}/delivery", "The four DORA measures per environment, from the ledger: deployment frequency, lead time, change failure rate, time to restore", get(measures))
            .role(Role::Viewer)
            .query::<DeliveryQuery>()
            .answers::<DeliveryReport>(200, "the measures, with week-by-week figures"),
        Endpoint::new(Method::GET, "/api/v1/executions/{id}/stages/{stage}/review", "What approving a stage releases: the environment's releases now, the revision and artifact digests to approve, and its access check", get(review))
            .role(Role::Viewer)
            .answers::<Review>(200, "what would change"),
    ]
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct EnvironmentsQuery {
    /// Also read what each account runs now (one AWS call per deploy, as its deploy role).
    #[serde(default)]
    pub live: bool,
}

async fn environments(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pipeline): Path<String>,
    Params(q): Params<EnvironmentsQuery>,
) -> Result<axum::Json<Vec<EnvironmentStatus>>, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let project = state.current_project(&pipeline).await?;
    let envs = if q.live {
        delivery::environments_live(&project).await?
    } else {
        delivery::environments(&project)?
    };
    Ok(axum::Json(envs))
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DeliveryQuery {
    /// How many weeks back (default 8, at most 104).
    pub weeks: Option<u32>,
}

async fn measures(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pipeline): Path<String>,
    Params(q): Params<DeliveryQuery>,
) -> Result<axum::Json<DeliveryReport>, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let project = state.current_project(&pipeline).await?;
    let manifest = project.load()?;
    let store = project.store()?;
    let mut ledgers = Vec::new();
    for env in &manifest.environments {
        let ledger = store.releases(&manifest.pipeline, Some(&env.name), None, 10_000)?;
        ledgers.push((env.name.clone(), ledger));
    }
    let revisions: Vec<&str> = {
        let mut r: Vec<&str> = ledgers
            .iter()
            .flat_map(|(_, l)| l.iter().map(|r| r.revision.as_str()))
            .collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let commits = state
        .pipeline(&pipeline)?
        .repo
        .commit_times(&revisions)
        .await
        .unwrap_or_default();
    let weeks = q.weeks.unwrap_or(8).clamp(1, 104);
    Ok(axum::Json(delivery::measure(
        &ledgers,
        &commits,
        now_ms(),
        weeks,
    )))
}

/// What approving a stage puts into its environment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Review {
    pub execution: ExecutionView,
    pub stage: String,
    /// The environment the stage deploys to, and what runs there now.
    pub environment: Option<EnvironmentStatus>,
    /// The artifacts to approve: name → sha256 (of the waiting approval; else the latest
    /// the execution made).
    pub digests: BTreeMap<String, String>,
    /// Each deploy: what runs now, and what the execution's artifacts put in its place.
    pub changes: Vec<DeployChange>,
    /// Why the changes could not be read, when they could not.
    pub changes_error: Option<String>,
    /// The environment's calls decided against the policies last read (or the plan's).
    pub check: Option<EnvironmentCheck>,
}

async fn review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, stage)): Path<(String, String)>,
) -> Result<axum::Json<Review>, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let execution = ExecutionView::read(&state.engine, &id)?;
    let project = state.project_of(&id).await?;
    let manifest = project.load()?;
    let env_name = manifest
        .stages
        .iter()
        .find(|s| s.name == stage)
        .and_then(|s| s.environment.clone())
        .ok_or_else(|| ApiError::not_found(format!("`{stage}` deploys to no environment")))?;
    let environment = delivery::environments(&project)?
        .into_iter()
        .find(|e| e.environment == env_name);
    let digests = execution
        .pending_approvals
        .iter()
        .find(|a| a.stage == stage)
        .map(|a| a.digests.clone())
        .unwrap_or_default();
    let check = environment_check(&project, &env_name).ok();
    let (changes, changes_error) = match review::changes(&project, &id, &env_name).await {
        Ok(c) => (c, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    Ok(axum::Json(Review {
        execution,
        stage,
        environment,
        digests,
        changes,
        changes_error,
        check,
    }))
}
