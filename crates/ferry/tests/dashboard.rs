//! The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
//! (tests/browser/drive.mjs; scripts/test installs both). `scripts/demo --dashboard` lays the
//! sandbox (its own moto, four accounts), starts `ferry serve` and pushes the orders example;
//! from there every step is a person in a browser — signing in, watching the pipeline move
//! without a reload, approving qa, rolling dev back — checked in the page and in the accounts.
//! Each page's screenshot goes to docs/ (docs/dashboard.md shows them), and the test prints
//! the first render time of the log page with a 2 000-line log and the execution page's
//! weight, which the notes quote. Nothing is timed as a pass/fail condition.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_test_support::admin_config_at;
use ferry_test_support::fixtures::{live_alias, recover, trip};
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `scripts/demo --dashboard`, its server and its sandbox, stopped when the test ends.
struct Demo {
    home: tempfile::TempDir,
    child: Child,
}

impl Demo {
    fn start() -> Demo {
        let home = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(home.path().join("demo.log")).unwrap();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(root().join("scripts/demo"))
                .arg("--dashboard")
                .env("FERRY_DEMO_HOME", home.path())
                // FERRY_BIN: measure another build (a release one) with the same test.
                .env(
                    "FERRY_BIN",
                    std::env::var_os("FERRY_BIN")
                        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin("ferry").into()),
                )
                .env("NO_COLOR", "1")
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap()
        };
        let demo = Demo { home, child };
        demo.wait_for("server/execution");
        demo
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn wait_for(&self, rel: &str) {
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.read(rel).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the demo never wrote {rel}; its log:\n{}",
                self.read("demo.log")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn url(&self) -> String {
        self.read("server/url")
    }

    fn token(&self, who: &str) -> String {
        self.read(&format!("server/{who}.token"))
    }

    /// A commit pushed to the demo's forge, whose hook sends the webhook.
    fn push(&self, edit: impl Fn(&Path)) {
        let workspace = self.path("workspace");
        edit(&workspace);
        let git = |args: &[&str]| {
            let out = Command::new("git")
                .arg("-C")
                .arg(&workspace)
                .args(["-c", "user.name=dev", "-c", "user.email=dev@example.com"])
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["commit", "-qam", "a second change"]);
        let forge = self.path("orders.git");
        git(&[
            "push",
            "-q",
            "--force",
            forge.to_str().unwrap(),
            "HEAD:main",
        ]);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(-i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        let _ = Command::new(root().join("scripts/demo"))
            .arg("--stop")
            .env("FERRY_DEMO_HOME", self.home.path())
            .output();
    }
}

/// The browser, one command at a time.
struct Browser {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    fn start() -> Browser {
        let dir = root().join("crates/ferry/tests/browser");
        let tools = root().join(".tools/browser");
        assert!(
            tools.join("node_modules/playwright-core").exists(),
            "playwright-core is not installed: scripts/test installs it (npm ci in {})",
            tools.display()
        );
        let mut child = Command::new("node")
            .arg(dir.join("drive.mjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Browser {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, cmd: &Value) -> Result<Value, String> {
        writeln!(self.stdin, "{cmd}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let answer: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the driver answered {line:?}: {e}"));
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or_default().to_owned())
        }
    }

    fn must(&mut self, cmd: &Value) -> Value {
        let shown = cmd.to_string();
        self.send(cmd).unwrap_or_else(|e| panic!("{shown}: {e}"))
    }

    fn sign_in(&mut self, page: &str, url: &str, token: &str) {
        self.must(&json!({"op": "open", "page": page}));
        self.must(
            &json!({"op": "goto", "page": page, "url": format!("{url}/login"), "ready": false}),
        );
        self.must(&json!({"op": "fill", "page": page, "selector": "#token", "text": token}));
        self.must(&json!({"op": "click", "page": page, "selector": "button[type=submit]"}));
        self.must(
            &json!({"op": "wait_text", "page": page, "selector": "#who", "text": "Sign out"}),
        );
    }

    fn goto(&mut self, page: &str, url: &str) -> u64 {
        self.must(&json!({"op": "goto", "page": page, "url": url}))
            .as_u64()
            .unwrap()
    }

    fn wait_text(&mut self, page: &str, selector: &str, text: &str) {
        self.must(&json!({"op": "wait_text", "page": page, "selector": selector, "text": text}));
    }

    fn count(&mut self, page: &str, selector: &str) -> u64 {
        self.must(&json!({"op": "count", "page": page, "selector": selector}))
            .as_u64()
            .unwrap()
    }

    fn eval(&mut self, page: &str, script: &str) -> Value {
        self.must(&json!({"op": "eval", "page": page, "script": script}))
    }

    fn screenshot(&mut self, page: &str, name: &str) {
        let path = root().join("docs/screenshots").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        self.must(&json!({"op": "screenshot", "page": page, "path": path}));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fetch from inside the page, as a forged or hand-made request would be; → (status, code).
fn page_fetch(b: &mut Browser, page: &str, path: &str, csrf: bool) -> (u64, String) {
    let header = if csrf {
        "const me = await (await fetch('/api/v1/session')).json(); headers['X-CSRF-Token'] = me.csrf;"
    } else {
        ""
    };
    let doc = b.eval(
        page,
        &format!(
            "const headers = {{'Content-Type': 'application/json'}}; {header}
             const r = await fetch('{path}', {{method: 'POST', headers, body: '{{\"comment\": \"forged\"}}'}});
             const d = await r.json().catch(() => ({{}}));
             return [r.status, (d.error && d.error.code) || ''];"
        ),
    );
    (
        doc[0].as_u64().unwrap(),
        doc[1].as_str().unwrap().to_owned(),
    )
}

fn stage(name: &str) -> String {
    format!("[aria-label=\"Stage {name}\"] header")
}

async fn live_version(endpoint: &str, account: &str) -> String {
    let config = admin_config_at(endpoint, account).await;
    live_alias(&config, "orders-fn").await.0
}

async fn decide(url: &str, token: &str, execution: &str, stage: &str, comment: &str) {
    let resp = reqwest::Client::new()
        .post(format!(
            "{url}/api/v1/executions/{execution}/stages/{stage}/approve"
        ))
        .bearer_auth(token)
        .json(&json!({"comment": comment}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        resp.text().await.unwrap()
    );
}

/// Sets an alarm's state as a breached metric (or its recovery) would.
async fn set_alarm(endpoint: &str, account: &str, name: &str, firing: bool) {
    let config = admin_config_at(endpoint, account).await;
    if firing {
        trip(&config, name).await;
    } else {
        recover(&config, name).await;
    }
}

/// The figures the notes quote (`--no-capture` shows them): measured, never asserted.
#[allow(clippy::print_stdout)]
fn report(figures: &str) {
    println!("{figures}");
}

#[test]
fn a_person_in_a_browser_watches_approves_and_rolls_back_the_orders_pipeline() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let demo = Demo::start();
    let url = demo.url();
    let endpoint = demo.read("endpoint");
    let execution = demo.read("server/execution");
    let mut b = Browser::start();

    // Signing in: a wrong token is refused with the reason, a right one opens the dashboard.
    b.must(&json!({"op": "open", "page": "stranger"}));
    b.must(&json!({"op": "goto", "page": "stranger", "url": format!("{url}/executions/{execution}"), "ready": false}));
    let at = b.must(&json!({"op": "url", "page": "stranger"}));
    assert!(at.as_str().unwrap().contains("/login?next="), "{at}");
    b.must(
        &json!({"op": "fill", "page": "stranger", "selector": "#token", "text": "ferry_guessed"}),
    );
    b.must(&json!({"op": "click", "page": "stranger", "selector": "button[type=submit]"}));
    b.wait_text("stranger", ".error", "not one this server knows");
    b.screenshot("stranger", "login.png");

    // ops watches the execution: the stages move with no reload (a mark set in the page stays).
    b.sign_in("ops", &url, &demo.token("ops"));
    b.goto("ops", &format!("{url}/executions/{execution}"));
    b.eval("ops", "window.__not_reloaded = true; return null;");
    b.wait_text("ops", &stage("build"), "Succeeded");
    b.wait_text("ops", &stage("dev"), "Succeeded");
    b.wait_text("ops", &stage("qa"), "Awaiting approval");
    assert_eq!(
        b.eval("ops", "return window.__not_reloaded === true;"),
        true
    );
    b.screenshot("ops", "execution.png");

    // carol, a viewer, sees what qa would release but no control to approve it; forged
    // anyway, the server refuses it.
    b.sign_in("carol", &url, &demo.token("carol"));
    let review = format!("{url}/executions/{execution}/review/qa");
    b.goto("carol", &review);
    b.wait_text("carol", "main", "The artifacts you approve");
    assert_eq!(b.count("carol", "button:has-text(\"Approve\")"), 0);
    let approve = format!("/api/v1/executions/{execution}/stages/qa/approve");
    assert_eq!(
        page_fetch(&mut b, "carol", &approve, true),
        (403, "role_too_low".to_owned())
    );

    // alice, an approver: without the page's CSRF token her browser's request is refused.
    b.sign_in("alice", &url, &demo.token("alice"));
    assert_eq!(
        page_fetch(&mut b, "alice", &approve, false),
        (403, "csrf".to_owned())
    );
    // In the page: what changes, the digests, the access check; she approves.
    b.goto("alice", &review);
    b.wait_text("alice", "main", "sha256:");
    b.wait_text("alice", "main", "Access check");
    b.screenshot("alice", "approval.png");
    b.must(&json!({"op": "fill", "page": "alice", "selector": "#comment", "text": "qa checked in the browser"}));
    b.must(&json!({"op": "click", "page": "alice", "selector": "button:has-text(\"Approve\")"}));
    b.wait_text("alice", "[role=status]", "Approved");
    // ops's page follows, still without a reload.
    b.wait_text("ops", &stage("qa"), "Succeeded");
    b.wait_text("ops", &stage("prod"), "Awaiting approval");
    assert_eq!(
        b.eval("ops", "return window.__not_reloaded === true;"),
        true
    );

    // prod needs a comment: approving without one is refused in the API's words, on the page.
    b.goto(
        "alice",
        &format!("{url}/executions/{execution}/review/prod"),
    );
    b.must(&json!({"op": "click", "page": "alice", "selector": "button:has-text(\"Approve\")"}));
    b.wait_text("alice", "[role=alert]", "comment");

    // prod's 5xx alarm fires while its approval waits: the gates hold prod, ops's page says
    // so, and alice lets the release past with a reason, in the browser.
    rt.block_on(set_alarm(
        &endpoint,
        "444444444444",
        "orders-api-5xx-prod",
        true,
    ));
    b.wait_text("ops", "main", "Stage prod is held by its gates");
    b.wait_text("ops", "main", "alarm `orders-api-5xx-prod` is in ALARM");
    b.goto("carol", &format!("{url}/executions/{execution}"));
    b.wait_text("carol", "main", "Stage prod is held by its gates");
    assert_eq!(
        b.count("carol", "button:has-text(\"Override the gates\")"),
        0,
        "a viewer may not override"
    );
    b.goto("alice", &format!("{url}/executions/{execution}"));
    b.wait_text("alice", "main", "Stage prod is held by its gates");
    b.screenshot("alice", "gates.png");
    b.must(&json!({"op": "click", "page": "alice", "selector": "button:has-text(\"Override the gates\")"}));
    b.wait_text("alice", "[role=alert]", "reason");
    b.must(&json!({"op": "fill", "page": "alice", "selector": "#reason-prod", "text": "the 5xx are the load test"}));
    b.must(&json!({"op": "click", "page": "alice", "selector": "button:has-text(\"Override the gates\")"}));
    b.wait_text("alice", "[role=status]", "Overridden");
    b.wait_text(
        "ops",
        "main",
        "Gates of prod overridden by alice: the 5xx are the load test",
    );
    rt.block_on(set_alarm(
        &endpoint,
        "444444444444",
        "orders-api-5xx-prod",
        false,
    ));

    // prod needs alice and bob; then the release is everywhere.
    rt.block_on(async {
        decide(&url, &demo.token("alice"), &execution, "prod", "alice: go").await;
        decide(&url, &demo.token("bob"), &execution, "prod", "bob: go").await;
    });
    b.wait_text("ops", "main dl", "Succeeded");
    let released = rt.block_on(live_version(&endpoint, "222222222222"));

    // A second change, whose build writes 2 000 lines: it reaches dev and waits at qa.
    demo.push(|w| {
        let spec = w.join("buildspec.yml");
        let text = std::fs::read_to_string(&spec).unwrap().replacen(
            "      - mkdir -p dist\n",
            "      - mkdir -p dist\n      - 'for i in $(seq 1 2000); do printf \"\\033[32mstep %s\\033[0m of the build: ok\\n\" \"$i\"; done'\n",
            1,
        );
        std::fs::write(&spec, text).unwrap();
        let handler = w.join("app/function/handler.py");
        let code = std::fs::read_to_string(&handler).unwrap() + "\n# the second change\n";
        std::fs::write(&handler, code).unwrap();
    });
    let second = {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let id: Value = b.eval(
                "ops",
                "const r = await (await fetch('/api/v1/pipelines/orders/executions?limit=1')).json(); return r[0].id;",
            );
            if id.as_str() != Some(execution.as_str()) {
                break id.as_str().unwrap().to_owned();
            }
            assert!(Instant::now() < deadline, "the second push started nothing");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    b.goto("ops", &format!("{url}/executions/{second}"));
    b.wait_text("ops", &stage("qa"), "Awaiting approval");
    let newer = rt.block_on(live_version(&endpoint, "222222222222"));
    assert_ne!(newer, released, "the second change is live in dev");
    // Its qa approval says exactly what changes: the function's code, not the service's image.
    b.goto("ops", &format!("{url}/executions/{second}/review/qa"));
    b.wait_text("ops", "main", "image unchanged");
    b.wait_text("ops", "tbody", "code SHA-256");
    let code_line: Value = b.eval(
        "ops",
        "return [...document.querySelectorAll('tbody div.mono')].map((d) => d.textContent).find((t) => t.startsWith('code SHA-256'));",
    );
    assert!(code_line.as_str().unwrap().contains(" → "), "{code_line}");
    b.screenshot("ops", "approval-change.png");

    // The log: 2 000 lines, coloured, searchable.
    let log = format!("{url}/executions/{second}/log/build.package");
    let first_render_ms = b.goto("ops", &log);
    let timings = b.eval(
        "ops",
        "return performance.getEntriesByType('resource').map((e) => [e.name.replace(location.origin, ''), Math.round(e.startTime), Math.round(e.responseStart), Math.round(e.responseEnd)]).concat([['html', 0, Math.round(performance.getEntriesByType('navigation')[0].responseStart), Math.round(performance.getEntriesByType('navigation')[0].responseEnd)]]);",
    );
    report(&format!(
        "log page requests [path, start, first byte, end] ms: {timings}"
    ));
    b.wait_text("ops", ".log", "step 2000 of the build");
    assert!(
        b.count("ops", ".log .a-32") >= 2000,
        "ANSI green became a class"
    );
    assert!(b.count("ops", ".log div:not(.hidden)") >= 2000);
    b.screenshot("ops", "log.png");
    b.must(&json!({"op": "fill", "page": "ops", "selector": "#search", "text": "step 1999 "}));
    assert_eq!(b.count("ops", ".log div:not(.hidden)"), 1);
    let log_weight = b.must(&json!({"op": "weight", "page": "ops"}));

    // Rolling dev's function back from the releases page puts the first release back in the
    // account. (The second change left the service's image as it was: it has nothing older.)
    b.goto("ops", &format!("{url}/pipelines/orders/releases"));
    b.wait_text("ops", "main", "Deployed");
    b.must(&json!({"op": "click", "page": "ops", "selector": "section[aria-labelledby=env-dev] button:has-text(\"Roll back function\")"}));
    b.wait_text("ops", "[role=status]", "back on version");
    assert_eq!(
        rt.block_on(live_version(&endpoint, "222222222222")),
        released
    );
    b.screenshot("ops", "releases.png");

    // The second release is found bad: blocked through the API, the releases page says why
    // beside each of its entries.
    rt.block_on(async {
        let resp = reqwest::Client::new()
            .post(format!("{url}/api/v1/releases/orders/{second}/block"))
            .bearer_auth(demo.token("ops"))
            .json(&json!({"reason": "totals off by a cent"}))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    });
    b.goto("ops", &format!("{url}/pipelines/orders/releases"));
    b.wait_text("ops", "main", "Blocked: totals off by a cent");

    // The other pages render what the API says.
    let execution_ms = b.goto("ops", &format!("{url}/executions/{second}"));
    let execution_weight = b.must(&json!({"op": "weight", "page": "ops"}));
    // Someone points dev's alias by hand: the overview says the account drifted.
    rt.block_on(async {
        let config = admin_config_at(&endpoint, "222222222222").await;
        aws_sdk_lambda::Client::new(&config)
            .update_alias()
            .function_name("orders-fn")
            .name("live")
            .function_version(&newer)
            .send()
            .await
            .unwrap();
    });
    b.goto("ops", &format!("{url}/"));
    b.wait_text("ops", "table", &format!("Drift: the account runs v{newer}"));
    b.wait_text("ops", "table", "matches the account");
    b.screenshot("ops", "overview.png");
    b.goto("ops", &format!("{url}/pipelines/orders/delivery"));
    b.wait_text("ops", "main", "Deployment frequency");
    b.screenshot("ops", "delivery.png");
    b.goto(
        "ops",
        &format!("{url}/pipelines/orders/history?status=Succeeded"),
    );
    b.wait_text("ops", "tbody", &execution);
    assert_eq!(
        b.count("ops", "tbody tr"),
        1,
        "only the succeeded execution"
    );
    b.screenshot("ops", "history.png");
    b.goto("ops", &format!("{url}/audit"));
    b.wait_text("ops", "tbody", "sign-in");
    b.wait_text("ops", "tbody", "403 csrf");
    b.screenshot("ops", "audit.png");
    // A viewer gets no audit link, and the API refuses it anyway.
    assert_eq!(b.count("carol", "nav a[href=\"/audit\"]"), 0);

    // At a phone's width, stages stack and nothing needs sideways scrolling.
    b.must(&json!({"op": "open", "page": "phone", "width": 390, "height": 800}));
    b.sign_in("phone", &url, &demo.token("alice"));
    b.goto("phone", &format!("{url}/executions/{execution}"));
    let overflow = b.eval(
        "phone",
        "return document.documentElement.scrollWidth > window.innerWidth + 1;",
    );
    assert_eq!(overflow, false, "the page scrolls sideways at 390 px");
    b.screenshot("phone", "execution-phone.png");

    report(&format!(
        "dashboard figures: log page with 2 000 lines, first render {first_render_ms} ms, \
         {log_weight} bytes; execution page {execution_ms} ms, {execution_weight} bytes"
    ));
}
