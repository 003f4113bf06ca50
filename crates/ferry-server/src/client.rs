//! The API as the CLI calls it with `--server URL`: `ferry approve|reject|status|logs|
//! releases|rollback|run|audit` against a shared server instead of local state. Answers come
//! back in the same types the workflows return, so the CLI renders them the same way.

use std::time::Duration;

use ferry_workflows::control::{DecideReport, OverrideReport};
use ferry_workflows::history::ExecutionSummary;
use ferry_workflows::releases::{BlockReport, ReleasesReport, RollbackReport, UnblockReport};
use ferry_workflows::view::ExecutionView;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use crate::api::executions_types::{BlockBody, DecideBody, OverrideBody, RollbackBody, StartBody};
use crate::store::AuditEntry;

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error; `code` is its case, `message` why.
    #[error("the server refused ({status}, {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach {url}: {message}")]
    Unreachable { url: String, message: String },
    #[error("the server's answer is not what this ferry expects: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// A refusal for the caller's role or the manifest's rules, rather than a failure.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            ClientError::Refused {
                status: 401 | 403,
                ..
            }
        )
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: SecretString,
    http: reqwest::Client,
}

/// A transport error with its causes (the certificate refused, the connection refused…).
fn cause(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// The server's error answer (`{"error": {"code", "message"}}`) as a [`ClientError`].
fn refused(status: u16, text: &str) -> ClientError {
    let body: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    ClientError::Refused {
        status,
        code: body["error"]["code"].as_str().unwrap_or("error").to_owned(),
        message: body["error"]["message"]
            .as_str()
            .map_or_else(|| text.chars().take(300).collect(), str::to_owned),
    }
}

fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    /// A client of the server at `base`. `ca` is a PEM file of certificate authorities to
    /// trust beside the system's (a server behind an internal CA).
    pub fn new(base: &str, token: SecretString, ca: Option<&[u8]>) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(10));
        if let Some(pem) = ca {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                ClientError::Unexpected(format!("the CA file holds no PEM certificate: {e}"))
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: builder
                .build()
                .map_err(|e| ClientError::Unexpected(e.to_string()))?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(self.token.expose_secret())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            message: cause(&e.without_url()),
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        if !status.is_success() {
            return Err(refused(status.as_u16(), &text));
        }
        serde_json::from_str(&text).map_err(|e| ClientError::Unexpected(format!("{e}")))
    }

    pub async fn execution(&self, id: &str) -> Result<ExecutionView, ClientError> {
        self.send(self.request(
            reqwest::Method::GET,
            &format!("/api/v1/executions/{}", encode(id)),
        ))
        .await
    }

    pub async fn executions(
        &self,
        pipeline: &str,
        limit: usize,
    ) -> Result<Vec<ExecutionSummary>, ClientError> {
        self.send(
            self.request(
                reqwest::Method::GET,
                &format!("/api/v1/pipelines/{}/executions", encode(pipeline)),
            )
            .query(&[("limit", limit)]),
        )
        .await
    }

    pub async fn start(
        &self,
        pipeline: &str,
        revision: Option<&str>,
    ) -> Result<ExecutionView, ClientError> {
        let body = StartBody {
            revision: revision.map(str::to_owned),
            branch: None,
        };
        self.send(
            self.request(
                reqwest::Method::POST,
                &format!("/api/v1/pipelines/{}/executions", encode(pipeline)),
            )
            .json(&body),
        )
        .await
    }

    pub async fn decide(
        &self,
        id: &str,
        stage: &str,
        approve: bool,
        comment: Option<&str>,
        action: Option<&str>,
    ) -> Result<DecideReport, ClientError> {
        let verb = if approve { "approve" } else { "reject" };
        let body = DecideBody {
            comment: comment.map(str::to_owned),
            action: action.map(str::to_owned),
        };
        self.send(
            self.request(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/executions/{}/stages/{}/{verb}",
                    encode(id),
                    encode(stage)
                ),
            )
            .json(&body),
        )
        .await
    }

    /// Lets `id` past the gates holding `stage`, as the token's identity.
    pub async fn override_gates(
        &self,
        id: &str,
        stage: &str,
        reason: &str,
    ) -> Result<OverrideReport, ClientError> {
        let body = OverrideBody {
            reason: reason.to_owned(),
        };
        self.send(
            self.request(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/executions/{}/stages/{}/override",
                    encode(id),
                    encode(stage)
                ),
            )
            .json(&body),
        )
        .await
    }

    pub async fn releases(
        &self,
        pipeline: &str,
        env: &str,
        limit: usize,
    ) -> Result<ReleasesReport, ClientError> {
        self.send(
            self.request(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/environments/{}/{}/releases",
                    encode(pipeline),
                    encode(env)
                ),
            )
            .query(&[("limit", limit)]),
        )
        .await
    }

    pub async fn rollback(
        &self,
        pipeline: &str,
        env: &str,
        target: Option<&str>,
        to: Option<i64>,
    ) -> Result<RollbackReport, ClientError> {
        let body = RollbackBody {
            target: target.map(str::to_owned),
            to,
        };
        let req = self
            .request(
                reqwest::Method::POST,
                &format!(
                    "/api/v1/environments/{}/{}/rollback",
                    encode(pipeline),
                    encode(env)
                ),
            )
            .json(&body);
        self.report(req).await
    }

    /// `ferry release block` through the server.
    pub async fn block_release(
        &self,
        pipeline: &str,
        release: &str,
        reason: &str,
        rollback: bool,
    ) -> Result<BlockReport, ClientError> {
        let body = BlockBody {
            reason: reason.to_owned(),
            rollback,
        };
        let path = format!(
            "/api/v1/releases/{}/{}/block",
            encode(pipeline),
            encode(release)
        );
        self.report(self.request(reqwest::Method::POST, &path).json(&body))
            .await
    }

    /// `ferry release unblock` through the server.
    pub async fn unblock_release(
        &self,
        pipeline: &str,
        release: &str,
    ) -> Result<UnblockReport, ClientError> {
        let path = format!(
            "/api/v1/releases/{}/{}/unblock",
            encode(pipeline),
            encode(release)
        );
        self.send(self.request(reqwest::Method::POST, &path)).await
    }

    /// A call whose report is the answer on 200 and on 409 (a part of it failed — a deploy
    /// that could not be rolled back: the report says which and why).
    async fn report<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let resp = req.send().await.map_err(|e| ClientError::Unreachable {
            url: self.base.clone(),
            message: cause(&e.without_url()),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        if let (200 | 409, Ok(report)) = (status, serde_json::from_str::<T>(&text)) {
            return Ok(report);
        }
        Err(refused(status, &text))
    }

    pub async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, ClientError> {
        self.send(
            self.request(reqwest::Method::GET, "/api/v1/audit")
                .query(&[("limit", limit)]),
        )
        .await
    }

    /// An action's log, handed to `out` as it comes; followed until the action ends.
    pub async fn log(
        &self,
        id: &str,
        action: &str,
        follow: bool,
        out: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), ClientError> {
        let resp = self
            .request(
                reqwest::Method::GET,
                &format!(
                    "/api/v1/executions/{}/actions/{}/log",
                    encode(id),
                    encode(action)
                ),
            )
            .query(&[("follow", follow)])
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                message: cause(&e.without_url()),
            })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            return Err(refused(status, &text));
        }
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ClientError::Unexpected(e.to_string()))?;
            out(&String::from_utf8_lossy(&chunk));
        }
        Ok(())
    }
}
