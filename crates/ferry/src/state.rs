//! What the pipeline commands share: the manifest, the state directory, the engine, and the
//! translation of a manifest into the engine's pipeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::sync::OnceLock;

use ferry_aws::artifacts::S3Artifacts;
use ferry_aws::secrets::SecretsManager;
use ferry_aws::session::Aws;
use ferry_engine::action::{Observer, Settings};
use ferry_engine::artifact::{ArtifactStore, LocalArtifacts};
use ferry_engine::model::{ActionDef, Mode, PipelineDef, StageDef};
use ferry_engine::secrets::{NoSecrets, SecretResolver};
use ferry_engine::store::{SqliteStore, Store};
use ferry_engine::{Engine, Registry};
use ferry_manifest::{ActionKind, Buildspec, ExecutionMode, LambdaPackage, Manifest};
use serde_json::json;

use crate::output::{self, Exit};

/// Reads and validates the manifest; prints its diagnostics when it is invalid.
pub fn load_manifest(path: &Path) -> Result<Manifest, Exit> {
    let loaded = ferry_manifest::load(path);
    if loaded.has_errors() {
        anstream::eprint!("{}", loaded.render(true));
        output::error(&format!(
            "{} is not valid; `ferry validate -f {}` explains",
            path.display(),
            path.display()
        ));
        return Err(Exit::Failed);
    }
    loaded.manifest.ok_or(Exit::Failed)
}

/// `.ferry/` beside the manifest, unless `--state-dir` says otherwise.
pub fn state_dir(manifest: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit.map_or_else(|| manifest_dir(manifest).join(".ferry"), Path::to_path_buf)
}

pub fn manifest_dir(manifest: &Path) -> PathBuf {
    let dir = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Who is running ferry: `FERRY_IDENTITY`, else git's user.email, else `$USER`.
pub fn identity() -> String {
    if let Ok(id) = std::env::var("FERRY_IDENTITY")
        && !id.trim().is_empty()
    {
        return id;
    }
    let git = std::process::Command::new("git")
        .args(["config", "user.email"])
        .output();
    if let Ok(out) = git
        && out.status.success()
    {
        let email = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !email.is_empty() {
            return email;
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

pub fn open_store(state: &Path) -> Result<Arc<dyn Store>, Exit> {
    SqliteStore::open(&state.join("state.db"))
        .map(|s| Arc::new(s) as Arc<dyn Store>)
        .map_err(|e| {
            output::error(&format!("{}: {e}", state.join("state.db").display()));
            Exit::Failed
        })
}

/// The process's one runtime, on one thread: the engine waits on processes, timers, AWS and
/// a local database, and handing work between threads costs more than it saves (measured:
/// scripts/bench-engine).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// ferry's AWS identity: the SDK's default chain (environment, profile — a profile with
/// `role_arn` assumes the pipeline role — SSO, or the instance's role), with the pipeline's
/// name in the session names of the roles it assumes.
pub fn aws(session: &str) -> Result<Aws, Exit> {
    runtime().block_on(Aws::from_env(session)).map_err(|e| {
        output::error(&e.to_string());
        Exit::Usage
    })
}

/// The engine over the state directory. A manifest with a shared account adds AWS: artifacts
/// in its S3 bucket under its KMS key, secrets from its Secrets Manager, and the `ecs` and
/// `lambda` deploy actions.
pub fn open_engine(
    state: &Path,
    observer: Arc<dyn Observer>,
    auto_approve: bool,
    manifest: Option<&Manifest>,
) -> Result<Engine, Exit> {
    let store = open_store(state)?;
    let settings = Settings {
        auto_approve,
        identity: identity(),
        poll: Duration::from_millis(500),
        state_dir: state.to_owned(),
    };
    let mut registry = Registry::with_builtins();
    let (artifacts, secrets): (Arc<dyn ArtifactStore>, Arc<dyn SecretResolver>) =
        match manifest.and_then(|m| m.shared.as_ref().map(|s| (m, s))) {
            Some((m, shared)) => {
                let aws = aws(&format!("ferry-{}", m.pipeline))?;
                ferry_aws::register(&mut registry, &aws);
                let own = aws.own(Some(&shared.region));
                let key = format!(
                    "arn:aws:kms:{}:{}:{}",
                    shared.region, shared.id, shared.kms_alias
                );
                (
                    Arc::new(S3Artifacts::new(
                        &own,
                        &aws.calls,
                        &shared.artifact_bucket,
                        &m.pipeline,
                        &key,
                    )),
                    Arc::new(SecretsManager::new(&own, &aws.calls)),
                )
            }
            None => {
                let local = LocalArtifacts::open(&state.join("artifacts")).map_err(|e| {
                    output::error(&e.to_string());
                    Exit::Failed
                })?;
                (Arc::new(local), Arc::new(NoSecrets))
            }
        };
    Ok(Engine::new(
        store, registry, artifacts, secrets, observer, settings,
    ))
}

/// The source repository as the engine reads it: an absolute directory, or a URL.
pub fn source_repo(manifest: &Manifest, manifest_path: &Path) -> String {
    let repo = &manifest.source.repo;
    if ferry_engine::source::is_url(repo) {
        return repo.clone();
    }
    let dir = manifest_dir(manifest_path).join(repo);
    std::fs::canonicalize(&dir)
        .unwrap_or(dir)
        .display()
        .to_string()
}

/// The manifest as the engine runs it: a `source` stage, then every stage of the manifest.
pub fn pipeline_def(manifest: &Manifest, manifest_path: &Path) -> PipelineDef {
    let source = StageDef {
        name: "source".into(),
        environment: None,
        actions: vec![ActionDef {
            name: "checkout".into(),
            kind: "source".into(),
            run_order: 1,
            config: json!({"repo": source_repo(manifest, manifest_path), "branch": manifest.source.branch}),
            inputs: vec![],
            outputs: vec!["source".into()],
            timeout_secs: None,
        }],
    };
    let mut stages = vec![source];
    for stage in &manifest.stages {
        stages.push(StageDef {
            name: stage.name.clone(),
            environment: stage.environment.clone(),
            actions: stage
                .actions
                .iter()
                .map(|a| action_def(manifest, manifest_path, stage, a))
                .collect(),
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

fn action_def(
    manifest: &Manifest,
    manifest_path: &Path,
    stage: &ferry_manifest::Stage,
    action: &ferry_manifest::Action,
) -> ActionDef {
    // A deploy acts in its stage's account, as that account's deploy role.
    let target = stage
        .account
        .as_deref()
        .and_then(|a| manifest.account(a))
        .map(|a| {
            json!({"account_id": a.id, "region": a.region, "role_arn": a.deploy_role_arn(), "external_id": a.external_id})
        });
    let mut def = ActionDef {
        name: action.name.clone(),
        kind: action.kind.name().to_owned(),
        run_order: action.run_order,
        config: json!({}),
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
            def.config = match &b.buildspec {
                Buildspec::File(path) => json!({"buildspec": path}),
                Buildspec::Inline { text, line } => {
                    json!({"inline": {"text": text, "origin": format!("{}, line {line}", manifest_path.display())}})
                }
            };
            def.config["env"] = json!(b.env);
            def.config["secrets"] = json!(
                b.secrets
                    .iter()
                    .filter_map(|name| manifest
                        .secret(name)
                        .map(|s| (s.name.clone(), s.secret_id.clone())))
                    .collect::<Vec<_>>()
            );
            def.outputs.clone_from(&b.outputs);
            def.timeout_secs = Some(b.timeout.as_secs());
        }
        ActionKind::Approval(a) => {
            def.config = json!({"approvers": a.approvers, "timeout_secs": a.timeout.as_secs(), "comment_required": a.comment_required});
        }
        // The deploy kinds are ferry-aws's (`actions::EcsConfig`, `actions::LambdaConfig`).
        ActionKind::Ecs(e) => {
            def.config = serde_json::to_value(e).unwrap_or_default();
            def.config["target"] = json!(target);
            // The wait for steady state, and again for a rollback's, with room for the calls.
            def.timeout_secs = Some(2 * e.timeout.as_secs() + 300);
        }
        ActionKind::Lambda(l) => {
            def.config = serde_json::to_value(l).unwrap_or_default();
            def.config["target"] = json!(target);
            if let LambdaPackage::Image { .. } = l.package {
                def.inputs.clear();
            }
        }
    }
    def
}
