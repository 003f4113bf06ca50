//! What is configured, and how the server is: `/healthz`, `/metrics`, the pipelines, the
//! audit log.

use axum::extract::State;
use axum::http::{HeaderMap, Method, header};
use axum::response::IntoResponse;
use axum::routing::get;
use ferry_engine::model::ExecutionQuery;
use ferry_workflows::history::{ExecutionSummary, list};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Endpoint, Params, require};
use crate::auth::Role;
use crate::store::AuditEntry;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            Method::GET,
            "/healthz",
            "Whether the server answers",
            get(healthz),
        )
        .answers_text(200, "text/plain", "`ok`"),
        Endpoint::new(
            Method::GET,
            "/metrics",
            "Metrics in Prometheus's text format",
            get(metrics),
        )
        .answers_text(200, "text/plain; version=0.0.4", "the metrics"),
        Endpoint::new(
            Method::GET,
            "/api/v1/pipelines",
            "The pipelines this server runs",
            get(pipelines),
        )
        .role(Role::Viewer)
        .answers::<Vec<PipelineInfo>>(200, "each pipeline, with its last execution"),
        Endpoint::new(
            Method::GET,
            "/api/v1/audit",
            "The audit log, newest first",
            get(audit),
        )
        .role(Role::Admin)
        .query::<AuditQuery>()
        .answers::<Vec<AuditEntry>>(
            200,
            "every mutating request: who, what, on what, from where, how it ended",
        ),
    ]
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// A pipeline as the server runs it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PipelineInfo {
    pub name: String,
    /// The repository, without any credentials its URL carries.
    pub repo: String,
    pub branch: String,
    pub manifest: String,
    /// Seconds between polls, when it is polled.
    pub poll_secs: Option<u64>,
    /// Whether it takes webhooks (it has a webhook secret).
    pub webhooks: bool,
    pub last_execution: Option<ExecutionSummary>,
}

/// A URL without the user and password it may carry (`https://user:token@host/…`).
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if !userinfo.contains('/') => format!("{scheme}://***@{host}"),
            _ => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

async fn pipelines(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<Vec<PipelineInfo>>, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let mut out = Vec::new();
    for (name, p) in &state.pipelines {
        let last = list(&state.engine, &ExecutionQuery::newest(Some(name), 1))?.pop();
        out.push(PipelineInfo {
            name: name.clone(),
            repo: redact(&p.config.repo),
            branch: p.config.branch.clone(),
            manifest: p.config.manifest.clone(),
            poll_secs: p.config.poll.map(|d| d.as_secs()),
            webhooks: p.config.webhook_secret.is_some(),
            last_execution: last,
        });
    }
    Ok(axum::Json(out))
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct AuditQuery {
    /// How many entries (default 100, at most 1000).
    pub limit: Option<usize>,
    /// Entries older than this id: the next page.
    pub before: Option<i64>,
}

async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<AuditQuery>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    require(&state, &headers, Role::Admin)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(axum::Json(state.store.audit_log(limit, q.before)?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_in_repository_urls_are_not_shown() {
        assert_eq!(
            super::redact("https://x-access-token:ghp_secret@github.com/o/r.git"),
            "https://***@github.com/o/r.git"
        );
        assert_eq!(
            super::redact("file:///srv/git/r.git"),
            "file:///srv/git/r.git"
        );
        assert_eq!(
            super::redact("ssh://git@host/o/r.git"),
            "ssh://***@host/o/r.git"
        );
    }
}
