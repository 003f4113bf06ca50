//! The ECS steady-state decision against DescribeServices responses shaped as AWS returns
//! them (`tests/data/describe-services/`). The emulator never moves a deployment forward, so
//! this is where rolling, draining, circuit-breaker and replaced deployments are shown.

use std::path::Path;

use ferry_aws::ecs::{Assessment, ServiceState, assess};
use serde::Deserialize;

#[derive(Deserialize)]
struct Response {
    services: Vec<ServiceState>,
}

#[derive(Deserialize)]
struct Expected {
    expect: String,
    #[serde(default)]
    reason: String,
}

const TARGET: &str = "arn:aws:ecs:us-east-1:222222222222:task-definition/orders-api:9";

#[test]
fn every_recorded_response_gets_the_expected_decision() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/describe-services");
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.json")
        .collect();
    files.sort();
    // Every fixture has an expectation and every expectation a fixture.
    let listed: Vec<&String> = expected.keys().filter(|k| !k.starts_with('_')).collect();
    assert_eq!(
        listed.len(),
        files.len(),
        "fixtures and expected.json disagree"
    );
    let mut failures = Vec::new();
    for file in &files {
        let want: Expected = serde_json::from_value(expected[file].clone()).unwrap();
        let response: Response =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let got = assess(&response.services[0], TARGET);
        let (kind, text) = match &got {
            Assessment::Steady => ("steady", String::new()),
            Assessment::Waiting(t) => ("waiting", t.clone()),
            Assessment::Failed(t) => ("failed", t.clone()),
        };
        if kind != want.expect || !text.contains(&want.reason) {
            failures.push(format!(
                "{file}: expected {} ({}), got {got:?}",
                want.expect, want.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_empty_response_is_never_steady() {
    assert!(matches!(
        assess(&ServiceState::default(), TARGET),
        Assessment::Failed(_)
    ));
}
