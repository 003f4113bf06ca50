//! Pipelines on the real buildspec runner, the local artifact store and SQLite.

mod common;

use common::*;
use ferry_engine::action::RunEvent;
use ferry_engine::model::*;
use ferry_engine::store::{Decision, StageEntry};

#[tokio::test]
async fn build_and_test_share_an_artifact_and_the_shell_keeps_its_state() {
    let h = harness(&[], false);
    let repo = h.source(&[("app/main.txt", "hello")]);
    let build_spec = r#"version: 0.2
env:
  variables: {GREETING: hi}
  exported-variables: [BUILT_AT, GREETING]
phases:
  install:
    commands:
      - cd app
      - export BUILT_AT=now
  build:
    commands:
      - test "$(pwd)" = "$CODEBUILD_SRC_DIR/app"
      - mkdir -p ../dist && cp main.txt ../dist/main.txt
      - echo "$GREETING from $CODEBUILD_RESOLVED_SOURCE_VERSION" > ../dist/note.txt
artifacts:
  base-directory: dist
  files: ['**/*']
"#;
    let test_spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test \"$(cat main.txt)\" = hello\n      - grep -q 'hi from local' note.txt\n";
    let def = pipeline(
        "app",
        Mode::Superseded,
        vec![
            source_stage(&repo),
            stage(
                "build",
                vec![build("compile", build_spec, &["source"], &["app"])],
            ),
            stage("test", vec![build("check", test_spec, &["app"], &[])]),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    assert_eq!(
        done.status,
        Status::Succeeded,
        "{:?}\n{}",
        done.reason,
        log_of(&h.engine, &exec.id, "build", "compile")
    );
    let runs = h.engine.store().action_runs(&exec.id).unwrap();
    let compile = runs.iter().find(|r| r.action == "compile").unwrap();
    assert_eq!(
        compile.outputs.as_ref().unwrap()["exported"]["BUILT_AT"],
        "now"
    );
    let names: Vec<String> = h
        .engine
        .store()
        .artifacts(&exec.id)
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["app", "source"]);
}

/// Artifact paths name variables, as CodeBuild expands them: the buildspec's own and an
/// exported one the commands set. (Regression: `base-directory: $OUT` looked for a directory
/// literally named `$OUT`.)
#[tokio::test]
async fn artifact_paths_expand_the_builds_variables() {
    let h = harness(&[], false);
    let repo = h.source(&[("a.txt", "x")]);
    let spec = r#"version: 0.2
env:
  variables: {OUT: dist}
  exported-variables: [FLAVOR]
phases:
  build:
    commands:
      - export FLAVOR=web
      - mkdir -p dist/web && echo hi > dist/web/index.html && echo no > dist/web/skip.txt
artifacts:
  base-directory: $OUT/${FLAVOR}
  files: ['*.$EXT', index.html]
"#;
    let def = pipeline(
        "vars",
        Mode::Superseded,
        vec![
            source_stage(&repo),
            stage("build", vec![build("pack", spec, &["source"], &["site"])]),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    let log = log_of(&h.engine, &exec.id, "build", "pack");
    assert_eq!(done.status, Status::Succeeded, "{:?}\n{log}", done.reason);
    // `*.$EXT` (EXT unset) is `*.`, which matches nothing; index.html is the one file.
    assert!(log.contains("[ferry] artifact site: 1 files"), "{log}");
}

/// Regression: `env.shell` was parsed as an ignored key, so every build ran bash.
#[tokio::test]
async fn env_shell_picks_the_shell_that_runs_the_commands() {
    let h = harness(&[], false);
    // BASH_VERSION is set by bash only, and never exported.
    let in_sh = "version: 0.2\nenv:\n  shell: /bin/sh\nphases:\n  build:\n    commands:\n      - test -z \"$BASH_VERSION\"\n";
    let in_bash = "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands:\n      - test -n \"$BASH_VERSION\"\n";
    let def = pipeline(
        "shells",
        Mode::Superseded,
        vec![stage(
            "build",
            vec![
                build("sh", in_sh, &[], &[]),
                build("bash", in_bash, &[], &[]),
            ],
        )],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    assert_eq!(
        done.status,
        Status::Succeeded,
        "{:?}\n{}\n{}",
        done.reason,
        log_of(&h.engine, &exec.id, "build", "sh"),
        log_of(&h.engine, &exec.id, "build", "bash")
    );
}

#[tokio::test]
async fn phases_follow_codebuild_rules() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let spec = r#"version: 0.2
phases:
  install:
    on-failure: CONTINUE
    commands: [false, echo not-reached-install]
    finally: [echo install-finally]
  build:
    commands: [echo building, false, echo not-reached-build]
  post_build:
    commands: ['echo "post_build runs, succeeding=$CODEBUILD_BUILD_SUCCEEDING"']
"#;
    let (done, log) = h.run_build(&repo, build("b", spec, &["source"], &[])).await;
    assert_eq!(done.status, Status::Failed);
    assert!(log.contains("install-finally"), "{log}");
    assert!(!log.contains("not-reached"));
    assert!(log.contains("[ferry] phase install FAILED"));
    assert!(log.contains("post_build runs, succeeding=0"), "{log}");
    assert!(done.reason.unwrap().contains("build.b: the build failed"));
}

/// `on-failure: RETRY-count-regex` runs the whole build again, in a fresh workspace, while
/// the failed command's message matches; a message that does not match fails at once.
#[tokio::test]
async fn on_failure_retry_reruns_the_build_while_the_message_matches() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    // Each run counts itself in a file outside the workspace (which each run gets afresh),
    // and fails with status 3 until its `PASS_ON`th run: by `exit 3`, which ends the build's
    // shell, or by a command that returns 3.
    let spec = |on_failure: &str| {
        format!(
            r#"version: 0.2
phases:
  build:
    on-failure: {on_failure}
    commands:
      - test ! -e leftover
      - touch leftover
      - n=$(( $(cat "$COUNTER" 2>/dev/null || echo 0) + 1 )); echo $n > "$COUNTER"
      - test "$(cat "$COUNTER")" -ge "$PASS_ON" || eval "$FAIL"
"#
        )
    };
    let counter = |name: &str| h.dir.path().join(name).display().to_string();
    let retrying = |name: &str, on_failure: &str, pass_on: u32, fail: &str| {
        let mut b = build(name, &spec(on_failure), &["source"], &[]);
        b.config["env"] = serde_json::json!([
            ["COUNTER", counter(name)],
            ["PASS_ON", pass_on.to_string()],
            ["FAIL", fail]
        ]);
        b
    };
    let def = pipeline(
        "retry",
        Mode::Parallel,
        vec![
            source_stage(&repo),
            stage(
                "build",
                vec![
                    retrying("flaky", "RETRY-2-exit status 3$", 2, "exit 3"),
                    retrying("other", "RETRY-2-exit status 9", 2, "(exit 3)"),
                    retrying("hopeless", "RETRY-1", 5, "(exit 3)"),
                ],
            ),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    let runs_of = |name: &str| {
        std::fs::read_to_string(counter(name))
            .unwrap()
            .trim()
            .to_owned()
    };
    let flaky = log_of(&h.engine, &exec.id, "build", "flaky");
    assert!(
        flaky.contains("its on-failure retries the build: run 2 of at most 3"),
        "{flaky}"
    );
    assert_eq!(runs_of("flaky"), "2", "it passes on its second run");
    assert_eq!(
        runs_of("other"),
        "1",
        "a message that does not match is not retried"
    );
    assert_eq!(runs_of("hopeless"), "2", "RETRY-1 allows one more run");
    let runs = h.engine.store().action_runs(&exec.id).unwrap();
    let status = |name: &str| runs.iter().find(|r| r.action == name).unwrap().status;
    assert_eq!(status("flaky"), Status::Succeeded, "{flaky}");
    assert_eq!(status("other"), Status::Failed);
    let hopeless = runs.iter().find(|r| r.action == "hopeless").unwrap();
    assert!(
        hopeless
            .error
            .as_deref()
            .unwrap()
            .contains("failed after 1 retry"),
        "{:?}",
        hopeless.error
    );
    assert_eq!(done.status, Status::Failed);
}

/// `env.parameter-store`: a SecureString is masked like a secret, a String is plain.
#[tokio::test]
async fn parameter_store_values_reach_the_build_and_secure_ones_are_masked() {
    let h = harness(
        &[
            ("ssm:/secure/db-password", "pg-very-secret-value"),
            ("ssm:/app/region", "eu-west-1"),
        ],
        false,
    );
    let repo = h.source(&[("x", "")]);
    let spec = r#"version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /secure/db-password
    REGION: /app/region
phases:
  build:
    commands:
      - echo "password $DB_PASSWORD in $REGION"
      - test "$DB_PASSWORD" = pg-very-secret-value
"#;
    let (done, log) = h.run_build(&repo, build("b", spec, &["source"], &[])).await;
    assert_eq!(done.status, Status::Succeeded, "{:?}\n{log}", done.reason);
    assert!(log.contains("password *** in eu-west-1"), "{log}");
    assert!(!log.contains("very-secret"), "{log}");
}

/// `#{stage.action.NAME}` in a build's `env` takes what an earlier build exported; a
/// variable the build did not export fails with the names it did.
#[tokio::test]
async fn exported_variables_reach_later_builds() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let compile = "version: 0.2\nenv:\n  exported-variables: [VERSION]\nphases:\n  build:\n    commands:\n      - export VERSION=1.4.2\n";
    let check =
        "version: 0.2\nphases:\n  build:\n    commands:\n      - test \"$TAG\" = v1.4.2-web\n";
    let reading = |name: &str, variable: &str| {
        let mut b = build(name, check, &[], &[]);
        let text = format!("#{{build.compile.{variable}}}");
        b.config["env"] = serde_json::json!([["TAG", format!("v{text}-web")]]);
        b.config["imports"] = serde_json::json!([{"text": text, "stage": "build", "action": "compile", "variable": variable}]);
        b
    };
    let def = pipeline(
        "exports",
        Mode::Parallel,
        vec![
            source_stage(&repo),
            stage("build", vec![build("compile", compile, &["source"], &[])]),
            stage(
                "test",
                vec![reading("tagged", "VERSION"), reading("typo", "VERSON")],
            ),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    let runs = h.engine.store().action_runs(&exec.id).unwrap();
    let run = |name: &str| runs.iter().find(|r| r.action == name).unwrap();
    assert_eq!(
        run("tagged").status,
        Status::Succeeded,
        "{:?}\n{}",
        done.reason,
        log_of(&h.engine, &exec.id, "test", "tagged")
    );
    let error = run("typo").error.clone().unwrap();
    assert!(
        error.contains("`build.compile` exported no `VERSON`") && error.contains("gave: VERSION"),
        "{error}"
    );
}

#[tokio::test]
async fn a_secret_is_masked_even_when_printed_in_two_pieces() {
    let secret = "correct-horse-battery";
    let h = harness(&[("orders/token", secret)], false);
    let repo = h.source(&[("x", "")]);
    let spec = r#"version: 0.2
env:
  secrets-manager: {FROM_SPEC: orders/token}
phases:
  build:
    commands:
      - echo "token is $TOKEN and $FROM_SPEC"
      - |
        printf 'split: %s' "${TOKEN:0:13}"; sleep 0.2; printf '%s end\n' "${TOKEN:13}"
      - printf '%s' "$TOKEN" | base64
"#;
    let mut b = build("b", spec, &["source"], &[]);
    b.config["secrets"] = serde_json::json!([["TOKEN", "orders/token"]]);
    let (done, log) = h.run_build(&repo, b).await;
    assert_eq!(done.status, Status::Succeeded, "{:?}\n{log}", done.reason);
    assert!(
        !log.contains("horse"),
        "a piece of the secret reached the log:\n{log}"
    );
    assert!(log.contains("token is *** and ***"));
    assert!(log.contains("split: *** end"));
    assert!(
        h.recorder.log_lines().iter().all(|l| !l.contains("horse")),
        "the live view saw the secret"
    );
    let events = h.engine.store().events(&done.id).unwrap();
    assert!(
        events
            .iter()
            .all(|e| !e.detail.as_deref().unwrap_or("").contains("horse"))
    );
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let marker = h.dir.path().join("child.pid");
    let spec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - (sleep 300 & echo $! > {}; wait)\n",
        marker.display()
    );
    let mut b = build("slow", &spec, &["source"], &[]);
    b.timeout_secs = Some(1);
    let def = pipeline(
        "timeout",
        Mode::Parallel,
        vec![source_stage(&repo), stage("build", vec![b])],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let started = std::time::Instant::now();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    assert_eq!(done.status, Status::Failed);
    assert!(done.reason.unwrap().contains("timed out after 1 s"));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The grandchild `sleep 300` died with its group. A killed process takes a moment to be
    // gone (on a loaded machine, more than one): wait for it, not for a fixed time.
    let alive = || {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!alive(), "the build's child {pid} survived the timeout");
}

#[tokio::test]
async fn a_malformed_buildspec_fails_with_line_and_column_in_the_log() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let def = pipeline(
        "bad",
        Mode::Parallel,
        vec![
            source_stage(&repo),
            stage(
                "build",
                vec![build(
                    "b",
                    "version: 0.2\nphase:\n  build: {commands: [true]}\n",
                    &["source"],
                    &[],
                )],
            ),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let done = h.engine.drive(&exec.id, None).await.unwrap();
    assert_eq!(done.status, Status::Failed);
    let log = log_of(&h.engine, &exec.id, "build", "b");
    // The unknown key is a warning, as CodeBuild logs it; the missing `phases` fails the build.
    assert!(
        log.contains("inline buildspec (test):2:1: warning: unknown key `phase`"),
        "{log}"
    );
    assert!(log.contains("did you mean `phases`?"));
    assert!(log.contains("error: the buildspec needs `phases`"), "{log}");
}

/// Regression: with two approvals waiting in one stage, a decision went to the stage's first
/// whoever made it, so an approver of the second was refused as "may not approve" the first.
/// Now it goes to the only one whose approvers admit the caller, and one admitted by both
/// must name it.
#[tokio::test]
async fn of_two_approvals_in_a_stage_each_approver_decides_their_own() {
    let h = harness(&[], false);
    let named = |name: &str, approvers: &[&str]| ActionDef {
        name: name.into(),
        ..approval(3600, approvers, false)
    };
    let def = pipeline(
        "review",
        Mode::Parallel,
        vec![stage(
            "review",
            vec![
                named("security", &["alice", "carol"]),
                named("product", &["bob", "carol"]),
            ],
        )],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let (_, driving) = h.drive_to_approval(&exec.id).await;
    while h
        .engine
        .store()
        .pending_approvals(Some(&exec.id))
        .unwrap()
        .len()
        < 2
    {
        assert!(
            !driving.is_finished(),
            "the execution ended before both approvals"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let who = |identity: &str| Decision {
        approve: true,
        identity: identity.into(),
        ..Decision::default()
    };
    let ambiguous = h
        .engine
        .decide(&exec.id, "review", &who("carol"))
        .unwrap_err()
        .to_string();
    assert!(
        ambiguous.contains("wait in stage `review`")
            && ambiguous.contains("product")
            && ambiguous.contains("security")
            && ambiguous.contains("--action NAME"),
        "{ambiguous}"
    );
    assert_eq!(
        h.engine
            .decide(&exec.id, "review", &who("alice"))
            .unwrap()
            .action,
        "security"
    );
    let refused = h
        .engine
        .decide_action(&exec.id, "review", Some("security"), &who("bob"))
        .unwrap_err()
        .to_string();
    assert!(refused.contains("no approval waits"), "{refused}");
    assert_eq!(
        h.engine
            .decide_action(&exec.id, "review", Some("product"), &who("bob"))
            .unwrap()
            .action,
        "product"
    );
    assert_eq!(driving.await.unwrap().unwrap().status, Status::Succeeded);
}

#[tokio::test]
async fn approvals_wait_check_rules_and_record_the_identity_and_digests() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let def = pipeline(
        "gate",
        Mode::Superseded,
        vec![
            source_stage(&repo),
            stage(
                "build",
                vec![build(
                    "b",
                    "version: 0.2\nphases:\n  build:\n    commands: [mkdir -p out, echo 1 > out/a]\nartifacts: {base-directory: out, files: ['*']}\n",
                    &["source"],
                    &["app"],
                )],
            ),
            stage("qa", vec![approval(3600, &["alice"], true)]),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let (approval, driving) = h.drive_to_approval(&exec.id).await;
    assert_eq!(
        approval.digests.len(),
        2,
        "the request names the artifacts being approved"
    );
    let no_comment = Decision {
        approve: true,
        identity: "alice".into(),
        comment: None,
        ..Decision::default()
    };
    assert!(
        h.engine
            .decide(&exec.id, "qa", &no_comment)
            .unwrap_err()
            .to_string()
            .contains("needs a comment")
    );
    let bob = Decision {
        approve: true,
        identity: "bob".into(),
        comment: Some("ok".into()),
        ..Decision::default()
    };
    assert!(
        h.engine
            .decide(&exec.id, "qa", &bob)
            .unwrap_err()
            .to_string()
            .contains("may not approve")
    );
    assert!(
        h.engine
            .decide(&exec.id, "build", &bob)
            .unwrap_err()
            .to_string()
            .contains("no approval waits in stage `build`")
    );
    let alice = Decision {
        approve: true,
        identity: "alice".into(),
        comment: Some("ship it".into()),
        ..Decision::default()
    };
    let decided = h.engine.decide(&exec.id, "qa", &alice).unwrap();
    assert_eq!(decided.identity.as_deref(), Some("alice"));
    let done = driving.await.unwrap().unwrap();
    assert_eq!(done.status, Status::Succeeded);
    assert!(
        h.engine.decide(&exec.id, "qa", &alice).is_err(),
        "approving twice is refused"
    );
}

#[tokio::test]
async fn approving_changed_artifacts_is_refused() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let def = pipeline(
        "drift",
        Mode::Parallel,
        vec![
            source_stage(&repo),
            stage("qa", vec![approval(3600, &[], false)]),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let (_, driving) = h.drive_to_approval(&exec.id).await;
    // The source artifact is replaced after the request (as a retried build would).
    let mut changed = h.engine.store().artifacts(&exec.id).unwrap().pop().unwrap();
    changed.sha256 = "0".repeat(64);
    h.engine
        .store()
        .record_artifact(&exec.id, &changed, "source.checkout")
        .unwrap();
    let d = Decision {
        approve: true,
        identity: "carol".into(),
        comment: None,
        ..Decision::default()
    };
    assert!(
        h.engine
            .decide(&exec.id, "qa", &d)
            .unwrap_err()
            .to_string()
            .contains("artifacts of")
    );
    let reject = Decision {
        approve: false,
        identity: "carol".into(),
        comment: Some("changed under me".into()),
        ..Decision::default()
    };
    h.engine.decide(&exec.id, "qa", &reject).unwrap();
    let done = driving.await.unwrap().unwrap();
    assert_eq!(done.status, Status::Failed);
    assert!(
        done.reason
            .unwrap()
            .contains("rejected by carol: changed under me")
    );
}

#[tokio::test]
async fn an_approval_waits_across_restarts_with_its_first_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let def = pipeline(
        "restart",
        Mode::Parallel,
        vec![
            source_stage(&repo),
            stage("qa", vec![approval(3600, &[], false)]),
        ],
    );
    let id = {
        let (engine, _) = engine_at(
            &state,
            ferry_engine::Registry::with_builtins(),
            Default::default(),
            false,
        );
        let exec = engine.start(&def, "local", "test").unwrap();
        // The first driver gives up while the approval waits (as a killed process would).
        let _ = tokio::time::timeout(
            std::time::Duration::from_millis(800),
            engine.drive(&exec.id, None),
        )
        .await;
        exec.id
    };
    let (engine, _) = engine_at(
        &state,
        ferry_engine::Registry::with_builtins(),
        Default::default(),
        false,
    );
    let first = engine
        .store()
        .pending_approvals(Some(&id))
        .unwrap()
        .pop()
        .unwrap();
    let e2 = engine.clone();
    let id2 = id.clone();
    let driving = tokio::spawn(async move { e2.drive(&id2, None).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let again = engine
        .store()
        .pending_approvals(Some(&id))
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        first.deadline_ms, again.deadline_ms,
        "a restart does not extend the deadline"
    );
    engine
        .decide(
            &id,
            "qa",
            &Decision {
                approve: true,
                identity: "dave".into(),
                comment: None,
                ..Decision::default()
            },
        )
        .unwrap();
    assert_eq!(driving.await.unwrap().unwrap().status, Status::Succeeded);
}

#[tokio::test]
async fn retry_reruns_only_the_failed_actions_of_the_stage() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let flag = h.dir.path().join("fixed");
    let ok = build(
        "ok",
        "version: 0.2\nphases:\n  build:\n    commands: [echo fine]\n",
        &["source"],
        &[],
    );
    let flaky = build(
        "flaky",
        &format!(
            "version: 0.2\nphases:\n  build:\n    commands: ['test -f {}']\n",
            flag.display()
        ),
        &["source"],
        &[],
    );
    let def = pipeline(
        "retry",
        Mode::Parallel,
        vec![source_stage(&repo), stage("build", vec![ok, flaky])],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    assert_eq!(
        h.engine.drive(&exec.id, None).await.unwrap().status,
        Status::Failed
    );
    std::fs::write(&flag, "").unwrap();
    h.engine.retry(&exec.id, "build").unwrap();
    assert_eq!(
        h.engine.drive(&exec.id, None).await.unwrap().status,
        Status::Succeeded
    );
    let runs = h.engine.store().action_runs(&exec.id).unwrap();
    let attempts = |name: &str| runs.iter().filter(|r| r.action == name).count();
    assert_eq!((attempts("ok"), attempts("flaky")), (1, 2));
    assert!(
        h.engine.retry(&exec.id, "build").is_err(),
        "a succeeded execution cannot be retried"
    );
}

#[tokio::test]
async fn a_forced_stop_cancels_the_running_build() {
    let h = harness(&[], false);
    let repo = h.source(&[("x", "")]);
    let def = pipeline(
        "stop",
        Mode::Parallel,
        vec![
            source_stage(&repo),
            stage(
                "build",
                vec![build(
                    "long",
                    "version: 0.2\nphases:\n  build:\n    commands: [sleep 300]\n",
                    &["source"],
                    &[],
                )],
            ),
        ],
    );
    let exec = h.engine.start(&def, "local", "test").unwrap();
    let engine = h.engine.clone();
    let id = exec.id.clone();
    let driving = tokio::spawn(async move { engine.drive(&id, None).await });
    loop {
        let runs = h.engine.store().action_runs(&exec.id).unwrap();
        if runs.iter().any(|r| r.action == "long") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    h.engine.stop(&exec.id, StopMode::Forced).unwrap();
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), driving)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.status, Status::Stopped);
}

#[tokio::test]
async fn modes_superseded_and_queued_decide_who_enters_a_held_stage() {
    for (mode, older_ends) in [
        (Mode::Superseded, Status::Superseded),
        (Mode::Queued, Status::Succeeded),
    ] {
        let h = harness(&[], false);
        let repo = h.source(&[("x", "")]);
        let def = pipeline(
            "modes",
            mode,
            vec![
                source_stage(&repo),
                stage("qa", vec![approval(3600, &[], false)]),
            ],
        );
        let holder = h.engine.start(&def, "local", "first").unwrap();
        let (_, first) = h.drive_to_approval(&holder.id).await;
        // Two more executions line up for the held stage, the older one first: each is
        // started once the one before it waits (a fixed sleep here once let the older reach
        // the stage only after the holder left it, under load).
        let older = h.engine.start(&def, "local", "second").unwrap();
        let newer = h.engine.start(&def, "local", "third").unwrap();
        let waits = || {
            h.recorder
                .0
                .lock()
                .unwrap()
                .iter()
                .filter(|e| matches!(e, RunEvent::Waiting { stage, why } if stage == "qa" && why.ends_with("holds the stage")))
                .count()
        };
        let mut waiting = Vec::new();
        for (n, e) in [&older, &newer].into_iter().enumerate() {
            let engine = h.engine.clone();
            let id = e.id.clone();
            waiting.push(tokio::spawn(async move { engine.drive(&id, None).await }));
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while waits() <= n {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} never waited",
                    e.id
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        let approve = Decision {
            approve: true,
            identity: "x".into(),
            comment: None,
            ..Decision::default()
        };
        h.engine.decide(&holder.id, "qa", &approve).unwrap();
        assert_eq!(first.await.unwrap().unwrap().status, Status::Succeeded);
        let newer_task = waiting.pop().unwrap();
        let older_task = waiting.pop().unwrap();
        // Approve whatever reaches the gate next, until both have ended.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !(older_task.is_finished() && newer_task.is_finished())
            && std::time::Instant::now() < deadline
        {
            for e in [&older, &newer] {
                let _ = h.engine.decide(&e.id, "qa", &approve);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let older_done = older_task.await.unwrap().unwrap();
        let newer_done = newer_task.await.unwrap().unwrap();
        assert_eq!(
            (mode, older_done.status),
            (mode, older_ends),
            "{:?}",
            older_done.reason
        );
        assert_eq!(newer_done.status, Status::Succeeded);
    }
}

/// Regression: superseded, an older execution waiting for a stage entered it after a newer
/// one had taken it from the holder — deploying an older revision over a newer one — when the
/// newer one reached the free stage first. Behind a newer holder it is superseded.
#[test]
fn an_older_execution_behind_a_newer_one_that_took_the_stage_is_superseded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join(".ferry"));
    let def = pipeline("overtaken", Mode::Superseded, vec![stage("qa", Vec::new())]);
    let start = |revision: &str| {
        store
            .create_execution(&def, revision, &"tester".into())
            .unwrap()
    };
    let (holder, older, newer) = (start("r1"), start("r2"), start("r3"));
    assert_eq!(
        store.enter_stage(&holder, "qa", def.mode).unwrap(),
        StageEntry::Entered
    );
    for e in [&older, &newer] {
        assert!(matches!(
            store.enter_stage(e, "qa", def.mode).unwrap(),
            StageEntry::Waiting { .. }
        ));
    }
    store
        .set_execution_status(&holder.id, Status::Succeeded, None)
        .unwrap();
    // The newer one polls first and takes the stage; the older one polls after.
    assert_eq!(
        store.enter_stage(&newer, "qa", def.mode).unwrap(),
        StageEntry::Entered
    );
    assert_eq!(
        store.enter_stage(&older, "qa", def.mode).unwrap(),
        StageEntry::Superseded { by: newer.id }
    );
    // Queued, the same order lets the older one wait its turn instead.
    let queued = pipeline("in-turn", Mode::Queued, vec![stage("qa", Vec::new())]);
    let first = store
        .create_execution(&queued, "r1", &"tester".into())
        .unwrap();
    let second = store
        .create_execution(&queued, "r2", &"tester".into())
        .unwrap();
    assert_eq!(
        store.enter_stage(&second, "qa", queued.mode).unwrap(),
        StageEntry::Entered
    );
    assert!(matches!(
        store.enter_stage(&first, "qa", queued.mode).unwrap(),
        StageEntry::Waiting { .. }
    ));
}

/// Regression: two servers adopting the same orphan (its driver killed) each took the lease
/// "by force", and both drove it. Replacing a dead driver is a compare and swap: the second
/// finds the first holding it.
#[test]
fn two_processes_adopting_the_same_orphan_cannot_both_take_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join(".ferry"));
    let exec = store
        .create_execution(
            &pipeline("orphan", Mode::Queued, vec![stage("build", Vec::new())]),
            "r1",
            &"tester".into(),
        )
        .unwrap();
    let stale = 15_000;
    store
        .claim_driver(&exec.id, "999999@dead", stale, None)
        .unwrap()
        .unwrap();
    // Fresh, so an ordinary claim is refused and names the holder.
    assert_eq!(
        store.claim_driver(&exec.id, "1@a", stale, None).unwrap(),
        Err("999999@dead".to_owned())
    );
    // Both adopters know it is dead; the first to swap wins.
    assert_eq!(
        store
            .claim_driver(&exec.id, "1@a", stale, Some("999999@dead"))
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .claim_driver(&exec.id, "2@b", stale, Some("999999@dead"))
            .unwrap(),
        Err("1@a".to_owned())
    );
    assert_eq!(
        store
            .execution(&exec.id)
            .unwrap()
            .unwrap()
            .driver
            .as_deref(),
        Some("1@a")
    );
}

/// What one process broadcasts on a shared store reaches every listener, in order; a store
/// only one process opens has no listeners to reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_listener_on_a_shared_store_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join(".ferry"));
    let Some(mut first) = store.listen().unwrap() else {
        assert_ne!(std::env::var("FERRY_TEST_STATE").as_deref(), Ok("postgres"));
        return;
    };
    let mut second = store.listen().unwrap().unwrap();
    for n in 0..20 {
        store.broadcast(&format!("message {n}"));
    }
    for listener in [&mut first, &mut second] {
        for n in 0..20 {
            let got = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv())
                .await
                .expect("a broadcast never arrived")
                .unwrap();
            assert_eq!(got, format!("message {n}"));
        }
    }
}

/// A worker engine on `store` named `name` (its `pid@host` and identity), with `slots`
/// actions at once and a recording action, over artifacts every worker reads; approvals
/// approve themselves with `auto_approve`.
fn worker_engine(
    store: &std::sync::Arc<dyn ferry_engine::store::Store>,
    state: &std::path::Path,
    name: &str,
    slots: usize,
    auto_approve: bool,
) -> ferry_engine::Engine {
    let poll = settings(state, auto_approve).poll;
    worker_engine_polling(store, state, name, slots, auto_approve, poll)
}

/// [`worker_engine`], whose driver looks at the store every `poll` when nothing tells it to.
fn worker_engine_polling(
    store: &std::sync::Arc<dyn ferry_engine::store::Store>,
    state: &std::path::Path,
    name: &str,
    slots: usize,
    auto_approve: bool,
    poll: std::time::Duration,
) -> ferry_engine::Engine {
    let mut registry = ferry_engine::Registry::with_builtins();
    registry.register(RecordKind);
    let mut settings = settings(state, auto_approve);
    settings.identity = name.to_owned();
    settings.poll = poll;
    ferry_engine::Engine::new(
        store.clone(),
        registry,
        std::sync::Arc::new(
            ferry_engine::artifact::LocalArtifacts::open(&state.join("artifacts"))
                .unwrap()
                .shared_by_workers(),
        ),
        std::sync::Arc::new(MapSecrets::default()),
        std::sync::Arc::new(Recorder::default()),
        settings,
    )
    .with_driver_id(&format!("{name}@bench"))
    .with_slots(std::sync::Arc::new(tokio::sync::Semaphore::new(slots)))
}

/// Runs `engine` as worker `name`: it leases portable actions of any execution, up to its
/// slots, until `stop`.
fn spawn_pool(
    engine: ferry_engine::Engine,
    name: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    spawn_pool_polling(engine, name, stop, std::time::Duration::from_millis(5))
}

/// [`spawn_pool`], looking for actions every `poll` when the store tells it of none.
fn spawn_pool_polling(
    engine: ferry_engine::Engine,
    name: &str,
    stop: &tokio_util::sync::CancellationToken,
    poll: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let (store, slots, stop, name) = (
        engine.store().clone(),
        engine.slots().clone(),
        stop.clone(),
        name.to_owned(),
    );
    tokio::spawn(async move {
        let run = move |lease, slot| {
            let engine = engine.clone();
            async move {
                engine
                    .run_leased(lease, slot, tokio_util::sync::CancellationToken::new())
                    .await
                    .unwrap();
            }
        };
        ferry_engine::Engine::work(store, &name, slots, poll, stop, run).await;
    })
}

/// Leases, with the time given: two workers never hold one action; a lease not renewed
/// expires and another worker takes it; the first then cannot renew it; an action that ended
/// leaves the queue.
#[test]
fn an_action_lease_is_held_by_one_worker_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(&dir.path().join(".ferry"));
    let def = pipeline(
        "leases",
        Mode::Parallel,
        vec![stage(
            "one",
            vec![
                record("a", 1, &dir.path().join("e")),
                record("b", 1, &dir.path().join("e")),
            ],
        )],
    );
    let exec = store.create_execution(&def, "r1", &"test".into()).unwrap();
    let key = |action| ferry_engine::store::ActionKey {
        execution: &exec.id,
        stage: "one",
        action,
        attempt: 1,
    };
    store.queue_action(&key("a"), true).unwrap();
    store.queue_action(&key("b"), true).unwrap();
    store.queue_action(&key("a"), true).unwrap();
    let (lease, t0) = (1_000, 1_000_000);
    let first = store.lease_action("w1", None, t0, lease).unwrap().unwrap();
    let second = store.lease_action("w2", None, t0, lease).unwrap().unwrap();
    assert_ne!(first.action, second.action);
    assert_eq!(
        store.lease_action("w3", None, t0 + 10, lease).unwrap(),
        None
    );
    // w2 renews; w1 does not, and its lease expires.
    assert!(
        store
            .renew_action_lease(&second.key(), "w2", t0 + 500, lease)
            .unwrap()
    );
    let taken = store
        .lease_action("w3", None, t0 + lease + 1, lease)
        .unwrap()
        .unwrap();
    assert_eq!(
        (taken.action.as_str(), taken.worker.as_deref()),
        (first.action.as_str(), Some("w3"))
    );
    assert!(
        !store
            .renew_action_lease(&first.key(), "w1", t0 + lease + 2, lease)
            .unwrap()
    );
    // Only its driver leases an action that must run on the driver's machine.
    let c = ferry_engine::store::ActionKey {
        action: "c",
        ..key("a")
    };
    store.queue_action(&c, false).unwrap();
    assert_eq!(store.lease_action("w4", None, t0 + 1, lease).unwrap(), None);
    let own = store
        .lease_action("driver", Some(&exec.id), t0 + 1, lease)
        .unwrap()
        .unwrap();
    assert_eq!(own.action, "c");
    // Ending an action ends its lease.
    store.begin_action(&taken.key(), "").unwrap();
    store
        .finish_action(&taken.key(), Status::Succeeded, None, None)
        .unwrap();
    let open: Vec<String> = store
        .action_leases(&exec.id)
        .unwrap()
        .into_iter()
        .map(|l| l.action)
        .collect();
    assert_eq!(open.len(), 2, "{open:?}");
    assert!(!open.contains(&taken.action));
    assert!(
        !store
            .renew_action_lease(&taken.key(), "w3", t0 + 3, lease)
            .unwrap()
    );
}

/// One driver and three workers on one store, each running one action at a time: the
/// parallel actions of each execution are shared among them, and no action runs twice.
///
/// Regression: on a loaded CI machine the driver and one worker ran everything before the
/// other two polled, and the test's "shared" assertions failed. Each action now waits until
/// three workers overall, and two in its execution, have recorded (see `Meeting`), so the
/// sharing is waited for, not hoped for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_lease_the_actions_of_an_execution_and_never_run_one_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let effects = dir.path().join("effects");
    let store = open_store(&state);
    let driver = worker_engine(&store, &state, "d", 1, true);
    let stop = tokio_util::sync::CancellationToken::new();
    let mut pools = Vec::new();
    for name in ["w1", "w2", "w3"] {
        let engine = worker_engine(&store, &state, name, 1, true);
        pools.push(spawn_pool(engine, &format!("{name}@bench"), &stop));
    }
    let names: Vec<String> = (0..8).map(|n| format!("a{n}")).collect();
    let def = pipeline(
        "shared",
        Mode::Parallel,
        vec![
            stage(
                "one",
                names
                    .iter()
                    .map(|n| record_meeting(n, 1, &effects, 3, 2))
                    .collect(),
            ),
            stage(
                "two",
                names.iter().map(|n| record(n, 1, &effects)).collect(),
            ),
        ],
    );
    let ids: Vec<String> = (0..3)
        .map(|_| driver.start(&def, "r1", "test").unwrap().id)
        .collect();
    let drives: Vec<_> = ids
        .iter()
        .map(|id| {
            let (driver, id) = (driver.clone(), id.clone());
            tokio::spawn(async move { driver.drive(&id, None).await.unwrap() })
        })
        .collect();
    for d in drives {
        assert_eq!(d.await.unwrap().status, Status::Succeeded);
    }
    stop.cancel();
    for p in pools {
        p.await.unwrap();
    }
    let lines = std::fs::read_to_string(&effects).unwrap();
    let mut workers = std::collections::BTreeSet::new();
    for id in &ids {
        let mut here = std::collections::BTreeSet::new();
        for stage in ["one", "two"] {
            for name in &names {
                let key = idempotency_key(id, stage, name, 1);
                let runs: Vec<&str> = lines.lines().filter(|l| l.starts_with(&key)).collect();
                assert_eq!(
                    runs.len(),
                    1,
                    "{id} {stage}.{name} ran {} times: {runs:?}",
                    runs.len()
                );
                here.insert(runs[0].split_whitespace().nth(2).unwrap().to_owned());
            }
        }
        assert!(here.len() >= 2, "one worker ran all of {id}: {here:?}");
        workers.extend(here);
        assert!(
            store.action_leases(id).unwrap().is_empty(),
            "{id} left leases open"
        );
    }
    assert!(workers.len() >= 3, "{workers:?}");
}

/// An approval gives its worker slot back while it waits: an engine of one slot whose slot an
/// approval took still runs another execution's action, and then the approval is decided.
/// (Before, a server of 16 slots with 16 approvals pending ran nothing else.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_approval_holds_no_worker_slot() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let effects = dir.path().join("effects");
    let store = open_store(&state);
    let engine = worker_engine(&store, &state, "solo", 1, false);
    let waiting = pipeline(
        "waits",
        Mode::Parallel,
        vec![stage("qa", vec![approval(3600, &[], false)])],
    );
    let exec = engine.start(&waiting, "r1", "test").unwrap();
    let (_, driving) = drive_to_approval(&engine, &exec.id).await;
    let other = pipeline(
        "meanwhile",
        Mode::Parallel,
        vec![stage("build", vec![record("b", 1, &effects)])],
    );
    let second = engine.start(&other, "r1", "test").unwrap();
    // A hold on the slot would leave this waiting for the approval, which nobody decides yet.
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        engine.drive(&second.id, None),
    )
    .await
    .expect("the other execution waited for the approval's slot")
    .unwrap();
    assert_eq!(done.status, Status::Succeeded);
    let approve = Decision {
        approve: true,
        identity: "alice".into(),
        ..Decision::default()
    };
    engine.decide(&exec.id, "qa", &approve).unwrap();
    assert_eq!(driving.await.unwrap().unwrap().status, Status::Succeeded);
}

/// A slot given back is used at once: with one slot and a poll of an hour, the approval that
/// took the slot first gives it back as it waits, and the driver leases the stage's other
/// action then, not at its next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_an_approval_gives_back_runs_the_next_action_of_its_stage_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let effects = dir.path().join("effects");
    let store = open_store(&state);
    let hour = std::time::Duration::from_secs(3600);
    let engine = worker_engine_polling(&store, &state, "solo", 1, false, hour);
    // Queued in this order: the approval is leased first.
    let def = pipeline(
        "together",
        Mode::Parallel,
        vec![stage(
            "qa",
            vec![approval(3600, &[], false), record("zz-after", 0, &effects)],
        )],
    );
    let exec = engine.start(&def, "r1", "test").unwrap();
    let (_, driving) = drive_to_approval(&engine, &exec.id).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !std::fs::read_to_string(&effects).is_ok_and(|l| l.contains("qa.zz-after")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the stage's other action waited for the driver's poll"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The approval itself looks for its decision at that poll too: the drive ends here.
    driving.abort();
}

/// A worker learns of queued actions, and a driver of ended ones, from the store
/// (`Store::action_changes`: LISTEN/NOTIFY on PostgreSQL, where the worker's store is opened
/// apart, as another process's), not from its poll: with polls of an hour, an execution whose
/// actions only the other worker may run still ends, one run order after another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_and_drivers_are_woken_by_the_store_not_by_their_poll() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let effects = dir.path().join("effects");
    let store = open_store(&state);
    let theirs = if store.shared() {
        open_store(&state)
    } else {
        store.clone()
    };
    let hour = std::time::Duration::from_secs(3600);
    // The driver has no slots: every action is the worker's.
    let driver = worker_engine_polling(&store, &state, "d", 0, true, hour);
    let worker = worker_engine_polling(&theirs, &state, "w", 1, true, hour);
    let stop = tokio_util::sync::CancellationToken::new();
    let pool = spawn_pool_polling(worker, "w@elsewhere", &stop, hour);
    let def = pipeline(
        "woken",
        Mode::Parallel,
        vec![
            stage(
                "one",
                vec![record("a", 1, &effects), record("b", 2, &effects)],
            ),
            stage("two", vec![record("c", 1, &effects)]),
        ],
    );
    let exec = driver.start(&def, "r1", "test").unwrap();
    // Not a timing assertion: with hour-long polls nothing but a wake-up ends this, and a
    // missed one would wait an hour; ten minutes says which.
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        driver.drive(&exec.id, None),
    )
    .await
    .expect("a wake-up from the store never came: the driver or the worker waited for its poll")
    .unwrap();
    assert_eq!(done.status, Status::Succeeded);
    stop.cancel();
    pool.await.unwrap();
    let lines = std::fs::read_to_string(&effects).unwrap();
    let ran: Vec<&str> = lines
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(ran, ["w", "w", "w"], "{lines}");
}

/// Regression: a pool renewed its leases under its engine's driver name instead of its own,
/// so every action it ran longer than one renewal was cancelled as lost. Here a pool named
/// apart from its engine runs an approval (its driver has no slots) past several renewals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_keeps_the_lease_of_an_action_that_outlives_a_renewal() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let store = open_store(&state);
    let driver = worker_engine(&store, &state, "d", 0, true);
    let pool = worker_engine(&store, &state, "p", 1, false);
    let def = pipeline(
        "renew",
        Mode::Parallel,
        vec![stage("qa", vec![approval(3600, &[], false)])],
    );
    let exec = driver.start(&def, "r1", "test").unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let work = spawn_pool(pool.clone(), "p.pool@elsewhere", &stop);
    let driving = {
        let (driver, id) = (driver.clone(), exec.id.clone());
        tokio::spawn(async move { driver.drive(&id, None).await.unwrap() })
    };
    // Waits until the pool holds the approval and has renewed its lease twice.
    let mut first = None;
    loop {
        let leases = store.action_leases(&exec.id).unwrap();
        if let Some(l) = leases
            .iter()
            .find(|l| l.worker.as_deref() == Some("p.pool@elsewhere"))
        {
            let at = l.expires_ms.unwrap();
            let since = *first.get_or_insert(at);
            if at > since + 2_000 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let alice = Decision {
        approve: true,
        identity: "alice".into(),
        ..Decision::default()
    };
    driver.decide(&exec.id, "qa", &alice).unwrap();
    let done = driving.await.unwrap();
    stop.cancel();
    work.await.unwrap();
    assert_eq!(done.status, Status::Succeeded, "{:?}", done.reason);
    for run in store.action_runs(&exec.id).unwrap() {
        let log = std::fs::read_to_string(run.log_path.unwrap()).unwrap();
        assert!(
            !log.contains("took this action over"),
            "the lease was lost:\n{log}"
        );
    }
}

/// A worker that died holding an action it had begun (the driver, here): the next driver
/// frees its lease at once, reconciles the action — it had applied its effect — and does
/// not run it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_a_dead_worker_held_is_reconciled_not_run_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let effects = dir.path().join("effects");
    let store = open_store(&state);
    let engine = worker_engine(&store, &state, "next", 4, true);
    let def = pipeline(
        "dead",
        Mode::Parallel,
        vec![stage("one", vec![record("a", 1, &effects)])],
    );
    let exec = engine.start(&def, "r1", "test").unwrap();
    // A process of this host that no longer runs drove it and leased the action.
    let dead = format!(
        "{}@{}",
        i32::MAX,
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap()
            .trim()
    );
    store
        .claim_driver(&exec.id, &dead, 15_000, None)
        .unwrap()
        .unwrap();
    let key = ferry_engine::store::ActionKey {
        execution: &exec.id,
        stage: "one",
        action: "a",
        attempt: 1,
    };
    store.queue_action(&key, true).unwrap();
    let now = now_ms();
    store
        .lease_action(&dead, Some(&exec.id), now, 3_600_000)
        .unwrap()
        .unwrap();
    store.begin_action(&key, "").unwrap();
    std::fs::write(
        &effects,
        format!("{} one.a dead\n", idempotency_key(&exec.id, "one", "a", 1)),
    )
    .unwrap();

    let done = engine.drive(&exec.id, None).await.unwrap();
    assert_eq!(done.status, Status::Succeeded);
    let lines = std::fs::read_to_string(&effects).unwrap();
    assert_eq!(lines.lines().count(), 1, "ran again: {lines}");
    let run = store
        .action_runs(&exec.id)
        .unwrap()
        .into_iter()
        .find(|r| r.action == "a")
        .unwrap();
    assert_eq!(run.outputs.unwrap()["reconciled"], true);
}

/// Three workers on one store race for twelve executions of six recording actions each: each
/// execution is driven by one of them, every action runs exactly once, and the work is shared.
/// The first actions wait until two workers have recorded, so one fast worker cannot drive all
/// twelve before the others start (the regression above, on a loaded machine).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_on_one_store_share_the_executions_and_never_run_an_action_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".ferry");
    let effects = dir.path().join("effects");
    let store = open_store(&state);
    let workers: Vec<ferry_engine::Engine> = ["w1", "w2", "w3"]
        .iter()
        .map(|w| {
            let mut registry = ferry_engine::Registry::with_builtins();
            registry.register(RecordKind);
            let mut settings = settings(&state, true);
            settings.identity = (*w).to_owned();
            ferry_engine::Engine::new(
                store.clone(),
                registry,
                std::sync::Arc::new(
                    ferry_engine::artifact::LocalArtifacts::open(&state.join("artifacts")).unwrap(),
                ),
                std::sync::Arc::new(MapSecrets::default()),
                std::sync::Arc::new(Recorder::default()),
                settings,
            )
            .with_driver_id(&format!("{w}@bench"))
        })
        .collect();
    let def = pipeline(
        "shared",
        Mode::Parallel,
        vec![
            stage(
                "one",
                vec![
                    record_meeting("a", 1, &effects, 2, 0),
                    record_meeting("b", 1, &effects, 2, 0),
                    record("c", 2, &effects),
                ],
            ),
            stage(
                "two",
                vec![
                    record("d", 1, &effects),
                    record("e", 2, &effects),
                    record("f", 3, &effects),
                ],
            ),
        ],
    );
    let ids: Vec<String> = (0..12)
        .map(|_| workers[0].start(&def, "r1", "test").unwrap().id)
        .collect();
    let mut tasks = Vec::new();
    for (n, worker) in workers.iter().enumerate() {
        let (worker, mut order) = (worker.clone(), ids.clone());
        order.rotate_left(n * 4);
        tasks.push(tokio::spawn(async move {
            for id in order {
                match worker.drive(&id, None).await {
                    Ok(_) | Err(ferry_engine::EngineError::Busy { .. }) => {}
                    Err(e) => panic!("{id}: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let lines = std::fs::read_to_string(&effects).unwrap();
    let mut by_execution: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    for id in &ids {
        assert_eq!(
            store.execution(id).unwrap().unwrap().status,
            Status::Succeeded,
            "{id}"
        );
        for action in ["one.a", "one.b", "one.c", "two.d", "two.e", "two.f"] {
            let (stage, name) = action.split_once('.').unwrap();
            let key = idempotency_key(id, stage, name, 1);
            let runs: Vec<&str> = lines.lines().filter(|l| l.starts_with(&key)).collect();
            assert_eq!(
                runs.len(),
                1,
                "{id} {action} ran {} times: {runs:?}",
                runs.len()
            );
            let worker = runs[0].split_whitespace().nth(2).unwrap().to_owned();
            by_execution.entry(id.clone()).or_default().insert(worker);
        }
    }
    // One driver per execution, and more than one worker did the work.
    assert!(
        by_execution.values().all(|w| w.len() == 1),
        "{by_execution:?}"
    );
    let used: std::collections::BTreeSet<&String> = by_execution.values().flatten().collect();
    assert!(
        used.len() >= 2,
        "one worker did everything: {by_execution:?}"
    );
}
