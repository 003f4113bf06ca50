//! Executions: list and start them, read one, stop, retry, its logs, and the decisions on
//! its approvals. Each is a ferry-workflows call, made as the caller.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferry_engine::model::{ExecutionQuery, Status, Trigger};
use ferry_workflows::Quiet;
use ferry_workflows::control::{
    self, DecideInput, DecideReport, OverrideInput, OverrideReport, RetryInput, StopInput,
};
use ferry_workflows::history::{ExecutionSummary, list};
use ferry_workflows::view::ExecutionView;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::executions_types::{DecideBody, OverrideBody, RetryBody, StartBody, StopBody};
use super::{ApiError, AppState, Audit, Body, Client, Endpoint, Params, json, require};
use crate::auth::Role;
use crate::service::{Start, pipeline_of};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/api/v1/pipelines/{pipeline}/executions", "A pipeline's executions, newest first", get(list_executions))
            .role(Role::Viewer)
            .query::<ListQuery>()
            .answers::<Vec<ExecutionSummary>>(200, "the executions"),
        Endpoint::new(Method::POST, "/api/v1/pipelines/{pipeline}/executions", "Start an execution at a revision (default: the head of the pipeline's branch)", post(start))
            .role(Role::Operator)
            .body::<StartBody>()
            .answers::<ExecutionView>(201, "the execution, started; it runs in the server"),
        Endpoint::new(Method::GET, "/api/v1/executions/{id}", "An execution: its stages, actions, status and the approvals that wait, with the digests they approve", get(view))
            .role(Role::Viewer)
            .answers::<ExecutionDetail>(200, "the execution"),
        Endpoint::new(Method::POST, "/api/v1/executions/{id}/stop", "Stop an execution (after its running actions, or at once with `force`)", post(stop))
            .role(Role::Operator)
            .body::<StopBody>()
            .answers::<ExecutionView>(200, "the execution as the stop left it"),
        Endpoint::new(Method::POST, "/api/v1/executions/{id}/retry", "Run a failed or stopped stage's failed actions again", post(retry))
            .role(Role::Operator)
            .body::<RetryBody>()
            .answers::<ExecutionView>(200, "the execution, running again"),
        Endpoint::new(Method::GET, "/api/v1/executions/{id}/actions/{action}/log", "An action's log (its latest attempt): from `offset` or a `Range: bytes=N-`, or followed live until the action ends", get(log))
            .role(Role::Viewer)
            .query::<LogQuery>()
            .answers_text(200, "text/plain", "the log (the next offset in `X-Log-Offset`)")
            .answers_text(206, "text/plain", "the log from the range asked for"),
        Endpoint::new(Method::POST, "/api/v1/executions/{id}/stages/{stage}/approve", "Approve the approval waiting in a stage", post(approve))
            .role(Role::Approver)
            .body::<DecideBody>()
            .answers::<DecideReport>(200, "the decision, recorded (the approval is decided once enough approvers approved)"),
        Endpoint::new(Method::POST, "/api/v1/executions/{id}/stages/{stage}/reject", "Reject the approval waiting in a stage", post(reject))
            .role(Role::Approver)
            .body::<DecideBody>()
            .answers::<DecideReport>(200, "the decision, recorded: the stage fails"),
        Endpoint::new(Method::POST, "/api/v1/executions/{id}/stages/{stage}/override", "Let a release past the gates that hold a stage (alarms, windows, soak), with a reason the ledger keeps", post(override_gates))
            .role(Role::Approver)
            .body::<OverrideBody>()
            .answers::<OverrideReport>(200, "the override, recorded: the stage goes on (after its approval, when it has one)"),
    ]
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ListQuery {
    /// Only executions of this status.
    pub status: Option<Status>,
    /// Only executions of this branch (or tag).
    pub branch: Option<String>,
    /// Only executions whose trigger says this (`push`, `poll`, a name).
    pub trigger: Option<String>,
    /// Only executions created before this time (ms since the epoch): the next page.
    pub before_ms: Option<i64>,
    /// How many (default 50, at most 500).
    pub limit: Option<usize>,
}

async fn list_executions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(pipeline): Path<String>,
    Params(q): Params<ListQuery>,
) -> Result<Response, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    state.pipeline(&pipeline)?;
    let query = ExecutionQuery {
        pipeline: Some(pipeline),
        status: q.status,
        branch: q.branch,
        trigger: q.trigger,
        before_ms: q.before_ms,
        limit: q.limit.unwrap_or(50).clamp(1, 500),
    };
    let rows = list(&state.engine, &query)?;
    json(&rows, 256 * rows.len() + 2) // about 250 bytes a row
}

async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(pipeline): Path<String>,
    Body(body): Body<StartBody>,
) -> Response {
    let (caller, audit) =
        match Audit::begin(&state, &headers, client, Role::Operator, "start", &pipeline) {
            Ok(a) => a,
            Err(r) => return *r,
        };
    let start = Start {
        revision: body.revision,
        reference: body.branch.map(|b| format!("refs/heads/{b}")),
        trigger: Trigger {
            text: format!("started by {} (API)", caller.name),
            identities: vec![caller.name.clone()],
            branch: None,
        },
    };
    let result = state.start(&pipeline, start).await;
    audit.finish(
        result
            .map(|v| (StatusCode::CREATED, v))
            .map_err(ApiError::from),
    )
}

/// An execution, and why it failed before it started when its manifest was invalid.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionDetail {
    #[serde(flatten)]
    pub execution: ExecutionView,
    /// The diagnostics of the manifest at its revision, when they stopped it.
    pub diagnostics: Option<serde_json::Value>,
}

async fn view(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let execution = ExecutionView::read(&state.engine, &id)?;
    // Only a manifest that stopped an execution leaves diagnostics, and that execution failed.
    let diagnostics = if execution.status == Status::Failed {
        state.store.execution_note(&id)?.1
    } else {
        None
    };
    // About 500 bytes a stage (its actions' outputs are most of it).
    let capacity = 1024 + 512 * execution.stages.len();
    json(
        &ExecutionDetail {
            execution,
            diagnostics,
        },
        capacity,
    )
}

async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
    Body(body): Body<StopBody>,
) -> Response {
    let (_, audit) = match Audit::begin(&state, &headers, client, Role::Operator, "stop", &id) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let force = body.force;
    let result = async {
        let project = state.project_of(&id).await?;
        let view = control::stop(
            &project,
            &StopInput {
                execution: id.clone(),
                force,
            },
        )
        .await?;
        Ok::<_, ApiError>((StatusCode::OK, view))
    }
    .await;
    audit.finish(result)
}

async fn retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(id): Path<String>,
    Body(body): Body<RetryBody>,
) -> Response {
    let (caller, audit) = match Audit::begin(&state, &headers, client, Role::Operator, "retry", &id)
    {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let result = async {
        let project = state.project_of(&id).await?;
        let stage = match body.stage {
            Some(s) => s,
            None => state
                .engine
                .stage_runs(&id)?
                .into_iter()
                .find(|s| matches!(s.status, Status::Failed | Status::Stopped))
                .map(|s| s.stage)
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "not_retryable",
                        format!("no stage of `{id}` failed or stopped"),
                    )
                })?,
        };
        let input = RetryInput {
            execution: id.clone(),
            stage,
            identity: caller.name.clone(),
            continue_here: false,
        };
        let view = control::retry(&project, &input, None, Arc::new(Quiet)).await?;
        state.drive(&id, project);
        Ok::<_, ApiError>((StatusCode::OK, view))
    }
    .await;
    audit.finish(result)
}

async fn approve(
    state: State<AppState>,
    headers: HeaderMap,
    client: Client,
    path: Path<(String, String)>,
    body: Body<DecideBody>,
) -> Response {
    decide(state, headers, client, path, body, true).await
}

async fn reject(
    state: State<AppState>,
    headers: HeaderMap,
    client: Client,
    path: Path<(String, String)>,
    body: Body<DecideBody>,
) -> Response {
    decide(state, headers, client, path, body, false).await
}

async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path((id, stage)): Path<(String, String)>,
    Body(body): Body<DecideBody>,
    approve: bool,
) -> Response {
    let verb = if approve { "approve" } else { "reject" };
    let target = format!("{id} {stage}");
    let (caller, audit) =
        match Audit::begin(&state, &headers, client, Role::Approver, verb, &target) {
            Ok(a) => a,
            Err(r) => return *r,
        };
    let result = async {
        let project = state.project_of(&id).await?;
        let input = DecideInput {
            execution: id.clone(),
            stage: stage.clone(),
            action: body.action,
            approve,
            identity: caller.name.clone(),
            groups: caller.groups.clone(),
            comment: body.comment,
            continue_here: false,
        };
        let report = control::decide(&project, &input, None, Arc::new(Quiet)).await?;
        let pipeline = pipeline_of(&id);
        state.hub.publish(
            "approval",
            pipeline,
            &id,
            serde_json::json!({
                "type": "approval",
                "stage": stage,
                "identity": caller.name,
                "approve": approve,
                "status": report.approval.status,
                "votes": report.approval.votes.len(),
                "required": report.approval.required,
            }),
        );
        Ok::<_, ApiError>((StatusCode::OK, report))
    }
    .await;
    audit.finish(result)
}

async fn override_gates(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path((id, stage)): Path<(String, String)>,
    Body(body): Body<OverrideBody>,
) -> Response {
    // The audit log keeps why, beside who.
    let reason: String = body.reason.trim().chars().take(500).collect();
    let target = if reason.is_empty() {
        format!("{id} {stage}")
    } else {
        format!("{id} {stage}: {reason}")
    };
    let (caller, audit) = match Audit::begin(
        &state,
        &headers,
        client,
        Role::Approver,
        "override",
        &target,
    ) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let result = async {
        let project = state.project_of(&id).await?;
        let input = OverrideInput {
            execution: id.clone(),
            stage: stage.clone(),
            identity: caller.name.clone(),
            reason: body.reason.clone(),
            continue_here: false,
        };
        let report = control::override_gates(&project, &input, None, Arc::new(Quiet)).await?;
        let pipeline = pipeline_of(&id);
        state.hub.publish(
            "gates",
            pipeline,
            &id,
            serde_json::json!({
                "type": "gates",
                "stage": stage,
                "identity": caller.name,
                "overridden": true,
            }),
        );
        Ok::<_, ApiError>((StatusCode::OK, report))
    }
    .await;
    audit.finish(result)
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct LogQuery {
    /// Start at this byte.
    pub offset: Option<u64>,
    /// Keep the answer open and send the log as it grows, until the action ends.
    #[serde(default)]
    pub follow: bool,
}

/// `bytes=N-` → N.
fn range_start(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::RANGE)?
        .to_str()
        .ok()?
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

async fn log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Params(q): Params<LogQuery>,
) -> Result<Response, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let runs = state.engine.action_runs(&id)?;
    let matching: Vec<_> = runs
        .iter()
        .filter(|r| {
            format!("{}.{}", r.stage, r.action) == action
                || (r.action == action && !action.contains('.'))
        })
        .collect();
    let stages: std::collections::BTreeSet<&str> =
        matching.iter().map(|r| r.stage.as_str()).collect();
    if stages.len() > 1 {
        return Err(ApiError::bad_request(format!(
            "`{action}` is an action of several stages; name one as stage.action"
        )));
    }
    let run = matching
        .into_iter()
        .max_by_key(|r| r.attempt)
        .ok_or_else(|| ApiError::not_found(format!("no run of `{action}` in `{id}`")))?;
    let path = run
        .log_path
        .clone()
        .ok_or_else(|| ApiError::not_found(format!("`{action}` of `{id}` has no log")))?;
    let ranged = range_start(&headers);
    let offset = ranged.or(q.offset).unwrap_or(0);
    if !q.follow {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let total = bytes.len() as u64;
        let from = offset.min(total);
        let chunk = bytes[usize::try_from(from).unwrap_or(0)..].to_vec();
        let mut response = (
            if ranged.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            },
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            chunk,
        )
            .into_response();
        let h = response.headers_mut();
        h.insert("x-log-offset", HeaderValue::from(total));
        if ranged.is_some() {
            let range = format!("bytes {from}-{}/{total}", total.saturating_sub(1));
            if let Ok(v) = HeaderValue::from_str(&range) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        return Ok(response);
    }
    // Followed: what is there, then what is written, until the action's attempt ends.
    let key = (run.stage.clone(), run.action.clone(), run.attempt);
    let engine = state.engine.clone();
    let shutdown = state.shutdown.clone();
    let stream = futures_util::stream::unfold((offset, false), move |(offset, done)| {
        let (path, engine, key, shutdown, id) = (
            path.clone(),
            engine.clone(),
            key.clone(),
            shutdown.clone(),
            id.clone(),
        );
        async move {
            if done {
                return None;
            }
            loop {
                let ended = engine
                    .action_runs(&id)
                    .ok()
                    .and_then(|runs| {
                        runs.into_iter()
                            .find(|r| (r.stage.clone(), r.action.clone(), r.attempt) == key)
                    })
                    .is_none_or(|r| r.status.is_final());
                let bytes = std::fs::read(&path).unwrap_or_default();
                let from = usize::try_from(offset).unwrap_or(0).min(bytes.len());
                if from < bytes.len() {
                    let chunk = Bytes::copy_from_slice(&bytes[from..]);
                    return Some((Ok::<_, std::io::Error>(chunk), (bytes.len() as u64, ended)));
                }
                if ended || shutdown.is_cancelled() {
                    return None;
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(250)) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        HttpBody::from_stream(stream),
    )
        .into_response())
}
