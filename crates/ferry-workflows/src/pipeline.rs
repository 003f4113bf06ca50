//! The manifest as the engine runs it, and the engine that runs it: a `source` stage, then
//! every stage of the manifest, each action's configuration built from the typed config of
//! its kind (so the compiler checks that the manifest and the kind agree on every field).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_aws::actions::{EcsConfig, HookCheck, HookConfig, LambdaConfig, Target};
use ferry_aws::artifacts::S3Artifacts;
use ferry_aws::codebuild::CodebuildConfig;
use ferry_aws::gates::{GatesConfig, Soak};
use ferry_aws::secrets::AwsSecrets;
use ferry_aws::session::Aws;
use ferry_engine::action::Settings;
use ferry_engine::approval::ApprovalConfig;
use ferry_engine::artifact::{ArtifactStore, LocalArtifacts};
use ferry_engine::build::{BuildConfig, Import, InlineBuildspec};
use ferry_engine::model::{ActionDef, Mode, PipelineDef, StageDef};
use ferry_engine::secrets::{NoSecrets, SecretResolver};
use ferry_engine::source::SourceConfig;
use ferry_engine::{Engine, Registry};
use ferry_manifest::{
    ActionKind, Approval, Build, Buildspec, EcsHookCheck, ExecutionMode, GATES_ACTION, Manifest,
    Runner,
};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::{Relay, Reporter};
use crate::project::Project;

/// A kind's typed configuration as the engine stores it.
fn config(c: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(c).unwrap_or_default()
}

/// The manifest as the engine runs it: a `source` stage, then every stage of the manifest.
pub fn definition(project: &Project, manifest: &Manifest) -> PipelineDef {
    let source = StageDef {
        name: "source".into(),
        environment: None,
        actions: vec![ActionDef {
            name: "checkout".into(),
            kind: "source".into(),
            run_order: 1,
            config: config(&SourceConfig {
                repo: project.source_repo(manifest),
                branch: Some(manifest.source.branch.clone()),
            }),
            inputs: vec![],
            outputs: vec!["source".into()],
            timeout_secs: None,
        }],
    };
    let mut stages = vec![source];
    for stage in &manifest.stages {
        let mut actions: Vec<ActionDef> = stage
            .actions
            .iter()
            .map(|a| action(manifest, &project.manifest, stage, a))
            .collect();
        actions.extend(gates(manifest, stage));
        stages.push(StageDef {
            name: stage.name.clone(),
            environment: stage.environment.clone(),
            actions,
        });
    }
    let mode = match manifest.mode {
        ExecutionMode::Superseded => Mode::Superseded,
        ExecutionMode::Queued => Mode::Queued,
        ExecutionMode::Parallel => Mode::Parallel,
    };
    PipelineDef {
        name: manifest.pipeline.clone(),
        mode,
        stages,
    }
}

/// An environment's gates, as the `gates` action of its stage: beside its approval (run order
/// 0), waiting for that approval to be given, so both come before the deploys.
fn gates(manifest: &Manifest, stage: &ferry_manifest::Stage) -> Option<ActionDef> {
    let env = manifest.environment(stage.environment.as_deref()?)?;
    if !env.gates.hold_entry() {
        return None;
    }
    let target = manifest.account(&env.account).map(Target::of)?;
    let gates = GatesConfig {
        target,
        alarms: env.gates.alarms.clone(),
        windows: env.gates.windows.clone(),
        soak: env.gates.soak.as_ref().map(|s| Soak {
            environment: s.environment.clone(),
            secs: s.duration.as_secs(),
        }),
        approval: stage
            .actions
            .iter()
            .find(|a| a.run_order == 0 && matches!(a.kind, ActionKind::Approval(_)))
            .map(|a| a.name.clone()),
    };
    Some(ActionDef {
        name: GATES_ACTION.into(),
        kind: "gates".into(),
        run_order: 0,
        config: config(&gates),
        inputs: vec![],
        outputs: vec![],
        timeout_secs: None,
    })
}

fn action(
    manifest: &Manifest,
    manifest_path: &Path,
    stage: &ferry_manifest::Stage,
    action: &ferry_manifest::Action,
) -> ActionDef {
    // A deploy acts in its stage's account, as that account's deploy role; the manifest
    // guarantees every deploy stage has one.
    let target = || {
        stage
            .account
            .as_deref()
            .and_then(|a| manifest.account(a))
            .map(Target::of)
    };
    // The environment's watch after each of its deploys.
    let after = stage
        .environment
        .as_deref()
        .and_then(|e| manifest.environment(e))
        .and_then(|e| e.gates.after.as_ref());
    let mut def = ActionDef {
        name: action.name.clone(),
        kind: action.kind.name().to_owned(),
        run_order: action.run_order,
        config: serde_json::Value::Null,
        inputs: action
            .kind
            .inputs()
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        outputs: vec![],
        timeout_secs: None,
    };
    match &action.kind {
        ActionKind::Build(b) => {
            let build = build_config(manifest, manifest_path, b);
            let names = ferry_plan::Names::new(manifest, None);
            def.config = match (b.runner, names) {
                (Runner::Codebuild, Some(names)) => {
                    def.kind = "codebuild".into();
                    config(&CodebuildConfig {
                        project: names.codebuild_project(),
                        region: names.shared.region.clone(),
                        build,
                        bucket: names.shared.artifact_bucket.clone(),
                        prefix: manifest.pipeline.clone(),
                        output_prefix: names.build_output_prefix(),
                        kms_key: names.key_alias_arn(),
                        log_group: names.build_log_group(),
                        timeout_secs: b.timeout.as_secs(),
                    })
                }
                _ => config(&build),
            };
            def.outputs.clone_from(&b.outputs);
            def.timeout_secs = Some(b.timeout.as_secs());
        }
        ActionKind::Approval(a) => def.config = config(&approval_config(a)),
        ActionKind::Ecs(e) => {
            if let Some(target) = target() {
                let mut c = EcsConfig::new(e, target, after);
                c.hooks = e
                    .hooks
                    .iter()
                    .map(|h| HookConfig {
                        at: h.at.clone(),
                        timeout: h.timeout(),
                        check: match &h.check {
                            EcsHookCheck::Test(b) => HookCheck::Test {
                                build: build_config(manifest, manifest_path, b),
                                inputs: b.inputs.clone(),
                            },
                            EcsHookCheck::Approval(a) => HookCheck::Approval(approval_config(a)),
                        },
                    })
                    .collect();
                def.timeout_secs = Some(c.action_timeout().as_secs());
                def.config = config(&c);
            }
        }
        ActionKind::Lambda(l) => {
            if let Some(target) = target() {
                let c = LambdaConfig::new(l, target, after);
                if let ferry_aws::actions::PackageConfig::Image { .. } = c.package {
                    def.inputs.clear();
                }
                def.config = config(&c);
            }
        }
    }
    def
}

/// The engine's configuration of a manifest's build (a build action, or an ECS hook's test).
fn build_config(manifest: &Manifest, manifest_path: &Path, b: &Build) -> BuildConfig {
    let (buildspec, inline) = match &b.buildspec {
        Buildspec::File(path) => (Some(path.clone()), None),
        Buildspec::Inline { text, line } => (
            None,
            Some(InlineBuildspec {
                text: text.clone(),
                origin: format!("{}, line {line}", manifest_path.display()),
            }),
        ),
    };
    BuildConfig {
        buildspec,
        inline,
        env: b.env.clone(),
        secrets: b
            .secrets
            .iter()
            .filter_map(|name| manifest.secret(name))
            .map(|s| (s.name.clone(), s.secret_id.clone()))
            .collect(),
        imports: b
            .imports
            .iter()
            .map(|r| Import {
                text: r.text(),
                stage: r.stage.clone(),
                action: r.action.clone(),
                variable: r.variable.clone(),
            })
            .collect(),
    }
}

/// The engine's configuration of a manifest's approval (an approval action, or an ECS hook's).
fn approval_config(a: &Approval) -> ApprovalConfig {
    ApprovalConfig {
        approvers: a.approvers.clone(),
        timeout_secs: a.timeout.as_secs(),
        comment_required: a.comment_required,
        required: a.required,
        forbid_self: a.forbid_self,
    }
}

/// How the engine is to run: approvals given by themselves, and who runs it.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Approvals approve themselves (`ferry run --auto-approve`).
    pub auto_approve: bool,
    /// Who runs ferry, for approvals and the ledger.
    pub identity: String,
}

fn s3_artifacts(
    m: &Manifest,
    shared: &ferry_manifest::SharedAccount,
    own: &ferry_aws::session::AccountConfig,
) -> S3Artifacts {
    let names = ferry_plan::Names::new(m, None).expect("a shared account");
    S3Artifacts::new(
        own,
        &shared.artifact_bucket,
        &m.pipeline,
        &names.key_alias_arn(),
    )
}

fn local_artifacts(project: &Project) -> Result<Arc<dyn ArtifactStore>> {
    let local = LocalArtifacts::open(&project.state_dir.join("artifacts"))
        .map_err(|e| Error::Failed(e.to_string()))?;
    Ok(Arc::new(local))
}

/// Where the project's artifacts are, to read them outside a run: the S3 bucket under the
/// KMS key with the pipeline's identity, or the state directory.
pub async fn artifact_store(project: &Project, m: &Manifest) -> Result<Arc<dyn ArtifactStore>> {
    match &m.shared {
        Some(shared) => {
            let aws = Aws::from_env(&format!("ferry-{}", m.pipeline)).await?;
            Ok(Arc::new(s3_artifacts(
                m,
                shared,
                &aws.own(Some(&shared.region)),
            )))
        }
        None => local_artifacts(project),
    }
}

/// The engine over the project's state directory. A manifest with a shared account adds AWS:
/// artifacts in its S3 bucket under its KMS key, secrets from its Secrets Manager, and the
/// `ecs` and `lambda` deploy actions.
pub async fn open_engine(
    project: &Project,
    manifest: Option<&Manifest>,
    options: &EngineOptions,
    reporter: Arc<dyn Reporter>,
) -> Result<Engine> {
    let store = project.store()?;
    let settings = Settings {
        auto_approve: options.auto_approve,
        identity: options.identity.clone(),
        poll: Duration::from_millis(500),
        state_dir: project.state_dir.clone(),
        clock: ferry_engine::action::Clock::system(),
    };
    let mut registry = Registry::with_builtins();
    let (artifacts, secrets): (Arc<dyn ArtifactStore>, Arc<dyn SecretResolver>) =
        match manifest.and_then(|m| m.shared.as_ref().map(|s| (m, s))) {
            Some((m, shared)) => {
                let aws = Aws::from_env(&format!("ferry-{}", m.pipeline)).await?;
                ferry_aws::register(&mut registry, &aws);
                let own = aws.own(Some(&shared.region));
                (
                    Arc::new(s3_artifacts(m, shared, &own)),
                    Arc::new(AwsSecrets::new(&own)),
                )
            }
            None => (local_artifacts(project)?, Arc::new(NoSecrets)),
        };
    Ok(Engine::new(
        store,
        registry,
        artifacts,
        secrets,
        Arc::new(Relay(reporter)),
        settings,
    ))
}
