//! The manifest as the engine runs it: every action's configuration, built from its kind's
//! typed config, is read back by that kind — for every action of the orders example, whose
//! stages hold builds, approvals, an ECS and a Lambda deploy.

use std::path::Path;

use ferry_workflows::Project;
use ferry_workflows::pipeline::definition;

fn orders() -> Project {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml");
    Project::new(&manifest, Some(Path::new("/nonexistent")))
}

/// The kinds the server and the CLI register, on an SDK config that is never called.
fn registry() -> ferry_engine::Registry {
    let mut registry = ferry_engine::Registry::with_builtins();
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    ferry_aws::register(
        &mut registry,
        &ferry_aws::session::Aws::with_config(sdk, "test"),
    );
    registry
}

#[test]
fn every_action_of_the_orders_pipeline_is_read_back_by_its_kind() {
    let project = orders();
    let manifest = project.load().unwrap();
    let def = definition(&project, &manifest);
    let registry = registry();
    let mut kinds = Vec::new();
    for stage in &def.stages {
        for action in &stage.actions {
            registry
                .action(action)
                .unwrap_or_else(|e| panic!("{}.{}: {e}", stage.name, action.name));
            kinds.push(action.kind.as_str());
        }
    }
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["approval", "build", "ecs", "gates", "lambda", "source"]
    );
}

#[test]
fn deploys_carry_their_target_account_and_the_ecs_timeout_rule() {
    let project = orders();
    let manifest = project.load().unwrap();
    let def = definition(&project, &manifest);
    let prod = def.stage("prod").unwrap();
    let ecs = prod.actions.iter().find(|a| a.kind == "ecs").unwrap();
    let config: ferry_aws::actions::EcsConfig = serde_json::from_value(ecs.config.clone()).unwrap();
    let account = manifest.account("prod").unwrap();
    assert_eq!(config.target, ferry_aws::actions::Target::of(account));
    // The wait for steady state, and again for a rollback's, with room for the calls.
    assert_eq!(ecs.timeout_secs, Some(2 * config.timeout.as_secs() + 300));
    assert_eq!(
        config.release_target().to_string(),
        format!("ecs:{}/{}", config.cluster, config.service)
    );
}

/// The orders example in a temporary directory, with each `(from, to)` replaced once.
fn orders_edited(edits: &[(&str, &str)]) -> (tempfile::TempDir, Project) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders");
    let dir = tempfile::tempdir().unwrap();
    for file in ["buildspec.yml", "buildspec-test.yml"] {
        std::fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    let mut text = std::fs::read_to_string(example.join("ferry.yaml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the example has no {from:?}");
        text = text.replace(from, to);
    }
    std::fs::write(dir.path().join("ferry.yaml"), text).unwrap();
    let project = Project::new(
        &dir.path().join("ferry.yaml"),
        Some(Path::new("/nonexistent")),
    );
    (dir, project)
}

/// An ECS deploy's hooks reach its action: a test build with its inputs (which become the
/// action's inputs too) and an approval, each at its stage, and their time counts in the
/// action's timeout.
#[test]
fn an_ecs_deploys_hooks_reach_its_action_as_a_test_build_and_an_approval() {
    let (_dir, project) = orders_edited(&[(
        "      timeout: 10m\n",
        "      timeout: 10m\n      strategy: blue_green\n      hooks:\n        - test: {buildspec: buildspec-test.yml, env: {BASE_URL: \"http://test.${env}\"}, timeout: 5m}\n        - at: post_production_traffic_shift\n          approval: {approvers: [alice], timeout: 2h}\n",
    )]);
    let manifest = project.load().unwrap();
    let def = definition(&project, &manifest);
    let qa = def.stage("qa").unwrap();
    let ecs = qa.actions.iter().find(|a| a.kind == "ecs").unwrap();
    assert_eq!(ecs.inputs, ["app", "source"]);
    let e: ferry_aws::actions::EcsConfig = serde_json::from_value(ecs.config.clone()).unwrap();
    assert_eq!(e.hooks.len(), 2);
    assert_eq!(e.hooks[0].at, "POST_TEST_TRAFFIC_SHIFT");
    match &e.hooks[0].check {
        ferry_aws::actions::HookCheck::Test { build, inputs } => {
            assert_eq!(build.buildspec.as_deref(), Some("buildspec-test.yml"));
            assert_eq!(
                build.env,
                [("BASE_URL".to_owned(), "http://test.qa".to_owned())]
            );
            assert_eq!(inputs, &["source"]);
        }
        other => panic!("not a test: {other:?}"),
    }
    assert_eq!(e.hooks[1].at, "POST_PRODUCTION_TRAFFIC_SHIFT");
    match &e.hooks[1].check {
        ferry_aws::actions::HookCheck::Approval(a) => {
            assert_eq!(a.approvers, ["alice"]);
            assert_eq!(a.timeout_secs, 7200);
        }
        other => panic!("not an approval: {other:?}"),
    }
    assert_eq!(
        e.action_timeout(),
        2 * e.timeout
            + std::time::Duration::from_secs(5 * 60 + 7200)
            + std::time::Duration::from_secs(300)
    );
    assert!(registry().action(ecs).is_ok());
}

/// An environment's gates become a `gates` action first in its stage, beside its approval,
/// which they wait for; their kind reads them back.
#[test]
fn an_environments_gates_run_first_in_its_stage_and_wait_for_its_approval() {
    let (_dir, project) = orders_edited(&[
        (
            "    gates: {alarms: [orders-api-5xx-prod]}\n",
            "    gates:\n      alarms: [orders-p99-prod]\n      windows:\n        - allow: '* 9-16 * * MON-THU'\n          time_zone: Europe/Berlin\n      soak: 2h\n      after: {watch: 20m, alarms: [orders-p99-prod, orders-api-5xx-prod]}\n",
        ),
        // And the service moves by ECS's canary, done once the traffic has shifted.
        (
            "      timeout: 10m\n",
            "      timeout: 10m\n      strategy: canary 10% 5m\n      bake: 30m\n      until: shifted\n",
        ),
    ]);
    let manifest = project.load().unwrap();
    let def = definition(&project, &manifest);

    let gated: Vec<&str> = def
        .stages
        .iter()
        .filter(|s| s.actions.iter().any(|a| a.kind == "gates"))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(gated, ["prod"]);
    let prod = def.stage("prod").unwrap();
    let gates = prod.actions.iter().find(|a| a.kind == "gates").unwrap();
    assert_eq!(
        (gates.name.as_str(), gates.run_order),
        (ferry_manifest::GATES_ACTION, 0)
    );
    let config: ferry_aws::gates::GatesConfig =
        serde_json::from_value(gates.config.clone()).unwrap();
    let approval = prod.actions.iter().find(|a| a.kind == "approval").unwrap();
    assert_eq!(config.approval.as_deref(), Some(approval.name.as_str()));
    assert_eq!(config.alarms, ["orders-p99-prod"]);
    assert_eq!(
        config.soak,
        Some(ferry_aws::gates::Soak {
            environment: "qa".into(),
            secs: 7200
        })
    );
    assert_eq!(config.windows.len(), 1);
    assert_eq!(
        config.windows[0].to_string(),
        "allow `* 9-16 * * MON-THU` (Europe/Berlin)"
    );
    assert_eq!(
        config.target,
        ferry_aws::actions::Target::of(manifest.account("prod").unwrap())
    );
    let registry = registry();
    assert!(registry.action(gates).is_ok());

    // `after`: prod's deploys watch their own alarms and the gate's, 20 minutes past done.
    let ecs = prod.actions.iter().find(|a| a.kind == "ecs").unwrap();
    let e: ferry_aws::actions::EcsConfig = serde_json::from_value(ecs.config.clone()).unwrap();
    assert_eq!(e.alarms, ["orders-api-5xx-prod", "orders-p99-prod"]);
    assert_eq!(e.watch_after, std::time::Duration::from_secs(20 * 60));
    assert_eq!(
        e.strategy,
        ferry_manifest::EcsStrategy::Shifted {
            shift: ferry_manifest::EcsShift::Canary {
                percent: 10,
                minutes: 5
            },
            bake_minutes: 30,
            until_shifted: true,
        }
    );
    assert_eq!(ecs.timeout_secs, Some(e.action_timeout().as_secs()));
    // The canary's five minutes count; the bake does not (done once shifted).
    assert_eq!(
        e.action_timeout(),
        2 * e.timeout
            + std::time::Duration::from_secs(5 * 60)
            + e.watch_after
            + std::time::Duration::from_secs(300)
    );
    let lambda = prod.actions.iter().find(|a| a.kind == "lambda").unwrap();
    let l: ferry_aws::actions::LambdaConfig =
        serde_json::from_value(lambda.config.clone()).unwrap();
    assert_eq!(
        l.alarms,
        [
            "orders-fn-errors-prod",
            "orders-p99-prod",
            "orders-api-5xx-prod"
        ]
    );
    assert_eq!(l.watch_after, std::time::Duration::from_secs(20 * 60));
    // qa has no watch after its deploys.
    let qa = def.stage("qa").unwrap();
    let qa_lambda = qa.actions.iter().find(|a| a.kind == "lambda").unwrap();
    let l: ferry_aws::actions::LambdaConfig =
        serde_json::from_value(qa_lambda.config.clone()).unwrap();
    assert_eq!(l.watch_after, std::time::Duration::ZERO);
}
