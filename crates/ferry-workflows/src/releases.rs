//! The release ledger of an environment (`ferry releases`), and `ferry rollback`: each deploy
//! of the environment back on the newest release the ledger marks verified good that is not
//! the version running now.

use std::sync::Arc;
use std::time::Duration;

use ferry_aws::ecs::{self, EcsDeploy};
use ferry_aws::lambda;
use ferry_aws::session::{AccountConfig, Aws, RoleTarget};
use ferry_engine::model::{Release, ReleaseBlock, rollback_target};
use ferry_engine::store::Store;
use ferry_manifest::{ActionKind, Environment, Manifest, ReleaseTarget};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::progress::{Operation, Reporter};
use crate::project::Project;

fn account_of<'m>(
    manifest: &'m Manifest,
    env: &Environment,
) -> Result<&'m ferry_manifest::Account> {
    manifest
        .account(&env.account)
        .ok_or_else(|| Error::Usage(format!("environment `{}` names no known account", env.name)))
}

fn environment<'m>(manifest: &'m Manifest, name: &str) -> Result<&'m Environment> {
    manifest.environment(name).ok_or_else(|| {
        let known: Vec<&str> = manifest
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        Error::Usage(format!(
            "no environment `{name}`; the manifest has: {}",
            known.join(", ")
        ))
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ReleasesReport {
    pub environment: String,
    /// Newest first.
    pub releases: Vec<Release>,
}

pub fn releases(project: &Project, environment_name: &str, limit: usize) -> Result<ReleasesReport> {
    let manifest = project.load()?;
    let env = environment(&manifest, environment_name)?;
    let releases = project
        .store()?
        .releases(&manifest.pipeline, Some(&env.name), None, limit)?;
    Ok(ReleasesReport {
        environment: env.name.clone(),
        releases,
    })
}

#[derive(Debug, Clone)]
pub struct BlockInput {
    /// The release: its execution's id (`orders-7`) or number (`7`).
    pub release: String,
    pub reason: String,
    pub identity: String,
    /// Also return every environment that runs it to its last good release.
    pub rollback: bool,
}

/// What `ferry release block` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BlockReport {
    pub block: ReleaseBlock,
    /// With `--rollback`: each environment with deploys, last in promotion order first.
    pub rollbacks: Vec<RollbackReport>,
}

impl BlockReport {
    /// Blocked, and every rollback asked for went back (or had nothing to undo).
    pub fn ok(&self) -> bool {
        self.rollbacks.iter().all(RollbackReport::ok)
    }
}

/// The execution a release names, in the project's pipeline.
fn release_execution(
    project: &Project,
    manifest: &Manifest,
    store: &Arc<dyn Store>,
    release: &str,
) -> Result<String> {
    Ok(crate::view::find(store, Some(&manifest.pipeline), release, &project.state_dir)?.id)
}

/// Marks a release bad: it enters no environment and no approval of it is accepted from now
/// on; with `rollback`, every environment that runs it goes back to its last good release
/// (never a blocked one), prod first.
pub async fn block(
    project: &Project,
    input: &BlockInput,
    reporter: &dyn Reporter,
) -> Result<BlockReport> {
    if input.reason.trim().is_empty() {
        return Err(Error::Usage(
            "say why the release is bad (`--reason`, or `reason` in the API's body): it is shown to whoever tries to promote or approve it".into(),
        ));
    }
    let manifest = project.load()?;
    let store = project.store()?;
    let execution = release_execution(project, &manifest, &store, &input.release)?;
    let block = store.block_release(&execution, &input.identity, input.reason.trim())?;
    let mut rollbacks = Vec::new();
    if input.rollback {
        for env in manifest.environments.iter().rev() {
            if deployments(&manifest, &env.name).is_empty() {
                continue;
            }
            let rollback = RollbackInput {
                environment: env.name.clone(),
                target: None,
                to: None,
                identity: input.identity.clone(),
                only_running: Some(execution.clone()),
            };
            rollbacks.push(self::rollback(project, &rollback, reporter).await?);
        }
    }
    Ok(BlockReport { block, rollbacks })
}

/// What `ferry release unblock` did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UnblockReport {
    /// The release's execution.
    pub release: String,
    /// The block lifted; `None` when there was none.
    pub unblocked: Option<ReleaseBlock>,
}

/// Lifts a release's block.
pub fn unblock(project: &Project, release: &str, identity: &str) -> Result<UnblockReport> {
    let manifest = project.load()?;
    let store = project.store()?;
    let execution = release_execution(project, &manifest, &store, release)?;
    Ok(UnblockReport {
        unblocked: store.unblock_release(&execution, identity)?,
        release: execution,
    })
}

/// A deploy of the environment, as the ledger names it.
struct Deployment {
    /// The action's name in the manifest.
    action: String,
    target: ReleaseTarget,
    /// For ECS: the longest wait for steady state.
    timeout: Duration,
}

fn deployments(manifest: &Manifest, environment: &str) -> Vec<Deployment> {
    manifest
        .deployments()
        .filter(|(stage, _, _)| stage.environment.as_deref() == Some(environment))
        .filter_map(|(_, _, action)| {
            Some(Deployment {
                action: action.name.clone(),
                target: action.kind.release_target()?,
                timeout: match &action.kind {
                    ActionKind::Ecs(e) => e.timeout,
                    _ => Duration::ZERO,
                },
            })
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct RollbackInput {
    pub environment: String,
    /// One deploy: its action name or target; `None`: every deploy of the environment.
    pub target: Option<String>,
    /// Return to this release instead.
    pub to: Option<i64>,
    pub identity: String,
    /// Only the deploys that run what this execution deployed (`ferry release block
    /// --rollback`); the others are left as they are.
    pub only_running: Option<String>,
}

/// How one deploy's rollback went.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RollbackResult {
    Restored {
        target: ReleaseTarget,
        restored_release: i64,
        version: String,
        /// The version it replaced.
        replaced: Option<String>,
        revision: String,
    },
    /// It does not run the release being rolled back (`only_running`): left as it is.
    Unaffected {
        target: ReleaseTarget,
        /// What it runs.
        version: Option<String>,
    },
    Failed {
        #[serde(skip_serializing_if = "Option::is_none")]
        target: Option<ReleaseTarget>,
        error: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RollbackReport {
    pub environment: String,
    pub results: Vec<RollbackResult>,
}

impl RollbackReport {
    pub fn ok(&self) -> bool {
        self.results.iter().all(|r| {
            matches!(
                r,
                RollbackResult::Restored { .. } | RollbackResult::Unaffected { .. }
            )
        })
    }
}

pub async fn rollback(
    project: &Project,
    input: &RollbackInput,
    reporter: &dyn Reporter,
) -> Result<RollbackReport> {
    let manifest = project.load()?;
    let env = environment(&manifest, &input.environment)?;
    let account = account_of(&manifest, env)?;
    let all = deployments(&manifest, &env.name);
    let chosen: Vec<&Deployment> = match &input.target {
        Some(t) => {
            let chosen: Vec<&Deployment> = all
                .iter()
                .filter(|d| &d.action == t || &d.target.to_string() == t)
                .collect();
            if chosen.is_empty() {
                let known: Vec<String> = all
                    .iter()
                    .map(|d| format!("{} ({})", d.action, d.target))
                    .collect();
                return Err(Error::Usage(format!(
                    "`{t}` is not a deploy of {}; its deploys are: {}",
                    env.name,
                    known.join(", ")
                )));
            }
            chosen
        }
        None => all.iter().collect(),
    };
    if chosen.is_empty() {
        return Err(Error::Usage(format!(
            "environment `{}` has no deploys",
            env.name
        )));
    }
    let store = project.store()?;
    let mut report = RollbackReport {
        environment: env.name.clone(),
        results: Vec::new(),
    };
    let acct = match open_account(&manifest, account, "rollback").await {
        Ok(a) => a,
        Err(e) => {
            report.results.push(RollbackResult::Failed {
                target: None,
                error: e.to_string(),
            });
            return Ok(report);
        }
    };
    for d in chosen {
        let result = roll_back_one(&store, &manifest, &env.name, &acct, d, input, reporter).await;
        report
            .results
            .push(result.unwrap_or_else(|error| RollbackResult::Failed {
                target: Some(d.target.clone()),
                error,
            }));
    }
    Ok(report)
}

/// The environment's account, through its deploy role.
async fn open_account(
    manifest: &Manifest,
    account: &ferry_manifest::Account,
    why: &str,
) -> std::result::Result<AccountConfig, ferry_aws::error::AwsError> {
    let role = RoleTarget {
        role_arn: account.deploy_role_arn(),
        external_id: account.external_id.clone(),
        region: Some(account.region.clone()),
    };
    let aws = Aws::from_env(&format!("ferry-{}-{why}", manifest.pipeline)).await?;
    aws.assume(&role).await
}

/// The version a deploy target runs now, read from its account.
async fn live_version(
    acct: &AccountConfig,
    target: &ReleaseTarget,
) -> std::result::Result<Option<String>, String> {
    match target {
        ReleaseTarget::Lambda { function, alias } => lambda::alias_code(acct, function, alias)
            .await
            .map_err(|e| e.to_string())
            .map(|found| found.map(|(v, _, _)| v)),
        ReleaseTarget::Ecs { cluster, service } => {
            ecs::current_task_definition(acct, cluster, service)
                .await
                .map_err(|e| e.to_string())
                .map(Some)
        }
    }
}

/// What runs now in the account, for one deploy target (by the ledger's name for it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveVersion {
    pub target: String,
    /// The version running (a Lambda version, a task definition ARN); `None` when there is
    /// none (no alias yet) or it could not be read.
    pub version: Option<String>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// Each deploy of `environment` as it runs in its account now, read through the deploy role.
pub async fn live_versions(
    manifest: &Manifest,
    environment_name: &str,
) -> Result<Vec<LiveVersion>> {
    let env = environment(manifest, environment_name)?;
    let account = account_of(manifest, env)?;
    let all = deployments(manifest, &env.name);
    let acct = match open_account(manifest, account, "live").await {
        Ok(a) => a,
        Err(e) => {
            return Ok(all
                .iter()
                .map(|d| LiveVersion {
                    target: d.target.to_string(),
                    version: None,
                    error: Some(e.to_string()),
                })
                .collect());
        }
    };
    let mut out = Vec::new();
    for d in &all {
        let (version, error) = match live_version(&acct, &d.target).await {
            Ok(v) => (v, None),
            Err(e) => (None, Some(e)),
        };
        out.push(LiveVersion {
            target: d.target.to_string(),
            version,
            error,
        });
    }
    Ok(out)
}

/// Puts one deploy back on its last verified-good release (or `input.to`), and records that
/// in the ledger.
async fn roll_back_one(
    store: &Arc<dyn Store>,
    manifest: &Manifest,
    environment: &str,
    acct: &AccountConfig,
    d: &Deployment,
    input: &RollbackInput,
    reporter: &dyn Reporter,
) -> std::result::Result<RollbackResult, String> {
    let target = d.target.to_string();
    let ledger = store
        .releases(&manifest.pipeline, Some(environment), Some(&target), 200)
        .map_err(|e| e.to_string())?;
    let op = Operation::begin(reporter, format!("rollback {target}"));
    let live = live_version(acct, &d.target).await?;
    if let Some(execution) = &input.only_running {
        let runs_it = ledger.iter().any(|r| {
            &r.execution_id == execution
                && matches!(r.record.outcome.as_str(), "Deployed" | "Restored")
                && Some(r.record.version.as_str()) == live.as_deref()
        });
        if !runs_it {
            return Ok(RollbackResult::Unaffected {
                target: d.target.clone(),
                version: live,
            });
        }
    }
    let release = match input.to {
        Some(id) => {
            let release = ledger.iter().find(|r| r.id == id).ok_or_else(|| {
                format!("release {id} is not a release of {target}; `ferry releases` lists them")
            })?;
            if let Some(reason) = &release.blocked {
                return Err(format!(
                    "release {id} comes from {}, which is blocked: {reason}",
                    release.execution_id
                ));
            }
            release
        }
        None => rollback_target(&ledger, live.as_deref()).ok_or_else(|| {
            format!(
                "the ledger has no verified-good release of {target} other than the one running ({})",
                live.as_deref().unwrap_or("none")
            )
        })?,
    };
    op.step(&format!(
        "returning to release {} ({})",
        release.id, release.record.version
    ));
    match &d.target {
        ReleaseTarget::Lambda { function, alias } => {
            lambda::point_alias(acct, function, alias, &release.record.version)
                .await
                .map_err(|e| e.to_string())?;
        }
        ReleaseTarget::Ecs { cluster, service } => {
            let req = EcsDeploy {
                cluster: cluster.clone(),
                service: service.clone(),
                images: Vec::new(),
                timeout: d.timeout,
                alarms: Vec::new(),
                watch_after: Duration::ZERO,
                strategy: ferry_manifest::EcsStrategy::Rolling,
                poll: Duration::from_secs(2),
                previous: None,
                idempotency_key: None,
            };
            if let Some(why) = ecs::update_to(acct, &req, &release.record.version, &|s| op.step(s))
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!(
                    "the service was set to {} but {why}",
                    ecs::short_td(&release.record.version)
                ));
            }
        }
    }
    drop(op);
    if let Err(e) = store.restore_release(release, &input.identity, live.as_deref()) {
        crate::progress::warn(
            reporter,
            format!("{target}: rolled back, but the ledger could not record it: {e}"),
        );
    }
    Ok(RollbackResult::Restored {
        target: d.target.clone(),
        restored_release: release.id,
        version: release.record.version.clone(),
        replaced: live,
        revision: release.revision.clone(),
    })
}
