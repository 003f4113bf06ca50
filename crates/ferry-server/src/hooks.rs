//! Webhooks: checking that a delivery comes from the forge (GitHub's `X-Hub-Signature-256`,
//! an HMAC-SHA256 of the raw body; GitLab's `X-Gitlab-Token`; a generic hook signed the GitHub
//! way), and reading the push it announces. Both comparisons are constant-time.

use aws_lc_rs::hmac;
use axum::http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A forge that sends webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Github,
    Gitlab,
    Generic,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Github => "github",
            Source::Gitlab => "gitlab",
            Source::Generic => "generic",
        }
    }
}

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// The pipeline has no `webhook_secret_file`: no delivery can be checked, so none is taken.
    #[error("pipeline `{0}` takes no webhooks: give it a `webhook_secret_file` in server.yaml")]
    NoSecret(String),
    #[error("the {0} header is missing")]
    MissingSignature(&'static str),
    #[error("the signature does not match the body and the pipeline's webhook secret")]
    BadSignature,
    #[error("the body is not a push event: {0}")]
    BadPayload(String),
}

/// A push, as a webhook announces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The delivery's id, to recognise redeliveries.
    pub delivery: Option<String>,
    /// `refs/heads/main`, `refs/tags/v1.2`.
    pub reference: String,
    /// The commit the ref now points at; `None` when the ref was deleted.
    pub revision: Option<String>,
    /// Who pushed, as the forge names them.
    pub pushed_by: Option<String>,
}

/// What a delivery is, before its push is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Push(Push),
    /// Another event (GitHub's `ping`, say): acknowledged, nothing started.
    Other(String),
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
fn verify_hub_signature(
    headers: &HeaderMap,
    body: &[u8],
    secret: &SecretString,
) -> Result<(), HookError> {
    let signature = header(headers, "x-hub-signature-256")
        .ok_or(HookError::MissingSignature("X-Hub-Signature-256"))?;
    let hex = signature
        .strip_prefix("sha256=")
        .ok_or(HookError::BadSignature)?;
    let tag = decode_hex(hex).ok_or(HookError::BadSignature)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret().as_bytes());
    hmac::verify(&key, body, &tag).map_err(|_| HookError::BadSignature)
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The signature a forge would send for `body` (for `scripts/demo` and the tests).
pub fn sign(body: &[u8], secret: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    format!(
        "sha256={}",
        ferry_engine::encoding::hex(hmac::sign(&key, body).as_ref())
    )
}

#[derive(Deserialize)]
struct GithubPush {
    #[serde(rename = "ref")]
    reference: String,
    after: Option<String>,
    #[serde(default)]
    deleted: bool,
    pusher: Option<Named>,
    sender: Option<Login>,
}

#[derive(Deserialize)]
struct Named {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Login {
    login: Option<String>,
}

#[derive(Deserialize)]
struct GitlabPush {
    #[serde(rename = "ref")]
    reference: String,
    after: Option<String>,
    checkout_sha: Option<String>,
    user_username: Option<String>,
}

#[derive(Deserialize)]
struct GenericPush {
    #[serde(rename = "ref")]
    reference: Option<String>,
    branch: Option<String>,
    revision: Option<String>,
    pushed_by: Option<String>,
}

const DELETED: &str = "0000000000000000000000000000000000000000";

fn payload<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, HookError> {
    serde_json::from_slice(body).map_err(|e| {
        // Positions only: the body is the sender's, and may hold anything.
        HookError::BadPayload(format!(
            "line {}, column {}: {}",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Data => "a field is missing or of the wrong type",
                serde_json::error::Category::Eof => "it ends early",
                _ => "it is not JSON",
            }
        ))
    })
}

/// Checks a delivery from `source` with the pipeline's `secret` and reads its event.
pub fn read(
    source: Source,
    pipeline: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret: Option<&SecretString>,
) -> Result<Event, HookError> {
    let secret = secret.ok_or_else(|| HookError::NoSecret(pipeline.to_owned()))?;
    match source {
        Source::Github => {
            verify_hub_signature(headers, body, secret)?;
            let event = header(headers, "x-github-event").unwrap_or("push");
            if event != "push" {
                return Ok(Event::Other(event.to_owned()));
            }
            let p: GithubPush = payload(body)?;
            let deleted = p.deleted || p.after.as_deref() == Some(DELETED);
            Ok(Event::Push(Push {
                delivery: header(headers, "x-github-delivery").map(str::to_owned),
                reference: p.reference,
                revision: p.after.filter(|_| !deleted),
                pushed_by: p
                    .pusher
                    .and_then(|n| n.name)
                    .or_else(|| p.sender.and_then(|s| s.login)),
            }))
        }
        Source::Gitlab => {
            let token = header(headers, "x-gitlab-token")
                .ok_or(HookError::MissingSignature("X-Gitlab-Token"))?;
            aws_lc_rs::constant_time::verify_slices_are_equal(
                token.as_bytes(),
                secret.expose_secret().as_bytes(),
            )
            .map_err(|_| HookError::BadSignature)?;
            let event = header(headers, "x-gitlab-event").unwrap_or("Push Hook");
            if event != "Push Hook" && event != "Tag Push Hook" {
                return Ok(Event::Other(event.to_owned()));
            }
            let p: GitlabPush = payload(body)?;
            let revision = p.checkout_sha.or(p.after).filter(|r| r != DELETED);
            Ok(Event::Push(Push {
                delivery: header(headers, "x-gitlab-event-uuid").map(str::to_owned),
                reference: p.reference,
                revision,
                pushed_by: p.user_username,
            }))
        }
        Source::Generic => {
            verify_hub_signature(headers, body, secret)?;
            let p: GenericPush = payload(body)?;
            let reference = match (p.reference, p.branch) {
                (Some(r), _) => r,
                (None, Some(b)) => format!("refs/heads/{b}"),
                (None, None) => {
                    return Err(HookError::BadPayload(
                        "name the pushed ref: `{\"ref\": \"refs/heads/main\"}` or `{\"branch\": \"main\"}`".into(),
                    ));
                }
            };
            Ok(Event::Push(Push {
                delivery: header(headers, "x-ferry-delivery").map(str::to_owned),
                reference,
                revision: p.revision,
                pushed_by: p.pushed_by,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn secret() -> SecretString {
        SecretString::from("s3cret".to_owned())
    }

    fn github(body: &[u8], signature: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-github-event", HeaderValue::from_static("push"));
        h.insert("x-github-delivery", HeaderValue::from_static("d-1"));
        if let Some(s) = signature {
            h.insert("x-hub-signature-256", HeaderValue::from_str(s).unwrap());
        } else {
            h.insert(
                "x-hub-signature-256",
                HeaderValue::from_str(&sign(body, "s3cret")).unwrap(),
            );
        }
        h
    }

    /// GitHub's own example ("Validating webhook deliveries"): this secret and payload give
    /// this signature; `sign` and the check must agree with it, not only with each other.
    #[test]
    fn signatures_match_githubs_documented_example() {
        let expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            sign(b"Hello, World!", "It's a Secret to Everybody"),
            expected
        );
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", HeaderValue::from_static(expected));
        let secret = SecretString::from("It's a Secret to Everybody".to_owned());
        assert_eq!(verify_hub_signature(&h, b"Hello, World!", &secret), Ok(()));
    }

    #[test]
    fn a_signed_github_push_is_read() {
        let body = br#"{"ref": "refs/heads/main", "after": "abc", "pusher": {"name": "bob"}}"#;
        let e = read(
            Source::Github,
            "orders",
            &github(body, None),
            body,
            Some(&secret()),
        )
        .unwrap();
        assert_eq!(
            e,
            Event::Push(Push {
                delivery: Some("d-1".into()),
                reference: "refs/heads/main".into(),
                revision: Some("abc".into()),
                pushed_by: Some("bob".into()),
            })
        );
    }

    #[test]
    fn a_wrong_or_missing_signature_is_refused() {
        let body = br#"{"ref": "refs/heads/main", "after": "abc"}"#;
        let forged = sign(b"another body", "s3cret");
        assert_eq!(
            read(
                Source::Github,
                "o",
                &github(body, Some(&forged)),
                body,
                Some(&secret())
            ),
            Err(HookError::BadSignature)
        );
        assert_eq!(
            read(
                Source::Github,
                "o",
                &github(body, Some("sha256=zz")),
                body,
                Some(&secret())
            ),
            Err(HookError::BadSignature)
        );
        let mut bare = github(body, None);
        bare.remove("x-hub-signature-256");
        assert!(matches!(
            read(Source::Github, "o", &bare, body, Some(&secret())),
            Err(HookError::MissingSignature(_))
        ));
        assert!(matches!(
            read(Source::Github, "o", &github(body, None), body, None),
            Err(HookError::NoSecret(_))
        ));
    }

    #[test]
    fn gitlab_checks_its_token_and_generic_hooks_sign_like_github() {
        let body = br#"{"ref": "refs/heads/main", "after": "abc", "checkout_sha": "abc", "user_username": "carol"}"#;
        let mut h = HeaderMap::new();
        h.insert("x-gitlab-event", HeaderValue::from_static("Push Hook"));
        h.insert("x-gitlab-token", HeaderValue::from_static("s3cret"));
        assert!(matches!(
            read(Source::Gitlab, "o", &h, body, Some(&secret())),
            Ok(Event::Push(Push {
                pushed_by: Some(_),
                ..
            }))
        ));
        h.insert("x-gitlab-token", HeaderValue::from_static("guess"));
        assert_eq!(
            read(Source::Gitlab, "o", &h, body, Some(&secret())),
            Err(HookError::BadSignature)
        );
        let body = br#"{"branch": "main", "revision": "abc"}"#;
        let mut h = HeaderMap::new();
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&sign(body, "s3cret")).unwrap(),
        );
        let Ok(Event::Push(p)) = read(Source::Generic, "o", &h, body, Some(&secret())) else {
            panic!()
        };
        assert_eq!(p.reference, "refs/heads/main");
    }

    #[test]
    fn a_deleted_branch_carries_no_revision_and_a_ping_is_not_a_push() {
        let body = br#"{"ref": "refs/heads/old", "after": "0000000000000000000000000000000000000000", "deleted": true}"#;
        let Ok(Event::Push(p)) = read(
            Source::Github,
            "o",
            &github(body, None),
            body,
            Some(&secret()),
        ) else {
            panic!()
        };
        assert_eq!(p.revision, None);
        let mut h = github(b"{}", None);
        h.insert("x-github-event", HeaderValue::from_static("ping"));
        assert_eq!(
            read(Source::Github, "o", &h, b"{}", Some(&secret())),
            Ok(Event::Other("ping".into()))
        );
    }
}
