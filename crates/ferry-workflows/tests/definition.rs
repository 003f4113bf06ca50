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

#[test]
fn every_action_of_the_orders_pipeline_is_read_back_by_its_kind() {
    let project = orders();
    let manifest = project.load().unwrap();
    let def = definition(&project, &manifest);
    let mut registry = ferry_engine::Registry::with_builtins();
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    ferry_aws::register(
        &mut registry,
        &ferry_aws::session::Aws::with_config(sdk, "test"),
    );
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
    assert_eq!(kinds, ["approval", "build", "ecs", "lambda", "source"]);
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
