//! AWS errors as a user needs them: which account, which role, which call, which resource,
//! the AWS error code — and for an access denial, where to look.

use std::fmt;

use aws_sdk_sts::error::ProvideErrorMetadata;

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
    pub message: String,
}

impl AwsError {
    pub fn is_access_denied(&self) -> bool {
        let c = self.code.to_ascii_lowercase();
        c.contains("accessdenied") || c.contains("unauthorized") || c == "403"
    }

    pub fn is_not_found(&self) -> bool {
        let c = self.code.to_ascii_lowercase();
        c.contains("notfound") || c.contains("nosuch")
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
        write!(f, ": {}", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
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
    pub fn error<E>(&self, action: &str, resource: &str, err: &E) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = err
            .code()
            .map(str::to_owned)
            .unwrap_or_else(|| fallback_code(err));
        let message = err
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| root_message(err));
        AwsError {
            site: Box::new(self.clone()),
            action: action.to_owned(),
            resource: resource.to_owned(),
            code,
            message,
        }
    }

    /// The call's value; `None` when AWS answers that the resource does not exist.
    pub fn found<T, E>(
        &self,
        action: &str,
        resource: &str,
        result: Result<T, E>,
    ) -> Result<Option<T>, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match result {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let err = self.error(action, resource, &e);
                if err.is_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// An error ferry raises itself about an AWS resource.
    pub fn fail(
        &self,
        action: &str,
        resource: &str,
        code: &str,
        message: impl Into<String>,
    ) -> AwsError {
        AwsError {
            site: Box::new(self.clone()),
            action: action.to_owned(),
            resource: resource.to_owned(),
            code: code.to_owned(),
            message: message.into(),
        }
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
}
