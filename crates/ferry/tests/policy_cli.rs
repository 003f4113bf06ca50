//! `ferry policy simulate|lint` as scripts use them.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn ferry() -> Command {
    Command::cargo_bin("ferry").unwrap()
}

const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/1234";

fn request(key_policy_principal: &str) -> String {
    serde_json::json!({
        "principal": "arn:aws:sts::222222222222:assumed-role/ferry-deploy/run-1",
        "action": "kms:Decrypt", "resource": KEY, "resource_account": "111111111111",
        "identity_policies": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY}]}],
        "resource_policy": {"Version": "2012-10-17", "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "Deploy", "Effect": "Allow", "Principal": {"AWS": key_policy_principal}, "Action": "kms:Decrypt", "Resource": "*"}]}
    })
    .to_string()
}

#[test]
fn simulate_allows_and_names_the_deciding_statements() {
    let out = ferry()
        .args(["policy", "simulate", "--format", "json", "-"])
        .write_stdin(request("arn:aws:iam::222222222222:role/ferry-deploy"))
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["decision"], "Allow");
    let sids: Vec<&str> = v["statements"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["sid"].as_str())
        .collect();
    assert_eq!(sids, ["Deploy"]);
}

#[test]
fn simulate_denial_says_which_statement_to_add_and_where() {
    ferry()
        .args(["policy", "simulate", "-"])
        .write_stdin(request("arn:aws:iam::333333333333:role/ferry-deploy"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("ImplicitDeny"))
        .stdout(predicate::str::contains(format!(
            "add to the key policy of {KEY}"
        )))
        .stdout(predicate::str::contains(
            r#""Principal":{"AWS":"arn:aws:iam::222222222222:role/ferry-deploy"}"#,
        ));
}

#[test]
fn cases_answer_every_line_in_order_and_report_malformed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cases.jsonl");
    let mut good: Value =
        serde_json::from_str(&request("arn:aws:iam::222222222222:role/ferry-deploy")).unwrap();
    good["id"] = "good".into();
    let bad = r#"{"id": "bad", "principal": "bob", "action": "s3:GetObject", "resource": "*"}"#;
    std::fs::write(&path, format!("{good}\n{bad}\nnot json\n")).unwrap();
    let out = ferry()
        .args(["policy", "simulate", "--cases"])
        .arg(&path)
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (lines[0]["id"].as_str(), lines[0]["decision"].as_str()),
        (Some("good"), Some("Allow"))
    );
    assert_eq!(lines[1]["id"], "bad");
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("not a principal")
    );
    assert_eq!(lines[2]["id"], 3);
    assert!(lines[2]["error"].is_string());
}

#[test]
fn lint_finds_seed_style_wildcards_with_a_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo-policy.json");
    std::fs::write(&path, r#"{"Version": "2012-10-17", "Statement": [{"Sid": "Targets", "Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::222222222222:root"]}, "Action": "ecr:*"}]}"#).unwrap();
    ferry()
        .args(["policy", "lint"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("repo-policy.json:1:147: error: Statement[0].Action[0]: `ecr:*` grants all"))
        .stdout(predicate::str::contains(r#"["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]"#));
    let out = ferry()
        .args(["policy", "lint", "--format", "json"])
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["files"][0]["findings"][0]["code"], "wildcard-action");
}

#[test]
fn lint_reports_malformed_json_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(
        &path,
        "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\",}\n",
    )
    .unwrap();
    ferry()
        .args(["policy", "lint"])
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("p.json:"));
}
