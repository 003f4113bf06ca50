//! The `build` action: a CodeBuild buildspec run on this machine.
//!
//! All commands of a build run in one `bash`, so the working directory and variables carry
//! over from one command to the next as in CodeBuild. Phases follow CodeBuild's rules: a
//! failed install or pre_build skips the rest; post_build runs after a failed build (with
//! `CODEBUILD_BUILD_SUCCEEDING=0`); `finally` always runs; `on-failure: CONTINUE` goes on;
//! `on-failure: RETRY…` runs the whole build again in a fresh workspace while the failed
//! command's message matches.
//! The build has its own workspace and process group; a timeout or a forced stop kills the
//! whole group. Secret values are registered with the masker before the process starts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::AsyncReadExt;

use crate::action::{Action, ActionContext, ActionError, ActionKind, ActionOutput};
use crate::artifact::{unzip, zip_dir};
use crate::buildspec::{self, ArtifactSpec, Buildspec, OnFailure, Shell};
use crate::mask::LineMasker;
use crate::model::ActionDef;
use crate::secrets::SecretRef;

/// How long a killed build gets to exit before SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

/// The build's configuration, from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// A buildspec file, relative to the first input artifact.
    #[serde(default)]
    pub buildspec: Option<String>,
    /// A buildspec written in the manifest.
    #[serde(default)]
    pub inline: Option<InlineBuildspec>,
    /// Plain environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// Environment variable → Secrets Manager secret id.
    #[serde(default)]
    pub secrets: Vec<(String, String)>,
    /// What `env` values take from earlier builds of the execution.
    #[serde(default)]
    pub imports: Vec<Import>,
}

/// A variable an earlier build of the same execution exported, written `text` in an `env`
/// value (`#{stage.action.NAME}`; the manifest checked the form and the order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Import {
    pub text: String,
    pub stage: String,
    pub action: String,
    pub variable: String,
}

impl BuildConfig {
    /// A build names exactly one buildspec; whichever runner runs it checks this first.
    pub fn check(&self) -> Result<(), String> {
        if self.buildspec.is_none() == self.inline.is_none() {
            return Err("a build needs exactly one of `buildspec` (a file) and `inline`".into());
        }
        Ok(())
    }

    /// `env` with each import replaced by the value the exporting build left, read from its
    /// succeeded run's outputs in this execution.
    pub fn resolved_env(&self, ctx: &ActionContext) -> Result<Vec<(String, String)>, ActionError> {
        if self.imports.is_empty() {
            return Ok(self.env.clone());
        }
        let runs = ctx
            .store
            .action_runs(&ctx.execution.id)
            .map_err(|e| failed(format!("cannot read this execution's earlier builds: {e}")))?;
        let mut values = Vec::with_capacity(self.imports.len());
        for import in &self.imports {
            let run = runs
                .iter()
                .filter(|r| {
                    r.stage == import.stage
                        && r.action == import.action
                        && r.status == crate::model::Status::Succeeded
                })
                .max_by_key(|r| r.attempt)
                .ok_or_else(|| {
                    failed(format!(
                        "`{}` reads `{}.{}`, which has not succeeded in this execution",
                        import.text, import.stage, import.action
                    ))
                })?;
            let exported = run.outputs.as_ref().and_then(|o| o.get("exported"));
            let value = exported
                .and_then(|e| e.get(&import.variable))
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| {
                    let mut names: Vec<&str> = exported
                        .and_then(serde_json::Value::as_object)
                        .map(|o| o.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    names.sort_unstable();
                    let listed = if names.is_empty() {
                        "none".to_owned()
                    } else {
                        names.join(", ")
                    };
                    failed(format!(
                        "`{}`: `{}.{}` exported no `{}`; its buildspec's `env.exported-variables` gave: {listed}",
                        import.text, import.stage, import.action, import.variable
                    ))
                })?;
            values.push((import.text.as_str(), value.to_owned()));
        }
        Ok(self
            .env
            .iter()
            .map(|(name, value)| {
                let value = values
                    .iter()
                    .fold(value.clone(), |v, (text, with)| v.replace(text, with));
                (name.clone(), value)
            })
            .collect())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlineBuildspec {
    pub text: String,
    /// Where it is written, for diagnostics: "ferry.yaml, line 12".
    pub origin: String,
}

pub struct BuildKind;

impl ActionKind for BuildKind {
    type Config = BuildConfig;

    fn name(&self) -> &'static str {
        "build"
    }

    fn build(&self, config: BuildConfig, _def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        config.check()?;
        Ok(Arc::new(Build { config }))
    }
}

struct Build {
    config: BuildConfig,
}

fn failed(msg: impl Into<String>) -> ActionError {
    ActionError::Failed(msg.into())
}

#[async_trait]
impl Action for Build {
    fn runs_anywhere(&self) -> bool {
        false
    }

    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        self.run_in(ctx, &Workspace::of(ctx)).await
    }
}

/// Where a build runs and what it reads, writes and sees besides its configuration: the
/// action's own, or a part of another action's ([`run_within`]).
struct Workspace {
    dir: PathBuf,
    inputs: Vec<crate::model::ArtifactRef>,
    outputs: Vec<String>,
    /// Secret variables the caller adds (masked like the build's own secrets).
    secrets: Vec<(String, secrecy::SecretString)>,
    env: Vec<(String, String)>,
}

impl Workspace {
    fn of(ctx: &ActionContext) -> Workspace {
        Workspace {
            dir: ctx.workdir.clone(),
            inputs: ctx.inputs.clone(),
            outputs: ctx.outputs.clone(),
            secrets: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// Runs `config`'s buildspec as a part of another action — an ECS hook's test — in `dir`, on
/// `inputs`, with `env` and the `secrets` (registered with the masker first) added to its
/// environment. It produces no artifacts; it fails as a build fails.
pub async fn run_within(
    config: &BuildConfig,
    ctx: &ActionContext,
    dir: PathBuf,
    inputs: Vec<crate::model::ArtifactRef>,
    env: Vec<(String, String)>,
    secrets: Vec<(String, secrecy::SecretString)>,
) -> Result<ActionOutput, ActionError> {
    config.check().map_err(failed)?;
    let build = Build {
        config: config.clone(),
    };
    let ws = Workspace {
        dir,
        inputs,
        outputs: Vec::new(),
        secrets,
        env,
    };
    build.run_in(ctx, &ws).await
}

impl Build {
    async fn run_in(
        &self,
        ctx: &ActionContext,
        ws: &Workspace,
    ) -> Result<ActionOutput, ActionError> {
        let mut retries = 0;
        loop {
            if let Some(output) = self.run_once(ctx, ws, retries).await? {
                return Ok(output);
            }
            retries += 1;
        }
    }

    /// One run of the buildspec in a fresh workspace; `None` when a phase's `on-failure:
    /// RETRY…` asks for the build to run again (`retries` runs have been retried so far).
    async fn run_once(
        &self,
        ctx: &ActionContext,
        ws: &Workspace,
        retries: u32,
    ) -> Result<Option<ActionOutput>, ActionError> {
        let src = ws.dir.join("src");
        for dir in [&src, &ws.dir.join("inputs")] {
            if dir.exists() {
                std::fs::remove_dir_all(dir).map_err(|e| {
                    failed(format!("cannot clear the workspace {}: {e}", dir.display()))
                })?;
            }
        }
        std::fs::create_dir_all(&src).map_err(|e| {
            failed(format!(
                "cannot create the workspace {}: {e}",
                src.display()
            ))
        })?;
        let mut env: Vec<(String, String)> = Vec::new();
        // The first input is the working directory; the others sit beside it.
        for (i, input) in ws.inputs.iter().enumerate() {
            let zip = ws.dir.join(format!("{}.zip", input.name));
            ctx.artifacts
                .get(input, &zip)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let dir = if i == 0 {
                src.clone()
            } else {
                ws.dir.join("inputs").join(&input.name)
            };
            unzip(&zip, &dir).map_err(|e| failed(e.to_string()))?;
            let _ = std::fs::remove_file(&zip);
            if i > 0 {
                env.push((
                    format!("CODEBUILD_SRC_DIR_{}", input.name),
                    dir.display().to_string(),
                ));
            }
        }
        let spec = self.load(ctx, ws, &src)?;
        // Secrets first: registered with the masker before any process sees them.
        let mut wanted: Vec<(String, SecretRef)> = self
            .config
            .secrets
            .iter()
            .map(|(var, id)| SecretRef::parse(id).map(|r| (var.clone(), r)))
            .collect::<Result<_, _>>()
            .map_err(failed)?;
        wanted.extend(spec.env.secrets_manager.iter().cloned());
        let mut secret_env = Vec::new();
        for (var, value) in &ws.secrets {
            mask(ctx, var, value);
            secret_env.push((var.clone(), value.clone()));
        }
        for (var, secret) in wanted {
            let value = ctx
                .secrets
                .resolve(&secret)
                .await
                .map_err(|e| failed(format!("secret for {var}: {e}")))?;
            mask(ctx, &var, &value);
            secret_env.push((var, value));
        }
        // Parameters as CodeBuild reads them: a SecureString is decrypted and masked like a
        // secret; a plain String is an ordinary variable.
        let mut parameter_env = Vec::new();
        for (var, name) in &spec.env.parameter_store {
            let p = ctx
                .secrets
                .parameter(name)
                .await
                .map_err(|e| failed(format!("parameter for {var}: {e}")))?;
            if p.secure {
                mask(ctx, var, &p.value);
                secret_env.push((var.clone(), p.value));
            } else {
                parameter_env.push((var.clone(), p.value.expose_secret().to_owned()));
            }
        }
        let exec = &ctx.execution;
        env.extend([
            (
                "CODEBUILD_BUILD_ID".into(),
                format!("{}:{}.{}.{}", exec.id, ctx.stage, ctx.action, ctx.attempt),
            ),
            ("CODEBUILD_BUILD_NUMBER".into(), exec.seq.to_string()),
            ("CODEBUILD_SRC_DIR".into(), src.display().to_string()),
            ("CODEBUILD_SOURCE_VERSION".into(), exec.revision.clone()),
            (
                "CODEBUILD_RESOLVED_SOURCE_VERSION".into(),
                exec.revision.clone(),
            ),
            (
                "CODEBUILD_INITIATOR".into(),
                format!("ferry/{}", exec.pipeline),
            ),
            (
                "CODEBUILD_START_TIME".into(),
                crate::model::now_ms().to_string(),
            ),
            ("CODEBUILD_CI".into(), "true".into()),
            ("FERRY_EXECUTION".into(), exec.id.clone()),
            ("FERRY_STAGE".into(), ctx.stage.clone()),
            ("FERRY_ACTION".into(), ctx.action.clone()),
        ]);
        env.extend(ws.env.iter().cloned());
        env.extend(self.config.resolved_env(ctx)?);
        env.extend(spec.env.variables.iter().cloned());
        env.extend(parameter_env);
        let script = ws.dir.join(".ferry-run.sh");
        let export_file = ws.dir.join(".ferry-exported");
        let retry_file = ws.dir.join(".ferry-retry");
        let _ = std::fs::remove_file(&retry_file);
        write_runner(&spec, &script, &export_file, &retry_file)
            .map_err(|e| failed(format!("cannot write the build script: {e}")))?;

        let mut cmd = tokio::process::Command::new(shell_program(spec.env.shell));
        if spec.env.shell == Shell::Bash {
            cmd.arg("--noprofile").arg("--norc");
        }
        cmd.arg(&script)
            .current_dir(&src)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(
                secret_env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.expose_secret())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            failed(format!(
                "cannot start {}: {e}",
                shell_program(spec.env.shell).display()
            ))
        })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let mut pump = Box::pin(async {
            tokio::join!(pump(stdout, ctx), pump(stderr, ctx));
        });
        let mut pumped = false;
        let status = loop {
            tokio::select! {
                () = &mut pump, if !pumped => pumped = true,
                status = child.wait() => break status.map_err(|e| failed(format!("the build process: {e}")))?,
                () = ctx.cancel.cancelled() => {
                    kill_group(pid, &mut child).await;
                    ctx.log.line("[ferry] build stopped: its process group was killed");
                    return Err(ActionError::Cancelled);
                }
            }
        };
        // A background process may hold the output open after bash exits: give it a moment.
        if !pumped
            && tokio::time::timeout(Duration::from_secs(2), &mut pump)
                .await
                .is_err()
        {
            signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let exported = read_exports(&export_file, &spec.env.exported_variables);
        if !status.success() {
            if let Some(why) = retry_asked(&spec, &retry_file, retries) {
                ctx.log.line(&format!("[ferry] {why}"));
                return Ok(None);
            }
            let after = match retries {
                0 => String::new(),
                1 => " after 1 retry".to_owned(),
                n => format!(" after {n} retries"),
            };
            return Err(failed(format!(
                "the build failed{after} (exit status {})",
                status.code().map_or("killed".into(), |c| c.to_string())
            )));
        }
        // Artifact paths may name variables, as CodeBuild expands them: the build's own and
        // the exported ones, with the values the commands left.
        let mut vars: HashMap<String, String> = env.iter().cloned().collect();
        vars.extend(exported.iter().map(|(k, v)| (k.clone(), v.clone())));
        let artifacts = self.collect(ctx, ws, &spec, &src, &vars).await?;
        Ok(Some(ActionOutput {
            outputs: json!({"exported": exported, "artifacts": artifacts.iter().map(|a| json!({"name": a.name, "sha256": a.sha256, "size": a.size})).collect::<Vec<_>>()}),
            artifacts,
            release: None,
        }))
    }

    fn load(
        &self,
        ctx: &ActionContext,
        ws: &Workspace,
        src: &Path,
    ) -> Result<Buildspec, ActionError> {
        let file = match (&self.config.buildspec, &self.config.inline) {
            (Some(path), _) => {
                let full = src.join(path);
                ferry_yaml::SourceFile::read(&full, &ferry_yaml::Limits::default()).map_err(
                    |d| {
                        failed(format!(
                            "{} (looked for it in the first input artifact, `{}`)",
                            d.message,
                            ws.inputs.first().map_or("none", |a| a.name.as_str())
                        ))
                    },
                )?
            }
            (None, Some(inline)) => ferry_yaml::SourceFile::new(
                format!("inline buildspec ({})", inline.origin),
                inline.text.clone(),
            ),
            (None, None) => return Err(failed("no buildspec")),
        };
        let (spec, diagnostics) = buildspec::parse(&file);
        for line in ferry_yaml::render_text(&file, &diagnostics, false).lines() {
            ctx.log.line(line);
        }
        spec.ok_or_else(|| failed(format!("{} has errors (see the log)", file.name())))
    }

    /// Zips and stores each declared output: the first from `artifacts`, the others from
    /// `artifacts.secondary-artifacts` by name.
    async fn collect(
        &self,
        ctx: &ActionContext,
        ws: &Workspace,
        spec: &Buildspec,
        src: &Path,
        vars: &HashMap<String, String>,
    ) -> Result<Vec<crate::model::ArtifactRef>, ActionError> {
        let mut out = Vec::new();
        for (i, name) in ws.outputs.iter().enumerate() {
            let artifact: &ArtifactSpec = if i == 0 {
                spec.artifacts.as_ref().ok_or_else(|| failed(format!("the build declares output `{name}` but its buildspec has no `artifacts` section")))?
            } else {
                spec.secondary_artifacts
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, a)| a)
                    .ok_or_else(|| failed(format!("the build declares output `{name}` but `artifacts.secondary-artifacts` has no `{name}`")))?
            };
            let root: PathBuf = artifact
                .base_directory
                .as_ref()
                .map_or_else(|| src.to_path_buf(), |b| src.join(expand(b, vars)));
            let files: Vec<String> = artifact.files.iter().map(|f| expand(f, vars)).collect();
            let zip = ws.dir.join(format!("{name}.out.zip"));
            let count = zip_dir(
                &root,
                &files,
                &artifact.exclude_paths,
                artifact.discard_paths,
                &zip,
            )
            .map_err(|e| failed(e.to_string()))?;
            if count == 0 {
                return Err(failed(format!(
                    "artifact `{name}`: no file in {} matches {:?}",
                    root.display(),
                    files
                )));
            }
            ctx.log
                .line(&format!("[ferry] artifact {name}: {count} files"));
            out.push(
                ctx.artifacts
                    .put(name, &zip)
                    .await
                    .map_err(|e| failed(e.to_string()))?,
            );
            let _ = std::fs::remove_file(&zip);
        }
        Ok(out)
    }
}

async fn pump(stream: Option<impl tokio::io::AsyncRead + Unpin>, ctx: &ActionContext) {
    let Some(mut stream) = stream else { return };
    let mut lines = LineMasker::new(ctx.log.masker().clone());
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for line in lines.push(&buf[..n]) {
                    ctx.log.line(&line);
                }
            }
        }
    }
    if let Some(rest) = lines.finish() {
        ctx.log.line(&rest);
    }
}

fn signal_group(pid: Option<i32>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = pid {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
    }
}

/// SIGTERM to the whole group, then SIGKILL after a grace period.
async fn kill_group(pid: Option<i32>, child: &mut tokio::process::Child) {
    signal_group(pid, nix::sys::signal::Signal::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal_group(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait().await;
    }
    // Children that outlived bash.
    signal_group(pid, nix::sys::signal::Signal::SIGKILL);
}

/// `$NAME` and `${NAME}` replaced by their values (an unset one by nothing, as the shell does);
/// anything else, `$` included, is kept.
fn expand(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            out.push_str(vars.get(name).map_or("", String::as_str));
            rest = &after[used..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Registers a secret value with the log's masker before any process sees it.
fn mask(ctx: &ActionContext, var: &str, value: &secrecy::SecretString) {
    if !ctx.log.masker().register(value) {
        ctx.log.line(&format!(
            "[ferry] warning: the value of {var} is shorter than {} characters and cannot be masked in logs",
            crate::mask::MIN_SECRET_LEN
        ));
    }
}

/// Whether the failed run's first retrying phase (written by the runner as `phase\0message`)
/// allows another run, and the words that say so.
fn retry_asked(spec: &Buildspec, retry_file: &Path, retries: u32) -> Option<String> {
    let text = std::fs::read_to_string(retry_file).ok()?;
    let (phase, message) = text.split_once('\0')?;
    let OnFailure::Retry(retry) = &spec.phases.iter().find(|p| p.name == phase)?.on_failure else {
        return None;
    };
    // Checked when the buildspec was read.
    let pattern = regex::Regex::new(&retry.pattern).ok()?;
    if retries >= retry.count || !pattern.is_match(message) {
        return None;
    }
    Some(format!(
        "phase {phase} failed ({message}); its on-failure retries the build: run {} of at most {}",
        retries + 2,
        retry.count + 1
    ))
}

fn read_exports(file: &Path, names: &[String]) -> HashMap<String, String> {
    let Ok(bytes) = std::fs::read(file) else {
        return HashMap::new();
    };
    let mut out = HashMap::new();
    let mut parts = bytes.split(|&b| b == 0);
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        let k = String::from_utf8_lossy(k).into_owned();
        if names.contains(&k) {
            out.insert(k, String::from_utf8_lossy(v).into_owned());
        }
    }
    out
}

/// Writes the runner: every phase's commands, each `eval`ed in the one shell (as sourcing
/// would: `cd`, variables and functions carry over), with CodeBuild's phase rules. POSIX sh,
/// so it runs under `bash` and `/bin/sh` alike.
fn write_runner(
    spec: &Buildspec,
    path: &Path,
    export_file: &Path,
    retry_file: &Path,
) -> std::io::Result<()> {
    let quote = |text: &str| format!("'{}'", text.replace('\'', r"'\''"));
    let mut s = String::from(
        "# Written by ferry: the buildspec's phases, in one shell, as CodeBuild runs them.\n",
    );
    let retry_path = quote(&retry_file.display().to_string());
    s.push_str("export CODEBUILD_BUILD_SUCCEEDING=1\n__ferry_failed=0\n__ferry_skip=0\n__ferry_build_ran=0\n__ferry_err=''\n__ferry_cmd=''\n__ferry_retry_phase=''\n");
    // A command that runs `exit` ends this shell mid-phase: say so, and let a retrying phase
    // still ask for its rerun.
    let _ = writeln!(
        s,
        "__ferry_exit() {{\n  __ferry_rc=$?\n  if [ -n \"$__ferry_cmd\" ]; then\n    printf '%s\\n' \"[ferry] the command ran exit $__ferry_rc, which ended the build's shell\"\n    if [ -n \"$__ferry_retry_phase\" ] && [ ! -e {retry_path} ]; then printf '%s\\0%s' \"$__ferry_retry_phase\" \"$__ferry_cmd$__ferry_rc\" > {retry_path}; fi\n  fi\n}}\ntrap __ferry_exit EXIT"
    );
    let command = |s: &mut String, text: &str, flag: &str| {
        let first = text.lines().next().unwrap_or("");
        let more = if text.lines().count() > 1 { " …" } else { "" };
        let _ = writeln!(
            s,
            "if [ \"${flag}\" = 1 ]; then\n  printf '%s\\n' {}\n  __ferry_cmd={}\n  eval {}\n  __ferry_rc=$?\n  if [ $__ferry_rc -ne 0 ]; then {flag}=0; __ferry_err=\"$__ferry_cmd$__ferry_rc\"; printf '%s\\n' \"[ferry] command exited with status $__ferry_rc\"; fi\n  __ferry_cmd=''\nfi",
            quote(&format!("[ferry] running: {first}{more}")),
            // CodeBuild's phase message, which `on-failure: RETRY-regex` is matched against.
            quote(&format!(
                "COMMAND_EXECUTION_ERROR: Error while executing command: {first}. Reason: exit status "
            )),
            quote(text),
        );
    };
    for phase in &spec.phases {
        let _ = writeln!(s, "\n# phase {}", phase.name);
        // install and pre_build are skipped after an aborting failure; post_build still runs
        // after a failed build, as in CodeBuild.
        let runs = if phase.name == "post_build" {
            "[ \"$__ferry_skip\" = 0 ] || [ \"$__ferry_build_ran\" = 1 ]"
        } else {
            "[ \"$__ferry_skip\" = 0 ]"
        };
        let _ = writeln!(
            s,
            "if {runs}; then\nprintf '%s\\n' '[ferry] phase {}'\n__ferry_ok=1",
            phase.name
        );
        if phase.name == "build" {
            s.push_str("__ferry_build_ran=1\n");
        }
        if matches!(phase.on_failure, OnFailure::Retry(_)) {
            let _ = writeln!(s, "__ferry_retry_phase='{}'", phase.name);
        }
        for c in &phase.commands {
            command(&mut s, c, "__ferry_ok");
        }
        if !phase.finally.is_empty() {
            s.push_str("__ferry_fin=1\n");
            for c in &phase.finally {
                command(&mut s, c, "__ferry_fin");
            }
            s.push_str("if [ \"$__ferry_fin\" = 0 ]; then __ferry_ok=0; fi\n");
        }
        let on_failure = match phase.on_failure {
            OnFailure::Abort => "__ferry_skip=1".to_owned(),
            OnFailure::Continue => ":".to_owned(),
            // The first retrying failure decides; ferry reads it after the shell exits.
            OnFailure::Retry(_) => format!(
                "__ferry_skip=1; [ -e {retry_path} ] || printf '%s\\0%s' '{}' \"$__ferry_err\" > {retry_path}",
                phase.name,
            ),
        };
        let _ = writeln!(
            s,
            "if [ \"$__ferry_ok\" = 1 ]; then printf '%s\\n' '[ferry] phase {name} succeeded'; else printf '%s\\n' '[ferry] phase {name} FAILED'; __ferry_failed=1; export CODEBUILD_BUILD_SUCCEEDING=0; {on_failure}; fi\n__ferry_retry_phase=''\nfi",
            name = phase.name
        );
    }
    let _ = writeln!(
        s,
        "\nfor __v in {}; do eval \"__ferry_val=\\${{$__v}}\"; printf '%s\\0%s\\0' \"$__v\" \"$__ferry_val\"; done > {}",
        spec.env.exported_variables.join(" "),
        quote(&export_file.display().to_string())
    );
    s.push_str("exit $__ferry_failed\n");
    std::fs::write(path, s)
}

/// The shell's program, found on the PATH once rather than at every spawn.
fn shell_program(shell: Shell) -> PathBuf {
    static BASH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    match shell {
        Shell::Sh => PathBuf::from("/bin/sh"),
        Shell::Bash => BASH
            .get_or_init(|| {
                std::env::var_os("PATH")
                    .and_then(|paths| {
                        std::env::split_paths(&paths)
                            .map(|p| p.join("bash"))
                            .find(|p| p.is_file())
                    })
                    .unwrap_or_else(|| PathBuf::from("bash"))
            })
            .clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_in_artifact_paths_expand_as_the_shell_would() {
        let vars: HashMap<String, String> = [("OUT", "dist"), ("FLAVOR", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(expand("$OUT/${FLAVOR}/**/*", &vars), "dist/web/**/*");
        assert_eq!(expand("${OUT}-x/$FLAVOR.txt", &vars), "dist-x/web.txt");
        assert_eq!(expand("$MISSING/a", &vars), "/a", "unset is empty");
        assert_eq!(
            expand("cost$5 and $ alone and ${", &vars),
            "cost$5 and $ alone and ${"
        );
        assert_eq!(expand("no variables", &vars), "no variables");
    }
}
