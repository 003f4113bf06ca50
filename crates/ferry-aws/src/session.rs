//! Credentials per account: the process's own identity from the SDK's default chain, and for
//! each target account its deploy role through `AssumeRole`, cached until shortly before the
//! credentials expire (the SDK's provider refreshes them, safely under concurrency).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Attempts, AwsError, AwsErrorKind, CallSite, root_message};

/// How many times one AWS call is tried: the SDK's default is 3, which a throttling or
/// briefly unavailable control plane outlasts.
pub const MAX_ATTEMPTS: u32 = 8;
/// The longest one AWS call may take, retries included.
pub const CALL_DEADLINE: Duration = Duration::from_secs(120);

/// ferry's calls are control-plane calls: retried in standard mode (throttling errors back off
/// longer) up to [`MAX_ATTEMPTS`] times with jittered backoff from 200 ms to 10 s, each attempt
/// at most 60 s and all of them at most [`CALL_DEADLINE`]. Not adaptive mode: its client-side
/// rate limiter stretched twenty Lambda deploys through an API failing one call in five from
/// 22 s to 458 s (tests/integration/faults.rs), holding healthy calls behind throttled ones. A
/// user's own `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE` is kept. Every request is counted, so an
/// error can say how many attempts were made.
fn control_plane(base: SdkConfig) -> SdkConfig {
    // The client the SDK would choose (it caches a connector per setting, so connections are
    // reused), behind the counter.
    let inner = base.http_client().unwrap_or_else(|| {
        use aws_smithy_http_client::tls;
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https()
    });
    let mut b = base.into_builder();
    let user_set = ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !user_set {
        b = b.retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(10)),
        );
    }
    b = b.timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(60))
            .operation_timeout(CALL_DEADLINE)
            .build(),
    );
    b = b.http_client(http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Counting(inner.http_connector(settings, components)))
    }));
    b.build()
}

tokio::task_local! {
    /// The requests sent for the call in progress on this task (`AccountConfig::call`).
    static ATTEMPTS: Cell<u32>;
}

/// Counts each request it sends in the calling task's [`ATTEMPTS`].
#[derive(Debug)]
struct Counting(SharedHttpConnector);

impl HttpConnector for Counting {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let _ = ATTEMPTS.try_with(|n| n.set(n.get() + 1));
        self.0.call(request)
    }
}

/// A role to act as in another account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoleTarget {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub region: Option<String>,
}

impl RoleTarget {
    pub fn account(&self) -> Option<&str> {
        self.role_arn.split(':').nth(4)
    }
}

/// The configuration of one account's clients, where its calls are made, and the log that
/// counts them.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    pub config: SdkConfig,
    pub site: CallSite,
    pub calls: CallLog,
}

/// What a process needs in its environment to act as one account's role (an ECS hook's
/// test): the plain variables, and the secret ones apart, to be masked before it starts.
pub struct ProcessEnv {
    pub plain: Vec<(String, String)>,
    pub secret: Vec<(String, secrecy::SecretString)>,
}

impl AccountConfig {
    /// The standard `AWS_*` variables for a process acting as this role: its current
    /// credentials, region and endpoint (when one is configured, as for the emulator).
    pub async fn process_env(&self) -> Result<ProcessEnv, AwsError> {
        let role = self.site.role_arn.clone().unwrap_or_default();
        let fail = |why: String| self.fail("sts:AssumeRole", &role, "NoCredentials", why);
        let provider = self
            .config
            .credentials_provider()
            .ok_or_else(|| fail("no credentials are configured".into()))?;
        let creds = provider
            .provide_credentials()
            .await
            .map_err(|e| fail(root_message(&e)))?;
        let mut plain = vec![
            (
                "AWS_ACCESS_KEY_ID".to_owned(),
                creds.access_key_id().to_owned(),
            ),
            ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        ];
        if let Some(region) = self.config.region() {
            plain.push(("AWS_REGION".into(), region.to_string()));
            plain.push(("AWS_DEFAULT_REGION".into(), region.to_string()));
        }
        if let Some(endpoint) = self.config.endpoint_url() {
            plain.push(("AWS_ENDPOINT_URL".into(), endpoint.to_owned()));
        }
        let mut secret = vec![(
            "AWS_SECRET_ACCESS_KEY".to_owned(),
            secrecy::SecretString::from(creds.secret_access_key().to_owned()),
        )];
        if let Some(token) = creds.session_token() {
            secret.push((
                "AWS_SESSION_TOKEN".to_owned(),
                secrecy::SecretString::from(token.to_owned()),
            ));
        }
        Ok(ProcessEnv { plain, secret })
    }

    /// Makes one AWS call: records it in the call log, awaits it, and turns its error into an
    /// [`AwsError`] naming this account and role, `action` and `resource`. Every call ferry
    /// makes goes through here (or [`AccountConfig::find`]).
    pub async fn call<T, E>(
        &self,
        action: &str,
        resource: &str,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.calls.record(action);
        let started = Instant::now();
        // Boxed: an SDK request's future is some 16 kB, and every caller's future would
        // carry it inline; one allocation per AWS call costs nothing beside the call.
        let request = Box::pin(request);
        let (result, count) = Box::pin(ATTEMPTS.scope(Cell::new(0), async move {
            let result = request.await;
            (result, ATTEMPTS.with(Cell::get))
        }))
        .await;
        result.map_err(|e| {
            let mut error = self.site.error(action, resource, &e);
            if error.kind.is_transient() {
                error.attempts = Some(Box::new(Attempts {
                    count,
                    elapsed: started.elapsed(),
                }));
            }
            error
        })
    }

    /// [`AccountConfig::call`] for a read of something that may not exist: `None` when AWS
    /// answers that it does not.
    pub async fn find<T, E>(
        &self,
        action: &str,
        resource: &str,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<Option<T>, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match self.call(action, resource, request).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind == AwsErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// An error ferry raises itself about a resource in this account.
    pub fn fail(
        &self,
        action: &str,
        resource: &str,
        code: &str,
        message: impl Into<String>,
    ) -> AwsError {
        self.site.fail(action, resource, code, message)
    }
}

/// `AWS_ENDPOINT_URL` and its per-service forms, checked before the SDK reads them: it panics
/// on an empty one, and fails only at the first call, with a dump of the request, on a
/// malformed one.
fn check_endpoint_settings() -> Result<(), AwsError> {
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with("AWS_ENDPOINT_URL")) else {
            continue;
        };
        let value = value.to_string_lossy();
        let host = value
            .strip_prefix("http://")
            .or_else(|| value.strip_prefix("https://"));
        if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace)) {
            return Err(CallSite::default().fail(
                "reading the AWS settings",
                name,
                "InvalidEndpoint",
                format!(
                    "{name} is {value:?}: give a URL such as https://example.com or http://127.0.0.1:5000, or unset it"
                ),
            ));
        }
    }
    Ok(())
}

/// Counts the AWS calls a command makes, by `service:Operation` (for `--format json`).
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<Vec<String>>>);

impl CallLog {
    pub fn record(&self, call: &str) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call.to_owned());
    }

    pub fn calls(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Calls by operation, for reports.
    pub fn counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut out = std::collections::BTreeMap::new();
        for c in self.calls() {
            *out.entry(c).or_insert(0) += 1;
        }
        out
    }
}

/// ferry's view of AWS: the base identity and a cache of assumed-role configurations,
/// shared by every clone (and every session name made with [`Aws::with_session`]).
#[derive(Debug, Clone)]
pub struct Aws {
    base: SdkConfig,
    session_name: String,
    roles: Arc<Mutex<HashMap<(String, RoleTarget), SdkConfig>>>,
    pub calls: CallLog,
}

impl Aws {
    /// The SDK's own configuration: environment, profiles (SSO included), `AWS_ENDPOINT_URL`,
    /// `AWS_REGION`; IMDS unless `AWS_EC2_METADATA_DISABLED` says otherwise.
    pub async fn from_env(session_name: &str) -> Result<Aws, AwsError> {
        check_endpoint_settings()?;
        // Boxed: the SDK's loader is a large future.
        let base = Box::pin(aws_config::defaults(BehaviorVersion::latest()).load()).await;
        Ok(Aws::with_config(base, session_name))
    }

    /// From a given configuration (tests, or a region override).
    pub fn with_config(base: SdkConfig, session_name: &str) -> Aws {
        Aws {
            base: control_plane(base),
            session_name: session_name_for(session_name),
            roles: Arc::default(),
            calls: CallLog::default(),
        }
    }

    /// The same identity and cache, assuming roles under another session name
    /// (`ferry-<pipeline>-<execution>`, which CloudTrail shows).
    pub fn with_session(&self, session_name: &str) -> Aws {
        Aws {
            session_name: session_name_for(session_name),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &SdkConfig {
        &self.base
    }

    pub fn region(&self) -> Option<String> {
        self.base.region().map(ToString::to_string)
    }

    /// The base identity's configuration, with `region` if given.
    pub fn own(&self, region: Option<&str>) -> AccountConfig {
        let config = match region {
            Some(r) => self
                .base
                .to_builder()
                .region(Region::new(r.to_owned()))
                .build(),
            None => self.base.clone(),
        };
        AccountConfig {
            config,
            site: CallSite::default(),
            calls: self.calls.clone(),
        }
    }

    /// The configuration of `target`'s role, assumed once per session name and cached; the
    /// SDK's identity cache refreshes the credentials shortly before they expire. The role is
    /// assumed here, not at the first call, so a denied `AssumeRole` is reported as such.
    pub async fn assume(&self, target: &RoleTarget) -> Result<AccountConfig, AwsError> {
        let site = CallSite {
            account: target.account().map(str::to_owned),
            role_arn: Some(target.role_arn.clone()),
        };
        let key = (self.session_name.clone(), target.clone());
        if let Some(config) = self
            .roles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(AccountConfig {
                config: config.clone(),
                site,
                calls: self.calls.clone(),
            });
        }
        let mut base = self.base.clone();
        if let Some(region) = &target.region {
            base = base
                .to_builder()
                .region(Region::new(region.clone()))
                .build();
        }
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(&target.role_arn)
            .session_name(&self.session_name)
            .configure(&base);
        if let Some(external_id) = &target.external_id {
            builder = builder.external_id(external_id);
        }
        let provider = Box::pin(builder.build()).await;
        self.calls.record("sts:AssumeRole");
        let first = Box::pin(provider.provide_credentials())
            .await
            .map_err(|e| {
                // The provider's error carries no AWS code: its kind comes from its text.
                let text = root_message(&e);
                let code = match AwsErrorKind::classify(&text, &text, None) {
                    AwsErrorKind::AccessDenied => "AccessDenied",
                    _ => "AssumeRoleFailed",
                };
                site.fail("sts:AssumeRole", &target.role_arn, code, text)
            })?;
        let provider = Prefetched {
            first: Mutex::new(Some(first)),
            inner: provider,
        };
        let config = base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        self.roles
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, config.clone());
        Ok(AccountConfig {
            config,
            site,
            calls: self.calls.clone(),
        })
    }

    /// The configuration to act in: an assumed role, or the base identity.
    pub async fn account(
        &self,
        role: Option<&RoleTarget>,
        region: Option<&str>,
    ) -> Result<AccountConfig, AwsError> {
        match role {
            Some(r) => self.assume(r).await,
            None => Ok(self.own(region)),
        }
    }
}

/// Hands out the credentials fetched when the role was assumed, then asks the provider again
/// (the identity cache calls it only when those are about to expire).
#[derive(Debug)]
struct Prefetched {
    first: Mutex<Option<Credentials>>,
    inner: aws_config::sts::AssumeRoleProvider,
}

impl ProvideCredentials for Prefetched {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        match self
            .first
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            Some(creds) => future::ProvideCredentials::ready(Ok(creds)),
            None => self.inner.provide_credentials(),
        }
    }
}

/// A valid `RoleSessionName`: letters, digits and `_+=,.@-`, at most 64 characters.
pub fn session_name_for(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed: String = cleaned.chars().take(64).collect();
    if trimmed.len() < 2 {
        "ferry".into()
    } else {
        trimmed
    }
}

/// An S3 client: path-style addressing when a custom endpoint is configured (emulators).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid_and_bounded() {
        assert_eq!(session_name_for("ferry-orders-12"), "ferry-orders-12");
        assert_eq!(session_name_for("ferry orders/12"), "ferry-orders-12");
        assert_eq!(session_name_for(&"x".repeat(100)).len(), 64);
    }
}
