//! The HTTP API under `/api/v1`. One table of endpoints ([`endpoints`]) makes both the router
//! and the OpenAPI 3.1 document (`GET /api/v1/openapi.json`): each entry has its method, path,
//! the role it needs, the shapes of its body and answers (JSON Schemas generated from the
//! Rust types, the ones the workflows return) and its handler. An endpoint cannot exist in
//! one and not the other.
//!
//! Every request but the public ones (`/healthz`, `/metrics`, the OpenAPI document) names its
//! caller with `Authorization: Bearer <token>`; webhooks prove themselves with their
//! signature. Every mutating request is recorded in the audit log before it takes effect,
//! and its result after.

mod delivery;
mod error;
mod events;
mod executions;
pub mod executions_types;
mod hooks;
mod info;
mod openapi;
mod releases;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::{ApiError, ErrorBody};

use crate::auth::{self, Caller, Role};
use crate::service::Service;
use crate::store::AuditEntry;

pub type AppState = Arc<Service>;

/// Builds a schema in the document's generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// An answer an endpoint gives.
pub struct Answer {
    pub status: u16,
    pub description: &'static str,
    pub content_type: &'static str,
    pub schema: Option<SchemaFn>,
}

/// One endpoint: what the document says of it, and its handler.
pub struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// `None`: public, or proven otherwise (a webhook's signature).
    pub role: Option<Role>,
    pub query: Option<SchemaFn>,
    pub body: Option<SchemaFn>,
    pub answers: Vec<Answer>,
    pub route: MethodRouter<AppState>,
}

impl Endpoint {
    fn new(
        method: Method,
        path: &'static str,
        summary: &'static str,
        route: MethodRouter<AppState>,
    ) -> Endpoint {
        Endpoint {
            method,
            path,
            summary,
            role: None,
            query: None,
            body: None,
            answers: Vec::new(),
            route,
        }
    }

    fn role(mut self, role: Role) -> Endpoint {
        self.role = Some(role);
        self
    }

    fn query<T: JsonSchema>(mut self) -> Endpoint {
        self.query = Some(schema_of::<T>);
        self
    }

    fn body<T: JsonSchema>(mut self) -> Endpoint {
        self.body = Some(schema_of::<T>);
        self
    }

    fn answers<T: JsonSchema>(mut self, status: u16, description: &'static str) -> Endpoint {
        self.answers.push(Answer {
            status,
            description,
            content_type: "application/json",
            schema: Some(schema_of::<T>),
        });
        self
    }

    fn answers_stream<T: JsonSchema>(
        mut self,
        status: u16,
        content_type: &'static str,
        description: &'static str,
    ) -> Endpoint {
        self.answers.push(Answer {
            status,
            description,
            content_type,
            schema: Some(schema_of::<T>),
        });
        self
    }

    fn answers_text(
        mut self,
        status: u16,
        content_type: &'static str,
        description: &'static str,
    ) -> Endpoint {
        self.answers.push(Answer {
            status,
            description,
            content_type,
            schema: None,
        });
        self
    }
}

/// The endpoints as a Markdown table (docs/server.md holds it; a test keeps it current).
pub fn reference_markdown() -> String {
    let mut t = String::from("| route | role | what it does |\n| --- | --- | --- |\n");
    for e in endpoints() {
        let role = e.role.map_or(
            if e.path.contains("/hooks/") {
                "its signature"
            } else {
                "public"
            },
            Role::as_str,
        );
        t.push_str(&format!(
            "| `{} {}` | {role} | {} |\n",
            e.method,
            e.path,
            e.summary.replace('|', "\\|")
        ));
    }
    t
}

/// Every endpoint of the server.
pub fn endpoints() -> Vec<Endpoint> {
    let mut all = info::endpoints();
    all.extend(executions::endpoints());
    all.extend(releases::endpoints());
    all.extend(delivery::endpoints());
    all.extend(session::endpoints());
    all.extend(events::endpoints());
    all.extend(hooks::endpoints());
    all.push(openapi::endpoint());
    all
}

/// The router of every endpoint, with the state.
pub fn router(state: AppState) -> axum::Router {
    let mut by_path: std::collections::BTreeMap<&'static str, MethodRouter<AppState>> =
        std::collections::BTreeMap::new();
    for e in endpoints() {
        let route = match by_path.remove(e.path) {
            Some(existing) => existing.merge(e.route),
            None => e.route,
        };
        by_path.insert(e.path, route);
    }
    let mut router = axum::Router::new();
    for (path, route) in by_path {
        router = router.route(path, route);
    }
    router.with_state(state)
}

/// The caller of a request: from its bearer token, else from the dashboard's session cookie.
pub fn caller(state: &Service, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return match session_cookie(headers) {
            Some(secret) => Ok(auth::session(&state.store, secret)?),
            None => Ok(None),
        };
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthenticated)?;
    Ok(auth::authenticate(&state.store, token)?)
}

/// The session cookie's value, when the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == auth::SESSION_COOKIE).then_some(value)
        })
}

/// The header a session's mutating request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The caller of a mutating request: as [`require`], and a session (a browser, which sends
/// its cookie wherever a page tells it to) must also present its CSRF token.
pub fn require_to_change(
    state: &Service,
    headers: &HeaderMap,
    role: Role,
) -> Result<Caller, ApiError> {
    let who = require(state, headers, role)?;
    if let Some(expected) = &who.csrf
        && !auth::csrf_matches(
            expected,
            headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
        )
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "a signed-in browser's request must carry the page's CSRF token in X-CSRF-Token; reload the page and try again",
        ));
    }
    Ok(who)
}

/// The caller, who must hold at least `role`.
pub fn require(state: &Service, headers: &HeaderMap, role: Role) -> Result<Caller, ApiError> {
    let who = caller(state, headers)?.ok_or_else(ApiError::unauthenticated)?;
    if who.role < role {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_too_low",
            format!(
                "`{}` is a {}; this needs {} or above",
                who.name, who.role, role
            ),
        ));
    }
    Ok(who)
}

/// The address a connection comes from, as the listener saw it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::tls::TlsListener>>
    for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::tls::TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// The client's address.
#[derive(Debug, Clone, Copy)]
pub struct Client(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Client, Self::Rejection> {
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<Peer>>()
                .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0.0),
        ))
    }
}

/// A JSON body (an empty one is the type's default), whose rejection says why in JSON, like
/// every other error.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_body", e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Body(T::default()));
        }
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_body",
                format!("the body is not the JSON this endpoint takes: {e}"),
            )
        })
    }
}

/// Query parameters whose rejection says why in JSON.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Params<T>, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Params(v)),
            Err(e) => Err(ApiError::new(e.status(), "bad_query", e.body_text())),
        }
    }
}

/// A mutating request being carried out: recorded before it takes effect.
pub struct Audit {
    state: AppState,
    id: Option<i64>,
    entry: AuditEntry,
}

impl Audit {
    /// Authenticates and authorizes the request, and records it; a refusal is recorded and
    /// answered here.
    pub fn begin(
        state: &AppState,
        headers: &HeaderMap,
        client: Client,
        role: Role,
        action: &str,
        target: &str,
    ) -> Result<(Caller, Audit), Box<Response>> {
        let who = require_to_change(state, headers, role);
        let identity = match &who {
            Ok(c) => c.name.clone(),
            Err(_) => caller(state, headers)
                .ok()
                .flatten()
                .map_or_else(|| "anonymous".to_owned(), |c| c.name),
        };
        let audit = Audit::open(state, &identity, client, action, target);
        match who {
            Ok(c) => Ok((c, audit)),
            Err(e) => Err(Box::new(audit.finish_error(e))),
        }
    }

    /// Records a request made by `identity` (a webhook proves itself another way).
    pub fn open(
        state: &AppState,
        identity: &str,
        client: Client,
        action: &str,
        target: &str,
    ) -> Audit {
        let entry = AuditEntry {
            id: 0,
            at_ms: ferry_engine::model::now_ms(),
            identity: identity.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            client: client.0.ip().to_string(),
            result: "pending".to_owned(),
            status: 0,
        };
        let id = state.store.audit(&entry).ok();
        Audit {
            state: state.clone(),
            id,
            entry,
        }
    }

    fn record(&mut self, status: StatusCode, result: String) {
        self.entry.status = status.as_u16();
        self.entry.result = result;
        match self.id {
            Some(id) => {
                let _ = self
                    .state
                    .store
                    .audit_result(id, &self.entry.result, self.entry.status);
            }
            None => {
                let _ = self.state.store.audit(&self.entry);
            }
        }
    }

    /// Records the result of a request that answers other than in JSON (the sign-in form).
    pub fn close(mut self, status: StatusCode, result: &str) {
        self.record(status, result.to_owned());
    }

    pub fn finish_error(mut self, e: ApiError) -> Response {
        self.record(e.status, format!("{}: {}", e.code, first_line(&e.message)));
        e.into_response()
    }

    /// Records the result and answers it.
    pub fn finish<T: Serialize>(mut self, result: Result<(StatusCode, T), ApiError>) -> Response {
        match result {
            Ok((status, body)) => {
                self.record(status, "ok".into());
                (status, axum::Json(body)).into_response()
            }
            Err(e) => self.finish_error(e),
        }
    }
}

/// `value` as a JSON answer, its buffer sized `capacity` at once: growing a 12 KiB list from
/// the 128 bytes `axum::Json` starts with cost a tenth of the list's time in the allocator.
pub fn json<T: Serialize>(value: &T, capacity: usize) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
