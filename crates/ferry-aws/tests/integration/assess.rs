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
    use ferry_aws::service_deployment::{
        Ended, Follow, Progress, Seen, ServiceDeploymentState, Step, assess,
    };
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

    /// Whole deployments, one look at a time (`tests/data/service-deployment-scenarios/`):
    /// blue/green, a canary done once shifted, an alarm rollback, `ferry stop`, and ferry's
    /// PAUSE hook approved, rejected, overtaken by an alarm and timed out by ECS. Each look is
    /// a DescribeServiceDeployments response built from the one before, shaped as the API
    /// reference documents it; the state machine is the one the deploy runs
    /// (`service_deployment::Follow`).
    #[test]
    fn every_recorded_deployment_is_followed_to_its_end_with_the_expected_steps() {
        #[derive(Deserialize)]
        struct Scenario {
            until: String,
            hooks: Vec<String>,
            base: serde_json::Value,
            looks: Vec<Look>,
        }
        #[derive(Deserialize)]
        struct Look {
            set: serde_json::Map<String, serde_json::Value>,
            #[serde(default)]
            seen: Saw,
            #[serde(default)]
            seen_after: Saw,
            expect: String,
            #[serde(default)]
            reason: String,
            check: Option<String>,
            answer: Option<String>,
        }
        #[derive(Deserialize, Default)]
        struct Saw {
            fired: Option<String>,
            stop: Option<String>,
            #[serde(default)]
            past_deadline: bool,
        }
        impl Saw {
            fn seen(&self) -> Seen<'_> {
                Seen {
                    fired: self.fired.as_deref(),
                    stop: self.stop.as_deref(),
                    past_deadline: self.past_deadline,
                }
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/service-deployment-scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(files.len() >= 8, "the scenarios are missing");
        let mut failures = Vec::new();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let s: Scenario =
                serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
            let mut follow = Follow::new(s.until == "shifted", s.hooks.clone());
            let mut state = s.base.clone();
            let mut last = Step::Wait(String::new());
            for (i, look) in s.looks.iter().enumerate() {
                for (k, v) in &look.set {
                    state[k] = v.clone();
                }
                let response: Response = serde_json::from_value(
                    serde_json::json!({"serviceDeployments": [state], "failures": []}),
                )
                .unwrap();
                let d = &response.service_deployments[0];
                let step = follow.look(d, look.seen.seen());
                let (kind, text, answer) = match &step {
                    Step::Wait(t) => ("wait", t.clone(), None),
                    Step::StopWithRollback(t) => ("stop", t.clone(), None),
                    Step::RunHook { at, .. } => {
                        let verdict = match look.check.as_deref() {
                            Some("pass") => Ok(()),
                            Some(other) => Err(other.trim_start_matches("fail: ").to_owned()),
                            None => Err("the scenario gives no check".to_owned()),
                        };
                        let said = follow.answer(at, verdict, look.seen_after.seen());
                        let answer = if said.is_some() {
                            "rollback"
                        } else {
                            "continue"
                        };
                        ("hook", said.unwrap_or_default(), Some(answer))
                    }
                    Step::End(Ended::Done) => ("done", String::new(), None),
                    Step::End(Ended::RolledBack(t)) => ("rolled-back", t.clone(), None),
                    Step::End(Ended::Failed(t)) => ("failed", t.clone(), None),
                };
                if kind != look.expect
                    || !text.contains(&look.reason)
                    || answer != look.answer.as_deref()
                {
                    failures.push(format!(
                        "{name}, look {}: expected {} ({}) answer {:?}, got {kind} ({text}) answer {answer:?}",
                        i + 1,
                        look.expect,
                        look.reason,
                        look.answer
                    ));
                }
                last = step;
            }
            if !matches!(last, Step::End(_)) {
                failures.push(format!("{name}: the deployment never ended"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn an_empty_or_unknown_status_is_never_done() {
        assert!(matches!(
            assess(&ServiceDeploymentState::default(), true),
            Progress::Failed(_)
        ));
    }
}
