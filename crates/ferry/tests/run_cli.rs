//! `ferry run` and its companions as a user drives them, on a copy of examples/local.

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Std, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn ferry() -> Command {
    let mut cmd = Command::cargo_bin("ferry").unwrap();
    cmd.env("FERRY_IDENTITY", "tester")
        .env("NO_COLOR", "1")
        .env_remove("FERRY_STATE_DIR");
    cmd
}

/// examples/local copied into a fresh directory (outside git: revision `local`).
fn example(extra: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/local");
    for entry in walk(&src) {
        let rel = entry.strip_prefix(&src).unwrap();
        if rel.starts_with(".ferry") {
            continue;
        }
        let dest = dir.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dest).unwrap();
    }
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let manifest = dir.path().join("ferry.yaml");
    (dir, manifest)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

fn status(manifest: &Path) -> Value {
    let out = ferry()
        .args(["status", "--format", "json", "-f"])
        .arg(manifest)
        .output()
        .unwrap();
    // Before the run has created its execution there is nothing to show yet.
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn spawn_run(manifest: &Path) -> Child {
    Std::new(assert_cmd::cargo::cargo_bin("ferry"))
        .args(["run", "-f"])
        .arg(manifest)
        .env("FERRY_IDENTITY", "tester")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for_approval(manifest: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if status(manifest)["pending_approvals"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = ferry()
        .args(["status", "--format", "json", "-f"])
        .arg(manifest)
        .output()
        .unwrap();
    panic!(
        "no approval was requested: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn wait_exit(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("ferry run did not end");
}

#[test]
fn the_local_example_runs_end_to_end_with_auto_approval() {
    let (dir, manifest) = example(&[]);
    ferry()
        .args(["run", "--auto-approve", "-f"])
        .arg(&manifest)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("local-demo-1 succeeded"));
    let s = status(&manifest);
    assert_eq!(s["status"], "Succeeded");
    let stages: Vec<&str> = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["source", "build", "review", "test"]);
    assert_eq!(
        s["stages"][1]["actions"][0]["outputs"]["exported"]["APP_VERSION"],
        "1.0.0-local"
    );
    ferry()
        .args(["logs", "1", "unit", "-f"])
        .arg(&manifest)
        .assert()
        .success()
        .stdout(predicate::str::contains("greeter tests passed"));
    ferry()
        .args(["history", "-f"])
        .arg(&manifest)
        .assert()
        .success()
        .stdout(predicate::str::contains("local-demo-1"));
    assert!(
        dir.path().join(".ferry/state.db").exists(),
        "state lives beside the manifest"
    );
}

#[test]
fn an_approval_from_another_process_lets_the_run_continue() {
    let (_dir, manifest) = example(&[]);
    let mut run = spawn_run(&manifest);
    wait_for_approval(&manifest);
    ferry()
        .args([
            "approve",
            "1",
            "review",
            "--comment",
            "ok",
            "--no-continue",
            "-f",
        ])
        .arg(&manifest)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "approved stage review of local-demo-1 as tester",
        ));
    assert_eq!(wait_exit(&mut run), 0);
    assert_eq!(status(&manifest)["status"], "Succeeded");
}

#[test]
fn a_rejection_fails_the_run_with_who_and_why() {
    let (_dir, manifest) = example(&[]);
    let mut run = spawn_run(&manifest);
    wait_for_approval(&manifest);
    ferry()
        .args([
            "reject",
            "1",
            "review",
            "--comment",
            "not today",
            "--no-continue",
            "-f",
        ])
        .arg(&manifest)
        .assert()
        .success();
    assert_eq!(wait_exit(&mut run), 1);
    let s = status(&manifest);
    assert_eq!(s["status"], "Failed");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("rejected by tester: not today")
    );
}

#[test]
fn a_killed_run_is_continued_by_the_approver() {
    let (_dir, manifest) = example(&[]);
    let mut run = spawn_run(&manifest);
    wait_for_approval(&manifest);
    // The process driving the execution dies (SIGKILL): the wait is persisted.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = run.wait();
    ferry()
        .args(["approve", "1", "review", "-f"])
        .arg(&manifest)
        .assert()
        .code(0)
        .stderr(predicate::str::contains(
            "no ferry process is driving local-demo-1; continuing it here",
        ))
        .stdout(predicate::str::contains("local-demo-1 succeeded"));
}

#[test]
fn retry_runs_the_failed_stage_again() {
    let flaky = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -f \"$HOME/../ok\" || test -f ../../../../ok\n";
    let (dir, manifest) = example(&[("buildspec-test.yml", flaky)]);
    ferry()
        .args(["run", "--auto-approve", "-f"])
        .arg(&manifest)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "retry: ferry retry local-demo-1 test",
        ));
    // Make the test pass: the marker sits where the build's relative path finds it.
    let work = dir.path().join(".ferry/work/local-demo-1/test.unit.1/src");
    std::fs::write(work.join("../../../../ok"), "").unwrap();
    ferry()
        .args(["retry", "1", "test", "-f"])
        .arg(&manifest)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("succeeded"));
    let actions = &status(&manifest)["stages"][3]["actions"][0];
    assert_eq!(actions["attempt"], 2);
}

#[test]
fn a_forced_stop_ends_a_running_build() {
    let slow = "version: 0.2\nphases:\n  build:\n    commands: [sleep 300]\n";
    let (_dir, manifest) = example(&[("buildspec.yml", slow)]);
    let mut run = spawn_run(&manifest);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&manifest)["stages"][1]["status"] != "InProgress" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    ferry()
        .args(["stop", "1", "--force", "-f"])
        .arg(&manifest)
        .assert()
        .success();
    assert_eq!(wait_exit(&mut run), 1);
    assert_eq!(status(&manifest)["status"], "Stopped");
}

#[test]
fn an_invalid_manifest_is_not_run() {
    let (_dir, manifest) = example(&[("ferry.yaml", "pipeline: local-demo\nstages: {}\n")]);
    ferry()
        .args(["run", "-f"])
        .arg(&manifest)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "ferry.yaml:2:9: error: `stages` must be a list",
        ));
}
