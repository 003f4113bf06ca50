//! The command line as users and scripts see it: help, exit codes, formats, colour.

use assert_cmd::Command;
use predicates::prelude::*;

fn ferry() -> Command {
    let mut cmd = Command::cargo_bin("ferry").unwrap();
    cmd.env_remove("FERRY_FILE").env_remove("CLICOLOR_FORCE");
    cmd
}

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/orders/ferry.yaml"
);

#[test]
fn help_lists_every_command_of_the_design_with_one_line_each() {
    let out = ferry()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    for command in [
        "init",
        "validate",
        "schema",
        "run",
        "status",
        "logs",
        "approve",
        "reject",
        "retry",
        "stop",
        "deploy",
        "rollback",
        "releases",
        "plan",
        "bootstrap",
        "verify",
        "doctor",
        "synth",
        "policy",
        "serve",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{command} ")))
            .unwrap_or_else(|| panic!("`{command}` missing from --help:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "`{command}` has no description"
        );
    }
}

#[test]
fn version_prints_the_crate_version() {
    ferry()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn valid_manifest_exits_zero_and_summarises_the_pipeline() {
    ferry()
        .args(["validate", "-f", EXAMPLE])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("build → test → dev → qa → prod"));
}

#[test]
fn invalid_manifest_exits_one_with_located_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.yaml");
    std::fs::write(
        &path,
        "pipeline: orders\nshared: {id: \"1\", region: eu-west-1}\nstags: []\n",
    )
    .unwrap();
    ferry()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "ferry.yaml:2:14: error: account id `1` is not valid",
        ))
        .stderr(predicate::str::contains(
            "ferry.yaml:3:1: error: unknown key `stags`",
        ))
        .stderr(predicate::str::contains("did you mean `stages`?"))
        .stderr(predicate::str::contains("2 errors"));
}

#[test]
fn warnings_fail_only_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.yaml");
    std::fs::write(&path, "pipeline: orders\nshared: {id: \"111111111111\", region: eu-west-1}\nsecrets: {TOKEN: t}\n").unwrap();
    ferry()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("1 warning"));
    ferry()
        .args(["validate", "--strict", "-f"])
        .arg(&path)
        .assert()
        .code(1);
}

#[test]
fn usage_errors_exit_two() {
    ferry()
        .args(["validate", "--no-such-flag"])
        .assert()
        .code(2);
    ferry()
        .args(["validate", "--format", "xml"])
        .assert()
        .code(2);
}

#[test]
fn json_format_is_one_document_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.yaml");
    std::fs::write(
        &path,
        "pipeline: Orders\nshared: {id: \"111111111111\", region: eu-west-1}\n",
    )
    .unwrap();
    let out = ferry()
        .args(["validate", "--format", "json", "-f"])
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 1);
    let d = &v["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(1), Some(11))
    );
    assert_eq!(d["code"], "invalid-value");
    assert!(d["hint"].as_str().unwrap().contains("lowercase"));
}

/// A build reading a variable the exporting build's inline buildspec does not export is caught
/// by validate, at the reference, with what it does export.
#[test]
fn validate_finds_a_variable_the_exporting_buildspec_does_not_export() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.yaml");
    let manifest = |variable: &str| {
        format!(
            "version: 1\npipeline: orders\nstages:\n  - name: build\n    actions:\n      - name: app\n        build:\n          buildspec: |\n            version: 0.2\n            env:\n              exported-variables: [VERSION]\n            phases:\n              build:\n                commands: [export VERSION=1]\n  - name: test\n    actions:\n      - name: smoke\n        build:\n          buildspec: |\n            version: 0.2\n            phases:\n              build:\n                commands: [echo $TAG]\n          env: {{TAG: \"v#{{build.app.{variable}}}\"}}\n"
        )
    };
    std::fs::write(&path, manifest("VERSON")).unwrap();
    let out = ferry()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("ferry.yaml:24:")
            && text.contains("does not export `VERSON`")
            && text.contains("it exports: VERSION"),
        "{text}"
    );
    std::fs::write(&path, manifest("VERSION")).unwrap();
    ferry()
        .args(["validate", "--strict", "-f"])
        .arg(&path)
        .assert()
        .success();
}

#[test]
fn no_colour_when_output_is_not_a_terminal_or_no_color_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferry.yaml");
    std::fs::write(&path, "stags: 1\n").unwrap();
    let out = ferry()
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(!out.stderr.contains(&0x1b), "ANSI escape in piped output");
    // Forcing colour shows the styles exist; NO_COLOR wins over the force.
    let forced = ferry()
        .env("CLICOLOR_FORCE", "1")
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .get_output()
        .clone();
    assert!(forced.stderr.contains(&0x1b));
    let no_color = ferry()
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .args(["validate", "-f"])
        .arg(&path)
        .assert()
        .get_output()
        .clone();
    assert!(!no_color.stderr.contains(&0x1b));
}

#[test]
fn init_writes_starters_that_validate_and_refuses_to_overwrite() {
    for flags in [
        &[][..],
        &["--ecs"][..],
        &["--lambda"][..],
        &["--ecs", "--lambda"][..],
    ] {
        let dir = tempfile::tempdir().unwrap();
        ferry()
            .arg("init")
            .args(flags)
            .arg("--dir")
            .arg(dir.path())
            .arg("--name")
            .arg("shop")
            .assert()
            .success();
        ferry()
            .args(["validate", "--strict", "-f"])
            .arg(dir.path().join("ferry.yaml"))
            .assert()
            .code(0);
        assert!(dir.path().join("buildspec.yml").exists());
        ferry()
            .arg("init")
            .arg("--dir")
            .arg(dir.path())
            .assert()
            .code(1)
            .stderr(predicate::str::contains("already exists; pass --force"));
    }
}

#[test]
fn schema_is_json_with_a_title() {
    let out = ferry()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["title"], "ferry.yaml");
    assert!(v["properties"]["deploy"].is_object());
}

#[test]
fn an_unknown_command_is_a_usage_error() {
    ferry()
        .args(["publish", "--port", "8080"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unrecognized subcommand 'publish'",
        ));
}

#[test]
fn serve_without_a_configuration_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    ferry()
        .current_dir(dir.path())
        .arg("serve")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("server.yaml"))
        .stderr(predicate::str::contains("docs/server.md"));
}

#[test]
fn a_mistake_in_server_yaml_is_named_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("server.yaml"),
        "state: s\npipelines:\n  - name: orders\n    repo: file:///srv/orders.git\n    pol: 1m\n",
    )
    .unwrap();
    ferry()
        .current_dir(dir.path())
        .args(["serve", "token", "list"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "server.yaml:5:5: error: unknown key `pol`",
        ))
        .stderr(predicate::str::contains("did you mean `poll`?"));
}

/// Regression: an empty `AWS_ENDPOINT_URL` made the AWS SDK panic with a stack trace.
#[test]
fn an_empty_or_malformed_endpoint_setting_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let zip = dir.path().join("fn.zip");
    std::fs::write(&zip, b"PK").unwrap();
    for (name, value) in [
        ("AWS_ENDPOINT_URL", ""),
        ("AWS_ENDPOINT_URL_LAMBDA", "localhost:4566"),
    ] {
        let out = ferry()
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .env(name, value)
            .args([
                "deploy",
                "lambda",
                "--function",
                "f",
                "--alias",
                "live",
                "--zip",
            ])
            .arg(&zip)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}={value:?}: {stderr}");
        assert!(
            stderr.contains(&format!("{name} is {value:?}: give a URL")),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
