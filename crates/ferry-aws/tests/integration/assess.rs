//! The ECS steady-state decision against DescribeServices responses shaped as AWS returns
//! them (`tests/data/describe-services/`). The emulator never moves a deployment forward, so
//! this is where rolling, draining, circuit-breaker and replaced deployments are shown.

use ferry_aws::ecs::{Assessment, ServiceState, assess};
use serde::Deserialize;

use crate::common::recorded;

#[derive(Deserialize)]
struct Response {
    services: Vec<ServiceState>,
}

const TARGET: &str = "arn:aws:ecs:us-east-1:222222222222:task-definition/orders-api:9";

#[test]
fn every_recorded_response_gets_the_expected_decision() {
    let mut failures = Vec::new();
    for (file, want, response) in recorded::<Response>("describe-services") {
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
