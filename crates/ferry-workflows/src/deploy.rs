//! `ferry deploy lambda|ecs`: one deploy, outside any pipeline (from any CI), with the same
//! code the pipeline's `lambda` and `ecs` actions run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ferry_aws::ecs::{self, EcsDeploy, EcsReport};
use ferry_aws::error::AwsError;
use ferry_aws::lambda::{self, LambdaDeploy, LambdaReport, Package};
use ferry_aws::session::{AccountConfig, Aws, RoleTarget};
use ferry_manifest::Traffic;

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
}

/// A deploy's result — its report, or the error that stopped it before anything changed —
/// and the AWS calls it made, by operation.
#[derive(Debug, Clone)]
pub struct Deployment<R> {
    pub result: std::result::Result<R, AwsError>,
    pub api_calls: BTreeMap<String, usize>,
}

impl<R> Deployment<R> {
    pub fn api_calls_total(&self) -> usize {
        self.api_calls.values().sum()
    }
}

/// Runs one deploy in the target's account, with its steps as progress.
async fn run<R>(
    title: String,
    session: &str,
    target: &DeployTarget,
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
            };
        }
    };
    let role = target.role_arn.as_ref().map(|arn| RoleTarget {
        role_arn: arn.clone(),
        external_id: target.external_id.clone(),
        region: target.region.clone(),
    });
    let result = match aws.account(role.as_ref(), target.region.as_deref()).await {
        Ok(account) => deploy(&account, &|s| op.step(s)).await,
        Err(e) => Err(e),
    };
    Deployment {
        result,
        api_calls: aws.calls.counts(),
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
    let req = LambdaDeploy {
        function: input.function.clone(),
        alias: input.alias.clone(),
        package,
        traffic: input.traffic,
        alarms: input.target.alarms.clone(),
        watch_after: input.target.watch_after,
        prune_keep: input.keep_versions,
        idempotency_key: None,
        referenced: Vec::new(),
        poll: Duration::from_secs(1),
    };
    Ok(run(
        format!("deploy {}:{}", input.function, input.alias),
        &format!("ferry-deploy-{}", input.function),
        &input.target,
        reporter,
        async |account, step| lambda::deploy(account, &req, step).await,
    )
    .await)
}

/// New images → a task-definition revision → the service updated and awaited.
pub async fn ecs(input: &EcsInput, reporter: &dyn Reporter) -> Result<Deployment<EcsReport>> {
    let images = ecs::read_image_definitions(&input.image_definitions).map_err(Error::Usage)?;
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
        reporter,
        async |account, step| ecs::deploy(account, &req, step).await,
    )
    .await)
}
