//! `ferry deploy`, `ferry rollback` and `ferry releases` as a CI job runs them: a separate
//! process with AWS settings in its environment (`AWS_ENDPOINT_URL` to the emulator,
//! credentials of a fresh shared account), deploying through a target account's deploy role.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sts::config::ProvideCredentials;
use ferry_test_support::{Accounts, REGION, admin_config, emulator};
use serde_json::Value;

struct World {
    accounts: Accounts,
    shared: SdkConfig,
    dev: SdkConfig,
    /// The shared account's credentials, for the ferry process's environment.
    creds: aws_sdk_sts::config::Credentials,
}

async fn world() -> World {
    let accounts = Accounts::fresh();
    let shared = admin_config(&accounts.shared).await;
    let dev = admin_config(&accounts.dev).await;
    let creds = shared
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    World {
        accounts,
        shared,
        dev,
        creds,
    }
}

impl World {
    /// `ferry` with the SDK's standard settings, and nothing of the user's own.
    fn ferry(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ferry"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("NO_COLOR", "1")
            .env("FERRY_IDENTITY", "tester")
            .env("AWS_ENDPOINT_URL", emulator().endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ACCESS_KEY_ID", self.creds.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", self.creds.secret_access_key())
            .env(
                "AWS_SESSION_TOKEN",
                self.creds.session_token().unwrap_or_default(),
            );
        cmd
    }

    fn role(&self) -> String {
        format!("arn:aws:iam::{}:role/ferry-deploy", self.accounts.dev)
    }

    /// No credential reaches the output.
    fn assert_no_credentials(&self, out: &Output) {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains(self.creds.secret_access_key()),
            "a secret key was printed"
        );
        assert!(
            !text.contains(self.creds.session_token().unwrap()),
            "a session token was printed"
        );
    }
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn zip_file(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    zip.start_file("index.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(body.as_bytes()).unwrap();
    zip.finish().unwrap();
    path
}

async fn function(w: &World, name: &str) {
    let iam = aws_sdk_iam::Client::new(&w.dev);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name(format!("{name}-exec"))
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let code = std::fs::read(zip_file(dir.path(), "v1.zip", "v1")).unwrap();
    let lambda = aws_sdk_lambda::Client::new(&w.dev);
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(format!("arn:aws:iam::{}:role/{name}-exec", w.accounts.dev))
        .handler("index.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(code))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v = lambda
        .publish_version()
        .function_name(name)
        .send()
        .await
        .unwrap();
    lambda
        .create_alias()
        .function_name(name)
        .name("live")
        .function_version(v.version().unwrap())
        .send()
        .await
        .unwrap();
}

async fn alias(w: &World, name: &str) -> (String, usize) {
    let a = aws_sdk_lambda::Client::new(&w.dev)
        .get_alias()
        .function_name(name)
        .name("live")
        .send()
        .await
        .unwrap();
    (
        a.function_version().unwrap().to_owned(),
        a.routing_config()
            .and_then(|r| r.additional_version_weights())
            .map_or(0, |w| w.len()),
    )
}

async fn alarm(w: &World, name: &str) {
    aws_sdk_cloudwatch::Client::new(&w.dev)
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/Lambda")
        .metric_name("Errors")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(
            aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanOrEqualToThreshold,
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn deploy_lambda_reports_versions_and_api_calls_as_json_and_repeats_as_a_no_op() {
    let w = world().await;
    function(&w, "orders-fn").await;
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
    assert_eq!(alias(&w, "orders-fn").await, ("2".into(), 0));

    let again = json(&deploy(&w));
    assert_eq!(again["outcome"], "AlreadyDeployed");
    assert!(
        again["api_calls"].get("lambda:PublishVersion").is_none(),
        "{again}"
    );
}

#[tokio::test]
async fn a_failed_canary_rolls_back_and_exits_1() {
    let w = world().await;
    function(&w, "orders-fn").await;
    alarm(&w, "orders-fn-errors").await;
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
    while alias(&w, "orders-fn").await.1 == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the canary never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    aws_sdk_cloudwatch::Client::new(&w.dev)
        .set_alarm_state()
        .alarm_name("orders-fn-errors")
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("errors")
        .send()
        .await
        .unwrap();
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
    assert_eq!(alias(&w, "orders-fn").await, ("1".into(), 0));
    w.assert_no_credentials(&out);
}

async fn ecs_service(w: &World, desired: i32) {
    let ecs = aws_sdk_ecs::Client::new(&w.dev);
    ecs.create_cluster()
        .cluster_name("orders")
        .send()
        .await
        .unwrap();
    let td = ecs
        .register_task_definition()
        .family("orders-api")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("web")
                .image("repo/orders-api:v1")
                .memory(256)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster("orders")
        .service_name("orders-api")
        .task_definition(td.task_definition().unwrap().task_definition_arn().unwrap())
        .desired_count(desired)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn deploy_ecs_exits_0_when_steady_and_3_when_the_rollback_cannot_settle() {
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("imagedefinitions.json");
    std::fs::write(&defs, r#"[{"name":"web","imageUri":"repo/orders-api:v2"}]"#).unwrap();

    let w = world().await;
    ecs_service(&w, 1).await;
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
    ecs_service(&w, 2).await;
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
    function(&w, "orders-fn").await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&w.shared)
            .force_path_style(true)
            .build(),
    )
    .create_bucket()
    .bucket(format!("ferry-artifacts-{}", w.accounts.shared))
    .send()
    .await
    .unwrap();
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
    assert_eq!(alias(&w, "orders-fn").await.0, "3");

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
    assert_eq!(alias(&w, "orders-fn").await, ("2".into(), 0));

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
    assert_eq!(alias(&w, "orders-fn").await.0, "2");
}
