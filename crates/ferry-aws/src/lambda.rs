//! Lambda deploys: new code → a published version → the alias shifted to it (all at once,
//! canary or linear), watched by CloudWatch alarms, rolled back by itself when one fires.
//!
//! Idempotent: when the alias already serves a version with the same code, nothing is
//! published; when an earlier attempt published the version but did not move the alias, that
//! version is reused.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::AliasRoutingConfiguration;
use ferry_engine::model::ReleaseRecord;
use ferry_manifest::Traffic;
use serde::Serialize;

use crate::alarms::{self, AlarmWatch};
pub use crate::deploy::Outcome;
use crate::deploy::{Released, StepLog};
use crate::error::{AwsError, AwsErrorKind};
use crate::session::AccountConfig;

/// The code to deploy.
#[derive(Debug, Clone)]
pub enum Package {
    Zip(Vec<u8>),
    Image(String),
}

impl Package {
    /// What Lambda reports as `CodeSha256` for this code: base64 of the zip's sha256, or the
    /// image URI (compared by URI; Lambda resolves the digest).
    pub fn code_sha256(&self) -> Option<String> {
        match self {
            Package::Zip(bytes) => Some(ferry_engine::encoding::base64(
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref(),
            )),
            Package::Image(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LambdaDeploy {
    pub function: String,
    pub alias: String,
    pub package: Package,
    pub traffic: Traffic,
    pub alarms: Vec<String>,
    /// Once all traffic is on the new version, watch `alarms` this long more; one entering
    /// ALARM rolls the alias back (`gates.after`). Zero: done when shifted.
    pub watch_after: Duration,
    /// Keep this many published versions (besides referenced ones); `None`: prune nothing.
    pub prune_keep: Option<usize>,
    /// Versions the release ledger still references: never pruned.
    pub referenced: Vec<String>,
    /// How often to look at alarms and update status.
    pub poll: Duration,
    /// The engine's idempotency key of this attempt, written into the published version's
    /// description so the version can be traced to the attempt that made it.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LambdaReport {
    pub outcome: Outcome,
    pub function: String,
    pub alias: String,
    pub from_version: Option<String>,
    pub to_version: Option<String>,
    pub code_sha256: Option<String>,
    /// The version ran through every bake without an alarm.
    pub verified: bool,
    pub steps: Vec<String>,
    pub error: Option<String>,
    pub pruned: Vec<String>,
    pub duration_ms: u64,
}

impl Released for LambdaReport {
    fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn release(&self, account_id: &str, outcome: &str) -> ReleaseRecord {
        let target = ferry_manifest::ReleaseTarget::Lambda {
            function: self.function.clone(),
            alias: self.alias.clone(),
        };
        ReleaseRecord {
            target: target.to_string(),
            version: self.to_version.clone().unwrap_or_default(),
            digest: self.code_sha256.clone(),
            previous_version: self.from_version.clone(),
            details: serde_json::json!({"account": account_id, "function": self.function, "alias": self.alias}),
            outcome: outcome.into(),
            verified: self.verified,
        }
    }
}

struct Deployer<'a> {
    client: aws_sdk_lambda::Client,
    account: &'a AccountConfig,
    req: &'a LambdaDeploy,
    log: StepLog<'a>,
}

impl Deployer<'_> {
    fn step(&mut self, text: String) {
        self.log.step(text);
    }

    fn alias_name(&self) -> String {
        format!("{}:{}", self.req.function, self.req.alias)
    }

    async fn versions(
        &self,
    ) -> Result<
        aws_sdk_lambda::operation::list_versions_by_function::ListVersionsByFunctionOutput,
        AwsError,
    > {
        self.account
            .call(
                "lambda:ListVersionsByFunction",
                &self.req.function,
                self.client
                    .list_versions_by_function()
                    .function_name(&self.req.function)
                    .send(),
            )
            .await
    }

    async fn alias_version(&self) -> Result<Option<(String, HashMap<String, f64>)>, AwsError> {
        let alias = self
            .account
            .find(
                "lambda:GetAlias",
                &self.alias_name(),
                self.client
                    .get_alias()
                    .function_name(&self.req.function)
                    .name(&self.req.alias)
                    .send(),
            )
            .await?;
        Ok(alias.map(|a| {
            (
                a.function_version().unwrap_or_default().to_owned(),
                a.routing_config()
                    .and_then(|r| r.additional_version_weights())
                    .cloned()
                    .unwrap_or_default(),
            )
        }))
    }

    async fn version_code(
        &self,
        version: &str,
    ) -> Result<(Option<String>, Option<String>), AwsError> {
        let f = self
            .account
            .call(
                "lambda:GetFunction",
                &format!("{}:{version}", self.req.function),
                self.client
                    .get_function()
                    .function_name(&self.req.function)
                    .qualifier(version)
                    .send(),
            )
            .await?;
        let sha = f
            .configuration()
            .and_then(|c| c.code_sha256())
            .map(str::to_owned);
        let image = f.code().and_then(|c| c.image_uri()).map(str::to_owned);
        Ok((sha, image))
    }

    /// Whether `version` holds the code being deployed.
    async fn serves(&self, version: &str) -> Result<bool, AwsError> {
        let (sha, image) = self.version_code(version).await?;
        Ok(match &self.req.package {
            Package::Zip(_) => sha.is_some() && sha == self.req.package.code_sha256(),
            Package::Image(uri) => image.as_deref() == Some(uri.as_str()),
        })
    }

    async fn update_code(&mut self) -> Result<(), AwsError> {
        let resource = self.req.function.clone();
        let mut delay = Duration::from_millis(500);
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let mut call = self
                .client
                .update_function_code()
                .function_name(&self.req.function);
            call = match &self.req.package {
                Package::Zip(bytes) => call.zip_file(Blob::new(bytes.clone())),
                Package::Image(uri) => call.image_uri(uri),
            };
            match self
                .account
                .call("lambda:UpdateFunctionCode", &resource, call.send())
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) => {
                    // Another update is still in progress: wait and try again.
                    if err.kind == AwsErrorKind::Conflict && Instant::now() < deadline {
                        self.step(format!(
                            "an update of {resource} is in progress; retrying in {} ms",
                            delay.as_millis()
                        ));
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(10));
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Waits until Lambda has finished applying the new code.
    async fn wait_updated(&mut self) -> Result<(), AwsError> {
        let deadline = Instant::now() + Duration::from_secs(600);
        let action = "lambda:GetFunctionConfiguration";
        loop {
            let c = self
                .account
                .call(
                    action,
                    &self.req.function,
                    self.client
                        .get_function_configuration()
                        .function_name(&self.req.function)
                        .send(),
                )
                .await?;
            match c
                .last_update_status()
                .map(|s| s.as_str().to_owned())
                .as_deref()
            {
                Some("Successful") | None => return Ok(()),
                Some("Failed") => {
                    return Err(self.account.fail(
                        action,
                        &self.req.function,
                        "UpdateFailed",
                        c.last_update_status_reason()
                            .unwrap_or("the code update failed"),
                    ));
                }
                _ if Instant::now() > deadline => {
                    return Err(self.account.fail(
                        action,
                        &self.req.function,
                        "Timeout",
                        "the code update did not finish within 10 minutes",
                    ));
                }
                _ => tokio::time::sleep(self.req.poll.min(Duration::from_secs(2))).await,
            }
        }
    }

    /// A published version with this code: one already published (a retried deploy), or a new one.
    async fn publish(&mut self) -> Result<String, AwsError> {
        let versions = self.versions().await?;
        if let Some(sha) = self.req.package.code_sha256() {
            let existing = versions
                .versions()
                .iter()
                .filter(|v| v.version() != Some("$LATEST") && v.code_sha256() == Some(sha.as_str()))
                .filter_map(|v| v.version())
                .max_by_key(|v| v.parse::<u64>().unwrap_or(0));
            if let Some(v) = existing {
                self.step(format!("version {v} already holds this code; using it"));
                return Ok(v.to_owned());
            }
        }
        let action = "lambda:PublishVersion";
        let mut call = self
            .client
            .publish_version()
            .function_name(&self.req.function)
            .set_description(
                self.req
                    .idempotency_key
                    .as_ref()
                    .map(|k| format!("ferry {k}")),
            );
        if let Some(sha) = self.req.package.code_sha256() {
            call = call.code_sha256(sha);
        }
        let out = self
            .account
            .call(action, &self.req.function, call.send())
            .await?;
        let version = out.version().unwrap_or_default().to_owned();
        if let Some(expected) = self.req.package.code_sha256()
            && out.code_sha256() != Some(expected.as_str())
        {
            return Err(self.account.fail(
                action,
                &format!("{}:{version}", self.req.function),
                "CodeShaMismatch",
                format!("published CodeSha256 {} but uploaded {expected}: the code changed under the deploy", out.code_sha256().unwrap_or("none")),
            ));
        }
        Ok(version)
    }

    async fn point_alias(
        &mut self,
        version: &str,
        canary: Option<(&str, f64)>,
    ) -> Result<(), AwsError> {
        let weights: HashMap<String, f64> =
            canary.map(|(v, w)| (v.to_owned(), w)).into_iter().collect();
        update_alias(
            self.account,
            &self.req.function,
            &self.req.alias,
            version,
            weights,
        )
        .await
    }

    async fn create_alias(&mut self, version: &str) -> Result<(), AwsError> {
        self.account
            .call(
                "lambda:CreateAlias",
                &self.alias_name(),
                self.client
                    .create_alias()
                    .function_name(&self.req.function)
                    .name(&self.req.alias)
                    .function_version(version)
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Deletes old versions, keeping those an alias or the ledger references and the newest `keep`.
    async fn prune(&mut self, keep: usize) -> Result<Vec<String>, AwsError> {
        let aliases = self
            .account
            .call(
                "lambda:ListAliases",
                &self.req.function,
                self.client
                    .list_aliases()
                    .function_name(&self.req.function)
                    .send(),
            )
            .await?;
        let mut protected: BTreeSet<String> = self.req.referenced.iter().cloned().collect();
        for a in aliases.aliases() {
            protected.extend(a.function_version().map(str::to_owned));
            if let Some(weights) = a
                .routing_config()
                .and_then(|r| r.additional_version_weights())
            {
                protected.extend(weights.keys().cloned());
            }
        }
        let listed = self.versions().await?;
        let mut versions: Vec<u64> = listed
            .versions()
            .iter()
            .filter_map(|v| v.version()?.parse().ok())
            .collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let mut pruned = Vec::new();
        for v in versions.into_iter().skip(keep).map(|v| v.to_string()) {
            if protected.contains(&v) {
                continue;
            }
            self.account
                .call(
                    "lambda:DeleteFunction",
                    &format!("{}:{v}", self.req.function),
                    self.client
                        .delete_function()
                        .function_name(&self.req.function)
                        .qualifier(&v)
                        .send(),
                )
                .await?;
            pruned.push(v);
        }
        Ok(pruned)
    }
}

/// Deploys `req`; `progress` hears each step. An error is returned only when the deploy could
/// not start (nothing changed); failures after the code changed come back as a report whose
/// outcome is `RolledBack` or `RollbackFailed`.
pub async fn deploy(
    account: &AccountConfig,
    req: &LambdaDeploy,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<LambdaReport, AwsError> {
    let started = Instant::now();
    let mut d = Deployer {
        client: aws_sdk_lambda::Client::new(&account.config),
        account,
        req,
        log: StepLog::new(progress),
    };
    let target = format!("{}:{}", req.function, req.alias);
    let current = d.alias_version().await?;
    let from = current.as_ref().map(|(v, _)| v.clone());
    let report =
        |d: &Deployer<'_>, outcome, to: Option<String>, verified, error: Option<String>, pruned| {
            LambdaReport {
                outcome,
                function: req.function.clone(),
                alias: req.alias.clone(),
                from_version: from.clone(),
                to_version: to,
                code_sha256: req.package.code_sha256(),
                verified,
                steps: d.log.lines.clone(),
                error,
                pruned,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }
        };
    if let Some((version, weights)) = &current
        && weights.is_empty()
        && d.serves(version).await?
    {
        d.step(format!(
            "{target} already serves version {version} with this code; nothing to deploy"
        ));
        return Ok(report(
            &d,
            Outcome::AlreadyDeployed,
            Some(version.clone()),
            true,
            None,
            Vec::new(),
        ));
    }
    let watch = AlarmWatch::start(account, &req.alarms).await?;
    if !watch.baseline.is_empty() {
        d.step(format!(
            "already in ALARM before the deploy (ignored): {}",
            watch
                .baseline
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    d.step(format!("updating the code of {}", req.function));
    d.update_code().await?;
    d.wait_updated().await?;
    let version = d.publish().await?;
    d.step(format!("published version {version}"));
    let Some(from_version) = from.clone() else {
        // No alias yet: it starts at the new version; there is nothing to roll back to.
        d.create_alias(&version).await?;
        d.step(format!("created alias {target} at version {version}"));
        return Ok(report(
            &d,
            Outcome::Deployed,
            Some(version),
            true,
            None,
            Vec::new(),
        ));
    };
    let result: Result<Option<String>, AwsError> = async {
        for (weight, wait) in req.traffic.steps() {
            if weight < 1.0 {
                d.point_alias(&from_version, Some((&version, weight)))
                    .await?;
                d.step(format!(
                    "{target}: {:.0}% of traffic to version {version}",
                    weight * 100.0
                ));
            } else {
                d.point_alias(&version, None).await?;
                d.step(format!("{target}: all traffic to version {version}"));
            }
            if !wait.is_zero() {
                d.step(format!(
                    "baking for {} s, watching {} alarm(s)",
                    wait.as_secs(),
                    req.alarms.len()
                ));
                if let Some(alarm) = watch.watch(wait, req.poll).await? {
                    return Ok(Some(alarms::entered(&alarm)));
                }
            }
        }
        if let Some(why) = watch.after(&mut d.log, req.watch_after, req.poll).await? {
            return Ok(Some(why));
        }
        // Shifted: one last look before calling it good.
        Ok(watch.fired().await?.map(|alarm| alarms::entered(&alarm)))
    }
    .await;
    let failure = match result {
        Ok(None) => {
            let pruned = match req.prune_keep {
                Some(keep) => d.prune(keep).await?,
                None => Vec::new(),
            };
            if !pruned.is_empty() {
                d.step(format!("pruned versions {}", pruned.join(", ")));
            }
            return Ok(report(
                &d,
                Outcome::Deployed,
                Some(version),
                true,
                None,
                pruned,
            ));
        }
        Ok(Some(why)) => why,
        Err(e) => e.to_string(),
    };
    d.step(format!(
        "{failure}: rolling {target} back to version {from_version}"
    ));
    match d.point_alias(&from_version, None).await {
        Ok(()) => {
            d.step(format!("{target} serves version {from_version} again"));
            Ok(report(
                &d,
                Outcome::RolledBack,
                Some(version),
                false,
                Some(failure),
                Vec::new(),
            ))
        }
        Err(e) => {
            let state = format!(
                "{failure}; the rollback failed too ({e}); {target} may still route traffic to version {version}"
            );
            Ok(report(
                &d,
                Outcome::RollbackFailed,
                Some(version),
                false,
                Some(state),
                Vec::new(),
            ))
        }
    }
}

/// Points the alias back at `version` with no canary weights (`ferry rollback`).
pub async fn point_alias(
    account: &AccountConfig,
    function: &str,
    alias: &str,
    version: &str,
) -> Result<(), AwsError> {
    update_alias(account, function, alias, version, HashMap::new()).await
}

/// Points `alias` at `version`, with `weights` of traffic to other versions.
async fn update_alias(
    account: &AccountConfig,
    function: &str,
    alias: &str,
    version: &str,
    weights: HashMap<String, f64>,
) -> Result<(), AwsError> {
    account
        .call(
            "lambda:UpdateAlias",
            &format!("{function}:{alias}"),
            aws_sdk_lambda::Client::new(&account.config)
                .update_alias()
                .function_name(function)
                .name(alias)
                .function_version(version)
                .routing_config(
                    AliasRoutingConfiguration::builder()
                        .set_additional_version_weights(Some(weights))
                        .build(),
                )
                .send(),
        )
        .await?;
    Ok(())
}

/// The version an alias points at, that version's code sha and the alias's canary weights
/// (`reconcile`).
pub async fn alias_code(
    account: &AccountConfig,
    function: &str,
    alias: &str,
) -> Result<Option<(String, Option<String>, HashMap<String, f64>)>, AwsError> {
    let client = aws_sdk_lambda::Client::new(&account.config);
    let Some(a) = account
        .find(
            "lambda:GetAlias",
            &format!("{function}:{alias}"),
            client
                .get_alias()
                .function_name(function)
                .name(alias)
                .send(),
        )
        .await?
    else {
        return Ok(None);
    };
    let version = a.function_version().unwrap_or_default().to_owned();
    let weights = a
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .cloned()
        .unwrap_or_default();
    let conf = account
        .call(
            "lambda:GetFunctionConfiguration",
            &format!("{function}:{version}"),
            client
                .get_function_configuration()
                .function_name(function)
                .qualifier(&version)
                .send(),
        )
        .await?;
    Ok(Some((
        version,
        conf.code_sha256().map(str::to_owned),
        weights,
    )))
}
