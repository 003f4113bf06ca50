//! `ferry deploy`, `ferry rollback` and `ferry releases` as a CI job runs them: a separate
//! process with AWS settings in its environment (`AWS_ENDPOINT_URL` to the emulator,
//! credentials of a fresh shared account), deploying through a target account's deploy role.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use ferry_test_support::fixtures::*;

fn zip_file(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lambda_zip(body)).unwrap();
    path
}

#[tokio::test]
async fn deploy_lambda_reports_versions_and_api_calls_as_json_and_repeats_as_a_no_op() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_file(dir.path(), "v2.zip", "v2");
    let deploy = |w: &World| {
        w.ferry()
            .args([
                "deploy",
                "lambda",
                "--function",
                "orders-fn",
                "--alias",
                "live",
                "--traffic",
                "canary 10% 1s",
                "--format",
                "json",
                "--role-arn",
                &w.role(),
                "--zip",
            ])
            .arg(&zip)
            .output()
            .unwrap()
    };
    let out = deploy(&w);
    w.assert_no_credentials(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(
        (
            doc["outcome"].as_str(),
            doc["from_version"].as_str(),
            doc["to_version"].as_str()
        ),
        (Some("Deployed"), Some("1"), Some("2"))
    );
    assert_eq!(doc["api_calls"]["sts:AssumeRole"], 1);
    assert_eq!(doc["api_calls"]["lambda:PublishVersion"], 1);
    assert!(doc["api_calls_total"].as_u64().unwrap() >= 6);
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("2".into(), vec![]));

    let again = json(&deploy(&w));
    assert_eq!(again["outcome"], "AlreadyDeployed");
    assert!(
        again["api_calls"].get("lambda:PublishVersion").is_none(),
        "{again}"
    );
}

/// `--ledger`: the deploy joins a pipeline's ledger in the execution of its run; a ledger that
/// cannot be opened stops the deploy before it changes anything.
#[tokio::test]
async fn deploy_lambda_with_a_ledger_records_its_release_and_deploys_nothing_when_the_ledger_is_unreachable()
 {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_file(dir.path(), "v2.zip", "v2");
    let deploy = |w: &World, state: &[&str]| {
        w.ferry()
            .args([
                "deploy",
                "lambda",
                "--function",
                "orders-fn",
                "--alias",
                "live",
            ])
            .args(["--format", "json", "--role-arn", &w.role()])
            .args([
                "--ledger",
                "dev",
                "--pipeline",
                "orders",
                "--run",
                "ci-77",
                "--revision",
                "4b825dc",
            ])
            .args(state)
            .arg("--zip")
            .arg(&zip)
            .output()
            .unwrap()
    };
    // Port 9 (discard) on loopback: nothing listens.
    let out = deploy(
        &w,
        &["--state-url", "postgres://ferry:hunter2@127.0.0.1:9/ferry"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("hunter2"), "{said}");
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("1".into(), vec![]));
    // A TLS setting that cannot be used is the user's to mend: exit 2, nothing deployed.
    let out = deploy(
        &w,
        &[
            "--state-url",
            "postgres://ferry:hunter2@127.0.0.1:9/ferry?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("`sslrootcert=/nonexistent/ca.pem` cannot be read"),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("1".into(), vec![]));

    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let out = deploy(&w, &["--state-dir", state]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert_eq!(
        doc["ledger"],
        serde_json::json!({"execution": "orders-1", "release": 1})
    );
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("2".into(), vec![]));
    // Again in the same run: nothing to release, the same execution.
    let again = json(&deploy(&w, &["--state-dir", state]));
    assert_eq!(again["outcome"], "AlreadyDeployed");
    assert_eq!(
        again["ledger"],
        serde_json::json!({"execution": "orders-1", "release": null})
    );
}

#[tokio::test]
async fn a_failed_canary_rolls_back_and_exits_1() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    alarm(&w.dev, "orders-fn-errors").await;
    let dir = tempfile::tempdir().unwrap();
    let zip = zip_file(dir.path(), "v2.zip", "v2");
    let child = w
        .ferry()
        .args([
            "deploy",
            "lambda",
            "--function",
            "orders-fn",
            "--alias",
            "live",
            "--traffic",
            "canary 10% 10m",
            "--alarm",
            "orders-fn-errors",
            "--role-arn",
            &w.role(),
            "--zip",
        ])
        .arg(&zip)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once 10% of traffic goes to version 2, the errors alarm fires.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while live_alias(&w.dev, "orders-fn").await.1.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the canary never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    trip(&w.dev, "orders-fn-errors").await;
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("rolled back: alarm orders-fn-errors entered ALARM"),
        "{text}"
    );
    assert!(
        text.contains("orders-fn:live serves version 1 again"),
        "{text}"
    );
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("1".into(), vec![]));
    w.assert_no_credentials(&out);
}

#[tokio::test]
async fn deploy_ecs_exits_0_when_steady_and_3_when_the_rollback_cannot_settle() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("imagedefinitions.json");
    std::fs::write(&defs, r#"[{"name":"web","imageUri":"repo/orders-api:v2"}]"#).unwrap();

    let w = world().await;
    ecs_service(&w.dev, 1).await;
    let out = w
        .ferry()
        .args([
            "deploy",
            "ecs",
            "--cluster",
            "orders",
            "--service",
            "orders-api",
            "--role-arn",
            &w.role(),
            "--format",
            "json",
            "--image-definitions",
        ])
        .arg(&defs)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json(&out);
    assert!(
        doc["to_task_definition"]
            .as_str()
            .unwrap()
            .ends_with("orders-api:2"),
        "{doc}"
    );
    assert_eq!(doc["api_calls"]["ecs:RegisterTaskDefinition"], 1);

    // desired 2, and the emulator never starts the second task: timeout, rollback, and the
    // rollback cannot reach steady state either.
    let w = world().await;
    ecs_service(&w.dev, 2).await;
    let out = w
        .ferry()
        .args([
            "deploy",
            "ecs",
            "--cluster",
            "orders",
            "--service",
            "orders-api",
            "--role-arn",
            &w.role(),
            "--timeout",
            "1s",
            "--image-definitions",
        ])
        .arg(&defs)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "the service was set back to orders-api:1 but orders-api:1 did not reach steady state"
        ),
        "{text}"
    );
}

#[test]
fn bad_input_is_a_usage_error_that_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let ferry = || {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("ferry"));
        c.env("NO_COLOR", "1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        c
    };
    let out = ferry()
        .args([
            "deploy",
            "lambda",
            "--function",
            "f",
            "--alias",
            "live",
            "--image-uri",
            "x",
            "--traffic",
            "canary 10%",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("canary <percent>% <bake>"));

    // A watch after the deploy needs alarms to watch, and a duration.
    let lambda = [
        "deploy",
        "lambda",
        "--function",
        "f",
        "--alias",
        "live",
        "--image-uri",
        "x",
    ];
    let out = ferry()
        .args(lambda)
        .args(["--watch", "10m"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--alarm <NAME>"));
    let out = ferry()
        .args(lambda)
        .args(["--alarm", "errors", "--watch", "ten minutes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("write it like `30s`, `10m`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let defs = dir.path().join("imagedefinitions.json");
    std::fs::write(&defs, "[{\"name\": \"web\",\n  \"imageUri\": }]").unwrap();
    let out = ferry()
        .args([
            "deploy",
            "ecs",
            "--cluster",
            "c",
            "--service",
            "s",
            "--image-definitions",
        ])
        .arg(&defs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:", defs.display())), "{err}");

    let out = ferry()
        .args(["deploy", "lambda", "--function", "f", "--alias", "live"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "neither --zip nor --image-uri");
}

/// The manifest of a pipeline that builds a Lambda package and deploys it to dev.
fn manifest(w: &World, dir: &Path) -> std::path::PathBuf {
    let text = format!(
        r#"version: 1
pipeline: orders
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
deploy:
  - name: function
    lambda: {{function: orders-fn, alias: live, artifact: app, zip: function.zip, traffic: all-at-once}}
"#,
        shared = w.accounts.shared,
        dev = w.accounts.dev
    );
    let path = dir.join("ferry.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn rollback_returns_to_the_last_verified_release_and_the_ledger_says_who() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    w.artifact_bucket().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&w, dir.path());
    for version in ["two", "three"] {
        std::fs::write(
            dir.path().join("index.py"),
            format!("def handler(e, c):\n    return '{version}'\n"),
        )
        .unwrap();
        let out = w
            .ferry()
            .args(["run", "--auto-approve", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        w.assert_no_credentials(&out);
    }
    assert_eq!(live_alias(&w.dev, "orders-fn").await.0, "3");

    let out = w
        .ferry()
        .args(["rollback", "dev", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("lambda:orders-fn:live back on 2"), "{text}");
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("2".into(), vec![]));

    let out = w
        .ferry()
        .args(["releases", "dev", "--format", "json", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let doc = json(&out);
    let rows: Vec<(String, String, Option<String>)> = doc["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
                r["approved_by"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("2".into(), "Restored".into(), Some("tester".into())),
            ("3".into(), "Deployed".into(), None),
            ("2".into(), "Deployed".into(), None)
        ]
    );
    // A second rollback never returns to 3, which the first moved away from; nothing older
    // was verified, so it refuses and changes nothing.
    let out = w
        .ferry()
        .args(["rollback", "dev", "function", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "no verified-good release of lambda:orders-fn:live other than the one running (2)"
    ));
    assert_eq!(live_alias(&w.dev, "orders-fn").await.0, "2");
}
