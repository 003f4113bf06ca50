//! ECS deploys: new images → a new task-definition revision → the service updated → steady
//! state awaited under a timeout while alarms are watched → on failure the service goes back
//! to the task definition it ran before.
//!
//! Whether a deployment is done is decided by [`assess`], a pure function of the
//! `DescribeServices` output, so it is tested against responses shaped as AWS returns them
//! (the emulator never moves an ECS deployment forward).

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_ecs::types::{ContainerDefinition, TaskDefinition, TaskDefinitionField};
use serde::{Deserialize, Serialize};

use ferry_engine::model::ReleaseRecord;
use ferry_manifest::EcsStrategy;

use crate::alarms::{self, AlarmWatch};
use crate::deploy::{Outcome, Released, StepLog};
use crate::error::AwsError;
use crate::service_deployment::{
    self, Ended, Follow, PauseHook, Seen, ServiceDeploymentState, Step,
};
use crate::session::AccountConfig;

/// One container's new image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageChange {
    /// The container's name; `None` for `imageDetail.json`, which names only an image.
    pub container: Option<String>,
    pub image_uri: String,
}

/// Reads CodePipeline's `imagedefinitions.json` (`[{"name": …, "imageUri": …}]`) or
/// `imageDetail.json` (`{"ImageURI": …}`). Errors name the file, line and column.
pub fn parse_image_definitions(origin: &str, text: &str) -> Result<Vec<ImageChange>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Definition {
        name: String,
        #[serde(rename = "imageUri")]
        image_uri: String,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(rename = "ImageURI")]
        image_uri: String,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum File {
        Definitions(Vec<Definition>),
        Detail(Detail),
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "{origin}:{}:{}: {e}; the file must be JSON",
            e.line(),
            e.column()
        )
    })?;
    let usage = "write `[{\"name\": \"<container>\", \"imageUri\": \"<image>\"}]` (imagedefinitions.json) or `{\"ImageURI\": \"<image>\"}` (imageDetail.json)";
    let file: File =
        serde_json::from_value(value).map_err(|e| format!("{origin}: {e}; {usage}"))?;
    let changes: Vec<ImageChange> = match file {
        File::Definitions(defs) => defs
            .into_iter()
            .map(|d| ImageChange {
                container: Some(d.name),
                image_uri: d.image_uri,
            })
            .collect(),
        File::Detail(d) => vec![ImageChange {
            container: None,
            image_uri: d.image_uri,
        }],
    };
    if changes.is_empty() {
        return Err(format!("{origin}: names no image; {usage}"));
    }
    for c in &changes {
        if c.image_uri.trim().is_empty() || c.image_uri.chars().any(char::is_whitespace) {
            return Err(format!("{origin}: `{}` is not an image URI", c.image_uri));
        }
        if c.container.as_deref().is_some_and(str::is_empty) {
            return Err(format!("{origin}: a container name is empty; {usage}"));
        }
    }
    let mut names: Vec<&str> = changes
        .iter()
        .filter_map(|c| c.container.as_deref())
        .collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("{origin}: container `{}` is named twice", w[0]));
    }
    Ok(changes)
}

/// An image reference without its tag or digest: `registry/repo`.
fn repository_of(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        // A colon after the last slash is a tag; before it, a registry port.
        Some(i) if !without_digest[i..].contains('/') => &without_digest[..i],
        _ => without_digest,
    }
}

/// The container definitions with the new images, or why they cannot be made.
pub fn apply_images(
    containers: &[ContainerDefinition],
    changes: &[ImageChange],
) -> Result<Vec<ContainerDefinition>, String> {
    let mut out = containers.to_vec();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c.name.as_deref())
        .collect();
    for change in changes {
        let index = match &change.container {
            Some(name) => out
                .iter()
                .position(|c| c.name.as_deref() == Some(name.as_str()))
                .ok_or_else(|| {
                    format!(
                        "the task definition has no container `{name}`; its containers are: {}",
                        names.join(", ")
                    )
                })?,
            // imageDetail.json: the one container, or the one whose image is from the same repository.
            None => {
                let repo = repository_of(&change.image_uri);
                let same_repo: Vec<usize> = out
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.image.as_deref().map(repository_of) == Some(repo))
                    .map(|(i, _)| i)
                    .collect();
                match (out.len(), same_repo.as_slice()) {
                    (1, _) => 0,
                    (_, [i]) => *i,
                    _ => {
                        return Err(format!(
                            "imageDetail.json names one image but the task definition has {} containers ({}) and not exactly one runs an image from {repo}; use imagedefinitions.json to name the container",
                            out.len(),
                            names.join(", ")
                        ));
                    }
                }
            }
        };
        out[index].image = Some(change.image_uri.clone());
    }
    Ok(out)
}

/// The images a task definition runs, by container.
pub fn images_of(containers: &[ContainerDefinition]) -> Vec<(String, String)> {
    containers
        .iter()
        .map(|c| {
            (
                c.name.clone().unwrap_or_default(),
                c.image.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// What [`assess`] reads of a service: the fields of `DescribeServices` output that decide
/// whether a deployment is done. Deserializes from the API's JSON (camelCase).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceState {
    pub service_name: String,
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub deployments: Vec<DeploymentState>,
    pub events: Vec<ServiceEventState>,
    /// The service deployment of its latest update (`currentServiceDeployment`).
    pub current_service_deployment: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentState {
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub task_definition: String,
    pub desired_count: i32,
    pub running_count: i32,
    pub pending_count: i32,
    pub failed_tasks: i32,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`; absent without the rolling-update controller.
    pub rollout_state: Option<String>,
    pub rollout_state_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServiceEventState {
    pub message: String,
}

impl ServiceState {
    pub fn from_sdk(s: &aws_sdk_ecs::types::Service) -> ServiceState {
        ServiceState {
            service_name: s.service_name.clone().unwrap_or_default(),
            status: s.status.clone().unwrap_or_default(),
            task_definition: s.task_definition.clone().unwrap_or_default(),
            desired_count: s.desired_count,
            running_count: s.running_count,
            pending_count: s.pending_count,
            deployments: s
                .deployments()
                .iter()
                .map(|d| DeploymentState {
                    id: d.id.clone().unwrap_or_default(),
                    status: d.status.clone().unwrap_or_default(),
                    task_definition: d.task_definition.clone().unwrap_or_default(),
                    desired_count: d.desired_count,
                    running_count: d.running_count,
                    pending_count: d.pending_count,
                    failed_tasks: d.failed_tasks,
                    rollout_state: d.rollout_state.as_ref().map(|r| r.as_str().to_owned()),
                    rollout_state_reason: d.rollout_state_reason.clone(),
                })
                .collect(),
            events: s
                .events()
                .iter()
                .map(|e| ServiceEventState {
                    message: e.message.clone().unwrap_or_default(),
                })
                .collect(),
            current_service_deployment: s.current_service_deployment.clone(),
        }
    }
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// The service runs the target task definition, with every task up.
    Steady,
    /// Still rolling out; what is happening.
    Waiting(String),
    /// It will not get there by itself; why.
    Failed(String),
}

/// How many failed tasks fail a deployment: the rule of ECS's deployment circuit breaker
/// (half the desired count, at least 3 and at most 200).
pub fn failed_task_threshold(desired: i32) -> i32 {
    ((desired + 1) / 2).clamp(3, 200)
}

/// Whether a service has finished moving to `target` (a task-definition ARN).
///
/// Steady is AWS's own `services-stable` waiter rule — one deployment left (the old ones
/// drained) and the running count equal to the desired count — plus what the waiter does not
/// check: the service must still be on `target` (a circuit-breaker rollback or another deploy
/// moves it away), the rollout must not have `FAILED`, and failed tasks must stay under the
/// circuit breaker's threshold. Like the waiter, it does not require `rolloutState` to be
/// `COMPLETED`.
pub fn assess(state: &ServiceState, target: &str) -> Assessment {
    if state.status != "ACTIVE" {
        return Assessment::Failed(format!(
            "the service is {}, not ACTIVE",
            if state.status.is_empty() {
                "in no status"
            } else {
                &state.status
            }
        ));
    }
    if state.task_definition != target {
        return Assessment::Failed(format!(
            "the service now uses {} instead of {target}: another deployment replaced this one, or ECS's circuit breaker rolled it back",
            short_td(&state.task_definition)
        ));
    }
    let primary = state.deployments.iter().find(|d| d.status == "PRIMARY");
    if let Some(p) = primary {
        if p.rollout_state.as_deref() == Some("FAILED") {
            return Assessment::Failed(
                p.rollout_state_reason
                    .clone()
                    .unwrap_or_else(|| "the rollout FAILED".into()),
            );
        }
        let threshold = failed_task_threshold(p.desired_count.max(state.desired_count));
        if p.failed_tasks >= threshold {
            let last = state
                .events
                .first()
                .map(|e| format!("; latest event: {}", e.message))
                .unwrap_or_default();
            return Assessment::Failed(format!(
                "{} tasks failed to start (the limit is {threshold}){last}",
                p.failed_tasks
            ));
        }
    }
    if state.deployments.len() <= 1 && state.running_count == state.desired_count {
        return Assessment::Steady;
    }
    let mut what = format!(
        "{}/{} tasks running",
        state.running_count, state.desired_count
    );
    if state.pending_count > 0 {
        what.push_str(&format!(", {} pending", state.pending_count));
    }
    let draining = state
        .deployments
        .iter()
        .filter(|d| d.status != "PRIMARY")
        .count();
    if draining > 0 {
        what.push_str(&format!(", {draining} older deployment(s) draining"));
    }
    if let Some(p) = primary.filter(|p| p.failed_tasks > 0) {
        what.push_str(&format!(", {} failed task(s)", p.failed_tasks));
    }
    Assessment::Waiting(what)
}

/// `family:revision` of a task-definition ARN, for messages.
pub fn short_td(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[derive(Debug, Clone)]
pub struct EcsDeploy {
    pub cluster: String,
    pub service: String,
    pub images: Vec<ImageChange>,
    /// Longest wait for steady state (and again for the rollback's).
    pub timeout: Duration,
    pub alarms: Vec<String>,
    /// Once steady, watch `alarms` this long more; one entering ALARM rolls the deploy back
    /// (`gates.after`). Zero: done when steady.
    pub watch_after: Duration,
    /// Rolling (ferry follows the service to steady state) or ECS's own traffic shifting
    /// (ferry follows the service deployment).
    pub strategy: EcsStrategy,
    pub poll: Duration,
    /// Where to return if the service already runs the new images but does not become
    /// steady (a deploy resumed after a crash): the last verified-good task definition.
    pub previous: Option<String>,
    /// The engine's idempotency key of this attempt, tagged on the registered task definition
    /// (`ferry:idempotency-key`) so the revision can be traced to the attempt that made it.
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EcsReport {
    pub outcome: Outcome,
    pub cluster: String,
    pub service: String,
    pub from_task_definition: Option<String>,
    pub to_task_definition: Option<String>,
    /// The images of the new task definition, by container.
    pub images: Vec<(String, String)>,
    /// The new task definition reached steady state with no alarm.
    pub verified: bool,
    /// With ECS's traffic shifting: the service revision the deployment moved to (or tried).
    pub service_revision: Option<String>,
    pub steps: Vec<String>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

impl Released for EcsReport {
    fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn release(&self, account_id: &str, outcome: &str) -> ReleaseRecord {
        let target = ferry_manifest::ReleaseTarget::Ecs {
            cluster: self.cluster.clone(),
            service: self.service.clone(),
        };
        ReleaseRecord {
            target: target.to_string(),
            version: self.to_task_definition.clone().unwrap_or_default(),
            digest: None,
            previous_version: self.from_task_definition.clone(),
            details: serde_json::json!({"account": account_id, "images": self.images, "service_revision": self.service_revision}),
            outcome: outcome.into(),
            verified: self.verified,
        }
    }
}

/// What the owner of a deploy decides while ECS shifts the traffic: the checks of ferry's
/// `PAUSE` hooks, and whether an operator asked to stop. The engine's `ecs` action steers
/// (a hook's test or approval, `ferry stop --force`); `ferry deploy ecs` does not.
#[async_trait::async_trait]
pub trait Steer: Send + Sync {
    /// The hooks ECS pauses at for ferry.
    fn hooks(&self) -> &[PauseHook];
    /// ECS paused at `at` (one of [`Steer::hooks`]) in `deployment`: `Ok` goes on,
    /// `Err(why)` rolls the deployment back.
    async fn check(&self, at: &str, deployment: &ServiceDeploymentState) -> Result<(), String>;
    /// Why an operator asked to stop, if one did.
    fn stop(&self) -> Option<String>;
}

/// No hooks and no stop: a deploy from the command line.
pub struct Unsteered;

#[async_trait::async_trait]
impl Steer for Unsteered {
    fn hooks(&self) -> &[PauseHook] {
        &[]
    }
    async fn check(&self, at: &str, _: &ServiceDeploymentState) -> Result<(), String> {
        Err(format!("nothing answers a pause at {at}"))
    }
    fn stop(&self) -> Option<String> {
        None
    }
}

struct Deployer<'a> {
    client: aws_sdk_ecs::Client,
    account: &'a AccountConfig,
    req: &'a EcsDeploy,
    steer: &'a dyn Steer,
    log: StepLog<'a>,
    /// The service revision a followed deployment moves to, once seen.
    revision: Option<String>,
}

impl Deployer<'_> {
    fn step(&mut self, text: String) {
        self.log.step(text);
    }

    fn resource(&self) -> String {
        format!(
            "service {} in cluster {}",
            self.req.service, self.req.cluster
        )
    }

    async fn describe(&self) -> Result<ServiceState, AwsError> {
        let out = self
            .account
            .call(
                "ecs:DescribeServices",
                &self.resource(),
                self.client
                    .describe_services()
                    .cluster(&self.req.cluster)
                    .services(&self.req.service)
                    .send(),
            )
            .await?;
        match out.services().first() {
            Some(s) => Ok(ServiceState::from_sdk(s)),
            None => {
                let reason = out
                    .failures()
                    .first()
                    .and_then(|f| f.reason())
                    .unwrap_or("MISSING");
                Err(self.account.fail(
                    "ecs:DescribeServices",
                    &self.resource(),
                    "ServiceNotFoundException",
                    format!("{reason}: no such service"),
                ))
            }
        }
    }

    async fn task_definition(
        &self,
        arn: &str,
    ) -> Result<(TaskDefinition, Vec<aws_sdk_ecs::types::Tag>), AwsError> {
        let out = self
            .account
            .call(
                "ecs:DescribeTaskDefinition",
                arn,
                self.client
                    .describe_task_definition()
                    .task_definition(arn)
                    .include(TaskDefinitionField::Tags)
                    .send(),
            )
            .await?;
        let td = out.task_definition().cloned().ok_or_else(|| {
            self.account.fail(
                "ecs:DescribeTaskDefinition",
                arn,
                "NotFound",
                "no task definition returned",
            )
        })?;
        Ok((td, out.tags().to_vec()))
    }

    /// A new revision of `td` with `containers`: every writable field copied, the read-only
    /// ones (ARN, revision, status, compatibilities, requiresAttributes, registeredAt/By) dropped,
    /// and inferenceAccelerators, which AWS no longer accepts.
    async fn register(
        &self,
        td: TaskDefinition,
        tags: Vec<aws_sdk_ecs::types::Tag>,
        containers: Vec<ContainerDefinition>,
    ) -> Result<String, AwsError> {
        let family = td.family.clone().unwrap_or_default();
        let request = self
            .client
            .register_task_definition()
            .family(&family)
            .set_task_role_arn(td.task_role_arn)
            .set_execution_role_arn(td.execution_role_arn)
            .set_network_mode(td.network_mode)
            .set_container_definitions(Some(containers))
            .set_volumes(td.volumes)
            .set_placement_constraints(td.placement_constraints)
            .set_requires_compatibilities(td.requires_compatibilities)
            .set_cpu(td.cpu)
            .set_memory(td.memory)
            .set_tags(with_key(tags, self.req.idempotency_key.as_deref()))
            .set_pid_mode(td.pid_mode)
            .set_ipc_mode(td.ipc_mode)
            .set_proxy_configuration(td.proxy_configuration)
            .set_ephemeral_storage(td.ephemeral_storage)
            .set_runtime_platform(td.runtime_platform)
            .set_enable_fault_injection(td.enable_fault_injection)
            .send();
        let out = self
            .account
            .call(
                "ecs:RegisterTaskDefinition",
                &format!("task definition family {family}"),
                request,
            )
            .await?;
        out.task_definition()
            .and_then(|t| t.task_definition_arn())
            .map(str::to_owned)
            .ok_or_else(|| {
                self.account.fail(
                    "ecs:RegisterTaskDefinition",
                    &family,
                    "NoArn",
                    "no task definition ARN returned",
                )
            })
    }

    async fn update(&self, task_definition: &str) -> Result<(), AwsError> {
        self.account
            .call(
                "ecs:UpdateService",
                &self.resource(),
                self.client
                    .update_service()
                    .cluster(&self.req.cluster)
                    .service(&self.req.service)
                    .task_definition(task_definition)
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// UpdateService to `task_definition` with the strategy's deployment configuration: the
    /// service deployment it started.
    async fn update_shifted(&self, task_definition: &str) -> Result<String, AwsError> {
        let out = self
            .account
            .call(
                "ecs:UpdateService",
                &self.resource(),
                self.client
                    .update_service()
                    .cluster(&self.req.cluster)
                    .service(&self.req.service)
                    .task_definition(task_definition)
                    .set_deployment_configuration(service_deployment::configuration(
                        &self.req.strategy,
                        self.steer.hooks(),
                    ))
                    .send(),
            )
            .await?;
        out.service()
            .and_then(|s| s.current_service_deployment())
            .map(str::to_owned)
            .ok_or_else(|| {
                self.account.fail(
                    "ecs:UpdateService",
                    &self.resource(),
                    "NoServiceDeployment",
                    "ECS named no service deployment for the update",
                )
            })
    }

    async fn service_deployment(&self, arn: &str) -> Result<ServiceDeploymentState, AwsError> {
        let out = self
            .account
            .call(
                "ecs:DescribeServiceDeployments",
                arn,
                self.client
                    .describe_service_deployments()
                    .service_deployment_arns(arn)
                    .send(),
            )
            .await?;
        match out.service_deployments().first() {
            Some(d) => Ok(ServiceDeploymentState::from_sdk(d)),
            None => Err(self.account.fail(
                "ecs:DescribeServiceDeployments",
                arn,
                "ServiceDeploymentNotFound",
                "no such service deployment",
            )),
        }
    }

    /// Asks ECS to stop the deployment and return to the old revision.
    async fn stop_with_rollback(&self, arn: &str) -> Result<(), AwsError> {
        self.account
            .call(
                "ecs:StopServiceDeployment",
                arn,
                self.client
                    .stop_service_deployment()
                    .service_deployment_arn(arn)
                    .stop_type(aws_sdk_ecs::types::StopServiceDeploymentStopType::Rollback)
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Answers ECS's pause at a hook (ContinueServiceDeployment): go on, or roll back.
    async fn continue_hook(
        &self,
        arn: &str,
        hook_id: &str,
        rollback: bool,
    ) -> Result<(), AwsError> {
        use aws_sdk_ecs::types::DeploymentLifecycleHookAction as HookAction;
        self.account
            .call(
                "ecs:ContinueServiceDeployment",
                arn,
                self.client
                    .continue_service_deployment()
                    .service_deployment_arn(arn)
                    .hook_id(hook_id)
                    .action(if rollback {
                        HookAction::Rollback
                    } else {
                        HookAction::Continue
                    })
                    .send(),
            )
            .await?;
        Ok(())
    }

    /// Follows the service deployment `arn` until it is done, rolled back or failed, as the
    /// pure [`Follow`] says: an alarm, a stop or the timeout asks ECS to roll back, which is
    /// then followed for as long again; a pause at one of ferry's hooks runs its check (the
    /// time it takes is added to the deadline) and answers ECS.
    async fn follow(
        &mut self,
        arn: &str,
        watch: &AlarmWatch,
        until_shifted: bool,
    ) -> Result<Ended, AwsError> {
        let time = self.req.timeout + self.req.strategy.planned();
        let mut deadline = Instant::now() + time;
        let hooks = self.steer.hooks().iter().map(|h| h.at.clone()).collect();
        let mut follow = Follow::new(until_shifted, hooks);
        let mut last = String::new();
        loop {
            let stop = self.steer.stop();
            let fired = match follow.stopping() {
                None => watch.fired().await?,
                Some(_) => None,
            };
            let state = self.service_deployment(arn).await?;
            if let Some(r) = &state.target_service_revision {
                self.revision = Some(r.arn.clone());
            }
            let seen = Seen {
                fired: fired.as_deref(),
                stop: stop.as_deref(),
                past_deadline: Instant::now() >= deadline,
            };
            match follow.look(&state, seen) {
                Step::Wait(what) => {
                    if what != last {
                        self.step(format!("{}: {what}", self.req.service));
                        last = what;
                    }
                }
                Step::StopWithRollback(why) => {
                    self.step(format!("{why}: asking ECS to roll back"));
                    self.stop_with_rollback(arn).await?;
                    deadline = Instant::now() + time;
                }
                Step::RunHook { hook_id, at } => {
                    self.step(format!(
                        "{}: paused at {at} for ferry's hook",
                        self.req.service
                    ));
                    let began = Instant::now();
                    let verdict = self.steer.check(&at, &state).await;
                    deadline += began.elapsed();
                    let stop = self.steer.stop();
                    let fired = watch.fired().await?;
                    let seen = Seen {
                        fired: fired.as_deref(),
                        stop: stop.as_deref(),
                        past_deadline: false,
                    };
                    let rollback = follow.answer(&at, verdict, seen);
                    match &rollback {
                        None => self.step(format!("the hook at {at} passed: ECS goes on")),
                        Some(why) => self.step(format!("{why}: ECS rolls back from the hook")),
                    }
                    self.continue_hook(arn, &hook_id, rollback.is_some())
                        .await?;
                    if rollback.is_some() {
                        deadline = Instant::now() + time;
                    }
                }
                Step::End(ended) => return Ok(ended),
            }
            tokio::time::sleep(self.req.poll).await;
        }
    }

    /// Waits for `target` to be steady. `Ok(None)`: steady; `Ok(Some(why))`: it failed, timed
    /// out or an alarm fired.
    async fn wait_steady(
        &mut self,
        target: &str,
        watch: Option<&AlarmWatch>,
    ) -> Result<Option<String>, AwsError> {
        let deadline = Instant::now() + self.req.timeout;
        let mut last = String::new();
        loop {
            if let Some(w) = watch
                && let Some(alarm) = w.fired().await?
            {
                return Ok(Some(alarms::entered(&alarm)));
            }
            match assess(&self.describe().await?, target) {
                Assessment::Steady => return Ok(None),
                Assessment::Failed(why) => return Ok(Some(why)),
                Assessment::Waiting(what) => {
                    if what != last {
                        self.step(format!("{}: {what}", short_td(target)));
                        last = what;
                    }
                }
            }
            if Instant::now() >= deadline {
                return Ok(Some(format!(
                    "{} did not reach steady state within {} s ({last})",
                    short_td(target),
                    self.req.timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.req.poll).await;
        }
    }
}

/// The task definition's tags, with this attempt's idempotency key in place of an earlier one.
fn with_key(
    mut tags: Vec<aws_sdk_ecs::types::Tag>,
    key: Option<&str>,
) -> Option<Vec<aws_sdk_ecs::types::Tag>> {
    if let Some(key) = key {
        tags.retain(|t| t.key() != Some(IDEMPOTENCY_TAG));
        tags.push(
            aws_sdk_ecs::types::Tag::builder()
                .key(IDEMPOTENCY_TAG)
                .value(key)
                .build(),
        );
    }
    (!tags.is_empty()).then_some(tags)
}

const IDEMPOTENCY_TAG: &str = "ferry:idempotency-key";

/// Deploys `req`. An error means nothing changed; failures after the service was updated come
/// back as a report whose outcome is `RolledBack` or `RollbackFailed`.
pub async fn deploy(
    account: &AccountConfig,
    req: &EcsDeploy,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<EcsReport, AwsError> {
    deploy_steered(account, req, &Unsteered, progress).await
}

/// [`deploy`], with `steer` answering ECS's pauses at ferry's hooks and asking to stop.
pub async fn deploy_steered(
    account: &AccountConfig,
    req: &EcsDeploy,
    steer: &dyn Steer,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<EcsReport, AwsError> {
    let started = Instant::now();
    let mut d = Deployer {
        client: aws_sdk_ecs::Client::new(&account.config),
        account,
        req,
        steer,
        log: StepLog::new(progress),
        revision: None,
    };

    let service = d.describe().await?;
    let from = service.task_definition.clone();
    let (td, tags) = d.task_definition(&from).await?;
    let containers = apply_images(td.container_definitions(), &req.images).map_err(|why| {
        account.fail(
            "ecs:RegisterTaskDefinition",
            short_td(&from),
            "InvalidImageDefinitions",
            why,
        )
    })?;
    let images = images_of(&containers);
    let report =
        |d: &Deployer<'_>, outcome, to: Option<String>, verified, error: Option<String>| {
            EcsReport {
                service_revision: d.revision.clone(),
                outcome,
                cluster: req.cluster.clone(),
                service: req.service.clone(),
                from_task_definition: Some(from.clone()),
                to_task_definition: to,
                images: images.clone(),
                verified,
                steps: d.log.lines.clone(),
                error,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            }
        };
    if images_of(td.container_definitions()) == images {
        // Already on these images (a repeated deploy, or one resumed after a crash): make sure
        // it is steady; if it is not, return to the last verified-good revision, if known.
        d.step(format!("{} already runs these images", short_td(&from)));
        // Resumed while ECS shifts the traffic: follow that deployment, answering its hooks,
        // rather than wait for a steady service (a deployment that ended is seen as such).
        if let (EcsStrategy::Shifted { until_shifted, .. }, Some(arn)) =
            (req.strategy, service.current_service_deployment.clone())
        {
            let watch = AlarmWatch::start(account, &req.alarms).await?;
            d.step(format!("following {arn}"));
            let followed = d
                .follow(&arn, &watch, until_shifted)
                .await
                .unwrap_or_else(|e| Ended::Failed(e.to_string()));
            let (outcome, error) = match followed {
                Ended::Done => (Outcome::AlreadyDeployed, None),
                unsettled => {
                    let back_to = req.previous.as_deref().unwrap_or("its previous revision");
                    let (outcome, error) = not_done(&mut d, unsettled, back_to, &from);
                    (outcome, Some(error))
                }
            };
            let verified = outcome == Outcome::AlreadyDeployed;
            return Ok(report(&d, outcome, Some(from.clone()), verified, error));
        }
        let Some(why) = d.wait_steady(&from, None).await? else {
            return Ok(report(
                &d,
                Outcome::AlreadyDeployed,
                Some(from.clone()),
                true,
                None,
            ));
        };
        let Some(previous) = req.previous.clone().filter(|p| *p != from) else {
            let state = format!("{why}; there is no earlier verified task definition to return to");
            return Ok(report(
                &d,
                Outcome::RollbackFailed,
                Some(from.clone()),
                false,
                Some(state),
            ));
        };
        let (outcome, error) = roll_back(&mut d, why, &previous, &from).await;
        return Ok(report(&d, outcome, Some(from.clone()), false, Some(error)));
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
    let to = d.register(td, tags, containers).await?;
    d.step(format!("registered {}", short_td(&to)));
    if let EcsStrategy::Shifted { until_shifted, .. } = req.strategy {
        let arn = d.update_shifted(&to).await?;
        d.step(format!(
            "updated {} to {}; ECS shifts the traffic ({arn})",
            req.service,
            short_td(&to)
        ));
        let followed = d
            .follow(&arn, &watch, until_shifted)
            .await
            .unwrap_or_else(|e| Ended::Failed(e.to_string()));
        let failure = match followed {
            Ended::Done => {
                d.step(format!("{} is on {}", req.service, short_td(&to)));
                match watch.after(&mut d.log, req.watch_after, req.poll).await {
                    Ok(None) => return Ok(report(&d, Outcome::Deployed, Some(to), true, None)),
                    Ok(Some(why)) => why,
                    Err(e) => e.to_string(),
                }
            }
            unsettled => {
                let (outcome, error) = not_done(&mut d, unsettled, &from, &to);
                return Ok(report(&d, outcome, Some(to), false, Some(error)));
            }
        };
        // The deployment succeeded and then an alarm fired: a deployment back to `from`.
        let (outcome, error) = roll_back(&mut d, failure, &from, &to).await;
        return Ok(report(&d, outcome, Some(to), false, Some(error)));
    }
    d.update(&to).await?;
    d.step(format!("updated {} to {}", req.service, short_td(&to)));
    let steady = match d.wait_steady(&to, Some(&watch)).await {
        Ok(None) => {
            d.step(format!("{} is steady on {}", req.service, short_td(&to)));
            watch.after(&mut d.log, req.watch_after, req.poll).await
        }
        Ok(Some(why)) => Ok(Some(why)),
        Err(e) => Err(e),
    };
    let failure = match steady {
        Ok(None) => return Ok(report(&d, Outcome::Deployed, Some(to), true, None)),
        Ok(Some(why)) => why,
        Err(e) => e.to_string(),
    };
    let (outcome, error) = roll_back(&mut d, failure, &from, &to).await;
    Ok(report(&d, outcome, Some(to), false, Some(error)))
}

/// How a followed deployment from `from` to `to` ended, as the deploy reports it: deployed,
/// put back on `from` by ECS, or on either revision. The outcome and the error to report.
fn not_done(d: &mut Deployer<'_>, ended: Ended, from: &str, to: &str) -> (Outcome, String) {
    match ended {
        Ended::Done => (Outcome::Deployed, String::new()),
        Ended::RolledBack(why) => {
            d.step(format!(
                "ECS put {} back on {}",
                d.req.service,
                short_td(from)
            ));
            (Outcome::RolledBack, why)
        }
        Ended::Failed(why) => (
            Outcome::RollbackFailed,
            format!(
                "{why}; the service may run {} or {}",
                short_td(from),
                short_td(to)
            ),
        ),
    }
}

/// After `failure`, sets the service back to `back_to` (from `failed`) and waits for it:
/// `RolledBack`, or `RollbackFailed` with the state it left.
async fn roll_back(
    d: &mut Deployer<'_>,
    failure: String,
    back_to: &str,
    failed: &str,
) -> (Outcome, String) {
    d.step(format!(
        "{failure}: rolling {} back to {}",
        d.req.service,
        short_td(back_to)
    ));
    let waited = match d.update(back_to).await {
        Ok(()) => d.wait_steady(back_to, None).await,
        Err(e) => Err(e),
    };
    match waited {
        Ok(None) => {
            d.step(format!(
                "{} is steady on {} again",
                d.req.service,
                short_td(back_to)
            ));
            (Outcome::RolledBack, failure)
        }
        Ok(Some(why)) => (
            Outcome::RollbackFailed,
            format!(
                "{failure}; the service was set back to {} but {why}",
                short_td(back_to)
            ),
        ),
        Err(e) => (
            Outcome::RollbackFailed,
            format!(
                "{failure}; setting the service back to {} failed too ({e}); it may still run {}",
                short_td(back_to),
                short_td(failed)
            ),
        ),
    }
}

/// The task definition a service uses now (`ferry rollback`).
pub async fn current_task_definition(
    account: &AccountConfig,
    cluster: &str,
    service: &str,
) -> Result<String, AwsError> {
    let req = EcsDeploy {
        cluster: cluster.into(),
        service: service.into(),
        images: Vec::new(),
        timeout: Duration::ZERO,
        alarms: Vec::new(),
        watch_after: Duration::ZERO,
        strategy: EcsStrategy::Rolling,
        poll: Duration::ZERO,
        previous: None,
        idempotency_key: None,
    };
    let d = Deployer {
        client: aws_sdk_ecs::Client::new(&account.config),
        account,
        req: &req,
        steer: &Unsteered,
        log: StepLog::new(&|_| {}),
        revision: None,
    };
    Ok(d.describe().await?.task_definition)
}

/// Moves a service to an existing task definition and waits for it (`ferry rollback`).
pub async fn update_to(
    account: &AccountConfig,
    req: &EcsDeploy,
    task_definition: &str,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<String>, AwsError> {
    let mut d = Deployer {
        client: aws_sdk_ecs::Client::new(&account.config),
        account,
        req,
        steer: &Unsteered,
        log: StepLog::new(progress),
        revision: None,
    };
    d.update(task_definition).await?;
    d.step(format!(
        "updated {} to {}",
        req.service,
        short_td(task_definition)
    ));
    d.wait_steady(task_definition, None).await
}

/// Reads an image-definitions file.
pub fn read_image_definitions(path: &Path) -> Result<Vec<ImageChange>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_image_definitions(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_definitions_both_formats() {
        let defs = parse_image_definitions(
            "f",
            r#"[{"name":"web","imageUri":"1.dkr.ecr.us-east-1.amazonaws.com/web:abc"}]"#,
        )
        .unwrap();
        assert_eq!(
            defs,
            vec![ImageChange {
                container: Some("web".into()),
                image_uri: "1.dkr.ecr.us-east-1.amazonaws.com/web:abc".into()
            }]
        );
        let detail = parse_image_definitions("f", r#"{"ImageURI":"repo@sha256:00"}"#).unwrap();
        assert_eq!(detail[0].container, None);
    }

    #[test]
    fn malformed_image_definitions_name_the_place_and_the_fix() {
        let e = parse_image_definitions(
            "imagedefinitions.json",
            "[{\"name\": \"web\",\n \"imageUri\": }]",
        )
        .unwrap_err();
        assert!(e.starts_with("imagedefinitions.json:2:"), "{e}");
        let e = parse_image_definitions("f", r#"[{"name":"web","image":"x"}]"#).unwrap_err();
        assert!(e.contains("imageUri"), "{e}");
        assert!(
            parse_image_definitions("f", "[]")
                .unwrap_err()
                .contains("names no image")
        );
        assert!(
            parse_image_definitions(
                "f",
                r#"[{"name":"a","imageUri":"x"},{"name":"a","imageUri":"y"}]"#
            )
            .unwrap_err()
            .contains("twice")
        );
    }

    #[test]
    fn repository_ignores_tag_digest_and_keeps_registry_port() {
        assert_eq!(
            repository_of("1.dkr.ecr.us-east-1.amazonaws.com/team/web:v1"),
            "1.dkr.ecr.us-east-1.amazonaws.com/team/web"
        );
        assert_eq!(
            repository_of("localhost:5000/web@sha256:ab"),
            "localhost:5000/web"
        );
        assert_eq!(repository_of("localhost:5000/web"), "localhost:5000/web");
    }

    fn container(name: &str, image: &str) -> ContainerDefinition {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .memory(512)
            .build()
    }

    #[test]
    fn images_are_replaced_by_name_and_everything_else_kept() {
        let tds = [container("web", "r/web:1"), container("log", "r/fluent:2")];
        let out = apply_images(
            &tds,
            &[ImageChange {
                container: Some("web".into()),
                image_uri: "r/web:2".into(),
            }],
        )
        .unwrap();
        assert_eq!(
            images_of(&out),
            vec![
                ("web".into(), "r/web:2".into()),
                ("log".into(), "r/fluent:2".into())
            ]
        );
        assert_eq!(out[0].memory, Some(512));
        let e = apply_images(
            &tds,
            &[ImageChange {
                container: Some("api".into()),
                image_uri: "x".into(),
            }],
        )
        .unwrap_err();
        assert!(e.contains("web, log"), "{e}");
    }

    #[test]
    fn image_detail_finds_the_container_by_repository() {
        let tds = [container("web", "r/web:1"), container("log", "r/fluent:2")];
        let out = apply_images(
            &tds,
            &[ImageChange {
                container: None,
                image_uri: "r/web@sha256:ff".into(),
            }],
        )
        .unwrap();
        assert_eq!(out[0].image.as_deref(), Some("r/web@sha256:ff"));
        assert!(
            apply_images(
                &tds,
                &[ImageChange {
                    container: None,
                    image_uri: "r/other:1".into()
                }]
            )
            .is_err()
        );
    }

    #[test]
    fn circuit_breaker_threshold_matches_aws() {
        assert_eq!(failed_task_threshold(1), 3);
        assert_eq!(failed_task_threshold(10), 5);
        assert_eq!(failed_task_threshold(11), 6);
        assert_eq!(failed_task_threshold(1000), 200);
    }
}
