//! `ferry bootstrap`, `plan`, `verify --live`, `destroy`, `doctor` and `synth` against the
//! emulator with four fresh accounts: bootstrap lays the foundation, a second run changes
//! nothing, verify passes; then one thing at a time is broken with direct API calls, and
//! verify names the broken edge and its fix. moto enforces no resource policies, so these
//! test the documents in the accounts — which is exactly what verify reads.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use ferry_test_support::admin_config;
use serde_json::Value;

fn manifest(w: &World, dir: &Path) -> PathBuf {
    manifest_with(w, dir, "")
}

/// The manifest with `shared_extra` (indented lines) added to `shared`.
fn manifest_with(w: &World, dir: &Path, shared_extra: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
pipeline: orders
shared:
  id: "{shared}"
  region: us-east-1
  artifacts: {{bucket: ferry-orders-{shared}, kms_alias: alias/ferry-orders}}
  repositories: [orders-api]
{shared_extra}accounts:
  dev: {{id: "{dev}"}}
  qa: {{id: "{qa}"}}
  prod: {{id: "{prod}", external_id: ferry-orders-prod}}
source: {{repo: ., branch: main}}
secrets:
  ORDERS_API_TOKEN: orders/api-token
stages:
  - name: build
    actions:
      - name: package
        build: {{buildspec: buildspec.yml, outputs: [app], secrets: [ORDERS_API_TOKEN]}}
environments:
  - {{name: dev, account: dev}}
  - {{name: qa, account: qa, approval: {{timeout: 24h}}}}
  - {{name: prod, account: prod, approval: {{timeout: 24h, comment_required: true}}}}
deploy:
  - name: api
    ecs: {{cluster: "orders-${{env}}", service: orders-api, artifact: app, image_definitions: imagedefinitions.json, timeout: 10m, alarms: ["orders-api-5xx-${{env}}"]}}
  - name: function
    lambda: {{function: orders-fn, alias: live, artifact: app, zip: function.zip, traffic: canary 10% 5s, alarms: ["orders-fn-errors-${{env}}"]}}
"#,
        shared = w.accounts.shared,
        dev = w.accounts.dev,
        qa = w.accounts.qa,
        prod = w.accounts.prod
    );
    let path = dir.join("ferry.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `args` (bootstrap, or an apply): it succeeds and says `first_says`; run again, it
/// succeeds and has nothing to change.
fn applies_then_settles(w: &World, args: &[&str], manifest: &Path, first_says: &str) {
    let out = run(w, args, manifest);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(first_says), "{}", text(&out));
    let again = run(w, args, manifest);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        text(&again).contains("nothing to change"),
        "{}",
        text(&again)
    );
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(w: &World, args: &[&str], manifest: &Path) -> std::process::Output {
    let out = w
        .ferry()
        .args(args)
        .arg("-f")
        .arg(manifest)
        .output()
        .unwrap();
    w.assert_no_credentials(&out);
    out
}

/// The denied edges of `ferry verify --live --format json`: (environment, action, first fix's place).
fn denied(w: &World, manifest: &Path) -> Vec<(String, String, String)> {
    let out = run(w, &["verify", "--live", "--format", "json"], manifest);
    let doc: Value = json(&out);
    assert_eq!(
        out.status.code(),
        Some(if doc["ok"] == true { 0 } else { 1 }),
        "{}",
        text(&out)
    );
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["allowed"] == false)
        .map(|r| {
            (
                r["environment"].as_str().unwrap_or("-").to_owned(),
                r["action"].as_str().unwrap().to_owned(),
                r["fixes"][0]["place"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

async fn key_policy(shared: &aws_config::SdkConfig) -> (String, Value) {
    let kms = aws_sdk_kms::Client::new(shared);
    let key = kms
        .describe_key()
        .key_id("alias/ferry-orders")
        .send()
        .await
        .unwrap();
    let id = key.key_metadata().unwrap().key_id().to_owned();
    let p = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    (id, serde_json::from_str(p.policy().unwrap()).unwrap())
}

#[tokio::test]
async fn bootstrap_is_idempotent_verify_passes_and_each_broken_edge_is_named_with_its_fix() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&w, dir.path());

    applies_then_settles(&w, &["bootstrap"], &path, "10 created, 0 changed");
    assert_eq!(denied(&w, &path), Vec::<(String, String, String)>::new());

    // 1. The key policy no longer lets qa's deploy role decrypt.
    let (key_id, policy) = key_policy(&w.shared).await;
    let qa_role = format!("arn:aws:iam::{}:role/ferry-deploy", w.accounts.qa);
    let narrowed = policy
        .to_string()
        .replace(&format!("\"{qa_role}\","), "")
        .replace(&format!(",\"{qa_role}\""), "");
    aws_sdk_kms::Client::new(&w.shared)
        .put_key_policy()
        .key_id(&key_id)
        .policy_name("default")
        .policy(narrowed)
        .send()
        .await
        .unwrap();
    let broken = denied(&w, &path);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(
        (broken[0].0.as_str(), broken[0].1.as_str()),
        ("qa", "kms:Decrypt")
    );
    assert!(
        broken[0]
            .2
            .starts_with("the key policy of arn:aws:kms:us-east-1:"),
        "{broken:?}"
    );
    let human = run(&w, &["verify", "--live", "--env", "qa"], &path);
    assert!(
        text(&human).contains(&format!("\"AWS\": \"{qa_role}\"")),
        "the fix names the role:\n{}",
        text(&human)
    );
    let plan = run(&w, &["plan"], &path);
    assert!(
        text(&plan).contains("~ kms key alias/ferry-orders"),
        "{}",
        text(&plan)
    );
    assert!(
        text(&plan).contains(&format!("+          \"{qa_role}\"")),
        "{}",
        text(&plan)
    );
    assert_eq!(run(&w, &["bootstrap"], &path).status.code(), Some(0));
    assert!(denied(&w, &path).is_empty());

    // 2. Prod's deploy role no longer trusts the pipeline role.
    let prod = admin_config(&w.accounts.prod).await;
    let foreign_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:AssumeRole"}]}"#;
    aws_sdk_iam::Client::new(&prod)
        .update_assume_role_policy()
        .role_name("ferry-deploy")
        .policy_document(foreign_trust)
        .send()
        .await
        .unwrap();
    let broken = denied(&w, &path);
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert_eq!(
        (broken[0].0.as_str(), broken[0].1.as_str()),
        ("prod", "sts:AssumeRole")
    );
    assert!(
        broken[0].2.contains(&format!(
            "trust policy of arn:aws:iam::{}:role/ferry-deploy",
            w.accounts.prod
        )),
        "{broken:?}"
    );
    assert_eq!(
        run(&w, &["bootstrap", "--account", "prod"], &path)
            .status
            .code(),
        Some(0)
    );
    assert!(denied(&w, &path).is_empty());

    // 3. The bucket policy lets the deploy roles read another prefix only.
    let s3 = ferry_test_support::fixtures::s3(&w.shared);
    let bucket = format!("ferry-orders-{}", w.accounts.shared);
    let p = s3.get_bucket_policy().bucket(&bucket).send().await.unwrap();
    let narrowed = p.policy().unwrap().replace("/orders/*", "/elsewhere/*");
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(narrowed)
        .send()
        .await
        .unwrap();
    let broken = denied(&w, &path);
    let envs: Vec<(&str, &str)> = broken
        .iter()
        .map(|b| (b.0.as_str(), b.1.as_str()))
        .collect();
    assert_eq!(
        envs,
        [
            ("dev", "s3:GetObject"),
            ("qa", "s3:GetObject"),
            ("prod", "s3:GetObject")
        ],
        "{broken:?}"
    );
    assert!(
        broken[0]
            .2
            .starts_with(&format!("the bucket policy of arn:aws:s3:::{bucket}")),
        "{broken:?}"
    );

    // Destroy removes what bootstrap made; a second destroy finds nothing.
    let out = run(&w, &["destroy", "--yes", "--force"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("scheduled for deletion in 7 days"),
        "{}",
        text(&out)
    );
    let plan = run(&w, &["plan", "--format", "json"], &path);
    let doc = json(&plan);
    assert!(
        doc["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] == "create"),
        "{doc}"
    );
}

/// `runner: codebuild`: bootstrap adds the CodeBuild project, its log group and its service
/// role; they read back as planned (a second bootstrap changes nothing), verify proves the
/// role's edges live and names one broken, and destroy removes them.
#[tokio::test]
async fn builds_on_codebuild_get_a_project_and_role_that_bootstrap_lays_and_verify_proves() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest_with(&w, dir.path(), "  builds: {runner: codebuild}\n");
    // The buildspec has CodeBuild read a secret and a parameter ferry.yaml does not name.
    std::fs::write(
        dir.path().join("buildspec.yml"),
        "version: 0.2\nenv:\n  secrets-manager: {DB_PASSWORD: \"orders/db:password\"}\n  parameter-store: {FLAGS: /orders/flags}\nphases:\n  build: {commands: [make]}\n",
    )
    .unwrap();

    applies_then_settles(&w, &["bootstrap"], &path, "12 created, 0 changed");
    assert_eq!(denied(&w, &path), Vec::<(String, String, String)>::new());

    let codebuild = aws_sdk_codebuild::Client::new(&w.shared);
    let got = codebuild
        .batch_get_projects()
        .names("ferry-orders")
        .send()
        .await
        .unwrap();
    let project = &got.projects()[0];
    assert_eq!(
        project.service_role(),
        Some(format!("arn:aws:iam::{}:role/ferry-orders-build", w.accounts.shared).as_str())
    );
    let env = project.environment().unwrap();
    assert_eq!(env.image(), "aws/codebuild/amazonlinux-x86_64-standard:5.0");
    assert_eq!(env.compute_type().as_str(), "BUILD_GENERAL1_SMALL");
    assert_eq!(
        project
            .logs_config()
            .and_then(|l| l.cloud_watch_logs())
            .and_then(|c| c.group_name()),
        Some("/aws/codebuild/ferry-orders")
    );
    let groups = aws_sdk_cloudwatchlogs::Client::new(&w.shared)
        .describe_log_groups()
        .log_group_name_prefix("/aws/codebuild/ferry-orders")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days(), Some(365));

    // The build role loses its logs grant: verify names the edge.
    let iam = aws_sdk_iam::Client::new(&w.shared);
    let doc = build_policy(&iam).await;
    // It may read what the buildspec names, and verify proved it (no denial above).
    let granted = doc.to_string();
    let shared = &w.accounts.shared;
    assert!(
        granted.contains(&format!(
            "arn:aws:secretsmanager:us-east-1:{shared}:secret:orders/db-??????"
        )),
        "{doc:#}"
    );
    assert!(
        granted.contains(&format!(
            "arn:aws:ssm:us-east-1:{shared}:parameter/orders/flags"
        )),
        "{doc:#}"
    );
    verify_names_what_the_build_role_lost(&w, &path, &iam, doc, "logs:PutLogEvents").await;

    let out = run(&w, &["destroy", "--yes", "--force"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("codebuild project ferry-orders"),
        "{}",
        text(&out)
    );
    let left = codebuild
        .batch_get_projects()
        .names("ferry-orders")
        .send()
        .await
        .unwrap();
    assert!(left.projects().is_empty());
}

/// `builds.vpc`: the project reads back in that VPC (a second bootstrap changes nothing), the
/// build role's network-interface grants are laid and verify proves them live, and one lost
/// is named. moto checks no VPC id and makes no network interface: which EC2 calls CodeBuild
/// makes as the role is proven on the policy (ferry-plan's tests), as docs/engine.md says.
#[tokio::test]
async fn builds_in_a_vpc_get_a_project_in_it_and_a_role_that_may_make_its_interfaces() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest_with(
        &w,
        dir.path(),
        "  builds:\n    runner: codebuild\n    vpc: {id: vpc-0abc1234, subnets: [subnet-0bbb2222, subnet-0aaa1111], security_groups: [sg-0abc1234]}\n",
    );
    applies_then_settles(&w, &["bootstrap"], &path, "12 created, 0 changed");
    assert_eq!(denied(&w, &path), Vec::<(String, String, String)>::new());

    let got = aws_sdk_codebuild::Client::new(&w.shared)
        .batch_get_projects()
        .names("ferry-orders")
        .send()
        .await
        .unwrap();
    let vpc = got.projects()[0].vpc_config().expect("the project's VPC");
    assert_eq!(vpc.vpc_id(), Some("vpc-0abc1234"));
    assert_eq!(vpc.subnets(), ["subnet-0aaa1111", "subnet-0bbb2222"]);
    assert_eq!(vpc.security_group_ids(), ["sg-0abc1234"]);

    let iam = aws_sdk_iam::Client::new(&w.shared);
    let doc = build_policy(&iam).await;
    let shared = &w.accounts.shared;
    assert!(
        doc.to_string().contains(&format!(
            "arn:aws:ec2:us-east-1:{shared}:subnet/subnet-0bbb2222"
        )),
        "{doc:#}"
    );
    // The role loses the statement that lets it make interfaces: verify names the calls.
    verify_names_what_the_build_role_lost(&w, &path, &iam, doc, "ec2:CreateNetworkInterface").await;
}

/// The build role's `ferry-build` policy, as IAM holds it.
async fn build_policy(iam: &aws_sdk_iam::Client) -> Value {
    let policy = iam
        .get_role_policy()
        .role_name("ferry-orders-build")
        .policy_name("ferry-build")
        .send()
        .await
        .unwrap();
    let doc = percent_encoding::percent_decode_str(policy.policy_document()).decode_utf8_lossy();
    serde_json::from_str(&doc).unwrap()
}

/// The build role's policy `doc` loses the statements that grant `action`: verify names that
/// call, and bootstrap puts the policy back.
async fn verify_names_what_the_build_role_lost(
    w: &World,
    path: &Path,
    iam: &aws_sdk_iam::Client,
    mut doc: Value,
    action: &str,
) {
    let granted = format!("\"{action}\"");
    doc["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| !s.to_string().contains(&granted));
    iam.put_role_policy()
        .role_name("ferry-orders-build")
        .policy_name("ferry-build")
        .policy_document(doc.to_string())
        .send()
        .await
        .unwrap();
    let broken = denied(w, path);
    let actions: Vec<&str> = broken.iter().map(|b| b.1.as_str()).collect();
    assert!(actions.contains(&action), "{broken:?}");
    assert_eq!(run(w, &["bootstrap"], path).status.code(), Some(0));
    assert!(denied(w, path).is_empty());
}

const GITHUB_ACTIONS: &str = "  github_actions: {repository: acme/orders, branch: main}\n";

fn github_provider_arn(w: &World) -> String {
    format!(
        "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com",
        w.accounts.shared
    )
}

/// The pipeline role's trust policy, as IAM holds it.
async fn trust_of(iam: &aws_sdk_iam::Client, role: &str) -> Value {
    let got = iam.get_role().role_name(role).send().await.unwrap();
    let doc = got.role().unwrap().assume_role_policy_document().unwrap();
    serde_json::from_str(&percent_encoding::percent_decode_str(doc).decode_utf8_lossy()).unwrap()
}

/// `shared.github_actions`: bootstrap lays GitHub's OIDC provider and lets a workflow run of
/// that repository's branch assume the pipeline role; verify --live proves the web-identity
/// edge from the trust it reads and names a trust that admits another branch; destroy keeps
/// the provider while another role still trusts it. (moto holds providers and trusts but
/// issues no GitHub tokens: that a real workflow gets in is the trust's conditions, which
/// verify decides.)
#[tokio::test]
async fn github_actions_gets_its_oidc_provider_and_a_trust_for_its_branch_that_verify_proves() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest_with(&w, dir.path(), GITHUB_ACTIONS);

    applies_then_settles(
        &w,
        &["bootstrap"],
        &path,
        "+ iam oidc provider token.actions.githubusercontent.com in shared",
    );
    let iam = aws_sdk_iam::Client::new(&w.shared);
    let provider = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(github_provider_arn(&w))
        .send()
        .await
        .unwrap();
    assert_eq!(provider.client_id_list(), ["sts.amazonaws.com"]);
    let trust = trust_of(&iam, "ferry-orders").await;
    let github = trust["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Principal"]["Federated"] == github_provider_arn(&w).as_str())
        .cloned()
        .expect("the pipeline role trusts GitHub's provider");
    assert_eq!(
        github["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"],
        "repo:acme/orders:ref:refs/heads/main"
    );
    let verified = run(&w, &["verify", "--live", "--format", "json"], &path);
    let doc: Value = json(&verified);
    assert_eq!(doc["ok"], true, "{}", text(&verified));
    let edge = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "sts:AssumeRoleWithWebIdentity")
        .cloned()
        .expect("verify decides the web-identity edge");
    assert_eq!(edge["principal"], github_provider_arn(&w).as_str());

    // Someone widens the trust to every branch's runs of another repository: verify names it.
    let wrong = trust
        .to_string()
        .replace("repo:acme/orders:ref:refs/heads/main", "repo:acme/other:*");
    iam.update_assume_role_policy()
        .role_name("ferry-orders")
        .policy_document(wrong)
        .send()
        .await
        .unwrap();
    let broken = denied(&w, &path);
    assert_eq!(
        broken,
        [(
            "-".to_owned(),
            "sts:AssumeRoleWithWebIdentity".to_owned(),
            format!(
                "the trust policy of arn:aws:iam::{}:role/ferry-orders",
                w.accounts.shared
            )
        )]
    );
    assert_eq!(run(&w, &["bootstrap"], &path).status.code(), Some(0));
    assert!(denied(&w, &path).is_empty());

    // A team's own role trusts the provider too: destroy keeps it for that role.
    iam.create_role()
        .role_name("team-deployer")
        .assume_role_policy_document(
            serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Federated": github_provider_arn(&w)}, "Action": "sts:AssumeRoleWithWebIdentity"}]}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let out = run(&w, &["destroy", "--yes", "--force"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("kept: iam role team-deployer still trusts it"),
        "{}",
        text(&out)
    );
    assert!(
        iam.get_open_id_connect_provider()
            .open_id_connect_provider_arn(github_provider_arn(&w))
            .send()
            .await
            .is_ok()
    );
}

/// An account usually has GitHub's provider already, made by another stack: bootstrap uses
/// it when it admits ferry's audience (and destroy leaves it), and otherwise says what to add.
#[tokio::test]
async fn a_github_provider_someone_else_made_is_used_when_it_admits_the_audience() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest_with(&w, dir.path(), GITHUB_ACTIONS);
    let iam = aws_sdk_iam::Client::new(&w.shared);
    let create = |audiences: &[&str]| {
        iam.create_open_id_connect_provider()
            .url("https://token.actions.githubusercontent.com")
            .set_client_id_list(Some(audiences.iter().map(|a| (*a).to_owned()).collect()))
            .send()
    };
    create(&["https://github.com/acme"]).await.unwrap();
    let out = run(&w, &["bootstrap"], &path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out)
            .contains("add-client-id-to-open-id-connect-provider --client-id sts.amazonaws.com"),
        "{}",
        text(&out)
    );

    iam.delete_open_id_connect_provider()
        .open_id_connect_provider_arn(github_provider_arn(&w))
        .send()
        .await
        .unwrap();
    create(&["https://github.com/acme", "sts.amazonaws.com"])
        .await
        .unwrap();
    let plan = run(&w, &["plan"], &path);
    assert!(
        text(&plan).contains("= iam oidc provider token.actions.githubusercontent.com — not ferry's, and has what the plan needs: used as it is"),
        "{}",
        text(&plan)
    );
    let out = run(&w, &["bootstrap"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(denied(&w, &path).is_empty());
    let out = run(&w, &["destroy", "--yes", "--force"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(
            "iam oidc provider token.actions.githubusercontent.com in shared: kept: not ferry's"
        ),
        "{}",
        text(&out)
    );
    let kept = iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(github_provider_arn(&w))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.client_id_list().len(), 2);
}

/// The manifest with the native pipeline (`shared.codepipeline`), its source a repository URL.
fn native_manifest(w: &World, dir: &Path) -> PathBuf {
    let path = manifest_with(
        w,
        dir,
        &format!(
            "  codepipeline:\n    connection: arn:aws:codeconnections:us-east-1:{shared}:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789\n    ferry_image: {shared}.dkr.ecr.us-east-1.amazonaws.com/ferry:0.1.0\n    state_url_secret: ferry/state-url\n",
            shared = w.accounts.shared
        ),
    );
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "source: {repo: ., branch: main}",
        "source: {repo: https://github.com/acme/orders.git, branch: main}",
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `ferry synth codepipeline --apply` stands up the whole native pipeline in the shared
/// account in one command — its role, CodeBuild projects, approval topic and the pipeline —
/// which reads back as planned (a second apply changes nothing), verify proves, and destroy
/// removes. moto runs no pipeline execution: what the pipeline's Lambda deploys run is proven
/// by running their buildspecs
/// (`the_native_lambda_deploy_buildspec_deploys_when_run_as_codebuild_runs_it`).
#[tokio::test]
async fn synth_codepipeline_apply_stands_up_the_native_pipeline_and_a_second_apply_changes_nothing()
{
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = native_manifest(&w, dir.path());

    applies_then_settles(
        &w,
        &["synth", "codepipeline", "--apply"],
        &path,
        "+ codepipeline pipeline orders",
    );
    assert_eq!(denied(&w, &path), Vec::<(String, String, String)>::new());

    let codepipeline = aws_sdk_codepipeline::Client::new(&w.shared);
    let got = codepipeline
        .get_pipeline()
        .name("orders")
        .send()
        .await
        .unwrap();
    let pipeline = got.pipeline().unwrap();
    assert_eq!(
        pipeline.role_arn(),
        format!(
            "arn:aws:iam::{}:role/ferry-orders-codepipeline",
            w.accounts.shared
        )
    );
    let stages: Vec<&str> = pipeline.stages().iter().map(|s| s.name()).collect();
    assert_eq!(stages, ["Source", "build", "dev", "qa", "prod"]);
    let projects = aws_sdk_codebuild::Client::new(&w.shared)
        .batch_get_projects()
        .names("ferry-orders-prod-function")
        .names("ferry-orders-build-package")
        .send()
        .await
        .unwrap();
    assert_eq!(projects.projects().len(), 2);
    let deploy = projects
        .projects()
        .iter()
        .find(|p| p.name() == Some("ferry-orders-prod-function"))
        .unwrap();
    assert!(
        deploy
            .source()
            .and_then(|s| s.buildspec())
            .unwrap()
            .contains("ferry deploy lambda"),
        "{deploy:?}"
    );

    // A pipeline changed by hand is put back by the next apply.
    let changed = aws_sdk_codepipeline::types::PipelineDeclaration::builder()
        .name(pipeline.name())
        .role_arn(pipeline.role_arn())
        .set_artifact_store(pipeline.artifact_store().cloned())
        .set_stages(Some(pipeline.stages()[..2].to_vec()))
        .set_pipeline_type(pipeline.pipeline_type().cloned())
        .build()
        .unwrap();
    codepipeline
        .update_pipeline()
        .pipeline(changed)
        .send()
        .await
        .unwrap();
    let plan = run(&w, &["plan"], &path);
    assert!(
        text(&plan).contains("~ codepipeline pipeline orders"),
        "{}",
        text(&plan)
    );
    let fixed = run(&w, &["synth", "codepipeline", "--apply"], &path);
    assert_eq!(fixed.status.code(), Some(0), "{}", text(&fixed));
    let back = codepipeline
        .get_pipeline()
        .name("orders")
        .send()
        .await
        .unwrap();
    assert_eq!(back.pipeline().unwrap().stages().len(), 5);

    let out = run(&w, &["destroy", "--yes", "--force"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let gone = codepipeline.get_pipeline().name("orders").send().await;
    assert!(gone.is_err(), "{gone:?}");
}

/// What CodeBuild would run for the native pipeline's Lambda deploy really deploys, and
/// records in ferry's release ledger: the buildspec ferry wrote into the dev project, read back
/// from the emulator, run by ferry's own buildspec runner with what CodeBuild gives a build —
/// the input artifact as `CODEBUILD_SRC_DIR`, credentials of the shared account, ferry on the
/// PATH as in the ferry image, and the action's variables as CodePipeline resolves them (the
/// execution id, the commit, the state's URL from its secret). (moto runs no pipeline and no
/// build, and cannot assume a role that trusts a service — HTTP 500 — so the build here acts
/// with the shared account's credentials and the variables are given as CodePipeline would
/// give them; the pipeline read back shows it asks for exactly those, and what the build role
/// may do is proven by verify on the same edges.)
#[tokio::test]
async fn the_native_lambda_deploy_buildspec_deploys_when_run_as_codebuild_runs_it() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = native_manifest(&w, dir.path());
    let out = run(&w, &["synth", "codepipeline", "--apply"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ferry_test_support::fixtures::lambda_function(
        &w.dev,
        &w.accounts.dev,
        "orders-fn",
        ferry_test_support::fixtures::lambda_zip("v1"),
    )
    .await;
    ferry_test_support::fixtures::alarm(&w.dev, "orders-fn-errors-dev").await;

    let projects = aws_sdk_codebuild::Client::new(&w.shared)
        .batch_get_projects()
        .names("ferry-orders-dev-function")
        .send()
        .await
        .unwrap();
    let buildspec = projects.projects()[0]
        .source()
        .and_then(|s| s.buildspec())
        .unwrap()
        .to_owned();
    // The dev deploy action hands the build the run, the commit and the state's URL.
    let pipeline = aws_sdk_codepipeline::Client::new(&w.shared)
        .get_pipeline()
        .name("orders")
        .send()
        .await
        .unwrap();
    let action = pipeline
        .pipeline()
        .unwrap()
        .stages()
        .iter()
        .flat_map(|s| s.actions())
        .find(|a| {
            a.name() == "function"
                && a.configuration()
                    .is_some_and(|c| c["ProjectName"] == "ferry-orders-dev-function")
        })
        .unwrap();
    let vars: Value =
        serde_json::from_str(&action.configuration().unwrap()["EnvironmentVariables"]).unwrap();
    assert_eq!(
        vars,
        serde_json::json!([
            {"name": "FERRY_RUN", "value": "#{codepipeline.PipelineExecutionId}", "type": "PLAINTEXT"},
            {"name": "FERRY_REVISION", "value": "#{SourceVariables.CommitId}", "type": "PLAINTEXT"},
            {"name": "FERRY_STATE_URL", "value": "ferry/state-url", "type": "SECRETS_MANAGER"},
        ])
    );
    assert!(
        buildspec.contains("--ledger 'dev' --pipeline 'orders'"),
        "{buildspec}"
    );
    let state_url = fresh_database("native");

    // The build's input artifact: the function's package, as the build stage produced it.
    let build = tempfile::tempdir().unwrap();
    std::fs::write(
        build.path().join("function.zip"),
        ferry_test_support::fixtures::lambda_zip("v2 from the native pipeline"),
    )
    .unwrap();
    let indented: String = buildspec
        .lines()
        .map(|l| format!("            {l}\n"))
        .collect();
    // The variables as CodePipeline resolves them for one execution.
    std::fs::write(
        build.path().join("ferry.yaml"),
        format!(
            "version: 1\npipeline: codebuild-check\nstages:\n  - name: dev\n    actions:\n      - name: function\n        build:\n          env: {{FERRY_RUN: 0f1e2d3c-native-run, FERRY_REVISION: 4b825dc642cb, FERRY_STATE_URL: \"{state_url}\"}}\n          buildspec: |\n{indented}"
        ),
    )
    .unwrap();
    let ferry_dir = assert_cmd::cargo::cargo_bin("ferry")
        .parent()
        .unwrap()
        .to_owned();
    // `ferry run` of that build, with ferry on the PATH as in the ferry image.
    let run_build = || {
        w.ferry()
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    ferry_dir.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .args(["run", "-f"])
            .arg(build.path().join("ferry.yaml"))
            .output()
            .unwrap()
    };
    let out = run_build();
    w.assert_no_credentials(&out);
    let logs = w
        .ferry()
        .args(["logs", "1", "dev.function", "-f"])
        .arg(build.path().join("ferry.yaml"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out),
        text(&logs)
    );
    let (version, weights) = ferry_test_support::fixtures::live_alias(&w.dev, "orders-fn").await;
    assert_eq!(version, "2", "{}", text(&logs));
    assert!(weights.is_empty(), "{weights:?}");
    assert!(text(&logs).contains("orders-fn"), "{}", text(&logs));
    assert!(
        text(&logs).contains("recorded as release"),
        "{}",
        text(&logs)
    );
    // The release is in the ledger of the manifest's pipeline, as `ferry releases` lists it.
    let releases = |w: &World| {
        let out = w
            .ferry()
            .args([
                "releases",
                "dev",
                "--format",
                "json",
                "--state-url",
                &state_url,
                "-f",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        json(&out)
    };
    let ledger = releases(&w);
    let entries = ledger["releases"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{ledger:#}");
    assert_eq!(entries[0]["target"], "lambda:orders-fn:live");
    assert_eq!(entries[0]["version"], "2");
    assert_eq!(entries[0]["outcome"], "Deployed");
    assert_eq!(entries[0]["revision"], "4b825dc642cb");
    let execution = entries[0]["execution_id"].as_str().unwrap().to_owned();

    // CodePipeline retries the action in the same execution: nothing new is published or
    // recorded, and the run is still one execution.
    let out = run_build();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ledger = releases(&w);
    assert_eq!(
        ledger["releases"].as_array().unwrap().len(),
        1,
        "{ledger:#}"
    );
    let store = ferry_engine::store::PostgresStore::open(&state_url).unwrap();
    let runs = ferry_engine::store::Store::executions(
        &store,
        &ferry_engine::model::ExecutionQuery::newest(Some("orders"), 10),
    )
    .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].id, execution);
    assert_eq!(runs[0].status, ferry_engine::model::Status::Succeeded);
    assert!(
        runs[0].trigger.contains("0f1e2d3c-native-run"),
        "{}",
        runs[0].trigger
    );
}

/// `synth codepipeline --apply` without `shared.codepipeline` says what to add.
#[test]
fn synth_codepipeline_apply_without_a_connection_says_what_to_add() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["synth", "codepipeline", "--apply", "-f"])
        .arg(&example)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("shared.codepipeline"), "{}", text(&out));
}

/// `ferry run` with the test build on CodeBuild: the package builds here, the integration
/// build is started on the project with the package as its secondary source, followed to its
/// end and reported in the execution. (moto never runs a build: it reports it succeeded, so
/// the build here has no outputs to bring back; `ferry-aws`'s codebuild tests cover those.)
#[tokio::test]
async fn a_pipeline_runs_its_test_build_on_codebuild() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"version: 1
pipeline: orders
shared:
  id: "{shared}"
  region: us-east-1
  artifacts: {{bucket: ferry-orders-{shared}, kms_alias: alias/ferry-orders}}
stages:
  - name: build
    actions:
      - name: package
        build:
          buildspec: |
            version: 0.2
            phases:
              build:
                commands:
                  - mkdir -p dist && echo built > dist/app.txt
            artifacts:
              base-directory: dist
              files: ['**/*']
          outputs: [app]
  - name: test
    actions:
      - name: integration
        build: {{buildspec: buildspec-test.yml, inputs: [source, app], runner: codebuild, timeout: 20m}}
"#,
        shared = w.accounts.shared
    );
    let path = dir.path().join("ferry.yaml");
    std::fs::write(&path, manifest).unwrap();
    std::fs::write(
        dir.path().join("buildspec-test.yml"),
        "version: 0.2\nphases:\n  build:\n    commands: [make test]\n",
    )
    .unwrap();
    let out = run(&w, &["bootstrap"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ferry_test_support::fixtures::set_aside_bucket_denies(
        &w.shared,
        &format!("ferry-orders-{}", w.accounts.shared),
    )
    .await;

    let out = run(&w, &["run", "--format", "json"], &path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = run(&w, &["status", "--format", "json"], &path);
    let doc = json(&status);
    let actions: Vec<&Value> = doc["stages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["actions"].as_array().unwrap())
        .collect();
    let integration = actions
        .iter()
        .find(|a| a["name"] == "integration")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(integration["status"], "Succeeded", "{doc:#}");
    let build = integration["outputs"]["codebuild"]["build"]
        .as_str()
        .unwrap_or_else(|| panic!("{integration:#}"));
    assert!(build.starts_with("ferry-orders:"), "{build}");
    let logs = run(&w, &["logs", "1", "test.integration"], &path);
    assert!(
        text(&logs).contains(&format!(
            "started CodeBuild build {build} on project ferry-orders"
        )),
        "{}",
        text(&logs)
    );
    // The build was asked for by the pipeline, in the shared account.
    let builds = aws_sdk_codebuild::Client::new(&w.shared)
        .list_builds_for_project()
        .project_name("ferry-orders")
        .send()
        .await
        .unwrap();
    assert_eq!(builds.ids(), [build]);
}

/// Against an API that fails one call in five, `ferry bootstrap` converges when rerun (each
/// step checks what is already there); `verify --live` with KMS unavailable says what it could
/// not read instead of calling the key's edges denied.
#[tokio::test]
async fn bootstrap_through_a_flaky_api_converges_and_verify_says_what_it_could_not_read() {
    use ferry_test_support::faults::{FaultProxy, Plan};
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&w, dir.path());
    let proxy = FaultProxy::start(ferry_test_support::emulator().endpoint());
    proxy.set(Plan::every(5));
    let through = |args: &[&str]| {
        let out = w
            .ferry()
            .env("AWS_ENDPOINT_URL", proxy.endpoint())
            .args(args)
            .arg("-f")
            .arg(&path)
            .output()
            .unwrap();
        w.assert_no_credentials(&out);
        out
    };
    let mut runs = Vec::new();
    for _ in 0..3 {
        let out = through(&["bootstrap"]);
        runs.push(text(&out));
        if out.status.success() {
            break;
        }
    }
    assert!(!proxy.injected().is_empty(), "the proxy injected nothing");
    let again = run(&w, &["bootstrap"], &path);
    assert!(
        text(&again).contains("nothing to change"),
        "bootstrap did not converge:\n{}\n{}",
        runs.join("\n---\n"),
        text(&again)
    );

    proxy.set(Plan::unavailable("kms"));
    let out = through(&["verify", "--live"]);
    let said = text(&out);
    assert!(said.contains("not read:"), "{said}");
    assert!(said.contains("kms"), "{said}");
    assert!(said.contains("HTTP 503"), "{said}");
    assert!(!said.contains("unhandled error"), "{said}");
    // The key's edges are not decided, rather than denied with a statement to add.
    assert!(said.contains("so this call is not decided"), "{said}");
}

/// SCPs take part when the shared account can read them: here it is the management account
/// of an organization whose prod account sits in an organizational unit.
#[tokio::test]
async fn an_scp_that_denies_a_deploy_call_fails_verify_live_at_the_scp() {
    use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
    let mut w = world().await;
    let org = aws_sdk_organizations::Client::new(&w.shared);
    org.create_organization()
        .feature_set(OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    // The emulator chooses a new member's id: prod becomes that account.
    let created = org
        .create_account()
        .email("prod@example.com")
        .account_name("prod")
        .send()
        .await
        .unwrap();
    w.accounts.prod = created
        .create_account_status()
        .and_then(|s| s.account_id())
        .unwrap()
        .to_owned();
    let roots = org.list_roots().send().await.unwrap();
    let root = roots.roots()[0].id().unwrap().to_owned();
    let ou = org
        .create_organizational_unit()
        .parent_id(&root)
        .name("workloads")
        .send()
        .await
        .unwrap()
        .organizational_unit()
        .and_then(|o| o.id())
        .unwrap()
        .to_owned();
    org.move_account()
        .account_id(&w.accounts.prod)
        .source_parent_id(&root)
        .destination_parent_id(&ou)
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&w, dir.path());
    assert_eq!(run(&w, &["bootstrap"], &path).status.code(), Some(0));

    // FullAWSAccess alone denies nothing; dev and qa are outside the organization, and say so.
    assert_eq!(denied(&w, &path), Vec::<(String, String, String)>::new());
    let out = run(&w, &["verify", "--live", "--format", "json"], &path);
    let unreadable = json(&out)["unreadable"].to_string();
    assert!(
        unreadable.contains(&format!(
            "account {} (dev): it is not in the organization",
            w.accounts.dev
        )),
        "{unreadable}"
    );
    assert!(!unreadable.contains("(prod)"), "{unreadable}");

    let guardrail = r#"{"Version":"2012-10-17","Statement":[{"Sid":"FrozenAliases","Effect":"Deny","Action":"lambda:UpdateAlias","Resource":"*"}]}"#;
    let policy = org
        .create_policy()
        .name("frozen-aliases")
        .description("no alias changes")
        .r#type(PolicyType::ServiceControlPolicy)
        .content(guardrail)
        .send()
        .await
        .unwrap();
    org.attach_policy()
        .policy_id(
            policy
                .policy()
                .and_then(|p| p.policy_summary())
                .and_then(|s| s.id())
                .unwrap(),
        )
        .target_id(&ou)
        .send()
        .await
        .unwrap();
    let out = run(&w, &["verify", "--live", "--format", "json"], &path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc = json(&out);
    let failed: Vec<&Value> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["allowed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(failed[0]["environment"], "prod");
    assert_eq!(failed[0]["action"], "lambda:UpdateAlias");
    assert_eq!(
        failed[0]["layer"], "service control policy",
        "{:#}",
        failed[0]
    );
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("FrozenAliases") && reason.contains(&ou),
        "the reason names the statement and where it is attached: {reason}"
    );
}

#[tokio::test]
async fn run_refuses_to_deploy_when_the_manifest_needs_access_bootstrap_did_not_grant() {
    let w = world().await;
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&w, dir.path());
    assert_eq!(run(&w, &["bootstrap"], &path).status.code(), Some(0));
    // A new alarm to watch in every environment: the deploy roles may not read it yet.
    let text_before = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text_before.replace(
            r#"alarms: ["orders-fn-errors-${env}"]"#,
            r#"alarms: ["orders-fn-errors-${env}", "orders-fn-latency-${env}"]"#,
        ),
    )
    .unwrap();
    let out = run(&w, &["run", "--auto-approve"], &path);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("cloudwatch:DescribeAlarms"), "{all}");
    assert!(all.contains("orders-fn-latency-dev"), "{all}");
    assert!(all.contains("`ferry bootstrap` adds it"), "{all}");
    assert!(
        !dir.path().join(".ferry/state.db").exists() || !all.contains("started"),
        "nothing started: {all}"
    );
}

#[test]
fn a_resource_that_is_not_ferrys_is_not_taken_over() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(world());
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(&w, dir.path());
    // The team already has a role of that name, made by hand.
    let dev = rt.block_on(admin_config(&w.accounts.dev));
    rt.block_on(async {
        aws_sdk_iam::Client::new(&dev)
            .create_role()
            .role_name("ferry-deploy")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
            .send()
            .await
            .unwrap();
    });
    let plan = run(&w, &["plan"], &path);
    assert!(
        text(&plan).contains("! iam role ferry-deploy — exists, but is not ferry's"),
        "{}",
        text(&plan)
    );
    let out = run(&w, &["bootstrap"], &path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("exists but is not ferry's"),
        "{}",
        text(&out)
    );
}

#[test]
fn synthesized_terraform_passes_checkov_with_every_skip_explained() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml");
    checkov_passes(&example, 50);
}

/// With `shared.server`, the modules also run `ferry serve` on ECS Fargate, and with
/// `runner: codebuild` they hold the CodeBuild project (in a VPC) and its service role: those
/// pass too.
#[test]
fn synthesized_terraform_with_the_server_passes_checkov() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml"),
    )
    .unwrap();
    let with_server = example
        .replacen(
            "  repositories: [orders-api]\n",
            "  repositories: [orders-api]\n  server:\n    image: 111111111111.dkr.ecr.us-east-1.amazonaws.com/ferry:0.1.0\n    vpc: vpc-0abc1234\n    subnets: [subnet-0abc1234, subnet-0def5678]\n    allowed_cidrs: [10.0.0.0/16]\n    poll: 1m\n  builds: {runner: codebuild, vpc: {id: vpc-0abc1234, subnets: [subnet-0abc1234], security_groups: [sg-0abc1234]}}\n  github_actions: {repository: acme/orders}\n",
            1,
        )
        .replacen("  repo: .\n", "  repo: https://github.com/acme/orders.git\n", 1);
    assert_ne!(with_server, example);
    let path = dir.path().join("ferry.yaml");
    std::fs::write(&path, with_server).unwrap();
    for buildspec in ["buildspec.yml", "buildspec-test.yml"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../examples/orders")
                .join(buildspec),
            dir.path().join(buildspec),
        )
        .unwrap();
    }
    let tf = checkov_passes(&path, 80);
    let main = std::fs::read_to_string(tf.path().join("tf/modules/server/main.tf")).unwrap();
    assert!(
        main.contains("task_role_arn            = var.pipeline_role_arn"),
        "{main}"
    );
    assert!(
        main.contains("arn:aws:ecr:us-east-1:111111111111:repository/ferry"),
        "{main}"
    );
    let shared = std::fs::read_to_string(tf.path().join("tf/modules/shared/main.tf")).unwrap();
    assert!(
        shared.contains("resource \"aws_codebuild_project\" \"build\"")
            && shared.contains("service_role   = aws_iam_role.build.arn")
            && shared.contains("resource \"aws_iam_role_policy\" \"build_ferry_build\""),
        "{shared}"
    );
    // In its VPC, and its role may make the builds' network interfaces there.
    assert!(
        shared.contains("vpc_config {\n    vpc_id             = \"vpc-0abc1234\"\n    subnets            = [\"subnet-0abc1234\"]\n    security_group_ids = [\"sg-0abc1234\"]\n  }")
            && shared.contains("arn:aws:ec2:us-east-1:${var.account_id}:subnet/subnet-0abc1234"),
        "{shared}"
    );
}

/// Writes the manifest's Terraform and scans it; returns the directory it is in.
fn checkov_passes(manifest: &Path, at_least: usize) -> tempfile::TempDir {
    let checkov = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/checkov/bin/checkov");
    assert!(
        checkov.exists(),
        "checkov is not installed: scripts/test installs it into .tools/checkov"
    );
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("tf");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["synth", "terraform", "--out"])
        .arg(&out_dir)
        .arg("-f")
        .arg(manifest)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // --skip-download: checkov otherwise fetches guidelines from the network.
    let scan = std::process::Command::new(&checkov)
        .args(["-d"])
        .arg(&out_dir)
        .args(["--framework", "terraform", "--skip-download", "-o", "json"])
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&scan.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&scan)));
    let results = &report["results"];
    let failed: Vec<String> = results["failed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} ({})", c["check_id"], c["check_name"], c["resource"]))
        .collect();
    assert!(failed.is_empty(), "checkov failed checks: {failed:#?}");
    assert!(
        report["summary"]["parsing_errors"] == 0,
        "{}",
        report["summary"]
    );
    assert!(
        results["passed_checks"].as_array().unwrap().len() > at_least,
        "too few checks ran: {}",
        report["summary"]
    );
    // Only the skips ferry documents, each with its reason in the file.
    let documented: Vec<&str> = ferry_plan::synth::terraform::SKIPPED
        .iter()
        .map(|(id, _)| *id)
        .collect();
    for skipped in results["skipped_checks"].as_array().unwrap() {
        let id = skipped["check_id"].as_str().unwrap();
        assert!(
            documented.contains(&id),
            "{id} is skipped but not in SKIPPED"
        );
        let comment = skipped["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("");
        assert!(comment.len() > 20, "{id} skipped without a reason");
    }
    dir
}

#[test]
fn synth_codepipeline_has_the_stages_and_a_deploy_role_per_environment() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["synth", "codepipeline", "-f"])
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stages: Vec<&str> = doc["pipeline"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["Source", "build", "test", "dev", "qa", "prod"]);
    let prod = &doc["pipeline"]["stages"][5]["actions"];
    let kinds: Vec<&str> = prod
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["actionTypeId"]["provider"].as_str().unwrap())
        .collect();
    // The Lambda deploy runs `ferry deploy lambda` in CodeBuild: CodePipeline's own Lambda
    // action deploys the whole artifact as code, and would round the 5 s bake to a minute.
    assert_eq!(kinds, ["Manual", "ECS", "CodeBuild"]);
    assert_eq!(
        prod[1]["roleArn"],
        "arn:aws:iam::444444444444:role/ferry-deploy"
    );
    assert_eq!(
        prod[2]["configuration"]["ProjectName"],
        "ferry-orders-prod-function"
    );
    assert_eq!(
        doc["pipeline"]["stages"][5]["onFailure"]["result"],
        "ROLLBACK"
    );
    let notes = String::from_utf8_lossy(&out.stderr);
    assert!(notes.contains("CONNECTION_ARN"), "{notes}");
    assert!(
        notes.contains("ferry synth codepipeline --apply"),
        "{notes}"
    );
    // Without ferry's state, a Lambda deploy records no release, and says so.
    assert!(
        notes.contains("prod.function: the deploy writes no entry to ferry's release ledger"),
        "{notes}"
    );
    assert!(
        prod[2]["configuration"]
            .get("EnvironmentVariables")
            .is_none()
    );
}

#[test]
fn doctor_explains_a_pasted_message() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml");
    let message = "An error occurred (AccessDenied) when calling the AssumeRole operation: User: arn:aws:sts::111111111111:assumed-role/ferry-orders/ferry-orders-12 is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444444444444:role/ferry-deploy";
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["doctor", message, "-f"])
        .arg(&example)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("in account prod (444444444444): the trust policy of arn:aws:iam::444444444444:role/ferry-deploy"), "{all}");
    assert!(
        all.contains("\"sts:ExternalId\": \"ferry-orders-prod\""),
        "{all}"
    );
    assert!(
        all.contains("in account shared (111111111111): identity policy ferry-pipeline"),
        "{all}"
    );
}
