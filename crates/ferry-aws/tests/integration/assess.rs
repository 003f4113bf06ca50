//! The ECS steady-state decision against DescribeServices responses shaped as AWS returns
//! them (`tests/data/describe-services/`). The emulator never moves a deployment forward, so
//! this is where rolling, draining, circuit-breaker and replaced deployments are shown.

use ferry_aws::ecs::{Assessment, ServiceState, assess};
use serde::Deserialize;

use crate::common::check_recorded;

#[derive(Deserialize)]
struct Response {
    services: Vec<ServiceState>,
}

const TARGET: &str = "arn:aws:ecs:us-east-1:222222222222:task-definition/orders-api:9";

#[test]
fn every_recorded_response_gets_the_expected_decision() {
    check_recorded("describe-services", |r: &Response| {
        match assess(&r.services[0], TARGET) {
            Assessment::Steady => ("steady", String::new()),
            Assessment::Waiting(t) => ("waiting", t),
            Assessment::Failed(t) => ("failed", t),
        }
    });
}

#[test]
fn an_empty_response_is_never_steady() {
    assert!(matches!(
        assess(&ServiceState::default(), TARGET),
        Assessment::Failed(_)
    ));
}

/// ECS's own traffic shifting: the decision on each recorded DescribeServiceDeployments
/// response (`tests/data/describe-service-deployments/`, shaped as the API reference
/// documents it; the emulator implements none of these APIs).
mod service_deployments {
    use ferry_aws::service_deployment::{Progress, ServiceDeploymentState, assess};
    use serde::Deserialize;

    use crate::common::{check_recorded, recorded};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Response {
        service_deployments: Vec<ServiceDeploymentState>,
    }

    #[test]
    fn every_recorded_response_gets_the_expected_decision() {
        check_recorded("describe-service-deployments", |r: &Response| match assess(
            &r.service_deployments[0],
            false,
        ) {
            Progress::Done => ("done", String::new()),
            Progress::Waiting(t) => ("waiting", t),
            Progress::RolledBack(t) => ("rolled-back", t),
            Progress::Failed(t) => ("failed", t),
        });
    }

    /// `until: shifted`: done once all production traffic is on the new revision, in the
    /// bake; not while the canary has 10%.
    #[test]
    fn until_shifted_is_done_in_the_bake_and_not_before() {
        let all: Vec<(String, ServiceDeploymentState)> =
            recorded::<Response>("describe-service-deployments")
                .into_iter()
                .map(|(file, _, mut r)| (file, r.service_deployments.remove(0)))
                .collect();
        let of = |name: &str| &all.iter().find(|(f, _)| f == name).unwrap().1;
        assert_eq!(assess(of("bake-time.json"), true), Progress::Done);
        assert!(matches!(
            assess(of("canary-production-traffic-shift.json"), true),
            Progress::Waiting(_)
        ));
        // A rollback is a rollback whatever the point the manifest names.
        assert!(matches!(
            assess(of("circuit-breaker-rollback-successful.json"), true),
            Progress::RolledBack(_)
        ));
    }

    #[test]
    fn an_empty_or_unknown_status_is_never_done() {
        assert!(matches!(
            assess(&ServiceDeploymentState::default(), true),
            Progress::Failed(_)
        ));
    }
}
