//! AWS errors as a user needs them: which account, which role, which call, which resource,
//! the AWS error code — and for an access denial, where to look.

use std::fmt;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use serde::Serialize;

/// What kind of failure an AWS error is, decided once where the error is made, so callers
/// match on this instead of on error-code strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AwsErrorKind {
    /// A policy refused the call.
    AccessDenied,
    /// The credentials are missing, expired or not valid.
    Credentials,
    /// The resource does not exist.
    NotFound,
    /// AWS asked the caller to slow down.
    Throttled,
    /// The resource is busy, in use or not empty: another change is under way.
    Conflict,
    /// A principal IAM does not know (yet), or a service may not yet act as it: a role made
    /// seconds ago, named in a policy or given to CodeBuild as its service role.
    UnknownPrincipal,
    /// The request is malformed or a parameter is wrong.
    Invalid,
    /// AWS answered with a server error (HTTP 5xx).
    Unavailable,
    /// No connection could be made, or it was lost.
    Connection,
    /// The call timed out.
    Timeout,
    /// Something ferry raised itself, or an error of no known kind.
    Other,
}

impl AwsErrorKind {
    /// Whether the SDK retries an error of this kind: it says nothing of the request, only
    /// that AWS (or the way to it) could not answer it then.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            AwsErrorKind::Throttled
                | AwsErrorKind::Unavailable
                | AwsErrorKind::Connection
                | AwsErrorKind::Timeout
        )
    }

    /// The kind of an error from its AWS code, message and HTTP status (when there was a
    /// response). The one place error codes are read.
    pub fn classify(code: &str, message: &str, status: Option<u16>) -> AwsErrorKind {
        let c = code.to_ascii_lowercase();
        let m = message.to_ascii_lowercase();
        let any = |needles: &[&str]| needles.iter().any(|n| c.contains(n));
        if any(&[
            "accessdenied",
            "unauthorized",
            "notauthorized",
            "authorizationerror",
        ]) || c == "403"
        {
            AwsErrorKind::AccessDenied
        } else if any(&[
            "expiredtoken",
            "invalidclienttokenid",
            "unrecognizedclient",
            "signaturedoesnotmatch",
            "credentialsnotloaded",
            "invalidaccesskeyid",
        ]) {
            AwsErrorKind::Credentials
        } else if any(&["notfound", "nosuch"]) {
            AwsErrorKind::NotFound
        } else if any(&[
            "throttl",
            "toomanyrequests",
            "requestlimitexceeded",
            "slowdown",
            "provisionedthroughputexceeded",
            "priorrequestnotcomplete",
        ]) || status == Some(429)
        {
            AwsErrorKind::Throttled
        } else if any(&[
            "conflict",
            "alreadyexists",
            "resourceinuse",
            "notempty",
            "concurrentmodification",
            "operationaborted",
        ]) {
            AwsErrorKind::Conflict
        } else if (c.contains("malformed")
            || c == "invalidparameterexception"
            || c == "invalidargument")
            && m.contains("principal")
            // CodeBuild tries the service role it is given: "CodeBuild is not authorized to
            // perform: sts:AssumeRole on …", or in a VPC "Not authorized to perform
            // DescribeSecurityGroups".
            || c == "invalidinputexception" && m.contains("not authorized to perform")
        {
            AwsErrorKind::UnknownPrincipal
        } else if any(&["validation", "invalid", "malformed"]) {
            AwsErrorKind::Invalid
        } else if any(&[
            "serviceunavailable",
            "internalerror",
            "internalfailure",
            "serviceexception",
        ]) || status.is_some_and(|s| s >= 500)
        {
            AwsErrorKind::Unavailable
        } else if c == "connectionerror" {
            AwsErrorKind::Connection
        } else if c == "timeout" {
            AwsErrorKind::Timeout
        } else if status == Some(404) {
            AwsErrorKind::NotFound
        } else if status == Some(403) {
            AwsErrorKind::AccessDenied
        } else {
            AwsErrorKind::Other
        }
    }
}

/// A failed AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    /// Where the call was made: the account and the role, when known. Boxed: errors travel
    /// in `Result`s, and most are never looked at twice.
    pub site: Box<CallSite>,
    /// `service:Operation`, e.g. `lambda:UpdateFunctionCode`.
    pub action: String,
    /// The resource it was about.
    pub resource: String,
    /// AWS's error code (`AccessDeniedException`, `ResourceNotFoundException`, …).
    pub code: String,
    pub kind: AwsErrorKind,
    pub message: String,
    /// For a transient error: the attempts made before giving up (boxed, as `site`).
    pub attempts: Option<Box<Attempts>>,
}

/// How hard a call was tried before its error was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub count: u32,
    pub elapsed: std::time::Duration,
}

impl AwsError {
    pub fn is_access_denied(&self) -> bool {
        self.kind == AwsErrorKind::AccessDenied
    }

    pub fn is_not_found(&self) -> bool {
        self.kind == AwsErrorKind::NotFound
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {} failed", self.action, self.resource)?;
        match (&self.site.account, &self.site.role_arn) {
            (Some(a), Some(r)) => write!(f, " in account {a} as {r}")?,
            (Some(a), None) => write!(f, " in account {a}")?,
            (None, Some(r)) => write!(f, " as {r}")?,
            (None, None) => {}
        }
        if let Some(a) = &self.attempts {
            let what = match self.kind {
                AwsErrorKind::Throttled => "AWS throttled it",
                AwsErrorKind::Unavailable => "AWS answered with a server error",
                AwsErrorKind::Connection => "the connection was lost",
                _ => "it timed out",
            };
            let tries = if a.count == 1 {
                "1 attempt".to_owned()
            } else {
                format!("{} attempts", a.count)
            };
            write!(
                f,
                ": {what} ({}) — gave up after {tries} over {:.1} s",
                if self.message.is_empty() {
                    self.code.clone()
                } else {
                    format!("{}: {}", self.code, self.message)
                },
                a.elapsed.as_secs_f64()
            )?;
            return Ok(());
        }
        write!(f, ": {}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if self.kind == AwsErrorKind::UnknownPrincipal && self.action.starts_with("codebuild:") {
            write!(
                f,
                " — CodeBuild checks the project as its service role and could not use it (IAM \
                 has not propagated a new role yet, or the role lacks a grant): `ferry verify` \
                 shows what that role lacks"
            )?;
        }
        if self.is_access_denied() {
            write!(
                f,
                " — check, for {} on {}: the identity policy of the role, its permissions boundary, the resource's policy \
                 (bucket, key, repository or trust policy) and any SCP; `ferry verify` shows which statement is missing",
                self.action, self.resource
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for AwsError {}

/// Where a call was made: attached to every error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSite {
    pub account: Option<String>,
    pub role_arn: Option<String>,
}

impl CallSite {
    /// Turns an SDK error into an [`AwsError`] for `action` on `resource`.
    pub fn error<E>(
        &self,
        action: &str,
        resource: &str,
        err: &SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (code, message) = match (err.code(), status) {
            (Some(code), _) => (
                code.to_owned(),
                err.message()
                    .map_or_else(|| root_message(err), str::to_owned),
            ),
            // An answer that is not an AWS error document (a proxy's or a load balancer's
            // 503 page): its status says it all; the SDK's attempt to parse it says nothing.
            (None, Some(status)) => (format!("HTTP {status}"), reason(status).to_owned()),
            (None, None) => (fallback_code(err), root_message(err)),
        };
        AwsError {
            site: Box::new(self.clone()),
            action: action.to_owned(),
            resource: resource.to_owned(),
            kind: AwsErrorKind::classify(&code, &message, status),
            code,
            message,
            attempts: None,
        }
    }

    /// An error ferry raises itself about an AWS resource; its kind comes from `code`.
    pub fn fail(
        &self,
        action: &str,
        resource: &str,
        code: &str,
        message: impl Into<String>,
    ) -> AwsError {
        let message = message.into();
        AwsError {
            site: Box::new(self.clone()),
            action: action.to_owned(),
            resource: resource.to_owned(),
            code: code.to_owned(),
            kind: AwsErrorKind::classify(code, &message, None),
            message,
            attempts: None,
        }
    }
}

/// The reason phrase of the statuses AWS and the proxies before it answer without a body.
fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Errors without AWS metadata: connection failures, timeouts, unparsed bodies.
fn fallback_code(err: &(dyn std::error::Error + 'static)) -> String {
    let text = root_message(err).to_ascii_lowercase();
    if text.contains("dispatch") || text.contains("connect") {
        "ConnectionError".into()
    } else if text.contains("timeout") || text.contains("timed out") {
        "Timeout".into()
    } else {
        "Unhandled".into()
    }
}

/// An error and its sources, without repeats.
pub(crate) fn root_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_names_everything_and_points_to_verify() {
        let site = CallSite {
            account: Some("222222222222".into()),
            role_arn: Some("arn:aws:iam::222222222222:role/ferry-deploy".into()),
        };
        let e = site.fail(
            "lambda:UpdateFunctionCode",
            "orders-fn",
            "AccessDeniedException",
            "User is not authorized",
        );
        let text = e.to_string();
        for needle in [
            "lambda:UpdateFunctionCode",
            "orders-fn",
            "222222222222",
            "role/ferry-deploy",
            "AccessDeniedException",
            "ferry verify",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
        assert!(
            !site
                .fail("x", "y", "ThrottlingException", "")
                .to_string()
                .contains("ferry verify")
        );
    }

    /// CodeBuild's refusal is of its service role, not the caller: the message says which, and
    /// where to look.
    #[test]
    fn a_project_codebuild_cannot_check_as_its_role_points_to_that_role() {
        let site = CallSite {
            account: Some("111111111111".into()),
            role_arn: Some("arn:aws:iam::111111111111:role/ferry-orders".into()),
        };
        let text = site
            .fail(
                "codebuild:CreateProject",
                "ferry-orders",
                "InvalidInputException",
                "Not authorized to perform DescribeSecurityGroups",
            )
            .to_string();
        assert!(
            text.contains("DescribeSecurityGroups")
                && text.contains("as its service role")
                && text.contains("ferry verify"),
            "{text}"
        );
    }

    /// Regression: a 503 whose body is not an AWS error document (a load balancer's page)
    /// read as "Unhandled: service error: unhandled error: Error at offset 0: unexpected
    /// token 'S'" once the SDK's three attempts ran out.
    #[test]
    fn a_503_without_an_aws_error_says_so_with_its_attempts_not_the_parse_failure() {
        use aws_sdk_sts::error::ErrorMetadata;
        use aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError;
        use aws_smithy_runtime_api::http::{Response, StatusCode};
        use aws_smithy_types::body::SdkBody;
        let raw = Response::new(
            StatusCode::try_from(503).unwrap(),
            SdkBody::from("Service Unavailable"),
        );
        let err: SdkError<GetCallerIdentityError, HttpResponse> = SdkError::service_error(
            GetCallerIdentityError::generic(ErrorMetadata::builder().build()),
            raw,
        );
        let site = CallSite {
            account: Some("222222222222".into()),
            role_arn: Some("arn:aws:iam::222222222222:role/ferry-deploy".into()),
        };
        let mut e = site.error("lambda:PublishVersion", "orders-fn", &err);
        assert_eq!(e.kind, AwsErrorKind::Unavailable);
        assert_eq!(e.code, "HTTP 503");
        e.attempts = Some(Box::new(Attempts {
            count: 8,
            elapsed: std::time::Duration::from_millis(21_400),
        }));
        let text = e.to_string();
        assert_eq!(
            text,
            "lambda:PublishVersion on orders-fn failed in account 222222222222 as arn:aws:iam::222222222222:role/ferry-deploy: AWS answered with a server error (HTTP 503: Service Unavailable) — gave up after 8 attempts over 21.4 s"
        );
        assert!(!text.contains("unhandled") && !text.contains("offset"));
    }

    #[test]
    fn error_kinds_are_read_from_codes_once() {
        use AwsErrorKind as K;
        let cases = [
            ("AccessDeniedException", "", None, K::AccessDenied),
            ("AccessDenied", "", Some(403), K::AccessDenied),
            ("ResourceNotFoundException", "", None, K::NotFound),
            ("NoSuchBucketPolicy", "", None, K::NotFound),
            ("Unhandled", "", Some(404), K::NotFound),
            ("ThrottlingException", "", None, K::Throttled),
            ("Throttling", "Rate exceeded", Some(400), K::Throttled),
            ("TooManyRequestsException", "", Some(429), K::Throttled),
            ("SlowDown", "", Some(503), K::Throttled),
            ("ResourceConflictException", "", None, K::Conflict),
            ("ResourceAlreadyExistsException", "", None, K::Conflict),
            ("RepositoryNotEmptyException", "", None, K::Conflict),
            (
                "MalformedPolicyDocumentException",
                "Invalid principal in policy",
                None,
                K::UnknownPrincipal,
            ),
            (
                "MalformedPolicyDocumentException",
                "bad json",
                None,
                K::Invalid,
            ),
            (
                "InvalidInputException",
                "CodeBuild is not authorized to perform: sts:AssumeRole on arn:aws:iam::111111111111:role/ferry-orders-build",
                Some(400),
                K::UnknownPrincipal,
            ),
            (
                "InvalidInputException",
                "Not authorized to perform DescribeSecurityGroups",
                Some(400),
                K::UnknownPrincipal,
            ),
            (
                "InvalidInputException",
                "Invalid compute type",
                Some(400),
                K::Invalid,
            ),
            ("ValidationException", "", None, K::Invalid),
            ("ServiceUnavailable", "", Some(503), K::Unavailable),
            ("Unhandled", "", Some(502), K::Unavailable),
            ("ConnectionError", "", None, K::Connection),
            ("ExpiredToken", "", None, K::Credentials),
            ("WrongAccount", "", None, K::Other),
        ];
        for (code, message, status, kind) in cases {
            assert_eq!(
                AwsErrorKind::classify(code, message, status),
                kind,
                "{code}"
            );
        }
    }
}
