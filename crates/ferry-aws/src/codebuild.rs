//! The `codebuild` action: a build action with `runner: codebuild`, run on the pipeline's
//! CodeBuild project in the shared account instead of this machine.
//!
//! One attempt is one build. Its inputs are the execution's artifacts, already in the artifact
//! bucket under the pipeline's key (uploaded there when they are not); StartBuild names them
//! as the source and secondary sources, carries the buildspec, the variables (a secret as a
//! Secrets Manager reference, never its value), the key for the outputs and an idempotency
//! token. The build is marked with the attempt (`FERRY_ATTEMPT` and the primary artifact's
//! identifier), so after a crash `reconcile` finds it with ListBuildsForProject instead of
//! starting a second one: CodeBuild keeps an idempotency token for five minutes only. ferry
//! polls BatchGetBuilds with backoff, copies the build's CloudWatch Logs into the action's
//! log (masked), stops the build on `ferry stop` or a timeout, and on success fetches the
//! outputs CodeBuild uploaded and stores them as a local build would.
//!
//! Whether a build is done is the pure [`assess`], tested on BatchGetBuilds responses shaped
//! as the API reference documents them (`tests/data/batch-get-builds/`): the emulator reports
//! every build `SUCCEEDED` on its first poll and writes no log.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_codebuild::operation::start_build::StartBuildInput;
use aws_sdk_codebuild::operation::start_build::builders::StartBuildInputBuilder;
use aws_sdk_codebuild::types as cb;
use ferry_engine::action::{
    Action, ActionContext, ActionError, ActionKind, ActionOutput, Reconciled,
};
use ferry_engine::build::BuildConfig;
use ferry_engine::encoding::hex;
use ferry_engine::model::{ActionDef, ArtifactRef};
use ferry_engine::secrets::SecretRef;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::artifacts::S3Artifacts;
use crate::error::AwsError;
use crate::session::{AccountConfig, Aws, s3_client};

/// A build on CodeBuild, from the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodebuildConfig {
    /// The project in the shared account (`ferry-<pipeline>`).
    pub project: String,
    pub region: String,
    /// The build as a local build has it: its buildspec, variables and secret references.
    pub build: BuildConfig,
    /// The artifact bucket, the pipeline's prefix in it, and where outputs go under it.
    pub bucket: String,
    pub prefix: String,
    pub output_prefix: String,
    /// The pipeline's key, for SSE-KMS of the outputs.
    pub kms_key: String,
    /// The project's log group, for builds whose response names none.
    pub log_group: String,
    pub timeout_secs: u64,
}

/// One attempt of a build, as StartBuild names it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub execution: &'a str,
    pub stage: &'a str,
    pub action: &'a str,
    pub attempt: u32,
    /// The outputs the build must produce; the first is its primary artifact.
    pub outputs: &'a [String],
    /// [`marker`] of the attempt's idempotency key.
    pub marker: &'a str,
    /// The build's `env`, what it imports from earlier builds resolved.
    pub env: &'a [(String, String)],
}

impl CodebuildConfig {
    /// Where an attempt's outputs go:
    /// `<pipeline>/codebuild/<execution>/<stage>/<action>/<attempt>`, each `<name>.zip`.
    pub fn output_path(&self, a: &Attempt<'_>) -> String {
        format!(
            "{}{}/{}/{}/{}",
            self.output_prefix, a.execution, a.stage, a.action, a.attempt
        )
    }

    /// The StartBuild request of attempt `a`, whose inputs are at `inputs` (name and S3
    /// `bucket/key`, the first the primary source).
    pub fn start_build(
        &self,
        a: &Attempt<'_>,
        inputs: &[(String, String)],
    ) -> Result<StartBuildInputBuilder, aws_sdk_codebuild::error::BuildError> {
        let buildspec = match (&self.build.inline, &self.build.buildspec) {
            (Some(inline), _) => inline.text.clone(),
            (None, Some(path)) => path.clone(),
            (None, None) => String::new(),
        };
        let plain = |name: &str, value: &str| {
            cb::EnvironmentVariable::builder()
                .name(name)
                .value(value)
                .r#type(cb::EnvironmentVariableType::Plaintext)
                .build()
        };
        let mut vars = vec![
            plain(MARKER_VAR, a.marker)?,
            plain("FERRY_EXECUTION", a.execution)?,
            plain("FERRY_STAGE", a.stage)?,
            plain("FERRY_ACTION", a.action)?,
        ];
        for (name, value) in a.env {
            vars.push(plain(name, value)?);
        }
        for (name, reference) in &self.build.secrets {
            // A reference CodeBuild resolves in the build, as the project's role: the value
            // never passes through ferry's request.
            vars.push(
                cb::EnvironmentVariable::builder()
                    .name(name)
                    .value(reference)
                    .r#type(cb::EnvironmentVariableType::SecretsManager)
                    .build()?,
            );
        }
        let path = self.output_path(a);
        let artifact = |name: &str, id: &str| {
            cb::ProjectArtifacts::builder()
                .r#type(cb::ArtifactsType::S3)
                .location(&self.bucket)
                .path(&path)
                .name(format!("{name}.zip"))
                .namespace_type(cb::ArtifactNamespace::None)
                .packaging(cb::ArtifactPackaging::Zip)
                .encryption_disabled(false)
                .artifact_identifier(id)
                .build()
        };
        let primary = match a.outputs.first() {
            // The primary artifact carries the attempt's mark.
            Some(name) => artifact(name, a.marker)?,
            None => cb::ProjectArtifacts::builder()
                .r#type(cb::ArtifactsType::NoArtifacts)
                .artifact_identifier(a.marker)
                .build()?,
        };
        let minutes = self.timeout_secs.div_ceil(60).clamp(5, 2160);
        let mut start = StartBuildInput::builder()
            .project_name(&self.project)
            .buildspec_override(buildspec)
            .source_type_override(cb::SourceType::S3)
            .source_location_override(inputs.first().map(|(_, l)| l.clone()).unwrap_or_default())
            .set_environment_variables_override(Some(vars))
            .artifacts_override(primary)
            .encryption_key_override(&self.kms_key)
            .timeout_in_minutes_override(i32::try_from(minutes).unwrap_or(2160))
            .idempotency_token(a.marker);
        for (name, location) in inputs.iter().skip(1) {
            start = start.secondary_sources_override(
                cb::ProjectSource::builder()
                    .r#type(cb::SourceType::S3)
                    .location(location)
                    .source_identifier(identifier(name))
                    .build()?,
            );
        }
        for name in a.outputs.iter().skip(1) {
            start = start.secondary_artifacts_override(artifact(name, &identifier(name))?);
        }
        Ok(start)
    }
}

pub struct CodebuildKind(pub Aws);

impl ActionKind for CodebuildKind {
    type Config = CodebuildConfig;
    fn name(&self) -> &'static str {
        "codebuild"
    }
    fn build(&self, config: CodebuildConfig, _: &ActionDef) -> Result<Arc<dyn Action>, String> {
        config.build.check()?;
        Ok(Arc::new(CodebuildAction {
            aws: self.0.clone(),
            config,
        }))
    }
}

/// What BatchGetBuilds says of a build, as far as ferry reads it. Deserializes from the API's
/// JSON (camelCase) for the recorded responses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BuildState {
    pub id: String,
    /// `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `FAULT`, `TIMED_OUT`, `STOPPED`.
    pub build_status: String,
    pub current_phase: String,
    pub phases: Vec<PhaseState>,
    pub logs: LogsState,
    pub environment: EnvironmentState,
    pub artifacts: ArtifactState,
    pub secondary_artifacts: Vec<ArtifactState>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhaseState {
    pub phase_type: String,
    pub phase_status: String,
    pub contexts: Vec<PhaseContext>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PhaseContext {
    pub status_code: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogsState {
    pub group_name: String,
    pub stream_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvironmentState {
    pub environment_variables: Vec<Variable>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ArtifactState {
    pub artifact_identifier: String,
    pub location: String,
    pub sha256sum: String,
}

impl BuildState {
    fn of(b: &cb::Build) -> BuildState {
        let artifact = |a: &cb::BuildArtifacts| ArtifactState {
            artifact_identifier: a.artifact_identifier().unwrap_or_default().into(),
            location: a.location().unwrap_or_default().into(),
            sha256sum: a.sha256_sum().unwrap_or_default().into(),
        };
        BuildState {
            id: b.id().unwrap_or_default().into(),
            build_status: b
                .build_status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            current_phase: b.current_phase().unwrap_or_default().into(),
            phases: b
                .phases()
                .iter()
                .map(|p| PhaseState {
                    phase_type: p
                        .phase_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    phase_status: p
                        .phase_status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                    contexts: p
                        .contexts()
                        .iter()
                        .map(|c| PhaseContext {
                            status_code: c.status_code().unwrap_or_default().into(),
                            message: c.message().unwrap_or_default().into(),
                        })
                        .collect(),
                })
                .collect(),
            logs: b
                .logs()
                .map(|l| LogsState {
                    group_name: l.group_name().unwrap_or_default().into(),
                    stream_name: l.stream_name().unwrap_or_default().into(),
                })
                .unwrap_or_default(),
            environment: EnvironmentState {
                environment_variables: b
                    .environment()
                    .map(|e| {
                        e.environment_variables()
                            .iter()
                            .map(|v| Variable {
                                name: v.name().into(),
                                value: v.value().into(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            artifacts: b.artifacts().map(artifact).unwrap_or_default(),
            secondary_artifacts: b.secondary_artifacts().iter().map(artifact).collect(),
        }
    }

    /// Whether this is the build of the attempt `marker` names: its `FERRY_ATTEMPT`
    /// variable, or its primary artifact's identifier (the emulator keeps only the latter).
    pub fn is_attempt(&self, marker: &str) -> bool {
        self.environment
            .environment_variables
            .iter()
            .any(|v| v.name == MARKER_VAR && v.value == marker)
            || self.artifacts.artifact_identifier == marker
    }
}

/// Where a build stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    Running {
        phase: String,
    },
    Succeeded,
    /// Failed, faulted, timed out or stopped: the status and, from the phase that failed,
    /// what CodeBuild said.
    Failed {
        status: String,
        reason: String,
    },
}

/// Where `build` stands. A status CodeBuild may add later counts as running until it
/// reaches one ferry knows is final.
pub fn assess(build: &BuildState) -> Assessment {
    match build.build_status.as_str() {
        "SUCCEEDED" => Assessment::Succeeded,
        "FAILED" | "FAULT" | "TIMED_OUT" | "STOPPED" => {
            let failed = build
                .phases
                .iter()
                .find(|p| !p.phase_status.is_empty() && p.phase_status != "SUCCEEDED");
            let reason = match failed {
                Some(p) => {
                    let said: Vec<String> = p
                        .contexts
                        .iter()
                        .filter(|c| !c.message.is_empty() || !c.status_code.is_empty())
                        .map(|c| match (c.status_code.is_empty(), c.message.is_empty()) {
                            (false, false) => format!("{}: {}", c.status_code, c.message),
                            (true, _) => c.message.clone(),
                            (_, true) => c.status_code.clone(),
                        })
                        .collect();
                    if said.is_empty() {
                        format!("phase {} {}", p.phase_type, p.phase_status)
                    } else {
                        format!(
                            "phase {} {}: {}",
                            p.phase_type,
                            p.phase_status,
                            said.join("; ")
                        )
                    }
                }
                None => format!("the build ended {}", build.build_status),
            };
            let in_vpc = failed.is_some_and(|p| {
                p.phase_type == "PROVISIONING"
                    && p.contexts
                        .iter()
                        .any(|c| c.status_code == "VPC_CLIENT_ERROR")
            });
            let reason = if in_vpc {
                format!(
                    "{reason} — CodeBuild could not make the build's network interface in the \
                     VPC as the build role: `ferry verify` proves its EC2 grants; a subnet \
                     with no free address or no route out fails here too"
                )
            } else {
                reason
            };
            Assessment::Failed {
                status: build.build_status.clone(),
                reason,
            }
        }
        _ => Assessment::Running {
            phase: if build.current_phase.is_empty() {
                "SUBMITTED".into()
            } else {
                build.current_phase.clone()
            },
        },
    }
}

/// The environment variable that marks a build as one attempt's.
pub const MARKER_VAR: &str = "FERRY_ATTEMPT";

/// The attempt's mark: short enough for an idempotency token and an artifact identifier
/// (letters, digits and `_`), the same on every retry of the same attempt.
pub fn marker(idempotency_key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, idempotency_key.as_bytes());
    format!("ferry_{}", &hex(digest.as_ref())[..32])
}

/// How long to wait before the next BatchGetBuilds: 2 s, growing by half to 15 s.
pub fn next_poll(previous: Option<Duration>) -> Duration {
    previous.map_or(Duration::from_secs(2), |d| {
        (d * 3 / 2).min(Duration::from_secs(15))
    })
}

/// CodeBuild's `sourceIdentifier` and `artifactIdentifier` take letters, digits and `_`.
pub fn identifier(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

struct CodebuildAction {
    aws: Aws,
    config: CodebuildConfig,
}

fn failed(e: impl std::fmt::Display) -> ActionError {
    ActionError::Failed(e.to_string())
}

/// `s3://bucket/key` → `bucket/key`, CodeBuild's S3 source location.
fn source_location(artifact: &ArtifactRef) -> Option<String> {
    artifact.location.strip_prefix("s3://").map(str::to_owned)
}

impl CodebuildAction {
    /// CodeBuild resolves the secrets and masks them in its own log; ferry also registers
    /// their values with its masker before it copies a line of that log, so a value the
    /// build prints in another form than CodeBuild masks is still caught.
    async fn register_secrets(&self, ctx: &ActionContext) -> Result<(), ActionError> {
        for (var, reference) in &self.config.build.secrets {
            let secret = SecretRef::parse(reference).map_err(failed)?;
            let value = ctx
                .secrets
                .resolve(&secret)
                .await
                .map_err(|e| failed(format!("secret for {var}: {e}")))?;
            ctx.log.masker().register(&value);
        }
        Ok(())
    }

    fn client(&self, own: &AccountConfig) -> aws_sdk_codebuild::Client {
        aws_sdk_codebuild::Client::new(&own.config)
    }

    fn own(&self) -> AccountConfig {
        self.aws.own(Some(&self.config.region))
    }

    fn attempt<'c>(
        ctx: &'c ActionContext,
        marker: &'c str,
        env: &'c [(String, String)],
    ) -> Attempt<'c> {
        Attempt {
            env,
            execution: &ctx.execution.id,
            stage: &ctx.stage,
            action: &ctx.action,
            attempt: ctx.attempt,
            outputs: &ctx.outputs,
            marker,
        }
    }

    /// Each input as an S3 source location in the artifact bucket, uploading those that are
    /// elsewhere.
    async fn input_locations(
        &self,
        ctx: &ActionContext,
        own: &AccountConfig,
    ) -> Result<Vec<(String, String)>, ActionError> {
        let mut out = Vec::new();
        for input in &ctx.inputs {
            let in_bucket = source_location(input)
                .filter(|l| l.starts_with(&format!("{}/", self.config.bucket)));
            let location = match in_bucket {
                Some(l) => l,
                None => {
                    let zip = ctx.workdir.join(format!("{}.zip", input.name));
                    ctx.artifacts.get(input, &zip).await.map_err(failed)?;
                    let s3 = S3Artifacts::new(
                        own,
                        &self.config.bucket,
                        &self.config.prefix,
                        &self.config.kms_key,
                    );
                    let stored = ferry_engine::artifact::ArtifactStore::put(&s3, &input.name, &zip)
                        .await
                        .map_err(failed)?;
                    let _ = std::fs::remove_file(&zip);
                    source_location(&stored).unwrap_or_default()
                }
            };
            out.push((input.name.clone(), location));
        }
        Ok(out)
    }

    async fn batch_get(
        &self,
        own: &AccountConfig,
        ids: &[String],
    ) -> Result<Vec<BuildState>, AwsError> {
        let got = own
            .call(
                "codebuild:BatchGetBuilds",
                &self.config.project,
                self.client(own)
                    .batch_get_builds()
                    .set_ids(Some(ids.to_vec()))
                    .send(),
            )
            .await?;
        Ok(got.builds().iter().map(BuildState::of).collect())
    }

    /// Follows build `id` to its end, copying its log; stops it when the action is cancelled.
    async fn follow(
        &self,
        ctx: &ActionContext,
        own: &AccountConfig,
        id: &str,
    ) -> Result<BuildState, ActionError> {
        let mut logs = LogFollower::new(ctx);
        let mut delay = None;
        let mut last_phase = String::new();
        loop {
            let build = self
                .batch_get(own, &[id.to_owned()])
                .await
                .map_err(failed)?
                .into_iter()
                .next()
                .ok_or_else(|| failed(format!("CodeBuild does not know build {id}")))?;
            logs.pull(own, &build, &self.config.log_group, id).await;
            match assess(&build) {
                Assessment::Running { phase } => {
                    if phase != last_phase {
                        ctx.log
                            .line(&format!("[ferry] CodeBuild build {id}: {phase}"));
                        last_phase = phase;
                    }
                }
                _ => return Ok(build),
            }
            let wait = next_poll(delay);
            delay = Some(wait);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = ctx.cancel.cancelled() => {
                    let stopped = own
                        .call(
                            "codebuild:StopBuild",
                            id,
                            self.client(own).stop_build().id(id).send(),
                        )
                        .await;
                    match stopped {
                        Ok(_) => ctx.log.line(&format!("[ferry] CodeBuild build {id} stopped")),
                        Err(e) => ctx.log.line(&format!("[ferry] could not stop CodeBuild build {id}: {e}")),
                    }
                    return Err(ActionError::Cancelled);
                }
            }
        }
    }

    /// The end of a build: its outputs fetched and stored, or why it failed.
    async fn finish(
        &self,
        ctx: &ActionContext,
        own: &AccountConfig,
        build: &BuildState,
    ) -> Result<ActionOutput, ActionError> {
        if let Assessment::Failed { status, reason } = assess(build) {
            return Err(failed(format!(
                "CodeBuild build {} {}: {reason}",
                build.id,
                status.to_lowercase().replace('_', " ")
            )));
        }
        let s3 = s3_client(&own.config);
        let marker = marker(&ctx.idempotency_key);
        let path = self.config.output_path(&Self::attempt(ctx, &marker, &[]));
        let mut artifacts = Vec::new();
        for name in &ctx.outputs {
            let key = format!("{path}/{name}.zip");
            let file = ctx.workdir.join(format!("{name}.codebuild.zip"));
            download(own, &s3, &self.config.bucket, &key, &file)
                .await
                .map_err(|e| {
                    failed(format!(
                        "artifact `{name}` of CodeBuild build {}: {e}",
                        build.id
                    ))
                })?;
            check_zip(&file).map_err(|e| {
                failed(format!(
                    "artifact `{name}` of CodeBuild build {} (s3://{}/{key}) is not a zip archive: {e}",
                    build.id, self.config.bucket
                ))
            })?;
            let stored = ctx.artifacts.put(name, &file).await.map_err(failed)?;
            let reported = std::iter::once(&build.artifacts)
                .chain(&build.secondary_artifacts)
                .find(|a| a.location.ends_with(&format!("/{name}.zip")) && !a.sha256sum.is_empty());
            if let Some(r) = reported
                && r.sha256sum != stored.sha256
            {
                return Err(failed(format!(
                    "artifact `{name}`: CodeBuild reported sha256 {} but ferry read {}",
                    r.sha256sum, stored.sha256
                )));
            }
            ctx.log.line(&format!(
                "[ferry] artifact {name}: {} bytes from CodeBuild",
                stored.size
            ));
            let _ = std::fs::remove_file(&file);
            artifacts.push(stored);
        }
        Ok(ActionOutput {
            outputs: json!({
                "codebuild": {"build": build.id, "project": self.config.project},
                "artifacts": artifacts.iter().map(|a| json!({"name": a.name, "sha256": a.sha256, "size": a.size})).collect::<Vec<_>>(),
            }),
            artifacts,
            release: None,
        })
    }

    /// The build of this attempt, if one was started, among the project's newest hundred
    /// (ListBuildsForProject's first page): ferry resumes minutes after a crash, not hundreds
    /// of builds later.
    async fn find(
        &self,
        own: &AccountConfig,
        marker: &str,
    ) -> Result<Option<BuildState>, AwsError> {
        let ids = own
            .call(
                "codebuild:ListBuildsForProject",
                &self.config.project,
                self.client(own)
                    .list_builds_for_project()
                    .project_name(&self.config.project)
                    .sort_order(cb::SortOrderType::Descending)
                    .send(),
            )
            .await?
            .ids()
            .to_vec();
        for chunk in ids.chunks(100) {
            if let Some(b) = self
                .batch_get(own, chunk)
                .await?
                .into_iter()
                .find(|b| b.is_attempt(marker))
            {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl Action for CodebuildAction {
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        if let Some(inline) = &self.config.build.inline {
            // The same diagnostics a local build gives, before CodeBuild is asked.
            let file = ferry_yaml::SourceFile::new(
                format!("inline buildspec ({})", inline.origin),
                inline.text.clone(),
            );
            let (spec, diagnostics) = ferry_engine::buildspec::parse(&file);
            for line in ferry_yaml::render_text(&file, &diagnostics, false).lines() {
                ctx.log.line(line);
            }
            if spec.is_none() {
                return Err(failed(format!("{} has errors (see the log)", file.name())));
            }
        }
        self.register_secrets(ctx).await?;
        let own = self.own();
        let marker = marker(&ctx.idempotency_key);
        let inputs = self.input_locations(ctx, &own).await?;
        let env = self.config.build.resolved_env(ctx)?;
        let start = self
            .config
            .start_build(&Self::attempt(ctx, &marker, &env), &inputs)
            .map_err(|e| {
                failed(own.fail(
                    "codebuild:StartBuild",
                    &self.config.project,
                    "InvalidRequest",
                    e.to_string(),
                ))
            })?;
        let client = self.client(&own);
        let started = own
            .call(
                "codebuild:StartBuild",
                &self.config.project,
                start.send_with(&client),
            )
            .await
            .map_err(failed)?;
        let id = started
            .build_value
            .as_ref()
            .and_then(|b| b.id())
            .ok_or_else(|| failed("CodeBuild started a build without an id"))?
            .to_owned();
        ctx.log.line(&format!(
            "[ferry] started CodeBuild build {id} on project {}",
            self.config.project
        ));
        let build = self.follow(ctx, &own, &id).await?;
        self.finish(ctx, &own, &build).await
    }

    async fn reconcile(&self, ctx: &ActionContext) -> Result<Reconciled, ActionError> {
        self.register_secrets(ctx).await?;
        let own = self.own();
        let marker = marker(&ctx.idempotency_key);
        let Some(build) = self.find(&own, &marker).await.map_err(failed)? else {
            return Ok(Reconciled::NotDone);
        };
        ctx.log.line(&format!(
            "[ferry] found CodeBuild build {} of this attempt; following it instead of starting another",
            build.id
        ));
        let build = match assess(&build) {
            Assessment::Running { .. } => self.follow(ctx, &own, &build.id).await?,
            _ => build,
        };
        match self.finish(ctx, &own, &build).await {
            Ok(out) => Ok(Reconciled::Done(Box::new(out))),
            Err(ActionError::Failed(why)) => Ok(Reconciled::Failed(why)),
            Err(e) => Err(e),
        }
    }
}

async fn download(
    own: &AccountConfig,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    dest: &Path,
) -> Result<(), String> {
    let object = own
        .call(
            "s3:GetObject",
            &format!("s3://{bucket}/{key}"),
            s3.get_object().bucket(bucket).key(key).send(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let bytes = object
        .body
        .collect()
        .await
        .map_err(|e| format!("reading s3://{bucket}/{key}: {e}"))?
        .into_bytes();
    std::fs::write(dest, &bytes).map_err(|e| format!("writing {}: {e}", dest.display()))
}

fn check_zip(path: &Path) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    zip::ZipArchive::new(file)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Copies a build's CloudWatch Logs into the action's log, masked, from where it left off.
struct LogFollower<'a> {
    ctx: &'a ActionContext,
    token: Option<String>,
    warned: bool,
}

impl<'a> LogFollower<'a> {
    fn new(ctx: &'a ActionContext) -> LogFollower<'a> {
        LogFollower {
            ctx,
            token: None,
            warned: false,
        }
    }

    async fn pull(
        &mut self,
        own: &AccountConfig,
        build: &BuildState,
        project_group: &str,
        id: &str,
    ) {
        let group = if build.logs.group_name.is_empty() {
            project_group
        } else {
            &build.logs.group_name
        };
        // CodeBuild names a build's stream after the part of its id after the project.
        let stream = if build.logs.stream_name.is_empty() {
            id.rsplit(':').next().unwrap_or(id)
        } else {
            &build.logs.stream_name
        };
        match follow_log(own, group, stream, self.token.as_deref()).await {
            Ok((lines, token)) => {
                // `line` masks every secret registered before the build started.
                for line in lines {
                    self.ctx.log.line(&line);
                }
                if let Some(t) = token {
                    self.token = Some(t);
                }
            }
            // The stream appears once the build is provisioned.
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                if !self.warned {
                    self.ctx
                        .log
                        .line(&format!("[ferry] cannot read the build's log: {e}"));
                    self.warned = true;
                }
            }
        }
    }
}

/// The events of log stream `group`/`stream` after `token`, and the token to go on from.
/// Public for the test that writes a stream as CodeBuild would and reads it back.
pub async fn follow_log(
    own: &AccountConfig,
    group: &str,
    stream: &str,
    token: Option<&str>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(&own.config);
    let mut lines = Vec::new();
    let mut token = token.map(str::to_owned);
    // GetLogEvents answers the same token when there is nothing newer.
    for _ in 0..50 {
        let got = own
            .call(
                "logs:GetLogEvents",
                &format!("{group}:{stream}"),
                logs.get_log_events()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .start_from_head(true)
                    .set_next_token(token.clone())
                    .send(),
            )
            .await?;
        lines.extend(
            got.events()
                .iter()
                .filter_map(|e| e.message())
                .map(|m| m.trim_end_matches(['\n', '\r']).to_owned()),
        );
        let next = got.next_forward_token().map(str::to_owned);
        if next.is_none() || next == token {
            return Ok((lines, next.or(token)));
        }
        token = next;
    }
    Ok((lines, token))
}
