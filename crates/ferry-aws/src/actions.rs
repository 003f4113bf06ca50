//! The engine's `ecs` and `lambda` actions: the deploys of [`crate::ecs`] and
//! [`crate::lambda`], run as the target account's deploy role (session
//! `ferry-<pipeline>-<execution>`), reading their input artifact as that role, and
//! reporting to the release ledger.
//!
//! A forced stop does not cut a deploy off: stopping between canary steps would leave the
//! alias split, so a deploy always finishes or rolls back.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_engine::action::{
    Action, ActionContext, ActionError, ActionKind, ActionOutput, Reconciled,
};
use ferry_engine::model::{ActionDef, ReleaseRecord};
use ferry_manifest::{AfterWatch, EcsStrategy, LambdaPackage, ReleaseTarget, Traffic};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::deploy::Released;
use crate::ecs::{self, EcsDeploy};
use crate::lambda::{self, LambdaDeploy, Outcome, Package};
use crate::session::{AccountConfig, Aws, RoleTarget};

/// The account a deploy acts in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub account_id: String,
    pub region: String,
    pub role_arn: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

impl Target {
    /// The deploy role of a target account of the manifest.
    pub fn of(account: &ferry_manifest::Account) -> Target {
        Target {
            account_id: account.id.clone(),
            region: account.region.clone(),
            role_arn: account.deploy_role_arn(),
            external_id: account.external_id.clone(),
        }
    }

    fn role(&self) -> RoleTarget {
        RoleTarget {
            role_arn: self.role_arn.clone(),
            external_id: self.external_id.clone(),
            region: Some(self.region.clone()),
        }
    }
}

/// The `ecs` action's configuration: the manifest's `ecs` deploy and its target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EcsConfig {
    pub cluster: String,
    pub service: String,
    /// The input artifact holding the image-definitions file.
    pub artifact: String,
    /// The file's path inside the artifact.
    pub image_definitions: String,
    #[serde(with = "duration")]
    pub timeout: Duration,
    #[serde(default)]
    pub alarms: Vec<String>,
    /// The environment's `gates.after` watch, once steady.
    #[serde(default, with = "duration")]
    pub watch_after: Duration,
    /// Rolling, or ECS's own traffic shifting.
    #[serde(default = "rolling")]
    pub strategy: EcsStrategy,
    /// Where ECS pauses the deployment for ferry, and what ferry does there.
    #[serde(default)]
    pub hooks: Vec<HookConfig>,
    pub target: Target,
}

/// A `PAUSE` lifecycle hook of an `ecs` action and its check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookConfig {
    /// The lifecycle stage, as the ECS API names it.
    pub at: String,
    /// How long the check may take.
    #[serde(with = "duration")]
    pub timeout: Duration,
    pub check: HookCheck,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookCheck {
    /// A build run locally as the deploy role, on these of the action's input artifacts
    /// (the first is its working directory).
    Test {
        build: ferry_engine::build::BuildConfig,
        inputs: Vec<String>,
    },
    /// A ferry approval in the stage.
    Approval(ferry_engine::approval::ApprovalConfig),
}

impl HookConfig {
    fn pause(&self) -> crate::service_deployment::PauseHook {
        crate::service_deployment::PauseHook {
            at: self.at.clone(),
            timeout: self.timeout,
        }
    }
}

impl EcsConfig {
    /// The configuration of a manifest's `ecs` deploy into `target`.
    pub fn new(
        deploy: &ferry_manifest::EcsDeploy,
        target: Target,
        after: Option<&AfterWatch>,
    ) -> EcsConfig {
        EcsConfig {
            cluster: deploy.cluster.clone(),
            service: deploy.service.clone(),
            artifact: deploy.artifact.clone(),
            image_definitions: deploy.image_definitions.clone(),
            timeout: deploy.timeout,
            alarms: deploy.alarms.clone(),
            watch_after: Duration::ZERO,
            strategy: deploy.strategy,
            hooks: Vec::new(),
            target,
        }
        .watching(after)
    }

    pub fn release_target(&self) -> ReleaseTarget {
        ReleaseTarget::Ecs {
            cluster: self.cluster.clone(),
            service: self.service.clone(),
        }
    }

    /// The longest the action may run: the wait for steady state (with the time ECS's own
    /// traffic shifting takes by design), the watch after it, and the wait for a rollback's
    /// steady state, with room for the calls.
    pub fn action_timeout(&self) -> Duration {
        let hooks: Duration = self.hooks.iter().map(|h| h.timeout).sum();
        2 * self.timeout
            + self.strategy.planned()
            + hooks
            + self.watch_after
            + Duration::from_secs(300)
    }

    fn watching(mut self, after: Option<&AfterWatch>) -> EcsConfig {
        (self.alarms, self.watch_after) = watched(self.alarms, after);
        self
    }
}

fn rolling() -> EcsStrategy {
    EcsStrategy::Rolling
}

/// A deploy's alarms with the environment's `gates.after` alarms added (watched from the
/// start of the deploy, so one already firing then is ignored as usual), and how long to
/// watch once it is done.
fn watched(mut alarms: Vec<String>, after: Option<&AfterWatch>) -> (Vec<String>, Duration) {
    let Some(after) = after else {
        return (alarms, Duration::ZERO);
    };
    for alarm in &after.alarms {
        if !alarms.contains(alarm) {
            alarms.push(alarm.clone());
        }
    }
    (alarms, after.watch)
}

/// The `lambda` action's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LambdaConfig {
    pub function: String,
    pub alias: String,
    pub package: PackageConfig,
    #[serde(with = "traffic")]
    pub traffic: Traffic,
    #[serde(default)]
    pub alarms: Vec<String>,
    /// The environment's `gates.after` watch, once all traffic is shifted.
    #[serde(default, with = "duration")]
    pub watch_after: Duration,
    pub target: Target,
}

impl LambdaConfig {
    /// The configuration of a manifest's `lambda` deploy into `target`.
    pub fn new(
        deploy: &ferry_manifest::LambdaDeploy,
        target: Target,
        after: Option<&AfterWatch>,
    ) -> LambdaConfig {
        LambdaConfig {
            function: deploy.function.clone(),
            alias: deploy.alias.clone(),
            package: match &deploy.package {
                LambdaPackage::Zip { artifact, path } => PackageConfig::Zip {
                    artifact: artifact.clone(),
                    path: path.clone(),
                },
                LambdaPackage::Image { uri } => PackageConfig::Image { uri: uri.clone() },
            },
            traffic: deploy.traffic,
            alarms: deploy.alarms.clone(),
            watch_after: Duration::ZERO,
            target,
        }
        .watching(after)
    }

    fn watching(mut self, after: Option<&AfterWatch>) -> LambdaConfig {
        (self.alarms, self.watch_after) = watched(self.alarms, after);
        self
    }

    pub fn release_target(&self) -> ReleaseTarget {
        ReleaseTarget::Lambda {
            function: self.function.clone(),
            alias: self.alias.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageConfig {
    /// A zip file at `path` inside the input artifact `artifact`.
    Zip {
        artifact: String,
        path: String,
    },
    Image {
        uri: String,
    },
}

/// Durations as the manifest writes them (`10m`).
mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&ferry_manifest::values::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        ferry_manifest::values::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Traffic shifting as the manifest writes it (`canary 10% 5m`).
mod traffic {
    use ferry_manifest::Traffic;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(t: &Traffic, s: S) -> Result<S::Ok, S::Error> {
        t.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Traffic, D::Error> {
        let text = String::deserialize(d)?;
        Traffic::parse(&text).map_err(serde::de::Error::custom)
    }
}

pub struct EcsKind(pub Aws);
pub struct LambdaKind(pub Aws);

impl ActionKind for EcsKind {
    type Config = EcsConfig;
    fn name(&self) -> &'static str {
        "ecs"
    }
    fn build(&self, config: EcsConfig, _: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(EcsAction {
            aws: self.0.clone(),
            config,
        }))
    }
}

impl ActionKind for LambdaKind {
    type Config = LambdaConfig;
    fn name(&self) -> &'static str {
        "lambda"
    }
    fn build(&self, config: LambdaConfig, _: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(LambdaAction {
            aws: self.0.clone(),
            config,
        }))
    }
}

/// Assumes the target's deploy role for this execution.
pub(crate) async fn target_session(
    aws: &Aws,
    ctx: &ActionContext,
    target: &Target,
) -> Result<AccountConfig, ActionError> {
    let session = aws.with_session(&format!(
        "ferry-{}-{}",
        ctx.execution.pipeline, ctx.execution.seq
    ));
    session
        .assume(&target.role())
        .await
        .map_err(|e| ActionError::Failed(e.to_string()))
}

/// Unpacks input artifact `name` into the work directory, read as `account` when it is in S3.
async fn fetch_input(
    ctx: &ActionContext,
    account: &AccountConfig,
    name: &str,
) -> Result<PathBuf, ActionError> {
    let artifact = ctx.input(name).ok_or_else(|| {
        ActionError::Failed(format!(
            "input artifact `{name}` was not produced by an earlier stage"
        ))
    })?;
    let zip = ctx.workdir.join(format!("{name}.zip"));
    let fetched = if crate::artifacts::is_s3(artifact) {
        crate::artifacts::read_as(account, artifact, &zip).await
    } else {
        ctx.artifacts.get(artifact, &zip).await
    };
    fetched.map_err(|e| ActionError::Failed(e.to_string()))?;
    let dir = ctx.workdir.join(name);
    ferry_engine::artifact::unzip(&zip, &dir).map_err(|e| ActionError::Failed(e.to_string()))?;
    Ok(dir)
}

/// `relative` inside `dir`; never outside it.
fn inside(dir: &Path, relative: &str, artifact: &str) -> Result<PathBuf, ActionError> {
    let rel = Path::new(relative);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(ActionError::Failed(format!(
            "`{relative}` must be a relative path inside artifact `{artifact}`"
        )));
    }
    let path = dir.join(rel);
    if !path.is_file() {
        return Err(ActionError::Failed(format!(
            "artifact `{artifact}` has no file `{relative}`"
        )));
    }
    Ok(path)
}

/// The ledger's releases of `target` in this stage's environment, newest first.
fn ledger(
    ctx: &ActionContext,
    target: &ReleaseTarget,
) -> Result<Vec<ferry_engine::model::Release>, ActionError> {
    let Some(env) = &ctx.environment else {
        return Ok(Vec::new());
    };
    ctx.store
        .releases(
            &ctx.execution.pipeline,
            Some(env),
            Some(&target.to_string()),
            100,
        )
        .map_err(|e| ActionError::Failed(format!("reading the release ledger: {e}")))
}

/// What the engine hears of a deploy: success with its ledger entry (none when it was already
/// deployed), a rollback (the action fails, the ledger records it), or a failure that could
/// not be rolled back.
fn ended<R: Serialize>(
    outcome: Outcome,
    report: &R,
    error: Option<&str>,
    release: impl Fn(&str) -> ReleaseRecord,
) -> Result<ActionOutput, ActionError> {
    let error = error.unwrap_or_default().to_owned();
    match outcome {
        Outcome::Deployed => Ok(ActionOutput {
            outputs: serde_json::to_value(report).unwrap_or_default(),
            artifacts: Vec::new(),
            release: Some(release("Deployed")),
        }),
        // Nothing changed: no new release for the ledger.
        Outcome::AlreadyDeployed => Ok(ActionOutput {
            outputs: serde_json::to_value(report).unwrap_or_default(),
            artifacts: Vec::new(),
            release: None,
        }),
        Outcome::RolledBack => Err(ActionError::RolledBack {
            reason: error,
            release: Box::new(release("RolledBack")),
        }),
        Outcome::RollbackFailed => Err(ActionError::Failed(error)),
    }
}

struct LambdaAction {
    aws: Aws,
    config: LambdaConfig,
}

impl LambdaAction {
    async fn package(
        &self,
        ctx: &ActionContext,
        account: &AccountConfig,
    ) -> Result<Package, ActionError> {
        match &self.config.package {
            PackageConfig::Image { uri } => Ok(Package::Image(uri.clone())),
            PackageConfig::Zip { artifact, path } => {
                let dir = fetch_input(ctx, account, artifact).await?;
                let file = inside(&dir, path, artifact)?;
                std::fs::read(&file).map(Package::Zip).map_err(|e| {
                    ActionError::Failed(format!("cannot read {}: {e}", file.display()))
                })
            }
        }
    }
}

#[async_trait]
impl Action for LambdaAction {
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let account = target_session(&self.aws, ctx, &self.config.target).await?;
        let package = self.package(ctx, &account).await?;
        let referenced = ledger(ctx, &self.config.release_target())?
            .into_iter()
            .map(|r| r.record.version)
            .collect();
        let req = LambdaDeploy {
            function: self.config.function.clone(),
            alias: self.config.alias.clone(),
            package,
            traffic: self.config.traffic,
            alarms: self.config.alarms.clone(),
            watch_after: self.config.watch_after,
            prune_keep: None,
            referenced,
            poll: ctx.settings.poll,
            idempotency_key: Some(ctx.idempotency_key.clone()),
        };
        ctx.log.line(&format!(
            "deploying {} as {}",
            self.config.release_target(),
            self.config.target.role_arn
        ));
        let report = lambda::deploy(&account, &req, &|line| ctx.log.line(line))
            .await
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        ended(
            report.outcome,
            &report,
            report.error.as_deref(),
            |outcome| report.release(&self.config.target.account_id, outcome),
        )
    }

    /// After a crash: when the alias already serves this code with no canary split, the
    /// deploy happened (not verified: its last alarm check is unknown). Otherwise it runs
    /// again, which reuses a version already published.
    async fn reconcile(&self, ctx: &ActionContext) -> Result<Reconciled, ActionError> {
        let account = target_session(&self.aws, ctx, &self.config.target).await?;
        let package = self.package(ctx, &account).await?;
        let current = lambda::alias_code(&account, &self.config.function, &self.config.alias)
            .await
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        match (current, package.code_sha256()) {
            (Some((version, Some(sha), weights)), Some(expected))
                if sha == expected && weights.is_empty() =>
            {
                let record = ReleaseRecord {
                    target: self.config.release_target().to_string(),
                    version: version.clone(),
                    digest: Some(sha),
                    previous_version: None,
                    details: json!({"account": self.config.target.account_id, "reconciled": true}),
                    outcome: "Deployed".into(),
                    verified: false,
                };
                Ok(Reconciled::Done(Box::new(ActionOutput {
                    outputs: json!({"outcome": "Deployed", "to_version": version, "reconciled": true}),
                    artifacts: Vec::new(),
                    release: Some(record),
                })))
            }
            _ => Ok(Reconciled::NotDone),
        }
    }
}

struct EcsAction {
    aws: Aws,
    config: EcsConfig,
}

impl EcsAction {}

#[async_trait]
impl Action for EcsAction {
    /// Idempotent: a run resumed after a crash finds the service on the new images and waits
    /// for it, returning to the last verified release if it does not become steady.
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let account = target_session(&self.aws, ctx, &self.config.target).await?;
        let dir = fetch_input(ctx, &account, &self.config.artifact).await?;
        let file = inside(&dir, &self.config.image_definitions, &self.config.artifact)?;
        let images = ecs::read_image_definitions(&file).map_err(ActionError::Failed)?;
        let previous = ledger(ctx, &self.config.release_target())?
            .into_iter()
            .find(|r| r.record.verified && r.record.outcome == "Deployed")
            .map(|r| r.record.version);
        let req = EcsDeploy {
            cluster: self.config.cluster.clone(),
            service: self.config.service.clone(),
            images,
            timeout: self.config.timeout,
            alarms: self.config.alarms.clone(),
            watch_after: self.config.watch_after,
            strategy: self.config.strategy,
            poll: ctx.settings.poll,
            previous,
            idempotency_key: Some(ctx.idempotency_key.clone()),
        };
        ctx.log.line(&format!(
            "deploying {} as {}",
            self.config.release_target(),
            self.config.target.role_arn
        ));
        let steer = HookSteer::new(ctx, &account, &self.config.hooks);
        let report = ecs::deploy_steered(&account, &req, &steer, &|line| ctx.log.line(line))
            .await
            .map_err(|e| ActionError::Failed(e.to_string()))?;
        ended(
            report.outcome,
            &report,
            report.error.as_deref(),
            |outcome| report.release(&self.config.target.account_id, outcome),
        )
    }
}

/// How the `ecs` action steers ECS's traffic shifting: it answers ferry's hooks (a test
/// build as the deploy role, or an approval in the stage) and turns `ferry stop --force`
/// into a rollback — the deploy is never cut off, it is rolled back.
pub struct HookSteer<'a> {
    ctx: &'a ActionContext,
    account: &'a AccountConfig,
    hooks: &'a [HookConfig],
    pauses: Vec<crate::service_deployment::PauseHook>,
}

impl<'a> HookSteer<'a> {
    /// The steer of an `ecs` action run (`ctx`) acting as `account`, its deploy role.
    pub fn new(
        ctx: &'a ActionContext,
        account: &'a AccountConfig,
        hooks: &'a [HookConfig],
    ) -> HookSteer<'a> {
        HookSteer {
            ctx,
            account,
            hooks,
            pauses: hooks.iter().map(HookConfig::pause).collect(),
        }
    }
}

/// The approval of the hook at `at`: named after the action, the stage it pauses at and the
/// attempt, so a retried deploy asks again.
pub fn hook_approval_name(action: &str, at: &str, attempt: u32) -> String {
    let at = at.to_ascii_lowercase();
    match attempt {
        0 | 1 => format!("{action}@{at}"),
        n => format!("{action}@{at}#{n}"),
    }
}

#[async_trait]
impl ecs::Steer for HookSteer<'_> {
    fn hooks(&self) -> &[crate::service_deployment::PauseHook] {
        &self.pauses
    }

    async fn check(
        &self,
        at: &str,
        deployment: &crate::service_deployment::ServiceDeploymentState,
    ) -> Result<(), String> {
        let ctx = self.ctx;
        let hook = self
            .hooks
            .iter()
            .find(|h| h.at == at)
            .ok_or_else(|| format!("ferry has no hook at {at}"))?;
        match &hook.check {
            HookCheck::Approval(config) => {
                let name = hook_approval_name(&ctx.action, at, ctx.attempt);
                ctx.log.line(&format!(
                    "[ferry] ECS paused at {at}: approve to go on, reject to roll back"
                ));
                ferry_engine::approval::wait_for(ctx, &name, config)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("the hook at {at}: {e}"))
            }
            HookCheck::Test { build, inputs } => {
                let env = self
                    .account
                    .process_env()
                    .await
                    .map_err(|e| e.to_string())?;
                let mut plain = env.plain;
                plain.push((
                    "FERRY_SERVICE_DEPLOYMENT".into(),
                    deployment.service_deployment_arn.clone(),
                ));
                if let Some(r) = &deployment.target_service_revision {
                    plain.push(("FERRY_SERVICE_REVISION".into(), r.arn.clone()));
                }
                let artifacts = inputs
                    .iter()
                    .map(|name| {
                        ctx.input(name).cloned().ok_or_else(|| {
                            format!("input artifact `{name}` was not produced by an earlier stage")
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let dir = ctx
                    .workdir
                    .join(format!("hook-{}", at.to_ascii_lowercase()));
                ctx.log.line(&format!(
                    "[ferry] ECS paused at {at}: running the hook's test as {}",
                    self.account
                        .site
                        .role_arn
                        .as_deref()
                        .unwrap_or("the deploy role")
                ));
                let run =
                    ferry_engine::build::run_within(build, ctx, dir, artifacts, plain, env.secret);
                match tokio::time::timeout(hook.timeout, run).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("the test at {at} failed: {e}")),
                    Err(_) => Err(format!(
                        "the test at {at} did not finish within {}",
                        ferry_manifest::values::format_duration(hook.timeout)
                    )),
                }
            }
        }
    }

    fn stop(&self) -> Option<String> {
        self.ctx
            .cancel
            .is_cancelled()
            .then(|| "stopped by `ferry stop --force`".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.json"), "[]").unwrap();
        assert!(inside(dir.path(), "f.json", "a").is_ok());
        assert!(inside(dir.path(), "./f.json", "a").is_ok());
        for bad in ["../f.json", "/etc/passwd", "missing.json"] {
            assert!(inside(dir.path(), bad, "a").is_err(), "{bad}");
        }
    }

    #[test]
    fn configs_read_what_the_manifest_writes() {
        let c: LambdaConfig = serde_json::from_value(json!({
            "function": "orders-fn", "alias": "live",
            "package": {"zip": {"artifact": "build", "path": "dist/fn.zip"}},
            "traffic": "canary 10% 5m", "alarms": ["errors"],
            "target": {"account_id": "222222222222", "region": "us-east-1", "role_arn": "arn:aws:iam::222222222222:role/ferry-deploy"}
        }))
        .unwrap();
        assert_eq!(
            c.traffic,
            Traffic::Canary {
                percent: 10,
                bake: Duration::from_secs(300)
            }
        );
        assert_eq!(c.target.role().account(), Some("222222222222"));
        let e: EcsConfig = serde_json::from_value(json!({
            "cluster": "orders", "service": "api", "artifact": "build", "image_definitions": "imagedefinitions.json",
            "timeout": "10m", "target": {"account_id": "222222222222", "region": "us-east-1", "role_arn": "arn:aws:iam::222222222222:role/ferry-deploy"}
        }))
        .unwrap();
        assert_eq!(e.timeout, Duration::from_secs(600));
    }
}
