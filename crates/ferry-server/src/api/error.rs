//! An HTTP error says why in its body: `{"error": {"code": …, "message": …}}`, with a status
//! chosen from the workflow error's case — never from its message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_engine::Refused;
use ferry_engine::approval::rules::Refusal;
use ferry_workflows::Error as FlowError;
use serde::Serialize;

use crate::service::ServiceError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// A stable name for the case: `unauthenticated`, `not_an_approver`, `not_found`, …
    pub code: String,
    /// What went wrong and what to do, in words.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthenticated() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "send an API token: `Authorization: Bearer <token>` (`ferry serve token create` makes one)",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

fn refusal(r: &Refusal) -> (StatusCode, &'static str) {
    match r {
        Refusal::NotAnApprover { .. } => (StatusCode::FORBIDDEN, "not_an_approver"),
        Refusal::SelfApproval { .. } => (StatusCode::FORBIDDEN, "self_approval"),
        Refusal::AlreadyDecided { .. } => (StatusCode::CONFLICT, "already_decided"),
        Refusal::CommentRequired { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "comment_required"),
        Refusal::Expired { .. } => (StatusCode::CONFLICT, "expired"),
        Refusal::NotPending { .. } => (StatusCode::CONFLICT, "not_pending"),
        Refusal::ArtifactsChanged { .. } => (StatusCode::CONFLICT, "artifacts_changed"),
        Refusal::Blocked { .. } => (StatusCode::CONFLICT, "release_blocked"),
    }
}

impl From<FlowError> for ApiError {
    fn from(e: FlowError) -> ApiError {
        let (status, code) = match &e {
            FlowError::InvalidManifest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_manifest"),
            FlowError::Usage(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            FlowError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            FlowError::AccessNotGranted(_) => (StatusCode::CONFLICT, "access_not_granted"),
            FlowError::Aws(_) => (StatusCode::BAD_GATEWAY, "aws"),
            FlowError::Engine(ferry_engine::EngineError::Refused(r)) => match r {
                Refused::Approval(a) => refusal(a),
                Refused::NoApprovalWaiting { .. } => (StatusCode::CONFLICT, "no_approval_waiting"),
                Refused::SeveralApprovalsWaiting { .. } => {
                    (StatusCode::CONFLICT, "several_approvals_waiting")
                }
                Refused::NotRetryable { .. } | Refused::StageNotFailed { .. } => {
                    (StatusCode::CONFLICT, "not_retryable")
                }
                Refused::NoSuchStage { .. } => (StatusCode::NOT_FOUND, "not_found"),
                Refused::AlreadyEnded { .. } => (StatusCode::CONFLICT, "already_ended"),
                Refused::NoGateHolding { .. } => (StatusCode::CONFLICT, "no_gate_holding"),
                Refused::ReasonRequired => (StatusCode::BAD_REQUEST, "reason_required"),
            },
            FlowError::Engine(ferry_engine::EngineError::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            FlowError::Engine(ferry_engine::EngineError::Busy { .. }) => {
                (StatusCode::CONFLICT, "busy")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = match &e {
            FlowError::InvalidManifest(loaded) => format!("{e}\n{}", loaded.render(false)),
            _ => e.to_string(),
        };
        ApiError::new(status, code, message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        match e {
            ServiceError::NoPipeline(_) => ApiError::not_found(e.to_string()),
            ServiceError::Git(_) => ApiError::new(StatusCode::BAD_GATEWAY, "git", e.to_string()),
            ServiceError::Flow(f) => f.into(),
            ServiceError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
}

impl From<ferry_engine::store::StoreError> for ApiError {
    fn from(e: ferry_engine::store::StoreError) -> ApiError {
        FlowError::from(e).into()
    }
}
