//! `ferry deploy lambda|ecs`: one deploy, outside any pipeline (from any CI), with the same
//! code the pipeline's `lambda` and `ecs` actions run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_aws::deploy::{Outcome, Released};
use ferry_aws::ecs::{self, EcsDeploy, EcsReport};
use ferry_aws::error::AwsError;
use ferry_aws::lambda::{self, LambdaDeploy, LambdaReport, Package};
use ferry_aws::session::{AccountConfig, Aws, RoleTarget};
use ferry_engine::model::{Mode, PipelineDef, ReleaseRecord, Status, Trigger};
use ferry_engine::store::{Store, StoreError};
use ferry_manifest::{ReleaseTarget, Traffic};

use crate::error::{Error, Result};
use crate::progress::{Operation, Reporter};

/// Where a deploy acts: an assumed role, or the caller's own identity.
#[derive(Debug, Clone, Default)]
pub struct DeployTarget {
    /// Assume this role first (a deploy role in the target account).
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub region: Option<String>,
    /// Alarms to watch; one that enters ALARM rolls the deploy back.
    pub alarms: Vec<String>,
    /// How long to keep watching them once the deploy is done (`--watch`).
    pub watch_after: Duration,
}

/// Where a deploy made outside ferry's engine joins a pipeline's release ledger (what the
/// native pipeline's deploys do), so `ferry releases`, `ferry rollback` and the delivery
/// measures see it.
#[derive(Debug, Clone)]
pub struct LedgerInput {
    pub pipeline: String,
    /// The environment it releases to.
    pub environment: String,
    /// The outside run that made it (CodePipeline's execution id): the deploys of one run are
    /// one execution in ferry's history.
    pub run: String,
    /// The source revision it deploys.
    pub revision: String,
    /// The state: a directory, or a PostgreSQL URL (shared with `ferry serve`).
    pub state_dir: PathBuf,
    pub state_url: Option<String>,
}

/// A deploy's place in the ledger.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    /// The execution of the outside run.
    pub execution: String,
    /// The ledger entry; `None` when the deploy made no release (it changed nothing, or its
    /// rollback failed).
    pub release: Option<i64>,
}

/// The ledger a deploy records into, opened before it changes anything.
struct Ledger {
    store: Arc<dyn Store>,
    input: LedgerInput,
}

impl Ledger {
    fn open(input: Option<&LedgerInput>) -> Result<Option<Ledger>> {
        let Some(input) = input else { return Ok(None) };
        for (what, value) in [
            ("--pipeline", &input.pipeline),
            ("--ledger", &input.environment),
            ("--run", &input.run),
            ("--revision", &input.revision),
        ] {
            if value.trim().is_empty() {
                return Err(Error::Usage(format!(
                    "{what} is empty: the ledger needs the pipeline, the environment, the run and the revision"
                )));
            }
        }
        let store = crate::project::open_store(&input.state_dir, input.state_url.as_deref())?;
        Ok(Some(Ledger {
            store,
            input: input.clone(),
        }))
    }

    /// The versions the ledger names for `target`, which pruning keeps.
    fn referenced(&self, target: &ReleaseTarget) -> Result<Vec<String>> {
        Ok(self
            .store
            .releases(
                &self.input.pipeline,
                Some(&self.input.environment),
                Some(&target.to_string()),
                100,
            )?
            .into_iter()
            .map(|r| r.record.version)
            .collect())
    }

    /// Records a deploy that ended with `outcome` as `record` says, in the execution of its run.
    fn record(
        &self,
        outcome: Outcome,
        record: impl FnOnce(&str) -> ReleaseRecord,
    ) -> std::result::Result<Recorded, StoreError> {
        let i = &self.input;
        let definition = PipelineDef {
            name: i.pipeline.clone(),
            mode: Mode::Parallel,
            stages: Vec::new(),
        };
        let trigger =
            Trigger::from(format!("run {} outside ferry (ferry deploy --ledger)", i.run).as_str());
        let execution = self
            .store
            .create_execution_once(&definition, &i.revision, &trigger)?;
        // Ended at once: it has no stages for a server to drive.
        let (status, reason) = match outcome {
            Outcome::Deployed | Outcome::AlreadyDeployed => (Status::Succeeded, None),
            Outcome::RolledBack => (
                Status::Failed,
                Some(format!("{}: rolled back", i.environment)),
            ),
            Outcome::RollbackFailed => (
                Status::Failed,
                Some(format!(
                    "{}: failed, and the rollback failed",
                    i.environment
                )),
            ),
        };
        if execution.status == Status::InProgress || status == Status::Failed {
            self.store
                .set_execution_status(&execution.id, status, reason.as_deref())?;
        }
        let release = match outcome.ledger_outcome() {
            Some(o) => Some(self.store.record_release(
                &execution,
                &i.environment,
                None,
                None,
                &record(o),
            )?),
            None => None,
        };
        Ok(Recorded {
            execution: execution.id,
            release,
        })
    }
}

/// The code of a Lambda deploy.
#[derive(Debug, Clone)]
pub enum LambdaCode {
    Zip(PathBuf),
    Image(String),
}

#[derive(Debug, Clone)]
pub struct LambdaInput {
    pub function: String,
    pub alias: String,
    pub code: LambdaCode,
    pub traffic: Traffic,
    /// After a good deploy, delete older versions beyond the newest N.
    pub keep_versions: Option<usize>,
    pub target: DeployTarget,
    pub ledger: Option<LedgerInput>,
}

#[derive(Debug, Clone)]
pub struct EcsInput {
    pub cluster: String,
    pub service: String,
    /// `imagedefinitions.json` or `imageDetail.json`.
    pub image_definitions: PathBuf,
    /// Longest wait for steady state (and again for a rollback's).
    pub timeout: Duration,
    pub target: DeployTarget,
    pub ledger: Option<LedgerInput>,
}

/// A deploy's result — its report, or the error that stopped it before anything changed —
/// the AWS calls it made, by operation, and (asked for a ledger) where it was recorded, or
/// why it could not be.
#[derive(Debug)]
pub struct Deployment<R> {
    pub result: std::result::Result<R, AwsError>,
    pub api_calls: BTreeMap<String, usize>,
    pub recorded: Option<std::result::Result<Recorded, StoreError>>,
}

impl<R> Deployment<R> {
    pub fn api_calls_total(&self) -> usize {
        self.api_calls.values().sum()
    }
}

/// Runs one deploy in the target's account, with its steps as progress, and records it in
/// `ledger` when there is one.
async fn run<R: Released>(
    title: String,
    session: &str,
    target: &DeployTarget,
    ledger: Option<&Ledger>,
    reporter: &dyn Reporter,
    deploy: impl AsyncFnOnce(
        &AccountConfig,
        &(dyn Fn(&str) + Send + Sync),
    ) -> std::result::Result<R, AwsError>,
) -> Deployment<R> {
    let op = Operation::begin(reporter, title);
    let aws = match Aws::from_env(session).await {
        Ok(aws) => aws,
        Err(e) => {
            return Deployment {
                result: Err(e),
                api_calls: BTreeMap::new(),
                recorded: None,
            };
        }
    };
    let role = target.role_arn.as_ref().map(|arn| RoleTarget {
        role_arn: arn.clone(),
        external_id: target.external_id.clone(),
        region: target.region.clone(),
    });
    let result = match aws.account(role.as_ref(), target.region.as_deref()).await {
        Ok(account) => deploy(&account, &|s| op.step(s)).await.map(|r| {
            let id = account.site.account.clone().unwrap_or_default();
            (r, id)
        }),
        Err(e) => Err(e),
    };
    let recorded = match (&result, ledger) {
        (Ok((report, account)), Some(ledger)) => {
            Some(ledger.record(report.outcome(), |o| report.release(account, o)))
        }
        _ => None,
    };
    Deployment {
        result: result.map(|(r, _)| r),
        api_calls: aws.calls.counts(),
        recorded,
    }
}

/// New code → a published version → the alias shifted to it, watched by alarms.
pub async fn lambda(
    input: &LambdaInput,
    reporter: &dyn Reporter,
) -> Result<Deployment<LambdaReport>> {
    let package = match &input.code {
        LambdaCode::Zip(path) => Package::Zip(
            std::fs::read(path)
                .map_err(|e| Error::Usage(format!("cannot read {}: {e}", path.display())))?,
        ),
        LambdaCode::Image(uri) => Package::Image(uri.clone()),
    };
    let ledger = Ledger::open(input.ledger.as_ref())?;
    let target = ReleaseTarget::Lambda {
        function: input.function.clone(),
        alias: input.alias.clone(),
    };
    let referenced = match &ledger {
        Some(l) => l.referenced(&target)?,
        None => Vec::new(),
    };
    let req = LambdaDeploy {
        function: input.function.clone(),
        alias: input.alias.clone(),
        package,
        traffic: input.traffic,
        alarms: input.target.alarms.clone(),
        watch_after: input.target.watch_after,
        prune_keep: input.keep_versions,
        idempotency_key: None,
        referenced,
        poll: Duration::from_secs(1),
    };
    Ok(run(
        format!("deploy {}:{}", input.function, input.alias),
        &format!("ferry-deploy-{}", input.function),
        &input.target,
        ledger.as_ref(),
        reporter,
        async |account, step| lambda::deploy(account, &req, step).await,
    )
    .await)
}

/// New images → a task-definition revision → the service updated and awaited.
pub async fn ecs(input: &EcsInput, reporter: &dyn Reporter) -> Result<Deployment<EcsReport>> {
    let images = ecs::read_image_definitions(&input.image_definitions).map_err(Error::Usage)?;
    let ledger = Ledger::open(input.ledger.as_ref())?;
    let req = EcsDeploy {
        cluster: input.cluster.clone(),
        service: input.service.clone(),
        images,
        timeout: input.timeout,
        alarms: input.target.alarms.clone(),
        watch_after: input.target.watch_after,
        strategy: ferry_manifest::EcsStrategy::Rolling,
        poll: Duration::from_secs(2),
        previous: None,
        idempotency_key: None,
    };
    Ok(run(
        format!("deploy {}/{}", input.cluster, input.service),
        &format!("ferry-deploy-{}", input.service),
        &input.target,
        ledger.as_ref(),
        reporter,
        async |account, step| ecs::deploy(account, &req, step).await,
    )
    .await)
}
