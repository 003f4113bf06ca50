//! `ferry serve` as a team runs it: a real server process on a free loopback port, with the
//! SDK's settings pointing at the emulator, pipelines in local git repositories, and every
//! check made only through HTTP (webhooks, the API, Server-Sent Events). Tokens are made with
//! `ferry serve token create` before the server starts, as an operator would.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{World, fresh_database, world};
use ferry_test_support::fixtures::{eventually, lambda_function, lambda_zip, live_alias};
use serde_json::{Value, json};

const SECRET: &str = "webhook-s3cret";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository that plays the forge's: commits are made in it, the server fetches it.
struct Remote {
    dir: PathBuf,
}

impl Remote {
    fn new(root: &Path) -> Remote {
        let dir = root.join("remote");
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        Remote { dir }
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    /// Writes `files` and commits them; returns the commit.
    fn commit(&self, files: &[(&str, &str)]) -> String {
        for (path, text) in files {
            let full = self.dir.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        git(&self.dir, &["add", "-A"]);
        git(
            &self.dir,
            &[
                "-c",
                "user.name=dev",
                "-c",
                "user.email=dev@example.com",
                "commit",
                "-qm",
                "change",
            ],
        );
        git(&self.dir, &["rev-parse", "HEAD"])
    }
}

/// A `ferry serve` process.
struct Served {
    root: PathBuf,
    config: PathBuf,
    child: Option<Child>,
    url: String,
    http: reqwest::Client,
    /// The process's environment: the world's AWS settings.
    env: Vec<(String, String)>,
}

fn command_env(cmd: &Command) -> Vec<(String, String)> {
    cmd.get_envs()
        .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
        .collect()
}

impl Served {
    /// Writes server.yaml (`pipelines` is its `pipelines:` list, indented) and the webhook
    /// secret into `root`; the server is not started.
    fn configure(w: &World, root: &Path, pipelines: &str, extra: &str) -> Served {
        Served::with_config(
            w,
            root,
            &format!("state: state\n{extra}pipelines:\n{pipelines}"),
        )
    }

    /// One of several servers sharing the PostgreSQL database `url`, each with its own
    /// `work` directory (under `root`) and tokens.
    fn configure_shared(w: &World, root: &Path, pipelines: &str, url: &str) -> Served {
        Served::configure_shared_with(w, root, pipelines, url, "")
    }

    /// [`Served::configure_shared`] with `extra` lines of server.yaml.
    fn configure_shared_with(
        w: &World,
        root: &Path,
        pipelines: &str,
        url: &str,
        extra: &str,
    ) -> Served {
        std::fs::create_dir_all(root).unwrap();
        Served::with_config(
            w,
            root,
            &format!("state: {url}\nwork: work\n{extra}pipelines:\n{pipelines}"),
        )
    }

    fn with_config(w: &World, root: &Path, text: &str) -> Served {
        std::fs::write(root.join("hook.secret"), SECRET).unwrap();
        let config = root.join("server.yaml");
        std::fs::write(&config, text).unwrap();
        Served {
            root: root.to_owned(),
            config,
            child: None,
            url: String::new(),
            http: reqwest::Client::new(),
            env: command_env(&w.ferry()),
        }
    }

    fn ferry(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ferry"));
        cmd.env_clear().envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// A token, made as an operator makes one.
    fn token(&self, name: &str, role: &str, groups: &[&str]) -> String {
        let mut cmd = self.ferry();
        cmd.args(["serve", "token", "create", "--config"])
            .arg(&self.config)
            .args(["--name", name, "--role", role]);
        for g in groups {
            cmd.args(["--group", g]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .to_owned()
    }

    /// Starts the server on a free port and waits until it listens.
    fn start(&mut self) {
        let mut cmd = self.ferry();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&self.config);
        self.start_with(cmd);
    }

    /// Starts `cmd`, which runs a server that logs where it listens, and waits until it does.
    fn start_with(&mut self, mut cmd: Command) {
        let log = self.root.join(format!(
            "serve-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = cmd
            .env("FERRY_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Copies the log to a file (for failures) and finds the address in it.
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(log).unwrap();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                if !sent && let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(
                        rest.split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    );
                    sent = true;
                }
            }
        });
        self.url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "ferry serve did not start; its log is in {}",
                    self.root.display()
                )
            });
        self.child = Some(child);
    }

    /// Everything the server logged so far.
    fn logs(&self) -> String {
        let mut all = String::new();
        for entry in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("serve-") && name.ends_with(".log") {
                all.push_str(&format!("== {}\n", entry.path().display()));
                all.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        all
    }

    /// SIGKILL: no chance to clean up, as a crash or an OOM kill.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(c.id()).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = c.wait();
        }
    }

    /// `ferry` as a laptop runs it against this server (`--server`, the token in FERRY_TOKEN).
    fn cli(&self, token: &str) -> Command {
        let mut cmd = self.ferry();
        cmd.env("FERRY_SERVER", &self.url).env("FERRY_TOKEN", token);
        cmd
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    /// A GitHub push delivery, signed with `secret`.
    async fn github_push(
        &self,
        pipeline: &str,
        delivery: &str,
        revision: &str,
        pusher: &str,
        secret: &str,
    ) -> (u16, Value) {
        let body = json!({"ref": "refs/heads/main", "after": revision, "pusher": {"name": pusher}})
            .to_string();
        let resp = self
            .http
            .post(format!("{}/api/v1/hooks/github/{pipeline}", self.url))
            .header("X-GitHub-Event", "push")
            .header("X-GitHub-Delivery", delivery)
            .header(
                "X-Hub-Signature-256",
                ferry_server::hooks::sign(body.as_bytes(), secret),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }

    /// Waits until the execution satisfies `done`; returns it.
    async fn wait(
        &self,
        token: &str,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (status, doc) = self.get(&format!("/api/v1/executions/{id}"), token).await;
            if status == 200 && done(&doc) {
                return doc;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never {what}: {doc:#}\nthe server's log is in {}",
                self.root.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn executions(&self, token: &str, pipeline: &str) -> Vec<Value> {
        let (status, doc) = self
            .get(&format!("/api/v1/pipelines/{pipeline}/executions"), token)
            .await;
        assert_eq!(status, 200, "{doc}");
        doc.as_array().unwrap().clone()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn status(doc: &Value) -> &str {
    doc["status"].as_str().unwrap_or_default()
}

fn stage_status<'a>(doc: &'a Value, stage: &str) -> &'a str {
    doc["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == stage))
        .and_then(|s| s["status"].as_str())
        .unwrap_or_default()
}

/// A pipeline of local builds: one quick build, then (with `approval`) a gated stage.
fn local_manifest(pipeline: &str, triggers: &str, approval: &str) -> String {
    let gate = if approval.is_empty() {
        String::new()
    } else {
        format!(
            "  - name: release\n    actions:\n      - name: gate\n        approval: {approval}\n      - name: done\n        run_order: 2\n        build:\n          buildspec: |\n            version: 0.2\n            phases: {{build: {{commands: [echo released]}}}}\n"
        )
    };
    format!(
        "pipeline: {pipeline}\nsource:\n  branch: main\n{triggers}stages:\n  - name: build\n    actions:\n      - name: compile\n        build:\n          buildspec: |\n            version: 0.2\n            phases:\n              build:\n                commands:\n                  - echo building $CODEBUILD_RESOLVED_SOURCE_VERSION\n{gate}"
    )
}

fn pipeline_entry(name: &str, remote: &Remote) -> String {
    format!(
        "  - name: {name}\n    repo: {}\n    webhook_secret_file: hook.secret\n",
        remote.url()
    )
}

#[tokio::test]
async fn signed_pushes_start_executions_that_filters_redeliveries_and_bad_signatures_do_not() {
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let triggers = "  triggers:\n    - file_paths: {exclude: [\"docs/**\"]}\n";
    let first = remote.commit(&[
        ("ferry.yaml", &local_manifest("hooks", triggers, "")),
        ("src/app.txt", "1"),
    ]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("hooks", &remote), "");
    let viewer = s.token("watcher", "viewer", &[]);
    let admin = s.token("root", "admin", &[]);
    s.start();

    // A signed push starts an execution, which runs to its end in the server.
    let (code, answer) = s.github_push("hooks", "d-1", &first, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    assert_eq!(answer["outcome"], "started");
    let id = answer["execution"].as_str().unwrap().to_owned();
    let done = s
        .wait(&viewer, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;
    assert_eq!(done["revision"], first.as_str());
    assert!(
        done["trigger"]
            .as_str()
            .unwrap()
            .contains("push to main by dev (github)")
    );

    // The same delivery again (GitHub's redelivery) starts nothing new.
    let (code, answer) = s.github_push("hooks", "d-1", &first, "dev", SECRET).await;
    assert_eq!(
        (code, answer["outcome"].as_str()),
        (200, Some("duplicate")),
        "{answer}"
    );

    // A wrong secret is refused, and starts nothing.
    let second = remote.commit(&[("src/app.txt", "2")]);
    let (code, answer) = s
        .github_push("hooks", "d-2", &second, "dev", "guessed")
        .await;
    assert_eq!(code, 401, "{answer}");
    assert_eq!(answer["error"]["code"], "bad_webhook");
    let unsigned = s
        .http
        .post(format!("{}/api/v1/hooks/github/hooks", s.url))
        .header("X-GitHub-Event", "push")
        .body(json!({"ref": "refs/heads/main", "after": second}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(s.executions(&viewer, "hooks").await.len(), 1);

    // A refused delivery can be sent again once signed right: now it starts the change.
    let (code, answer) = s.github_push("hooks", "d-2", &second, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let second_id = answer["execution"].as_str().unwrap().to_owned();
    s.wait(&viewer, &second_id, "succeeded", |d| {
        status(d) == "Succeeded"
    })
    .await;

    // A push that changes only excluded paths starts nothing, and says why.
    let docs_only = remote.commit(&[("docs/guide.md", "words")]);
    let (code, answer) = s
        .github_push("hooks", "d-3", &docs_only, "dev", SECRET)
        .await;
    assert_eq!(
        (code, answer["outcome"].as_str()),
        (200, Some("skipped")),
        "{answer}"
    );
    assert!(
        answer["reason"].as_str().unwrap().contains("changed file"),
        "{answer}"
    );
    assert_eq!(s.executions(&viewer, "hooks").await.len(), 2);

    // Bodies are bounded. (Its own client: the server answers 413 and closes the connection
    // while the body is still being sent.)
    let huge = reqwest::Client::new()
        .post(format!("{}/api/v1/hooks/github/hooks", s.url))
        .body(vec![b'x'; 6 * 1024 * 1024])
        .send()
        .await;
    assert!(
        huge.as_ref().map_or(true, |r| r.status().as_u16() == 413),
        "{huge:?}"
    );

    // No token: 401; every delivery is in the audit log, the refused ones with why.
    let (code, _) = s
        .call(reqwest::Method::GET, "/api/v1/audit", None, None)
        .await;
    assert_eq!(code, 401);
    let (code, _) = s.get("/api/v1/audit", &viewer).await;
    assert_eq!(code, 403, "only an admin reads the audit log");
    let (_, audit) = s.get("/api/v1/audit", &admin).await;
    let pushes: Vec<(String, u64)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "push")
        .map(|e| {
            (
                e["identity"].as_str().unwrap().to_owned(),
                e["status"].as_u64().unwrap(),
            )
        })
        .rev()
        .collect();
    let statuses: Vec<u64> = pushes.iter().map(|(_, s)| *s).collect();
    assert_eq!(statuses, [202, 200, 401, 401, 202, 200], "{audit:#}");
    assert!(pushes.iter().all(|(who, _)| who == "webhook:github"));
    // No secret reaches an answer.
    assert!(!audit.to_string().contains(SECRET));
}

#[tokio::test]
async fn only_listed_approvers_other_than_the_pusher_approve_and_two_are_needed() {
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let approval = "{approvers: [alice, bob, platform], required: 2, forbid_self: true, comment_required: true}";
    let rev = remote.commit(&[("ferry.yaml", &local_manifest("gates", "", approval))]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("gates", &remote), "");
    let viewer = s.token("watcher", "viewer", &[]);
    let alice = s.token("alice", "approver", &[]);
    let bob = s.token("bob", "approver", &[]);
    let carol = s.token("carol", "approver", &[]);
    let dave = s.token("dave", "approver", &["platform"]);
    s.start();

    // Bob pushes the change: he may not approve it himself.
    let (code, answer) = s.github_push("gates", "g-1", &rev, "bob", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    let waiting = s
        .wait(&viewer, &id, "waited for approval", |d| {
            stage_status(d, "release") == "AwaitingApproval"
        })
        .await;
    let digests = waiting["pending_approvals"][0]["digests"].clone();
    assert!(
        digests["source"].as_str().is_some_and(|d| d.len() == 64),
        "{waiting:#}"
    );

    let approve = format!("/api/v1/executions/{id}/stages/release/approve");
    let ok = json!({"comment": "looks right"});
    let refusals = [
        (&viewer, ok.clone(), 403, "role_too_low"),
        (&carol, ok.clone(), 403, "not_an_approver"),
        (&bob, ok.clone(), 403, "self_approval"),
        (&alice, json!({}), 422, "comment_required"),
    ];
    for (token, body, code, case) in refusals {
        let (got, answer) = s.post(&approve, token, body).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (code, Some(case)),
            "{answer}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let (code, first) = s.post(&approve, &alice, ok.clone()).await;
    assert_eq!(code, 200, "{first}");
    assert_eq!(
        first["approval"]["status"], "Pending",
        "one of two: it still waits"
    );
    let (code, again) = s.post(&approve, &alice, ok.clone()).await;
    assert_eq!(
        (code, again["error"]["code"].as_str()),
        (409, Some("already_decided"))
    );
    // Dave approves as a member of the listed group `platform`: two distinct approvers.
    let (code, second) = s.post(&approve, &dave, ok.clone()).await;
    assert_eq!(code, 200, "{second}");
    let approval = &second["approval"];
    assert_eq!(approval["status"], "Approved");
    assert_eq!(approval["identity"], "alice, dave");
    let votes: Vec<(&str, &str)> = approval["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["identity"].as_str().unwrap(),
                v["comment"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(votes, [("alice", "looks right"), ("dave", "looks right")]);
    // Each decision records the exact artifacts it approved.
    for v in approval["votes"].as_array().unwrap() {
        assert_eq!(v["digests"], digests);
    }
    s.wait(&viewer, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;
}

/// An operator blocks a release that waits for approval: no approver can pass it (409 with
/// the reason), the execution fails with it, and unblocking is recorded by whoever did it.
#[tokio::test]
async fn a_release_blocked_through_the_api_is_refused_approval_with_its_reason() {
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let rev = remote.commit(&[(
        "ferry.yaml",
        &local_manifest("verdicts", "", "{approvers: [alice]}"),
    )]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("verdicts", &remote), "");
    let viewer = s.token("watcher", "viewer", &[]);
    let alice = s.token("alice", "approver", &[]);
    let oncall = s.token("oncall", "operator", &[]);
    s.start();
    let (code, answer) = s.github_push("verdicts", "v-1", &rev, "bob", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    s.wait(&viewer, &id, "waited for approval", |d| {
        stage_status(d, "release") == "AwaitingApproval"
    })
    .await;

    let block = format!("/api/v1/releases/verdicts/{id}/block");
    let (code, answer) = s.post(&block, &viewer, json!({"reason": "x"})).await;
    assert_eq!(code, 403, "{answer}");
    let (code, answer) = s.post(&block, &oncall, json!({"reason": "  "})).await;
    assert_eq!(code, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("say why the release is bad"),
        "{answer}"
    );
    let (code, answer) = s
        .post(&block, &oncall, json!({"reason": "totals off by a cent"}))
        .await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(
        (
            answer["block"]["identity"].as_str(),
            answer["block"]["reason"].as_str()
        ),
        (Some("oncall"), Some("totals off by a cent"))
    );

    let approve = format!("/api/v1/executions/{id}/stages/release/approve");
    let (code, answer) = s.post(&approve, &alice, json!({})).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (409, Some("release_blocked")),
        "{answer}"
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("blocked by oncall: totals off by a cent"),
        "{answer}"
    );
    let failed = s
        .wait(&viewer, &id, "failed", |d| status(d) == "Failed")
        .await;
    assert!(
        failed["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("totals off by a cent"),
        "{failed:#}"
    );
    // The execution's own view says it is blocked, by whom and why.
    assert_eq!(
        (
            failed["blocked"]["identity"].as_str(),
            failed["blocked"]["reason"].as_str()
        ),
        (Some("oncall"), Some("totals off by a cent")),
        "{failed:#}"
    );

    // Unblocked from the command line, through the server, as the operator's token.
    let manifest = root.path().join("verdicts.yaml");
    std::fs::write(
        &manifest,
        local_manifest("verdicts", "", "{approvers: [alice]}"),
    )
    .unwrap();
    let out = s
        .cli(&oncall)
        .args(["release", "unblock", &id, "--format", "json", "-f"])
        .arg(&manifest)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = common::json(&out);
    assert_eq!(
        (
            answer["release"].as_str(),
            answer["unblocked"]["reason"].as_str()
        ),
        (Some(id.as_str()), Some("totals off by a cent"))
    );
}

/// One Server-Sent Event: its id, kind and data.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: Value,
}

/// Reads events from `/api/v1/events` until `until` holds for one (or the time is up).
/// Opens `/api/v1/events`; once this returns, the server has the subscription (it answered).
async fn open_events(s: &Served, token: &str, query: &str, last: Option<u64>) -> reqwest::Response {
    let mut req = s
        .http
        .get(format!("{}/api/v1/events?{query}", s.url))
        .bearer_auth(token);
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id.to_string());
    }
    req.send().await.unwrap()
}

/// Reads events until `until` holds for one (or the time is up).
async fn read_events(resp: reqwest::Response, until: impl Fn(&Sse) -> bool) -> Vec<Sse> {
    use futures_util::StreamExt;
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = resp.bytes_stream();
    let mut buffer = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the events stopped coming")
            .expect("the stream ended")
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let mut e = Sse {
                id: None,
                event: "message".into(),
                data: Value::Null,
            };
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    e.id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    e.event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    e.data = serde_json::from_str(v.trim())
                        .unwrap_or(Value::String(v.trim().to_owned()));
                }
            }
            if block.trim_start().starts_with(':') {
                continue; // a keep-alive comment
            }
            let stop = until(&e);
            out.push(e);
            if stop {
                return out;
            }
        }
    }
}

#[tokio::test]
async fn events_of_an_execution_arrive_in_order_and_resume_after_the_last_id() {
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    remote.commit(&[("ferry.yaml", &local_manifest("live", "", ""))]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("live", &remote), "");
    let viewer = s.token("watcher", "viewer", &[]);
    let operator = s.token("ops", "operator", &[]);
    s.start();

    let (code, _) = s
        .call(reqwest::Method::GET, "/api/v1/events", None, None)
        .await;
    assert_eq!(code, 401);
    // Subscribed first, then the execution is started through the API.
    let ended = |e: &Sse| e.event == "execution" && e.data["data"]["status"] == "Succeeded";
    let subscription = open_events(&s, &viewer, "pipeline=live", None).await;
    let (code, started) = s
        .post("/api/v1/pipelines/live/executions", &operator, json!({}))
        .await;
    assert_eq!(code, 201, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let events = read_events(subscription, ended).await;
    assert!(
        events.iter().all(|e| e.data["execution"] == id.as_str()),
        "{events:#?}"
    );
    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|p| p[0] < p[1]), "ids grow: {ids:?}");
    // In the order the engine went: the execution, its stages in turn, the build's log.
    let kinds: Vec<String> = events
        .iter()
        .map(|e| match e.event.as_str() {
            "stage" | "execution" => format!(
                "{} {} {}",
                e.event,
                e.data["data"]["stage"].as_str().unwrap_or(""),
                e.data["data"]["status"].as_str().unwrap_or("")
            ),
            other => other.to_owned(),
        })
        .collect();
    let position = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no `{k}` in {kinds:#?}"))
    };
    assert!(position("execution  InProgress") < position("stage source InProgress"));
    assert!(position("stage source Succeeded") < position("stage build InProgress"));
    assert!(position("stage build Succeeded") < position("execution  Succeeded"));
    assert!(kinds.iter().any(|k| k == "log"), "{kinds:#?}");
    assert!(events.iter().any(|e| {
        e.event == "log"
            && e.data["data"]["line"]
                .as_str()
                .is_some_and(|l| l.contains("building"))
    }));

    // Resumed after the third event: exactly the ones after it, in the same order.
    let from = ids[2];
    let resumed = read_events(
        open_events(&s, &viewer, &format!("execution={id}"), Some(from)).await,
        ended,
    )
    .await;
    assert_eq!(resumed, events[3..].to_vec());
}

/// The manifest of a pipeline that builds a Lambda package and deploys it to dev behind an
/// approval, shifting traffic as a canary.
fn lambda_manifest(w: &World) -> String {
    format!(
        r#"pipeline: orders
shared:
  id: "{shared}"
  region: us-east-1
  artifacts: {{bucket: ferry-artifacts-{shared}, kms_alias: alias/ferry-orders}}
accounts:
  dev: {{id: "{dev}"}}
source: {{repo: ., branch: main}}
stages:
  - name: build
    actions:
      - name: package
        build:
          outputs: [app]
          buildspec: |
            version: 0.2
            phases:
              build:
                commands:
                  - mkdir -p dist && python3 -m zipfile -c dist/function.zip index.py
            artifacts:
              base-directory: dist
              files: ['**/*']
environments:
  - name: dev
    account: dev
    approval: {{approvers: [alice]}}
deploy:
  - name: function
    lambda: {{function: orders-fn, alias: live, artifact: app, zip: function.zip, traffic: canary 50% 6s}}
"#,
        shared = w.accounts.shared,
        dev = w.accounts.dev
    )
}

async fn versions(w: &World) -> Vec<String> {
    aws_sdk_lambda::Client::new(&w.dev)
        .list_versions_by_function()
        .function_name("orders-fn")
        .send()
        .await
        .unwrap()
        .versions()
        .iter()
        .filter_map(|v| v.version().map(str::to_owned))
        .filter(|v| v != "$LATEST")
        .collect()
}

#[tokio::test]
async fn a_server_killed_while_an_approval_waits_and_while_a_canary_bakes_finishes_the_deploy_once()
{
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    w.artifact_bucket().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let rev = remote.commit(&[
        ("ferry.yaml", &lambda_manifest(&w)),
        ("index.py", "def handler(e, c):\n    return 'v2'\n"),
    ]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("orders", &remote), "");
    let alice = s.token("alice", "approver", &[]);
    s.start();

    // A second server on the same state would drive the same executions: it refuses to start.
    let second = s
        .ferry()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{said}");
    let pid = s.child.as_ref().unwrap().id();
    assert!(
        said.contains(&format!("another ferry serve (pid {pid}) holds")),
        "{said}"
    );

    let (code, answer) = s.github_push("orders", "k-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    s.wait(&alice, &id, "waited for approval", |d| {
        stage_status(d, "dev") == "AwaitingApproval"
    })
    .await;

    // Killed while the approval waits: the restarted server still waits for it, and takes it.
    s.kill9();
    s.start();
    let doc = s
        .wait(&alice, &id, "waited again", |d| {
            stage_status(d, "dev") == "AwaitingApproval"
        })
        .await;
    assert_eq!(doc["pending_approvals"][0]["stage"], "dev");
    let (code, decided) = s
        .post(
            &format!("/api/v1/executions/{id}/stages/dev/approve"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(code, 200, "{decided}");

    // Killed while the canary bakes (half the traffic on the new version).
    eventually("the canary split", || async {
        !live_alias(&w.dev, "orders-fn").await.1.is_empty()
    })
    .await;
    s.kill9();
    assert_eq!(versions(&w).await, ["1", "2"]);
    s.start();
    let done = s
        .wait(&alice, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;

    // The alias is on the new version with no weights left; no version was published twice;
    // the ledger has one release of it.
    assert_eq!(
        live_alias(&w.dev, "orders-fn").await,
        ("2".into(), vec![]),
        "{done:#}"
    );
    assert_eq!(versions(&w).await, ["1", "2"]);
    let (code, ledger) = s
        .get("/api/v1/environments/orders/dev/releases", &alice)
        .await;
    assert_eq!(code, 200, "{ledger}");
    let releases: Vec<(&str, &str, &str)> = ledger["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["execution_id"].as_str().unwrap(),
                r["version"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(releases, [(id.as_str(), "2", "Deployed")]);
    assert_eq!(ledger["releases"][0]["approved_by"], "alice");

    // Nothing verified good before it: a rollback refuses, says why, and changes nothing.
    let operator = s.token("ops", "operator", &[]);
    let (code, report) = s
        .post(
            "/api/v1/environments/orders/dev/rollback",
            &operator,
            json!({}),
        )
        .await;
    assert_eq!(code, 409, "{report}");
    let why = report["results"][0]["error"].as_str().unwrap();
    assert!(
        why.contains("no verified-good release of lambda:orders-fn:live"),
        "{why}"
    );
    assert_eq!(live_alias(&w.dev, "orders-fn").await.0, "2");
}

/// Three `ferry serve` processes on one PostgreSQL, polling one repository: one push starts
/// one execution. The server driving it is killed (SIGKILL) while the Lambda canary bakes;
/// another adopts the orphaned execution, reconciles the interrupted deploy and finishes it:
/// the alias is on the new version with no split, no version was published twice, and the
/// ledger has exactly one release.
#[tokio::test]
async fn three_servers_on_one_postgres_start_one_execution_and_finish_it_when_its_driver_is_killed()
{
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    w.artifact_bucket().await;
    let url = fresh_database("three");
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let manifest = lambda_manifest(&w).replace("    approval: {approvers: [alice]}\n", "");
    let entry = format!("{}    poll: 1s\n", pipeline_entry("orders", &remote));
    let mut servers: Vec<Served> = ["a", "b", "c"]
        .iter()
        .map(|n| Served::configure_shared(&w, &root.path().join(n), &entry, &url))
        .collect();
    let tokens: Vec<String> = servers
        .iter()
        .map(|s| s.token("viewer", "viewer", &[]))
        .collect();
    for s in &mut servers {
        s.start();
    }
    let rev = remote.commit(&[
        ("ferry.yaml", &manifest),
        ("index.py", "def handler(e, c):\n    return 'v2'\n"),
    ]);

    // The poll lease: one server polls, and its execution is seen by every server.
    let id = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let all = servers[2].executions(&tokens[2], "orders").await;
            if let Some(e) = all.first() {
                break e["id"].as_str().unwrap().to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no server started an execution; their logs:\n{}",
                servers
                    .iter()
                    .map(Served::logs)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let store = ferry_engine::store::PostgresStore::open(&url).unwrap();
    use ferry_engine::store::Store as _;

    // Killed while the canary bakes: whichever server drives it.
    eventually("the canary split", || async {
        !live_alias(&w.dev, "orders-fn").await.1.is_empty()
    })
    .await;
    let driver = store.execution(&id).unwrap().unwrap().driver.unwrap();
    let pid: u32 = driver.split('@').next().unwrap().parse().unwrap();
    let killed = servers
        .iter()
        .position(|s| s.child.as_ref().is_some_and(|c| c.id() == pid))
        .unwrap_or_else(|| panic!("no test server is the driver {driver}"));
    servers[killed].kill9();
    assert_eq!(versions(&w).await, ["1", "2"]);

    let (other, token) = (&servers[(killed + 1) % 3], &tokens[(killed + 1) % 3]);
    let done = other
        .wait(token, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;
    // The survivors saw the orphan; the engine's claim let one of them drive it.
    let tried = (0..3)
        .filter(|i| *i != killed)
        .filter(|i| {
            servers[*i]
                .logs()
                .lines()
                .any(|l| l.contains("resuming") && l.contains(&id))
        })
        .count();
    assert!(tried >= 1, "no survivor resumed {id}");
    assert_eq!(
        live_alias(&w.dev, "orders-fn").await,
        ("2".into(), vec![]),
        "{done:#}"
    );
    assert_eq!(versions(&w).await, ["1", "2"]);
    let releases = store.releases("orders", Some("dev"), None, 10).unwrap();
    let ledger: Vec<(&str, &str, &str)> = releases
        .iter()
        .map(|r| {
            (
                r.execution_id.as_str(),
                r.record.version.as_str(),
                r.record.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(ledger, [(id.as_str(), "2", "Deployed")]);
    // Still one execution of that push, polled every second by whichever server leads.
    let all = other.executions(token, "orders").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["revision"], rev.as_str());
}

/// Two servers on one PostgreSQL that each run one action at a time (`actions_at_once: 1`),
/// and a stage of three: a local build that waits for a file, which holds A's (the driver's)
/// only slot, and two approvals. Both approvals are asked while the build runs — with slots
/// held while waiting, three actions could not run on two slots — on whichever server leased
/// them. Each approver then decides their own through the API without naming it. Nothing
/// here waits on time: the build holds its slot until the test lets it go.
#[tokio::test]
async fn waiting_approvals_hold_no_slot_of_a_server_and_each_approver_decides_their_own() {
    let w = world().await;
    let url = fresh_database("spill");
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let flag = root.path().join("let-the-build-end");
    // With the artifacts in S3, approvals read nothing of the driver's machine: any server
    // may run them. The build reads the driver's checkout: it stays on A.
    w.artifact_bucket().await;
    let manifest = format!(
        "pipeline: orders\nshared:\n  id: \"{shared}\"\n  region: us-east-1\n  artifacts: {{bucket: ferry-artifacts-{shared}, kms_alias: alias/ferry-orders}}\nsource:\n  branch: main\nstages:\n  - name: check\n    actions:\n      - name: compile\n        build:\n          env: {{FLAG: {flag}}}\n          buildspec: |\n            version: 0.2\n            phases:\n              build:\n                commands:\n                  - while [ ! -e \"$FLAG\" ]; do sleep 0.05; done\n      - name: security\n        approval: {{approvers: [alice]}}\n      - name: product\n        approval: {{approvers: [bob]}}\n",
        shared = w.accounts.shared,
        flag = flag.display()
    );
    let rev = remote.commit(&[("ferry.yaml", &manifest)]);
    let entry = pipeline_entry("orders", &remote);
    let [mut a, mut b] = ["a", "b"].map(|n| {
        Served::configure_shared_with(
            &w,
            &root.path().join(n),
            &entry,
            &url,
            "actions_at_once: 1\n",
        )
    });
    let (viewer, alice, bob) = (
        a.token("viewer", "viewer", &[]),
        a.token("alice", "approver", &[]),
        b.token("bob", "approver", &[]),
    );
    a.start();
    b.start();
    let (code, answer) = a.github_push("orders", "sp-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();

    // Both approvals wait while A's build holds A's only slot.
    // (Leased is not yet asked: the request is recorded once its action runs.)
    let store = ferry_engine::store::PostgresStore::open(&url).unwrap();
    use ferry_engine::store::Store as _;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let leases = loop {
        let leases = store.action_leases(&id).unwrap();
        let asked = store.pending_approvals(Some(&id)).unwrap().len();
        if leases.len() == 3 && leases.iter().all(|l| l.worker.is_some()) && asked == 2 {
            break leases;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the build and both approvals were not all running: {leases:#?}\n{}\n{}",
            a.logs(),
            b.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pid = |s: &Served| s.child.as_ref().unwrap().id().to_string();
    let holder = |action: &str| {
        leases
            .iter()
            .find(|l| l.action == action)
            .and_then(|l| l.worker.clone())
            .unwrap()
    };
    assert!(
        holder("compile").starts_with(&format!("{}@", pid(&a))),
        "A's driver runs its build: {leases:#?}"
    );
    // Each approval on a worker of either server (which one leased it first is a race).
    let workers = [pid(&a), pid(&b)].map(|p| format!("{p}.worker@"));
    for approval in ["security", "product"] {
        assert!(
            workers.iter().any(|w| holder(approval).starts_with(w)),
            "{approval} is not on a server's worker: {leases:#?}"
        );
    }

    // Neither names the approval: each goes to the one that admits them.
    let approve = format!("/api/v1/executions/{id}/stages/check/approve");
    let (code, got) = b.post(&approve, &bob, json!({})).await;
    assert_eq!(
        (code, got["approval"]["action"].as_str()),
        (200, Some("product")),
        "{got}"
    );
    let (code, got) = a.post(&approve, &alice, json!({})).await;
    assert_eq!(
        (code, got["approval"]["action"].as_str()),
        (200, Some("security")),
        "{got}"
    );
    std::fs::write(&flag, "").unwrap();
    a.wait(&viewer, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;
}

/// Two servers on one PostgreSQL: a push to one starts an execution it drives, and a client
/// of the other's live stream sees all of it — each stage and action, its log lines, the end
/// (LISTEN/NOTIFY carries them between the servers).
#[tokio::test]
async fn a_stream_client_of_one_server_sees_an_execution_another_server_drives() {
    let w = world().await;
    let url = fresh_database("stream");
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let rev = remote.commit(&[("ferry.yaml", &local_manifest("orders", "", ""))]);
    let entry = pipeline_entry("orders", &remote);
    let mut a = Served::configure_shared(&w, &root.path().join("a"), &entry, &url);
    let mut b = Served::configure_shared(&w, &root.path().join("b"), &entry, &url);
    let watcher = b.token("viewer", "viewer", &[]);
    a.start();
    b.start();
    let stream = open_events(&b, &watcher, "pipeline=orders", None).await;
    let own = a.token("viewer", "viewer", &[]);
    let (code, answer) = a.github_push("orders", "s-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    a.wait(&own, &id, "succeeded on A", |d| status(d) == "Succeeded")
        .await;
    let seen = tokio::time::timeout(
        Duration::from_secs(60),
        read_events(stream, |e| {
            e.event == "execution" && e.data["data"]["status"] == "Succeeded"
        }),
    )
    .await
    .unwrap_or_else(|_| {
        panic!(
            "B's stream did not see {id} end:\n{}\n{}",
            a.logs(),
            b.logs()
        )
    });
    assert!(
        seen.iter().all(|e| e.data["execution"] == id.as_str()),
        "{seen:#?}"
    );
    let kinds: std::collections::BTreeSet<&str> = seen.iter().map(|e| e.event.as_str()).collect();
    for kind in ["stage", "action", "log", "execution"] {
        assert!(kinds.contains(kind), "no {kind} event: {kinds:?}");
    }
    let line = format!("building {rev}");
    assert!(
        seen.iter()
            .any(|e| e.event == "log" && e.data["data"]["line"].as_str() == Some(line.as_str())),
        "the build's log line did not arrive: {seen:#?}"
    );
    // B drove nothing: the events came from A.
    assert!(!b.logs().contains("execution started"), "{}", b.logs());
    assert!(a.logs().contains(&format!("execution={id}")));
}

/// A PostgreSQL cluster of the test's own, to restart: on a free loopback port, from the
/// programs scripts/test names (`FERRY_TEST_PG_BIN`, run as `FERRY_TEST_PG_USER`).
struct OwnCluster {
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnCluster {
    fn pg(program: &str) -> Command {
        let bin = PathBuf::from(std::env::var("FERRY_TEST_PG_BIN").expect(
            "this test needs FERRY_TEST_PG_BIN, PostgreSQL's programs: run it through scripts/test",
        ));
        match std::env::var("FERRY_TEST_PG_USER")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", &user, "--"]).arg(bin.join(program));
                cmd
            }
            None => Command::new(bin.join(program)),
        }
    }

    fn run(mut cmd: Command) {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> OwnCluster {
        let dir = tempfile::tempdir().unwrap();
        if let Ok(user) = std::env::var("FERRY_TEST_PG_USER")
            && !user.is_empty()
        {
            OwnCluster::run({
                let mut c = Command::new("chown");
                c.arg(&user).arg(dir.path());
                c
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut init = OwnCluster::pg("initdb");
        init.arg("-D").arg(dir.path().join("data")).args([
            "-U",
            "ferry",
            "--auth=trust",
            "--no-sync",
        ]);
        OwnCluster::run(init);
        let cluster = OwnCluster { dir, port };
        cluster.ctl("start");
        cluster
    }

    fn ctl(&self, what: &str) {
        let mut cmd = OwnCluster::pg("pg_ctl");
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("server.log"))
            .args(["-w", "-t", "60", "-m", "fast", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off",
                self.port,
                self.dir.path().display()
            ))
            .arg(what);
        OwnCluster::run(cmd);
    }

    fn url(&self) -> String {
        format!("postgres://ferry@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let mut cmd = OwnCluster::pg("pg_ctl");
        cmd.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"]);
        let _ = cmd.output();
    }
}

/// The database restarts while a build runs: the server's connections are gone. It
/// reconnects, takes the execution up again, and the execution completes.
#[tokio::test]
async fn a_database_restart_mid_execution_is_survived_and_the_execution_completes() {
    let w = world().await;
    let cluster = OwnCluster::start();
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let flag = root.path().join("go");
    let rev = remote.commit(&[(
        "ferry.yaml",
        &format!(
            "pipeline: orders\nsource:\n  branch: main\nstages:\n  - name: build\n    actions:\n      - name: compile\n        build:\n          env: {{FLAG: {}}}\n          buildspec: |\n            version: 0.2\n            phases:\n              build:\n                commands:\n                  - while [ ! -e \"$FLAG\" ]; do sleep 0.05; done\n                  - echo built\n",
            flag.display()
        ),
    )]);
    let mut s = Served::configure_shared(
        &w,
        &root.path().join("server"),
        &pipeline_entry("orders", &remote),
        &cluster.url(),
    );
    let viewer = s.token("viewer", "viewer", &[]);
    s.start();
    let (code, answer) = s.github_push("orders", "r-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    s.wait(&viewer, &id, "started its build", |d| {
        d["stages"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "build" && s["actions"][0]["status"] == "InProgress")
    })
    .await;

    cluster.ctl("restart");
    std::fs::write(&flag, "").unwrap();
    let done = s
        .wait(&viewer, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;
    assert_eq!(stage_status(&done, "build"), "Succeeded", "{done:#}");
    assert!(!s.logs().contains("panicked"), "{}", s.logs());
}

/// A webhook receiver on a free loopback port: the bodies it was sent.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        let _ = tx.send(serde_json::from_str(body).unwrap_or(Value::Null));
                        let _ = conn
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                            .await;
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn an_approval_waiting_is_announced_on_sns_to_a_subscribed_queue_and_to_a_webhook() {
    let w = world().await;
    let sns = aws_sdk_sns::Client::new(&w.shared);
    let sqs = aws_sdk_sqs::Client::new(&w.shared);
    let topic = sns
        .create_topic()
        .name("ferry-approvals")
        .send()
        .await
        .unwrap();
    let topic = topic.topic_arn().unwrap().to_owned();
    let queue = sqs
        .create_queue()
        .queue_name("approvals")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&queue_arn)
        .send()
        .await
        .unwrap();
    let (hook, mut hooked) = receiver().await;

    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let rev = remote.commit(&[(
        "ferry.yaml",
        &local_manifest("told", "", "{approvers: [alice]}"),
    )]);
    let extra = format!(
        "url: https://ferry.example.com\nnotifications:\n  - sns: {topic}\n  - webhook: {hook}\n"
    );
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("told", &remote), &extra);
    let alice = s.token("alice", "approver", &[]);
    s.start();
    let (code, answer) = s.github_push("told", "n-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    let link = format!("https://ferry.example.com/executions/{id}");

    // The webhook gets Slack's shape: one `text`, with the link.
    let posted = tokio::time::timeout(Duration::from_secs(60), hooked.recv())
        .await
        .expect("no webhook notification")
        .unwrap();
    let text = posted["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("{id} waits for approval of release")),
        "{text}"
    );
    assert!(text.contains(&link), "{text}");

    // SNS delivers the same to the subscribed queue.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let message = loop {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(body) = got.messages().first().and_then(|m| m.body()) {
            break body.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no SNS message in the queue"
        );
    };
    let envelope: Value = serde_json::from_str(&message).unwrap();
    let body = envelope["Message"].as_str().unwrap();
    assert!(
        body.contains("waits for approval") && body.contains(&link),
        "{envelope:#}"
    );
    assert!(envelope["Subject"].as_str().unwrap().contains(&id));

    // A rejection fails the execution: that is announced too.
    let (code, _) = s
        .post(
            &format!("/api/v1/executions/{id}/stages/release/reject"),
            &alice,
            json!({"comment": "not now"}),
        )
        .await;
    assert_eq!(code, 200);
    let posted = tokio::time::timeout(Duration::from_secs(60), hooked.recv())
        .await
        .expect("no failure notification")
        .unwrap();
    assert!(
        posted["text"]
            .as_str()
            .unwrap()
            .contains(&format!("{id} failed")),
        "{posted}"
    );
}

#[tokio::test]
async fn over_https_the_cli_reads_and_approves_with_its_token() {
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    // A throwaway CA, and the server's certificate for 127.0.0.1 signed by it.
    let (ca, cert, key) = (
        root.path().join("ca.pem"),
        root.path().join("cert.pem"),
        root.path().join("key.pem"),
    );
    std::fs::write(
        root.path().join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(root.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=ferry test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    assert!(cert.exists() && key.exists());
    let remote = Remote::new(root.path());
    let rev = remote.commit(&[(
        "ferry.yaml",
        &local_manifest("tls", "", "{approvers: [alice]}"),
    )]);
    let mut s = Served::configure(
        &w,
        root.path(),
        &pipeline_entry("tls", &remote),
        "tls: {cert: cert.pem, key: key.pem}\n",
    );
    s.env
        .push(("FERRY_CA_FILE".into(), ca.display().to_string()));
    let alice = s.token("alice", "approver", &[]);
    let admin = s.token("root", "admin", &[]);
    s.start();
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    s.http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(s.url.replace("https://", "http://") + "/healthz")
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    let (code, answer) = s.github_push("tls", "t-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    s.wait(&alice, &id, "waited", |d| {
        stage_status(d, "release") == "AwaitingApproval"
    })
    .await;

    let out = s
        .cli(&alice)
        .args(["status", &id, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(view["pending_approvals"][0]["stage"], "release");

    let out = s
        .cli("ferry_not-a-token")
        .args(["approve", &id, "release"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unauthenticated"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = s
        .cli(&alice)
        .args(["approve", &id, "release", "--comment", "ok"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("approved stage release of {id} as alice")),
        "{stderr}"
    );
    s.wait(&alice, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;

    let out = s
        .cli(&admin)
        .args(["audit", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit: Value = serde_json::from_slice(&out.stdout).unwrap();
    let approvals: Vec<(&str, u64)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "approve")
        .map(|e| {
            (
                e["identity"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(approvals, [("alice", 200), ("anonymous", 401)]);
    // The token went to the server, never to the output or the audit log.
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&alice));
}

/// The image's entrypoint (deploy/entrypoint.sh) as ECS runs it: server.yaml and the webhook
/// secret arrive as environment variables, become files only its user reads, and the secret
/// is gone from the server's environment.
#[tokio::test]
async fn the_images_entrypoint_serves_from_its_environment_without_keeping_the_secret_in_it() {
    use std::os::unix::fs::PermissionsExt;
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let revision = remote.commit(&[("ferry.yaml", &local_manifest("boxed", "", ""))]);
    let run_dir = root.path().join("run");
    let mut s = Served::configure(&w, root.path(), "", "");
    let server_yaml = format!(
        "state: {}\nlisten: 127.0.0.1:0\npipelines:\n  - name: boxed\n    repo: {}\n    webhook_secret_file: {}/webhook.secret\n",
        root.path().join("state").display(),
        remote.url(),
        run_dir.display()
    );
    let entrypoint = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/entrypoint.sh");
    let mut cmd = Command::new(entrypoint);
    cmd.env_clear()
        .envs(s.env.iter().map(|(k, v)| (k, v)))
        .env("PATH", std::env::var("PATH").unwrap())
        .env("FERRY_BIN", assert_cmd::cargo::cargo_bin("ferry"))
        .env("FERRY_RUN_DIR", &run_dir)
        .env("FERRY_SERVER_YAML", &server_yaml)
        .env("FERRY_WEBHOOK_SECRET", SECRET);
    s.start_with(cmd);

    let health = s
        .http
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let (code, answer) = s
        .github_push("boxed", "d-1", &revision, "dev", SECRET)
        .await;
    assert_eq!(
        (code, answer["outcome"].as_str()),
        (202, Some("started")),
        "{answer}"
    );

    for file in ["server.yaml", "webhook.secret"] {
        let mode = std::fs::metadata(run_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    // `exec`: the server is the entrypoint's process, and its environment has no secret.
    let pid = s.child.as_ref().unwrap().id();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("FERRY_RUN_DIR="), "{environ}");
    assert!(!environ.contains(SECRET) && !environ.contains("FERRY_SERVER_YAML"));
}

/// A form's body, as a browser sends it.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The sign-in form posted as a browser posts it.
async fn sign_in_form(
    http: &reqwest::Client,
    url: &str,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    http.post(format!("{url}/login"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap()
}

/// `name=value` of the session cookie a sign-in set.
fn session_of(signed: &reqwest::Response) -> String {
    signed.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// What `GET /api/v1/session` answers a request with `cookie`.
async fn session_status(http: &reqwest::Client, url: &str, cookie: &str) -> u16 {
    http.get(format!("{url}/api/v1/session"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The dashboard's sign-in over plain HTTP: the form makes an HttpOnly, SameSite=Strict
/// cookie; a change the cookie asks for needs the session's CSRF token; signing out and
/// revoking the token both end the session; pages without one go to /login.
#[tokio::test]
async fn a_browser_session_needs_its_csrf_token_to_change_anything_and_ends_with_its_token() {
    let w = world().await;
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    remote.commit(&[("ferry.yaml", &local_manifest("web", "", ""))]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("web", &remote), "");
    let token = s.token("dana", "operator", &[]);
    s.start();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // No session: a page sends the browser to sign in, and comes back after.
    let page = http
        .get(format!("{}/pipelines/web/history", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(
        page.headers()["location"],
        "/login?next=/pipelines/web/history"
    );
    // An unknown API path is still the API's JSON 404.
    let missing = http
        .get(format!("{}/api/v1/nothing", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(
        missing.json::<Value>().await.unwrap()["error"]["code"],
        "not_found"
    );

    // A wrong token: the form again, with why.
    let refused = sign_in_form(&http, &s.url, &[("token", "ferry_guessed"), ("next", "/")]).await;
    assert_eq!(refused.status().as_u16(), 401);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("not one this server knows")
    );

    let signed = sign_in_form(
        &http,
        &s.url,
        &[("token", token.as_str()), ("next", "//evil.example/")],
    )
    .await;
    assert_eq!(signed.status().as_u16(), 303);
    assert_eq!(
        signed.headers()["location"],
        "/",
        "only a local path is followed"
    );
    let set = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(
        !set.contains(&token),
        "the cookie is a session, not the token"
    );
    let cookie = session_of(&signed);

    let session: Value = http
        .get(format!("{}/api/v1/session", s.url))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session["name"], "dana");
    let csrf = session["csrf"].as_str().unwrap().to_owned();
    let html = http
        .get(format!("{}/", s.url))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status().as_u16(), 200);
    let posted = http
        .post(format!("{}/pipelines/web/history", s.url))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        posted.status().as_u16(),
        405,
        "a page is not a target for changes"
    );
    assert!(
        html.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    // A change with the cookie alone is refused; with the token from the page it is made.
    let start = |with_csrf: bool| {
        let mut req = http
            .post(format!("{}/api/v1/pipelines/web/executions", s.url))
            .header("Cookie", &cookie)
            .json(&json!({}));
        if with_csrf {
            req = req.header("X-CSRF-Token", &csrf);
        }
        req.send()
    };
    let forged = start(false).await.unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(
        forged.json::<Value>().await.unwrap()["error"]["code"],
        "csrf"
    );
    assert_eq!(start(true).await.unwrap().status().as_u16(), 201);

    // Signing out needs the token too; then the cookie is worth nothing.
    let out = |csrf: &str| {
        http.post(format!("{}/logout", s.url))
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", csrf)]))
            .send()
    };
    assert_eq!(out("forged").await.unwrap().status().as_u16(), 403);
    assert_eq!(out(&csrf).await.unwrap().status().as_u16(), 303);
    assert_eq!(session_status(&http, &s.url, &cookie).await, 401);

    // Revoking the token ends a session made with it.
    let again = sign_in_form(&http, &s.url, &[("token", token.as_str())]).await;
    let cookie = session_of(&again);
    let revoke = s
        .ferry()
        .args(["serve", "token", "revoke", "--name", "dana", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(revoke.status.success());
    assert_eq!(session_status(&http, &s.url, &cookie).await, 401);
}

/// Entry gates through the server: a freeze holds dev, the execution's view says so, and only
/// an approver with a reason lets the release past — from the command line, through the
/// server; the ledger and the audit log keep who and why.
#[tokio::test]
async fn a_freeze_holds_a_release_until_an_approver_overrides_it_with_a_reason() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    w.artifact_bucket().await;
    let frozen = lambda_manifest(&w).replace(
        "    approval: {approvers: [alice]}\n",
        "    gates:\n      windows:\n        - deny: '* * * * *'\n          time_zone: Europe/Berlin\n",
    );
    let root = tempfile::tempdir().unwrap();
    let remote = Remote::new(root.path());
    let rev = remote.commit(&[
        ("ferry.yaml", &frozen),
        ("index.py", "def handler(e, c):\n    return 'v2'\n"),
    ]);
    let mut s = Served::configure(&w, root.path(), &pipeline_entry("orders", &remote), "");
    let viewer = s.token("watcher", "viewer", &[]);
    let alice = s.token("alice", "approver", &[]);
    let admin = s.token("root", "admin", &[]);
    s.start();
    let (code, answer) = s.github_push("orders", "g-1", &rev, "dev", SECRET).await;
    assert_eq!(code, 202, "{answer}");
    let id = answer["execution"].as_str().unwrap().to_owned();
    let held = s
        .wait(&viewer, &id, "held by the freeze", |d| {
            d["gates"][0]["holds"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        })
        .await;
    assert_eq!(held["gates"][0]["stage"], "dev", "{held:#}");
    let hold = held["gates"][0]["holds"][0].as_str().unwrap();
    assert!(
        hold.starts_with(
            "frozen by deny `* * * * *` (Europe/Berlin); stays closed for the next 31 days"
        ),
        "{hold}"
    );

    let over = format!("/api/v1/executions/{id}/stages/dev/override");
    let (code, answer) = s.post(&over, &viewer, json!({"reason": "x"})).await;
    assert_eq!(code, 403, "{answer}");
    let (code, answer) = s.post(&over, &alice, json!({"reason": " "})).await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (400, Some("reason_required")),
        "{answer}"
    );
    let (code, answer) = s
        .post(
            &format!("/api/v1/executions/{id}/stages/build/override"),
            &alice,
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(
        (code, answer["error"]["code"].as_str()),
        (409, Some("no_gate_holding")),
        "{answer}"
    );

    let out = s
        .cli(&alice)
        .args([
            "override",
            &id,
            "dev",
            "--reason",
            "hotfix for INC-42",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = common::json(&out);
    assert_eq!(
        report["gates"]["overridden"]["identity"], "alice",
        "{report:#}"
    );

    let done = s
        .wait(&viewer, &id, "succeeded", |d| status(d) == "Succeeded")
        .await;
    assert_eq!(live_alias(&w.dev, "orders-fn").await.0, "2", "{done:#}");
    let (_, ledger) = s
        .get("/api/v1/environments/orders/dev/releases", &viewer)
        .await;
    assert_eq!(
        ledger["releases"][0]["gate_override"], "alice: hotfix for INC-42",
        "{ledger:#}"
    );
    let (_, audit) = s.get("/api/v1/audit", &admin).await;
    let overrides: Vec<(&str, &str, u64)> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "override")
        .map(|e| {
            (
                e["identity"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
            )
        })
        .rev()
        .collect();
    let ok = format!("{id} dev: hotfix for INC-42");
    assert_eq!(
        overrides,
        [
            ("watcher", format!("{id} dev: x").as_str(), 403),
            ("alice", format!("{id} dev").as_str(), 400),
            ("alice", format!("{id} build: x").as_str(), 409),
            ("alice", ok.as_str(), 200),
        ],
        "{audit:#}"
    );
}
