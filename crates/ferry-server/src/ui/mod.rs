//! The dashboard: the pipeline console in a browser, served at `/` by `ferry serve`.
//!
//! A page shell, a stylesheet and a script, embedded in the binary (nothing is fetched from
//! another origin, so it works in a closed network; building it needs no Node.js). The script
//! renders every page from the JSON API — the same answers scripts get — and follows
//! executions over the API's Server-Sent Events. People sign in at `/login` with an API token,
//! which becomes an HttpOnly, SameSite=Strict session cookie (Secure under TLS); each change
//! a session asks for carries its CSRF token (`X-CSRF-Token`), which the API checks.
//!
//! Architecture invariant: the dashboard decides nothing; what a person may do is what the
//! API lets their token do, and a control it shows is one the API would accept.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::api::{self, ApiError, AppState, Audit, Client};
use crate::auth;

const SHELL: &str = include_str!("assets/index.html");
const LOGIN: &str = include_str!("assets/login.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

/// Pages may load only this origin's script, style and images, and no one may frame them.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The dashboard's routes, and the fallback: an unknown `/api/` path is the API's 404; any
/// other GET is a page of the dashboard (the script routes it).
pub fn router(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/login", get(login_page).post(sign_in))
        .route("/logout", post(sign_out))
        .route("/assets/{file}", get(asset))
        .fallback(fallback)
        .with_state(state)
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Text for HTML: the login page repeats only what ferry wrote, but escape it anyway.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where to go after signing in: only a path of this server (`/…`, not `//host`).
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

#[derive(Debug, Default, Deserialize)]
struct Next {
    next: Option<String>,
}

fn login_html(message: &str, next: &str) -> String {
    LOGIN
        .replace("{{message}}", &escape(message))
        .replace("{{next}}", &escape(next))
}

async fn login_page(Query(q): Query<Next>) -> Response {
    html(
        StatusCode::OK,
        login_html("", local_path(q.next.as_deref())),
    )
}

#[derive(Debug, Deserialize)]
struct SignIn {
    token: String,
    next: Option<String>,
}

async fn sign_in(
    State(state): State<AppState>,
    client: Client,
    Form(form): Form<SignIn>,
) -> Response {
    let next = local_path(form.next.as_deref()).to_owned();
    let signed = auth::sign_in(&state.store, &form.token);
    let (secret, who) = match signed {
        Ok(Some(s)) => s,
        Ok(None) => {
            Audit::open(&state, "anonymous", client, "sign-in", "dashboard")
                .close(StatusCode::UNAUTHORIZED, "unknown or revoked token");
            return html(
                StatusCode::UNAUTHORIZED,
                login_html(
                    "That token is not one this server knows, or it was revoked. Ask an admin for one (ferry serve token create).",
                    &next,
                ),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    Audit::open(&state, &who.name, client, "sign-in", "dashboard")
        .close(StatusCode::SEE_OTHER, "ok");
    let secure = if state.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        auth::SESSION_COOKIE,
        auth::SESSION_TTL_MS / 1000
    );
    let mut r = Redirect::to(&next).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
struct SignOut {
    csrf: Option<String>,
}

async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignOut>,
) -> Response {
    if let Some(secret) = api::session_cookie(&headers)
        && let Ok(Some(who)) = auth::session(&state.store, secret)
    {
        // Signing out is a change too: a forged form must not end someone's session.
        let expected = who.csrf.unwrap_or_default();
        if !auth::csrf_matches(&expected, form.csrf.as_deref()) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf",
                "signing out needs the page's CSRF token; reload the page and try again",
            )
            .into_response();
        }
        let _ = auth::sign_out(&state.store, secret);
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            auth::SESSION_COOKIE
        ))
        .expect("a static cookie"),
    );
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => ApiError::not_found(format!("no asset `{file}`")).into_response(),
    }
}

async fn fallback(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        return ApiError::not_found("no such endpoint; GET /api/v1/openapi.json lists them")
            .into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} {path}: the dashboard's pages are read with GET; changes go through /api/v1"),
        )
        .into_response();
    }
    let signed_in = api::session_cookie(&headers)
        .is_some_and(|s| matches!(auth::session(&state.store, s), Ok(Some(_))));
    if !signed_in {
        let next = uri.path_and_query().map_or("/", |p| p.as_str());
        let to = format!("/login?next={}", encode(next));
        return Redirect::to(&to).into_response();
    }
    html(StatusCode::OK, SHELL.to_owned())
}

/// A path as a query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_signing_in_only_a_path_of_this_server_is_followed() {
        assert_eq!(
            local_path(Some("/executions/orders-3")),
            "/executions/orders-3"
        );
        assert_eq!(local_path(Some("//evil.example/x")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
        assert_eq!(encode("/a b?c=d&e"), "/a%20b%3Fc%3Dd%26e");
        assert_eq!(escape("<script>\"&"), "&lt;script&gt;&quot;&amp;");
    }
}
