//! `POST /api/v1/hooks/{github|gitlab|generic}/{pipeline}`: pushes from forges. A delivery
//! proves itself with its signature (no token); a bad or missing one is 401 and starts
//! nothing; a redelivery (same delivery id) starts nothing new.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::post;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Audit, Client, Endpoint};
use crate::hooks::{self, Event, HookError, Source};
use crate::service::PushOutcome;
use crate::store::Delivery;

pub fn endpoints() -> Vec<Endpoint> {
    let hook = |path, summary, route| {
        Endpoint::new(Method::POST, path, summary, route)
            .answers::<HookAnswer>(202, "an execution started")
            .answers::<HookAnswer>(200, "received; nothing started, and why")
            .answers::<super::ErrorBody>(401, "the signature is missing or wrong: nothing started")
    };
    vec![
        hook(
            "/api/v1/hooks/github/{pipeline}",
            "A GitHub push webhook, checked with X-Hub-Signature-256 (HMAC-SHA256 of the body with the pipeline's webhook secret)",
            post(github),
        ),
        hook(
            "/api/v1/hooks/gitlab/{pipeline}",
            "A GitLab push webhook, checked with X-Gitlab-Token",
            post(gitlab),
        ),
        hook(
            "/api/v1/hooks/generic/{pipeline}",
            "A push from anything that signs like GitHub (X-Hub-Signature-256): `{\"ref\": \"refs/heads/main\", \"revision\": \"…\", \"pushed_by\": \"…\"}`",
            post(generic),
        ),
    ]
}

/// What a delivery led to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HookAnswer {
    /// `started`, `skipped`, `duplicate` or `ignored`.
    pub outcome: String,
    /// The execution started, if one was.
    pub execution: Option<String>,
    /// Why nothing was started.
    pub reason: Option<String>,
}

async fn github(
    state: State<AppState>,
    client: Client,
    path: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, client, path, headers, body, Source::Github).await
}

async fn gitlab(
    state: State<AppState>,
    client: Client,
    path: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, client, path, headers, body, Source::Gitlab).await
}

async fn generic(
    state: State<AppState>,
    client: Client,
    path: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receive(state, client, path, headers, body, Source::Generic).await
}

async fn receive(
    State(state): State<AppState>,
    client: Client,
    Path(pipeline): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    source: Source,
) -> Response {
    let audit = Audit::open(
        &state,
        &format!("webhook:{}", source.as_str()),
        client,
        "push",
        &pipeline,
    );
    let answer =
        |status: StatusCode, outcome: &str, execution: Option<String>, reason: Option<String>| {
            Ok((
                status,
                HookAnswer {
                    outcome: outcome.to_owned(),
                    execution,
                    reason,
                },
            ))
        };
    let result = async {
        let p = state.pipeline(&pipeline)?;
        let event = hooks::read(
            source,
            &pipeline,
            &headers,
            &body,
            p.config.webhook_secret.as_ref(),
        )
        .map_err(|e| {
            state.metrics.delivery(source.as_str(), "refused");
            let code = match e {
                HookError::BadPayload(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::UNAUTHORIZED,
            };
            ApiError::new(code, "bad_webhook", e.to_string())
        })?;
        let push = match event {
            Event::Push(push) => push,
            Event::Other(kind) => {
                state.metrics.delivery(source.as_str(), "ignored");
                return answer(
                    StatusCode::OK,
                    "ignored",
                    None,
                    Some(format!("`{kind}` is not a push")),
                );
            }
        };
        if let Some(delivery) = &push.delivery
            && let Delivery::Seen(outcome) =
                state
                    .store
                    .claim_delivery(source.as_str(), delivery, &pipeline)?
        {
            state.metrics.delivery(source.as_str(), "duplicate");
            return answer(
                StatusCode::OK,
                "duplicate",
                None,
                Some(format!(
                    "delivery {delivery} was received already ({outcome})"
                )),
            );
        }
        let outcome = state
            .push(
                &pipeline,
                &push.reference,
                push.revision.as_deref(),
                push.pushed_by.as_deref(),
                source.as_str(),
            )
            .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // A redelivery of a failed delivery tries again.
                if let Some(d) = &push.delivery {
                    let _ = state.store.forget_delivery(source.as_str(), d);
                }
                state.metrics.delivery(source.as_str(), "failed");
                return Err(e.into());
            }
        };
        let (status, kind, execution, reason) = match outcome {
            PushOutcome::Started { execution } => {
                (StatusCode::ACCEPTED, "started", Some(execution), None)
            }
            PushOutcome::Skipped { reason } => (StatusCode::OK, "skipped", None, Some(reason)),
        };
        if let Some(d) = &push.delivery {
            let note = execution
                .clone()
                .or_else(|| reason.clone())
                .unwrap_or_default();
            let _ = state
                .store
                .delivery_outcome(source.as_str(), d, &format!("{kind}: {note}"));
        }
        state.metrics.delivery(source.as_str(), kind);
        answer(status, kind, execution, reason)
    }
    .await;
    audit.finish(result)
}
