//! CodeBuild buildspec version 0.2: the parts users rely on.
//!
//! Read with `ferry-yaml`, so a malformed buildspec gets every problem at once with line and
//! column. Keys CodeBuild knows that ferry's local runner does not use (reports, cache, …)
//! are warnings, not errors: the same file still works in CodeBuild.

use ferry_yaml::{Decoder, Diagnostic, Fields, Limits, Node, SourceFile, Value};

use crate::secrets::SecretRef;

#[derive(Debug, Clone, PartialEq)]
pub struct Buildspec {
    pub env: BuildEnv,
    /// install, pre_build, build, post_build: in that order, those present.
    pub phases: Vec<Phase>,
    pub artifacts: Option<ArtifactSpec>,
    /// `artifacts.secondary-artifacts`: identifier → files.
    pub secondary_artifacts: Vec<(String, ArtifactSpec)>,
}

/// The shell that runs the commands (`env.shell`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shell {
    #[default]
    Bash,
    /// `/bin/sh`: the system's POSIX shell.
    Sh,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildEnv {
    pub shell: Shell,
    pub variables: Vec<(String, String)>,
    pub secrets_manager: Vec<(String, SecretRef)>,
    /// `env.parameter-store`: variable → parameter name (or ARN) in the shared account.
    pub parameter_store: Vec<(String, String)>,
    pub exported_variables: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnFailure {
    /// Later phases are skipped (post_build still runs after a failed build, as in CodeBuild).
    Abort,
    /// The next phase runs anyway.
    Continue,
    /// `RETRY`, `RETRY-count`, `RETRY-regex`, `RETRY-count-regex`: the build aborts and then
    /// runs again from the start, at most `count` more times, while the phase's error message
    /// matches `pattern`.
    Retry(Retry),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Further runs allowed: 3 unless the value names 0 to 100.
    pub count: u32,
    /// A regular expression, checked when parsed, searched for in the error message
    /// (`COMMAND_EXECUTION_ERROR: Error while executing command: …`); `.*` unless named.
    pub pattern: String,
}

impl Retry {
    /// CodeBuild's defaults for a bare `RETRY`.
    pub const DEFAULT_COUNT: u32 = 3;
    pub const MAX_COUNT: u32 = 100;

    /// Reads the text after `RETRY`: empty, `-count`, `-regex` or `-count-regex`.
    fn parse(rest: &str) -> Result<Retry, String> {
        let mut retry = Retry {
            count: Retry::DEFAULT_COUNT,
            pattern: ".*".into(),
        };
        if rest.is_empty() {
            return Ok(retry);
        }
        let Some(rest) = rest.strip_prefix('-') else {
            return Err("write RETRY, RETRY-count, RETRY-regex or RETRY-count-regex".into());
        };
        let (digits, pattern) = match rest.split_once('-') {
            Some((head, tail)) if head.bytes().all(|b| b.is_ascii_digit()) && !head.is_empty() => {
                (Some(head), tail)
            }
            _ if rest.bytes().all(|b| b.is_ascii_digit()) => (Some(rest), ""),
            _ => (None, rest),
        };
        if let Some(digits) = digits {
            retry.count = digits
                .parse()
                .ok()
                .filter(|n| *n <= Retry::MAX_COUNT)
                .ok_or_else(|| {
                    format!(
                        "the retry count `{digits}` is not between 0 and {}",
                        Retry::MAX_COUNT
                    )
                })?;
        }
        if !pattern.is_empty() {
            regex::Regex::new(pattern)
                .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))?;
            retry.pattern = pattern.to_owned();
        }
        Ok(retry)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    pub commands: Vec<String>,
    /// Runs after `commands`, whether they succeeded or not.
    pub finally: Vec<String>,
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArtifactSpec {
    pub files: Vec<String>,
    pub base_directory: Option<String>,
    pub discard_paths: bool,
    pub name: Option<String>,
    pub exclude_paths: Vec<String>,
}

pub const PHASES: [&str; 4] = ["install", "pre_build", "build", "post_build"];

const TOP: &[&str] = &[
    "version",
    "run-as",
    "env",
    "proxy",
    "batch",
    "phases",
    "reports",
    "artifacts",
    "cache",
];
const ENV: &[&str] = &[
    "shell",
    "variables",
    "parameter-store",
    "exported-variables",
    "secrets-manager",
    "git-credential-helper",
];
const PHASE: &[&str] = &[
    "run-as",
    "on-failure",
    "runtime-versions",
    "commands",
    "finally",
];
const ARTIFACTS: &[&str] = &[
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
    "secondary-artifacts",
];
const SECONDARY: &[&str] = &[
    "files",
    "name",
    "discard-paths",
    "base-directory",
    "exclude-paths",
    "enable-symlinks",
    "s3-prefix",
];

/// Reads a buildspec; `None` when it has errors (all in the diagnostics).
pub fn parse(file: &SourceFile) -> (Option<Buildspec>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let root = ferry_yaml::parse(file, &Limits::default(), &mut diagnostics);
    let mut d = Decoder { diagnostics };
    let spec = root.as_ref().and_then(|r| buildspec(&mut d, r));
    let diagnostics = d.diagnostics;
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    (spec.filter(|_| ok), diagnostics)
}

/// The fields of a buildspec mapping. An unknown key is a warning, as CodeBuild logs it and
/// runs on, with the fix for the mistakes people make most.
fn fields<'n>(
    d: &mut Decoder,
    node: &'n Node,
    what: &str,
    known: &'static [&'static str],
) -> Option<Fields<'n>> {
    let before = d.diagnostics.len();
    let f = d.fields(node, what, known);
    let Value::Map(entries) = &node.value else {
        return f;
    };
    let in_phase = known == PHASE;
    for diag in &mut d.diagnostics[before..] {
        if diag.code != "unknown-key" {
            continue;
        }
        diag.severity = ferry_yaml::Severity::Warning;
        diag.message.push_str(", which CodeBuild ignores");
        let key = entries
            .iter()
            .find(|e| Some(e.key.span) == diag.span)
            .and_then(|e| e.key.as_str());
        let hint = match key {
            Some("env") if in_phase => {
                Some("`env` is a top-level section: move it out of the phase, above `phases:`")
            }
            Some("environment_variables") => {
                Some("version 0.2 reads variables from `env: {variables: {NAME: value}}`")
            }
            _ => None,
        };
        if let Some(h) = hint {
            diag.hint = Some(h.to_owned());
        }
    }
    f
}

/// Commands as CodeBuild takes them: a list, or one string; a `- # …` item is a comment
/// (YAML reads it as an empty item) and is skipped.
fn command_list(d: &mut Decoder, node: &Node, what: &str) -> Vec<String> {
    match &node.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items
            .iter()
            .filter(|item| item.value != Value::Null)
            .filter_map(|item| d.string(item, &format!("each entry of {what}")))
            .map(|s| s.value)
            .collect(),
        _ => d
            .string(node, what)
            .map(|s| vec![s.value])
            .unwrap_or_default(),
    }
}

fn ignored(d: &mut Decoder, f: &Fields<'_>, keys: &[&str], what: &str) {
    for key in keys {
        if let Some(span) = f.key_span(key) {
            d.push(
                Diagnostic::warning(
                    "ignored-key",
                    format!("`{key}` in {what} is ignored by ferry's local runner"),
                )
                .at(span)
                .with_hint("it still applies when the same buildspec runs in CodeBuild"),
            );
        }
    }
}

fn buildspec(d: &mut Decoder, root: &Node) -> Option<Buildspec> {
    if root.value == Value::Null {
        d.push(
            Diagnostic::error("empty-buildspec", "the buildspec is empty")
                .with_hint("start with `version: 0.2` and a `phases:` section"),
        );
        return None;
    }
    let f = fields(d, root, "the buildspec", TOP)?;
    match f.required(d, "version", "the buildspec", "start the file with `version: 0.2`").and_then(|n| d.string(n, "`version`")) {
        Some(v) if v.value == "0.2" => {}
        Some(v) if v.value == "0.1" => d.push(
            Diagnostic::error("buildspec-version", "buildspec version 0.1 is not supported")
                .at(v.span)
                .with_hint("use `version: 0.2`: all commands then run in one shell, so `cd` and variables carry over"),
        ),
        Some(v) => d.push(Diagnostic::error("buildspec-version", format!("buildspec version `{}` is not supported", v.value)).at(v.span).with_hint("use `version: 0.2`")),
        None => {}
    }
    if f.has("batch") && !f.has("phases") {
        d.push(
            Diagnostic::error(
                "batch-only",
                "this buildspec defines only a batch build (`batch:`), which runs builds of other buildspecs in CodeBuild; ferry runs one build",
            )
            .at(f.key_span("batch").unwrap_or(root.span))
            .with_hint("point the action at one of the batch's buildspecs (`buildspec:` in ferry.yaml), or make each one an action of its own"),
        );
        return None;
    }
    ignored(
        d,
        &f,
        &["run-as", "proxy", "batch", "reports", "cache"],
        "the buildspec",
    );
    let env = match f.get("env") {
        Some(n) => env(d, n),
        None => Some(BuildEnv::default()),
    };
    let phases = match f.required(
        d,
        "phases",
        "the buildspec",
        "add `phases:` with at least a `build:` phase and its `commands`",
    ) {
        Some(n) => phases(d, n),
        None => Vec::new(),
    };
    let (artifacts, secondary_artifacts) = match f.get("artifacts") {
        Some(n) => artifacts(d, n),
        None => (None, Vec::new()),
    };
    Some(Buildspec {
        env: env?,
        phases,
        artifacts,
        secondary_artifacts,
    })
}

fn env(d: &mut Decoder, n: &Node) -> Option<BuildEnv> {
    let f = fields(d, n, "`env`", ENV)?;
    ignored(d, &f, &["git-credential-helper"], "`env`");
    let mut env = BuildEnv::default();
    if let Some(shell) = f.get("shell").and_then(|n| d.string(n, "`env.shell`")) {
        // CodeBuild's values on Linux.
        match shell.value.as_str() {
            "bash" => env.shell = Shell::Bash,
            "/bin/sh" => env.shell = Shell::Sh,
            other => d.push(
                Diagnostic::error(
                    "bad-shell",
                    format!(
                        "`env.shell` is `{other}`; on Linux, CodeBuild runs `bash` or `/bin/sh`"
                    ),
                )
                .at(shell.span)
                .with_hint("write `shell: bash` (the default) or `shell: /bin/sh`"),
            ),
        }
    }
    if let Some(vars) = f.get("variables") {
        for (k, v) in d.entries(vars, "`env.variables`").unwrap_or_default() {
            if let Some(v) = d.string(v, "a variable value") {
                env.variables.push((k.value, v.value));
            }
        }
    }
    if let Some(secrets) = f.get("secrets-manager") {
        for (k, v) in d
            .entries(secrets, "`env.secrets-manager`")
            .unwrap_or_default()
        {
            let Some(text) = d.string(v, "a secret reference") else {
                continue;
            };
            match SecretRef::parse(&text.value) {
                Ok(r) => env.secrets_manager.push((k.value, r)),
                Err(why) => d.push(Diagnostic::error("bad-secret-ref", why).at(text.span).with_hint("write `secret-id:json-key:version-stage:version-id`, e.g. `orders/db:password`")),
            }
        }
    }
    if let Some(params) = f.get("parameter-store") {
        for (k, v) in d
            .entries(params, "`env.parameter-store`")
            .unwrap_or_default()
        {
            if let Some(name) = d.string(v, "a parameter name") {
                env.parameter_store.push((k.value, name.value));
            }
        }
    }
    if let Some(list) = f.get("exported-variables") {
        env.exported_variables = d
            .string_list(list, "`env.exported-variables`")
            .into_iter()
            .map(|s| s.value)
            .collect();
    }
    Some(env)
}

fn phases(d: &mut Decoder, n: &Node) -> Vec<Phase> {
    let Some(f) = fields(d, n, "`phases`", &PHASES) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in PHASES {
        let Some(node) = f.get(name) else { continue };
        let what = format!("phase `{name}`");
        let Some(pf) = fields(d, node, &what, PHASE) else {
            continue;
        };
        ignored(d, &pf, &["run-as", "runtime-versions"], &what);
        let commands = |d: &mut Decoder, key: &str| -> Vec<String> {
            pf.get(key)
                .map(|c| command_list(d, c, &format!("`{key}` of {what}")))
                .unwrap_or_default()
        };
        let cmds = commands(d, "commands");
        let finally = commands(d, "finally");
        let on_failure = match pf
            .get("on-failure")
            .and_then(|v| d.string(v, "`on-failure`"))
        {
            None => OnFailure::Abort,
            Some(v) => on_failure(d, &v),
        };
        // An install phase may hold only `runtime-versions` (CodeBuild's images pick them).
        let runtimes_only = name == "install" && pf.has("runtime-versions");
        if cmds.is_empty() && pf.get("commands").is_none() && !runtimes_only {
            d.push(
                Diagnostic::warning("no-commands", format!("{what} has no `commands`"))
                    .at(node.span)
                    .with_hint("add `commands:` with one command per line, or remove the phase"),
            );
        }
        out.push(Phase {
            name,
            commands: cmds,
            finally,
            on_failure,
        });
    }
    out
}

fn on_failure(d: &mut Decoder, v: &ferry_yaml::Spanned<String>) -> OnFailure {
    let text = v.value.as_str();
    let why = match text {
        "ABORT" => return OnFailure::Abort,
        "CONTINUE" => return OnFailure::Continue,
        _ => match text.strip_prefix("RETRY").map(Retry::parse) {
            Some(Ok(retry)) => return OnFailure::Retry(retry),
            Some(Err(why)) => why,
            None => "use ABORT, CONTINUE, RETRY, RETRY-count, RETRY-regex or RETRY-count-regex"
                .to_owned(),
        },
    };
    d.push(
        Diagnostic::error("bad-on-failure", format!("`on-failure` cannot be `{text}`"))
            .at(v.span)
            .with_hint(why),
    );
    OnFailure::Abort
}

fn artifact_spec(d: &mut Decoder, f: &Fields<'_>, what: &str) -> ArtifactSpec {
    // `files:` may be empty (an artifact of nothing), or one pattern as a string.
    let files = match f.get("files") {
        Some(n) => command_list(d, n, "`files`"),
        None if f.has("files") => Vec::new(),
        None => {
            f.required(
                d,
                "files",
                what,
                "list the files to keep, e.g. `files: ['**/*']`",
            );
            Vec::new()
        }
    };
    let discard_paths = match f
        .get("discard-paths")
        .and_then(|n| d.string(n, "`discard-paths`"))
    {
        None => false,
        Some(v) if matches!(v.value.as_str(), "yes" | "true") => true,
        Some(v) if matches!(v.value.as_str(), "no" | "false") => false,
        Some(v) => {
            d.push(
                Diagnostic::error("wrong-type", "`discard-paths` must be `yes` or `no`")
                    .at(v.span)
                    .with_hint("CodeBuild reads yes or no"),
            );
            false
        }
    };
    ArtifactSpec {
        files,
        base_directory: f
            .get("base-directory")
            .and_then(|n| d.name(n, "`base-directory`"))
            .map(|s| s.value),
        discard_paths,
        name: f
            .get("name")
            .and_then(|n| d.name(n, "`name`"))
            .map(|s| s.value),
        exclude_paths: f
            .get("exclude-paths")
            .map(|n| {
                d.string_list(n, "`exclude-paths`")
                    .into_iter()
                    .map(|s| s.value)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn artifacts(d: &mut Decoder, n: &Node) -> (Option<ArtifactSpec>, Vec<(String, ArtifactSpec)>) {
    let Some(f) = fields(d, n, "`artifacts`", ARTIFACTS) else {
        return (None, Vec::new());
    };
    ignored(d, &f, &["enable-symlinks", "s3-prefix"], "`artifacts`");
    let mut secondary = Vec::new();
    if let Some(sec) = f.get("secondary-artifacts") {
        for (name, node) in d.entries(sec, "`secondary-artifacts`").unwrap_or_default() {
            if let Some(sf) = fields(d, node, "a secondary artifact", SECONDARY) {
                secondary.push((name.value, artifact_spec(d, &sf, "a secondary artifact")));
            }
        }
    }
    let primary = f.has("files").then(|| artifact_spec(d, &f, "`artifacts`"));
    (primary, secondary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Option<Buildspec>, Vec<Diagnostic>) {
        parse(&SourceFile::new("buildspec.yml", text))
    }

    #[test]
    fn reads_the_parts_users_rely_on() {
        let (spec, diags) = parse_str(
            "version: 0.2\nenv:\n  variables: {A: '1'}\n  secrets-manager: {TOKEN: 'orders/npm:token'}\n  exported-variables: [A]\nphases:\n  build:\n    on-failure: CONTINUE\n    commands:\n      - echo hi\n    finally: [echo done]\n  install:\n    commands: [true]\nartifacts:\n  base-directory: dist\n  discard-paths: yes\n  files: ['**/*']\n  secondary-artifacts:\n    report: {files: [report.txt]}\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let spec = spec.unwrap();
        let names: Vec<&str> = spec.phases.iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            ["install", "build"],
            "phases run in CodeBuild's order"
        );
        assert_eq!(spec.phases[1].on_failure, OnFailure::Continue);
        assert_eq!(
            spec.env.secrets_manager[0].1.json_key.as_deref(),
            Some("token")
        );
        let a = spec.artifacts.unwrap();
        assert!(a.discard_paths);
        assert_eq!(a.base_directory.as_deref(), Some("dist"));
        assert_eq!(spec.secondary_artifacts[0].0, "report");
    }

    #[test]
    fn env_shell_takes_codebuilds_linux_values() {
        let shell = |text: &str| {
            let (spec, diags) = parse_str(&format!(
                "version: 0.2\nenv:\n  shell: {text}\nphases:\n  build:\n    commands: [true]\n"
            ));
            (spec.map(|s| s.env.shell), diags)
        };
        assert_eq!(shell("bash").0, Some(Shell::Bash));
        assert_eq!(shell("/bin/sh").0, Some(Shell::Sh));
        let (_, diags) = shell("zsh");
        assert_eq!(diags[0].code, "bad-shell", "{diags:?}");
        assert!(diags[0].message.contains("`zsh`"));
    }

    #[test]
    fn every_problem_with_its_position() {
        let (spec, diags) =
            parse_str("version: 0.1\nphase:\n  build: {}\nartifacts:\n  fils: [x]\n");
        assert!(spec.is_none());
        let located: Vec<(String, usize)> = diags
            .iter()
            .map(|d| {
                (
                    d.message.clone(),
                    d.span.map_or(0, |s| {
                        SourceFile::new(
                            "b",
                            "version: 0.1\nphase:\n  build: {}\nartifacts:\n  fils: [x]\n",
                        )
                        .location(s.start)
                        .line
                    }),
                )
            })
            .collect();
        assert!(
            located.iter().any(|(m, l)| m.contains("0.1") && *l == 1),
            "{located:?}"
        );
        assert!(
            diags
                .iter()
                .any(|d| d.hint.as_deref() == Some("did you mean `phases`?"))
        );
        assert!(
            diags
                .iter()
                .any(|d| d.hint.as_deref() == Some("did you mean `files`?"))
        );
    }

    #[test]
    fn on_failure_reads_codebuilds_retry_forms() {
        let read = |text: &str| {
            let (spec, diags) = parse_str(&format!(
                "version: 0.2\nphases:\n  build:\n    on-failure: {text}\n    commands: [make]\n"
            ));
            (spec.map(|s| s.phases[0].on_failure.clone()), diags)
        };
        let retry = |count: u32, pattern: &str| {
            Some(OnFailure::Retry(Retry {
                count,
                pattern: pattern.into(),
            }))
        };
        assert_eq!(read("RETRY").0, retry(3, ".*"));
        assert_eq!(read("RETRY-0").0, retry(0, ".*"));
        assert_eq!(read("RETRY-7").0, retry(7, ".*"));
        assert_eq!(read("RETRY-timed out").0, retry(3, "timed out"));
        assert_eq!(
            read("RETRY-2-exit status [0-9]+").0,
            retry(2, "exit status [0-9]+")
        );
        // A regex may hold dashes, and may start with digits that are not a count.
        assert_eq!(read("RETRY-5-a-b").0, retry(5, "a-b"));
        assert_eq!(read("RETRY-5xx").0, retry(3, "5xx"));
        for bad in ["RETRY-101", "RETRY-2-(", "RETRYING", "retry"] {
            let (spec, diags) = read(bad);
            assert!(spec.is_none(), "{bad}");
            assert_eq!(diags[0].code, "bad-on-failure", "{bad}: {diags:?}");
        }
    }

    #[test]
    fn a_buildspec_without_env_reads() {
        // Regression: a missing `env:` section used to drop the whole buildspec.
        let (spec, diags) = parse_str("version: 0.2\nphases:\n  build:\n    commands: [true]\n");
        assert!(diags.is_empty() && spec.is_some());
    }

    #[test]
    fn codebuild_only_keys_are_warnings() {
        let (spec, diags) = parse_str(
            "version: 0.2\nphases:\n  install:\n    runtime-versions: {python: 3.12}\n    commands: [true]\nreports: {}\n",
        );
        assert!(spec.is_some());
        assert_eq!(diags.len(), 2);
        assert!(diags.iter().all(|d| !d.is_error()));
    }
}
