//! `server.yaml`: where the server keeps its state, which pipelines it runs and from which
//! repositories, whom it notifies. Read with ferry's YAML diagnostics, so every mistake is
//! reported at once with `file:line:col` and a hint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_yaml::{Decoder, Diagnostic, Limits, Node, SourceFile, Spanned};
use secrecy::SecretString;

/// The server's configuration, valid.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The state directory: executions (unless `state_url`), logs, artifacts, tokens, the
    /// audit log. With `state: postgres://…` it is `work`.
    pub state: PathBuf,
    /// `state: postgres://…`: the engine's store in PostgreSQL, shared by every server on it.
    pub state_url: Option<String>,
    /// Where to listen; `--listen` overrides it. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The address people reach the server at, for links in notifications.
    pub url: String,
    pub pipelines: Vec<PipelineConfig>,
    pub notifications: Vec<Channel>,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<Tls>,
    /// How many actions the server runs at once (`actions_at_once`): its own executions' and,
    /// on a shared store, those it leases of other servers. `None`: the default, 16 on a
    /// shared store and no limit on a state directory.
    pub actions_at_once: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The pipeline's name; its manifest must name the same pipeline.
    pub name: String,
    /// A `file://`, `https://` or ssh URL, fetched with the user's git and credentials.
    pub repo: String,
    pub branch: String,
    /// The manifest's path in the repository.
    pub manifest: String,
    /// Poll the repository at this interval (for remotes that cannot send webhooks).
    pub poll: Option<Duration>,
    /// The webhooks' shared secret, read from `webhook_secret_file` at start.
    pub webhook_secret: Option<SecretString>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// An incoming webhook taking Slack's JSON shape (`{"text": …}`).
    Webhook(String),
    /// An Amazon SNS topic, published to with the server's AWS identity.
    Sns(String),
}

#[derive(Debug, Clone)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The diagnostics of a configuration that cannot be used, with the file they point into.
#[derive(Debug)]
pub struct Invalid {
    pub file: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

impl Invalid {
    pub fn render(&self, color: bool) -> String {
        ferry_yaml::render_text(&self.file, &self.diagnostics, color)
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let errors = self.diagnostics.iter().filter(|d| d.is_error()).count();
        write!(
            f,
            "{} is not valid ({errors} error{})",
            self.file.name(),
            if errors == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for Invalid {}

const KEYS: &[&str] = &[
    "state",
    "work",
    "listen",
    "url",
    "pipelines",
    "notifications",
    "tls",
    "actions_at_once",
];
const PIPELINE_KEYS: &[&str] = &[
    "name",
    "repo",
    "branch",
    "manifest",
    "poll",
    "webhook_secret_file",
];
const CHANNEL_KEYS: &[&str] = &["webhook", "sns"];
const TLS_KEYS: &[&str] = &["cert", "key"];

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The most `actions_at_once` takes: each running action holds a task, a log file and often
/// a child process.
const MAX_ACTIONS_AT_ONCE: u64 = 1024;

/// Reads and checks `server.yaml`. Relative paths in it are relative to the file.
pub fn load(path: &Path) -> Result<Config, Invalid> {
    let file = match SourceFile::read(path, &Limits::default()) {
        Ok(f) => f,
        Err(d) => {
            return Err(Invalid {
                file: SourceFile::new(path.display().to_string(), ""),
                diagnostics: vec![d.with_hint(
                    "write a server.yaml (docs/server.md has one to start from), or pass it with --config",
                )],
            });
        }
    };
    from_source(path, file)
}

/// Checks configuration text; `path` names it and anchors its relative paths.
pub fn from_source(path: &Path, file: SourceFile) -> Result<Config, Invalid> {
    let mut diagnostics = Vec::new();
    let root = ferry_yaml::parse(&file, &Limits::default(), &mut diagnostics);
    let mut d = Decoder { diagnostics };
    // Absolute: the state directory is handed to git, which runs in other directories.
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    let config = root
        .as_ref()
        .and_then(|root| decode(&mut d, root, path, &base));
    // In file order, as `ferry validate` reports a manifest.
    d.diagnostics
        .sort_by_key(|x| (x.span.map_or(0, |s| s.start), x.severity));
    if d.has_errors() {
        return Err(Invalid {
            file,
            diagnostics: d.diagnostics,
        });
    }
    config.ok_or(Invalid {
        file,
        diagnostics: d.diagnostics,
    })
}

fn error(d: &mut Decoder, span: ferry_yaml::Span, code: &'static str, message: String, hint: &str) {
    d.push(Diagnostic::error(code, message).at(span).with_hint(hint));
}

fn decode(d: &mut Decoder, root: &Node, path: &Path, base: &Path) -> Option<Config> {
    if root.value == ferry_yaml::Value::Null {
        d.push(
            Diagnostic::error("empty-config", "the configuration is empty")
                .with_hint("it needs `state` (a directory) and `pipelines`"),
        );
        return None;
    }
    let what = "the configuration";
    let f = d.fields(root, what, KEYS)?;
    let state = f
        .required(
            d,
            "state",
            what,
            "name the state directory: `state: /var/lib/ferry`",
        )
        .and_then(|n| d.name(n, "`state`"));
    let work = f.get("work").and_then(|n| d.name(n, "`work`"));
    // `state: postgres://…` keeps executions in PostgreSQL; what stays on this machine (logs,
    // work directories, repository mirrors, tokens) goes to `work`.
    let (state, state_url) = match (state, work) {
        (Some(s), work) if ferry_workflows::project::is_database_url(&s.value) => match work {
            Some(w) => (Some(base.join(w.value)), Some(s.value)),
            None => {
                error(
                    d,
                    s.span,
                    "missing-key",
                    "with `state` in PostgreSQL, the server needs `work`: a directory of its own for logs, work directories and repository mirrors".into(),
                    "add `work: /var/lib/ferry`",
                );
                (None, None)
            }
        },
        (Some(s), Some(w)) => {
            error(
                d,
                w.span,
                "work-without-database",
                "`work` goes with `state: postgres://…`; a state directory holds its own work"
                    .into(),
                "remove `work`, or set `state` to a PostgreSQL URL",
            );
            (Some(base.join(s.value)), None)
        }
        (Some(s), None) => (Some(base.join(s.value)), None),
        (None, _) => (None, None),
    };
    let listen = match f.get("listen").and_then(|n| d.name(n, "`listen`")) {
        Some(l) => match l.value.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                error(
                    d,
                    l.span,
                    "bad-listen",
                    format!("`{}` is not an address and port", l.value),
                    "write it as `127.0.0.1:8080` (or `0.0.0.0:8080` to listen beyond this machine)",
                );
                None
            }
        },
        None => DEFAULT_LISTEN.parse().ok(),
    };
    let url = f.get("url").and_then(|n| d.name(n, "`url`"));
    if let Some(u) = &url
        && !(u.value.starts_with("http://") || u.value.starts_with("https://"))
    {
        error(
            d,
            u.span,
            "bad-url",
            format!("`{}` is not an http(s) URL", u.value),
            "write the address people reach the server at, e.g. `https://ferry.example.com`",
        );
    }
    let mut pipelines: Vec<PipelineConfig> = Vec::new();
    match f.get("pipelines") {
        None => error(
            d,
            f.span(),
            "missing-key",
            format!("{what} needs `pipelines`"),
            "list the pipelines to run: `pipelines: [{name: orders, repo: file:///srv/git/orders.git}]`",
        ),
        Some(n) => {
            for item in d.list(n, "`pipelines`").unwrap_or_default() {
                if let Some((p, name)) = pipeline(d, item, base) {
                    if pipelines.iter().any(|q| q.name == p.name) {
                        error(
                            d,
                            name.span,
                            "duplicate-pipeline",
                            format!("pipeline `{}` is listed twice", p.name),
                            "each pipeline is listed once",
                        );
                    }
                    pipelines.push(p);
                }
            }
        }
    }
    let mut notifications = Vec::new();
    if let Some(n) = f.get("notifications") {
        for item in d.list(n, "`notifications`").unwrap_or_default() {
            if let Some(c) = channel(d, item) {
                notifications.push(c);
            }
        }
    }
    let tls = f.get("tls").and_then(|n| {
        let t = d.fields(n, "`tls`", TLS_KEYS)?;
        let cert = t
            .required(
                d,
                "cert",
                "`tls`",
                "the certificate chain, PEM: `cert: /etc/ferry/tls.crt`",
            )
            .and_then(|n| d.name(n, "`tls.cert`"));
        let key = t
            .required(
                d,
                "key",
                "`tls`",
                "the private key, PEM: `key: /etc/ferry/tls.key`",
            )
            .and_then(|n| d.name(n, "`tls.key`"));
        Some(Tls {
            cert: base.join(cert?.value),
            key: base.join(key?.value),
        })
    });
    let actions_at_once = f
        .get("actions_at_once")
        .and_then(|n| d.uint(n, "`actions_at_once`", 1, MAX_ACTIONS_AT_ONCE))
        .and_then(|n| usize::try_from(n.value).ok());
    let listen = listen?;
    Some(Config {
        path: path.to_path_buf(),
        state: state?,
        state_url,
        url: url.map_or_else(
            || {
                let scheme = if tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{listen}")
            },
            |u| u.value.trim_end_matches('/').to_owned(),
        ),
        listen,
        pipelines,
        notifications,
        tls,
        actions_at_once,
    })
}

fn pipeline(d: &mut Decoder, n: &Node, base: &Path) -> Option<(PipelineConfig, Spanned<String>)> {
    let what = "a pipeline";
    let f = d.fields(n, what, PIPELINE_KEYS)?;
    let name = f
        .required(
            d,
            "name",
            what,
            "name it as its manifest does: `name: orders`",
        )
        .and_then(|n| d.name(n, "the pipeline `name`"));
    if let Some(name) = &name
        && let Some(why) = ferry_manifest::values::names::pipeline(&name.value)
    {
        error(
            d,
            name.span,
            "bad-name",
            format!("`{}` cannot be a pipeline name: {why}", name.value),
            "lowercase letters, digits and `-`, starting with a letter, at most 32 characters",
        );
    }
    let repo = f
        .required(
            d,
            "repo",
            what,
            "where its repository is: `repo: file:///srv/git/orders.git`, an https or an ssh URL",
        )
        .and_then(|n| d.name(n, "`repo`"));
    if let Some(r) = &repo
        && !is_repo_url(&r.value)
    {
        error(
            d,
            r.span,
            "bad-repo",
            format!("`{}` is not a repository URL", r.value),
            "write `file:///path/to/repo`, `https://host/owner/name.git`, `ssh://git@host/owner/name.git` or `git@host:owner/name.git`",
        );
    }
    let branch = f.get("branch").and_then(|n| d.name(n, "`branch`"));
    let manifest = f.get("manifest").and_then(|n| d.name(n, "`manifest`"));
    if let Some(m) = &manifest
        && (m.value.starts_with('/') || m.value.split('/').any(|p| p == ".."))
    {
        error(
            d,
            m.span,
            "bad-manifest-path",
            format!("`{}` is not a path inside the repository", m.value),
            "write the manifest's path from the repository's root, e.g. `deploy/ferry.yaml`",
        );
    }
    let poll = f.get("poll").and_then(|n| {
        let text = d.name(n, "`poll`")?;
        match ferry_manifest::values::parse_duration(&text.value) {
            Ok(p) if p >= Duration::from_secs(1) => Some(p),
            Ok(_) => {
                error(
                    d,
                    text.span,
                    "poll-too-short",
                    format!("`poll: {}` is shorter than a second", text.value),
                    "poll every second or more, e.g. `poll: 1m`",
                );
                None
            }
            Err(why) => {
                error(
                    d,
                    text.span,
                    "bad-duration",
                    why,
                    "write a duration such as `30s`, `1m` or `5m`",
                );
                None
            }
        }
    });
    let secret = f
        .get("webhook_secret_file")
        .and_then(|n| d.name(n, "`webhook_secret_file`"))
        .and_then(|file| {
            let full = base.join(&file.value);
            match std::fs::read_to_string(&full) {
                Ok(text) if !text.trim().is_empty() => {
                    Some(SecretString::from(text.trim().to_owned()))
                }
                Ok(_) => {
                    error(
                        d,
                        file.span,
                        "empty-secret",
                        format!("{} is empty", full.display()),
                        "write the webhook's shared secret into it (e.g. `openssl rand -hex 32 > FILE`)",
                    );
                    None
                }
                Err(e) => {
                    error(
                        d,
                        file.span,
                        "unreadable-secret",
                        format!("cannot read {}: {e}", full.display()),
                        "give a readable file holding the webhook's shared secret",
                    );
                    None
                }
            }
        });
    let name = name?;
    Some((
        PipelineConfig {
            name: name.value.clone(),
            repo: repo?.value,
            branch: branch.map_or_else(|| "main".to_owned(), |b| b.value),
            manifest: manifest.map_or_else(|| "ferry.yaml".to_owned(), |m| m.value),
            poll,
            webhook_secret: secret,
        },
        name,
    ))
}

fn channel(d: &mut Decoder, n: &Node) -> Option<Channel> {
    let what = "a notification";
    let f = d.fields(n, what, CHANNEL_KEYS)?;
    match (f.get("webhook"), f.get("sns")) {
        (Some(w), None) => {
            let url = d.name(w, "`webhook`")?;
            if !(url.value.starts_with("http://") || url.value.starts_with("https://")) {
                error(
                    d,
                    url.span,
                    "bad-url",
                    format!("`{}` is not an http(s) URL", url.value),
                    "write the incoming webhook's URL, e.g. `https://hooks.slack.com/services/…`",
                );
                return None;
            }
            Some(Channel::Webhook(url.value))
        }
        (None, Some(s)) => {
            let arn = d.name(s, "`sns`")?;
            if !arn.value.starts_with("arn:aws:sns:") || arn.value.split(':').count() != 6 {
                error(
                    d,
                    arn.span,
                    "bad-topic",
                    format!("`{}` is not an SNS topic ARN", arn.value),
                    "write the topic's ARN: `arn:aws:sns:REGION:ACCOUNT:NAME`",
                );
                return None;
            }
            Some(Channel::Sns(arn.value))
        }
        _ => {
            error(
                d,
                f.span(),
                "bad-notification",
                "a notification names one channel: `webhook` or `sns`".into(),
                "write `- webhook: https://…` or `- sns: arn:aws:sns:…`",
            );
            None
        }
    }
}

fn is_repo_url(repo: &str) -> bool {
    ["file://", "https://", "http://", "ssh://", "git://"]
        .iter()
        .any(|p| repo.starts_with(p))
        || (repo.contains('@') && repo.contains(':') && !repo.contains("://"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, Invalid> {
        from_source(
            Path::new("/etc/ferry/server.yaml"),
            SourceFile::new("server.yaml", text),
        )
    }

    #[test]
    fn state_in_postgres_keeps_this_machines_work_in_work() {
        let c = check(
            "state: postgres://ferry@db.internal:5432/ferry\nwork: work\npipelines: [{name: orders, repo: file:///srv/orders.git}]\n",
        )
        .unwrap();
        assert_eq!(
            c.state_url.as_deref(),
            Some("postgres://ferry@db.internal:5432/ferry")
        );
        assert_eq!(c.state, Path::new("/etc/ferry/work"));
        let without = check(
            "state: postgres://ferry@db.internal/ferry\npipelines: [{name: orders, repo: file:///srv/orders.git}]\n",
        )
        .unwrap_err();
        assert!(without.render(false).contains("add `work: /var/lib/ferry`"));
        let stray = check(
            "state: state\nwork: work\npipelines: [{name: orders, repo: file:///srv/orders.git}]\n",
        )
        .unwrap_err();
        assert!(
            stray
                .render(false)
                .contains("`work` goes with `state: postgres://…`")
        );
    }

    #[test]
    fn a_minimal_configuration_has_its_defaults() {
        let c = check(
            "state: state\npipelines:\n  - name: orders\n    repo: file:///srv/git/orders.git\n",
        )
        .unwrap();
        assert_eq!(c.state, Path::new("/etc/ferry/state"));
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.url, "http://127.0.0.1:8080");
        let p = &c.pipelines[0];
        assert_eq!(
            (p.branch.as_str(), p.manifest.as_str()),
            ("main", "ferry.yaml")
        );
        assert!(p.poll.is_none() && p.webhook_secret.is_none());
        assert_eq!(c.actions_at_once, None);
    }

    #[test]
    fn actions_at_once_is_a_count_from_one() {
        let with = |n: &str| {
            check(&format!(
                "state: state\nactions_at_once: {n}\npipelines: [{{name: orders, repo: file:///srv/orders.git}}]\n"
            ))
        };
        assert_eq!(with("4").unwrap().actions_at_once, Some(4));
        for bad in ["0", "-1", "many", "100000"] {
            let text = with(bad).unwrap_err().render(false);
            assert!(
                text.contains("server.yaml:2:18: error: `actions_at_once`"),
                "{bad}: {text}"
            );
        }
    }

    #[test]
    fn every_mistake_is_reported_with_its_place() {
        let err = check(
            "state: s\nlisten: localhost\npipelines:\n  - name: Orders\n    repo: /srv/orders\n    pol: 1m\n  - {name: b, repo: 'git@host:b.git', poll: 0s}\nnotifications:\n  - sns: topic\n",
        )
        .unwrap_err();
        let text = err.render(false);
        for needle in [
            "server.yaml:2:9: error: `localhost` is not an address and port",
            "server.yaml:4:11: error: `Orders` cannot be a pipeline name",
            "server.yaml:5:11: error: `/srv/orders` is not a repository URL",
            "server.yaml:6:5: error: unknown key `pol`",
            "did you mean `poll`?",
            "`poll: 0s` is shorter than a second",
            "`topic` is not an SNS topic ARN",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }

    #[test]
    fn a_missing_secret_file_is_an_error_that_names_it() {
        let err = check("state: s\npipelines:\n  - {name: a, repo: 'file:///a', webhook_secret_file: nowhere.secret}\n")
            .unwrap_err();
        assert!(
            err.render(false)
                .contains("cannot read /etc/ferry/nowhere.secret"),
            "{}",
            err.render(false)
        );
    }
}
