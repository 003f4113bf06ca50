//! The README's main command, end to end: `scripts/demo` starts its own sandbox and runs
//! examples/orders in it — four accounts bootstrapped and verified, the application built,
//! tested and promoted dev → qa → prod with auto-approval — and this test checks what it left
//! in every account. Then `scripts/demo --alarm`: the dev canary's alarm fires, and the
//! function is back on its old version with the ledger saying so.
//!
//! The example's account ids are fixed, so the demo gets a sandbox of its own rather than the
//! suite's emulator: on a server that had seen an earlier run, every deploy would find its
//! release already there (regression: the test failed when run twice against one emulator).

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_test_support::admin_config_at;
use serde_json::Value;

const SHARED: &str = "111111111111";
const ACCOUNTS: [(&str, &str); 3] = [
    ("dev", "222222222222"),
    ("qa", "333333333333"),
    ("prod", "444444444444"),
];

fn demo_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/demo")
}

/// Stops the demo's sandbox (its moto server) when the test ends, passed or not.
struct Sandbox<'a>(&'a Path);

impl Drop for Sandbox<'_> {
    fn drop(&mut self) {
        let _ = Command::new(demo_script())
            .arg("--stop")
            .env("FERRY_DEMO_HOME", self.0)
            .output();
    }
}

impl Sandbox<'_> {
    fn endpoint(&self) -> String {
        std::fs::read_to_string(self.0.join("endpoint"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

fn demo(home: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(demo_script())
        .args(args)
        .env("FERRY_DEMO_HOME", home)
        .env("FERRY_BIN", assert_cmd::cargo::cargo_bin("ferry"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "scripts/demo {args:?} failed:\n{text}"
    );
    out
}

fn releases(home: &Path, env: &str) -> Vec<Value> {
    let manifest = home.join("workspace/ferry.yaml");
    let out = Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["releases", env, "--format", "json", "--state-dir"])
        .arg(home.join("state"))
        .arg("-f")
        .arg(&manifest)
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["releases"].as_array().unwrap().clone()
}

async fn live_version(endpoint: &str, account: &str) -> String {
    let config = admin_config_at(endpoint, account).await;
    let alias = aws_sdk_lambda::Client::new(&config)
        .get_alias()
        .function_name("orders-fn")
        .name("live")
        .send()
        .await
        .unwrap();
    assert!(
        alias
            .routing_config()
            .and_then(|r| r.additional_version_weights())
            .is_none_or(|w| w.is_empty()),
        "a canary split was left behind"
    );
    alias.function_version().unwrap().to_owned()
}

async fn service_image(endpoint: &str, account: &str, env: &str) -> (String, String) {
    let config = admin_config_at(endpoint, account).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let service = ecs
        .describe_services()
        .cluster(format!("orders-{env}"))
        .services("orders-api")
        .send()
        .await
        .unwrap();
    let td = service.services()[0].task_definition().unwrap().to_owned();
    let def = ecs
        .describe_task_definition()
        .task_definition(&td)
        .send()
        .await
        .unwrap();
    (
        td,
        def.task_definition().unwrap().container_definitions()[0]
            .image()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn the_demo_promotes_through_every_account_and_rolls_back_on_an_alarm() {
    let home = tempfile::tempdir().unwrap();
    let sandbox = Sandbox(home.path());
    let out = demo(home.path(), &["--auto-approve"]);
    let endpoint = sandbox.endpoint();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("85 edges against the policies in the accounts: 85 allowed, 0 denied"),
        "{text}"
    );
    assert!(
        text.contains("calling the orders API with token ***"),
        "the secret was not masked:\n{text}"
    );

    // The image the build registered in the shared ECR.
    let shared = admin_config_at(&endpoint, SHARED).await;
    let images = aws_sdk_ecr::Client::new(&shared)
        .list_images()
        .repository_name("orders-api")
        .send()
        .await
        .unwrap();
    let tags: Vec<String> = images
        .image_ids()
        .iter()
        .filter_map(|i| i.image_tag().map(str::to_owned))
        .collect();
    assert_eq!(tags.len(), 1, "{tags:?}");
    let image = format!(
        "{SHARED}.dkr.ecr.us-east-1.amazonaws.com/orders-api:{}",
        tags[0]
    );

    for (env, account) in ACCOUNTS {
        // The function: created at version 1 by the team's script, version 2 from the pipeline.
        assert_eq!(live_version(&endpoint, account).await, "2", "{env}");
        // The service: a new revision of its task definition, with the built image.
        let (td, running) = service_image(&endpoint, account, env).await;
        assert!(td.ends_with("task-definition/orders-api:2"), "{env}: {td}");
        assert_eq!(running, image, "{env}");
        // The ledger: both deploys, verified, approved from qa on.
        let ledger = releases(home.path(), env);
        let mut targets: Vec<(&str, &str, bool)> = ledger
            .iter()
            .map(|r| {
                (
                    r["target"].as_str().unwrap(),
                    r["outcome"].as_str().unwrap(),
                    r["verified"].as_bool().unwrap(),
                )
            })
            .collect();
        targets.sort_unstable();
        assert_eq!(
            targets,
            [
                (
                    format!("ecs:orders-{env}/orders-api").as_str(),
                    "Deployed",
                    true
                ),
                ("lambda:orders-fn:live", "Deployed", true)
            ],
            "{env}: {ledger:#?}"
        );
        if env != "dev" {
            assert!(
                ledger.iter().all(|r| r["approved_by"]
                    .as_str()
                    .is_some_and(|a| a.contains("auto-approve"))),
                "{env}: {ledger:#?}"
            );
        }
    }

    // The alarm run: a new version reaches dev's canary, its alarm fires, it is rolled back.
    let out = demo(home.path(), &["--alarm", "--auto-approve"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(
            "alarm orders-fn-errors-dev entered ALARM: rolling orders-fn:live back to version 2"
        ),
        "{text}"
    );
    assert_eq!(live_version(&endpoint, ACCOUNTS[0].1).await, "2");
    let newest = &releases(home.path(), "dev")[0];
    assert_eq!(
        (
            newest["target"].as_str(),
            newest["outcome"].as_str(),
            newest["version"].as_str()
        ),
        (Some("lambda:orders-fn:live"), Some("RolledBack"), Some("3")),
        "{newest:#}"
    );
    // qa and prod never saw it.
    for (env, account) in &ACCOUNTS[1..] {
        assert_eq!(live_version(&endpoint, account).await, "2", "{env}");
        assert_eq!(releases(home.path(), env).len(), 2, "{env}");
    }

    // A new release reaches every environment; then it is found bad, and one command blocks
    // it and puts every alias and service back where they were.
    let mut before = Vec::new();
    for (env, account) in ACCOUNTS {
        before.push((
            live_version(&endpoint, account).await,
            service_image(&endpoint, account, env).await.0,
        ));
    }
    demo(home.path(), &["--auto-approve", "--new-release"]);
    let bad = releases(home.path(), "prod")[0]["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for ((env, account), (version, _)) in ACCOUNTS.iter().zip(&before) {
        assert_ne!(&live_version(&endpoint, account).await, version, "{env}");
    }
    let out = ferry_in_sandbox(
        home.path(),
        &endpoint,
        &[
            "release",
            "block",
            &bad,
            "--reason",
            "totals off by a cent (INC-7)",
            "--rollback",
            "--format",
            "json",
        ],
    )
    .await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let envs: Vec<&str> = report["rollbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["environment"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["prod", "qa", "dev"], "last environment first");
    let status = ferry_in_sandbox(home.path(), &endpoint, &["status", &bad]).await;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("release blocked by oncall@example.com: totals off by a cent (INC-7)"),
        "{status}"
    );
    for rollback in report["rollbacks"].as_array().unwrap() {
        // Each deploy is back (`restored_release`), or did not run the bad release (dev's
        // service kept the revision its alarm run left: the new release changed no image).
        for r in rollback["results"].as_array().unwrap() {
            assert!(
                r.get("restored_release").is_some()
                    || (r["target"].as_str().is_some_and(|t| t.starts_with("ecs:"))
                        && r.get("error").is_none()),
                "{rollback:#}"
            );
        }
    }
    for ((env, account), (version, td)) in ACCOUNTS.iter().zip(&before) {
        assert_eq!(&live_version(&endpoint, account).await, version, "{env}");
        assert_eq!(&service_image(&endpoint, account, env).await.0, td, "{env}");
        let ledger = releases(home.path(), env);
        let function = ledger
            .iter()
            .find(|r| r["target"] == "lambda:orders-fn:live")
            .unwrap();
        assert_eq!(
            (function["outcome"].as_str(), function["blocked"].as_str()),
            (Some("Restored"), None),
            "{env}: {ledger:#?}"
        );
        assert!(
            ledger
                .iter()
                .filter(|r| r["execution_id"] == bad.as_str())
                .all(|r| r["blocked"] == "totals off by a cent (INC-7)"),
            "{env}: {ledger:#?}"
        );
    }
}

/// ferry against the demo's sandbox and state, as the shared account's administrator.
async fn ferry_in_sandbox(home: &Path, endpoint: &str, args: &[&str]) -> std::process::Output {
    use aws_credential_types::provider::ProvideCredentials;
    let shared = admin_config_at(endpoint, SHARED).await;
    let credentials = shared
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(args)
        .arg("--state-dir")
        .arg(home.join("state"))
        .arg("-f")
        .arg(home.join("workspace/ferry.yaml"))
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .env(
            "AWS_SESSION_TOKEN",
            credentials.session_token().unwrap_or_default(),
        )
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FERRY_IDENTITY", "oncall@example.com")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `scripts/demo --serve`: a git push to the sandbox's repository starts the pipeline in
/// `ferry serve` (a signed webhook), alice approves qa, alice and bob approve prod through the
/// API, and every account ends on the new release — with the ledger in the server's state
/// naming who approved each environment.
#[tokio::test]
async fn the_demo_as_a_service_is_pushed_approved_by_two_tokens_and_released_everywhere() {
    let home = tempfile::tempdir().unwrap();
    let sandbox = Sandbox(home.path());
    let out = demo(home.path(), &["--serve"]);
    let endpoint = sandbox.endpoint();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for needle in [
        "forge: {\"outcome\":\"started\",\"execution\":\"orders-1\"",
        "approved stage qa of orders-1 as alice",
        "1 of 2 approvals; it waits for 1 more",
        "approved stage prod of orders-1 as bob",
        "orders-1 Succeeded",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    for (env, account) in ACCOUNTS {
        assert_eq!(live_version(&endpoint, account).await, "2", "{env}");
    }
    let server_state = home.path().join("server/state");
    let out = Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["releases", "prod", "--format", "json", "--state-dir"])
        .arg(&server_state)
        .arg("-f")
        .arg(home.path().join("workspace/ferry.yaml"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let approvers: Vec<&str> = doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["approved_by"].as_str())
        .collect();
    assert_eq!(approvers, ["alice, bob", "alice, bob"], "{doc:#}");
}
