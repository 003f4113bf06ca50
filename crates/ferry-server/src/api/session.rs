//! Who the caller is: the dashboard reads its identity, role and (signed in with a cookie)
//! the CSRF token its changes must carry.

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::routing::get;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Endpoint, require};
use crate::auth::Role;

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(Method::GET, "/api/v1/session", "Who is calling: name, role, groups, and for a signed-in browser the CSRF token to send as X-CSRF-Token", get(session))
            .role(Role::Viewer)
            .answers::<SessionInfo>(200, "the caller"),
    ]
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    pub name: String,
    pub role: Role,
    pub groups: Vec<String>,
    /// Only for a session (cookie): send it as `X-CSRF-Token` with every change.
    pub csrf: Option<String>,
}

async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<axum::Json<SessionInfo>, ApiError> {
    let who = require(&state, &headers, Role::Viewer)?;
    Ok(axum::Json(SessionInfo {
        name: who.name,
        role: who.role,
        groups: who.groups,
        csrf: who.csrf,
    }))
}
