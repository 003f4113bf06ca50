//! ECS's own traffic shifting (`strategy: blue_green | canary … | linear …`): the service
//! deployment that UpdateService starts, followed through DescribeServiceDeployments. The
//! emulator implements none of these APIs, so [`assess`] is tested on responses shaped as the
//! ECS API reference documents them (`tests/data/describe-service-deployments/`).

use ferry_manifest::{EcsShift, EcsStrategy};
use serde::Deserialize;

/// One service deployment as DescribeServiceDeployments returns it (the fields ferry reads).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ServiceDeploymentState {
    pub service_deployment_arn: String,
    /// `PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, `STOP_REQUESTED`, `STOPPED`,
    /// `ROLLBACK_REQUESTED`, `ROLLBACK_IN_PROGRESS`, `ROLLBACK_SUCCESSFUL`, `ROLLBACK_FAILED`.
    pub status: String,
    pub status_reason: Option<String>,
    /// `RECONCILE_SERVICE`, `PRE_SCALE_UP`, `SCALE_UP`, `POST_SCALE_UP`,
    /// `TEST_TRAFFIC_SHIFT`, `POST_TEST_TRAFFIC_SHIFT`, `PRODUCTION_TRAFFIC_SHIFT`,
    /// `POST_PRODUCTION_TRAFFIC_SHIFT`, `BAKE_TIME`, `CLEAN_UP`.
    pub lifecycle_stage: Option<String>,
    pub target_service_revision: Option<RevisionState>,
    pub rollback: Option<RollbackState>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevisionState {
    pub arn: String,
    pub requested_production_traffic_weight: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RollbackState {
    pub reason: Option<String>,
    pub service_revision_arn: Option<String>,
}

impl ServiceDeploymentState {
    pub fn from_sdk(d: &aws_sdk_ecs::types::ServiceDeployment) -> ServiceDeploymentState {
        ServiceDeploymentState {
            service_deployment_arn: d.service_deployment_arn().unwrap_or_default().to_owned(),
            status: d
                .status()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            status_reason: d.status_reason().map(str::to_owned),
            lifecycle_stage: d.lifecycle_stage().map(|s| s.as_str().to_owned()),
            target_service_revision: d.target_service_revision().map(|r| RevisionState {
                arn: r.arn().unwrap_or_default().to_owned(),
                requested_production_traffic_weight: r.requested_production_traffic_weight(),
            }),
            rollback: d.rollback().map(|r| RollbackState {
                reason: r.reason().map(str::to_owned),
                service_revision_arn: r.service_revision_arn().map(str::to_owned),
            }),
        }
    }
}

/// Where a service deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still moving; what it is doing.
    Waiting(String),
    /// Done at the point the manifest names (`until`).
    Done,
    /// ECS put the service back on the old revision; why.
    RolledBack(String),
    /// It stopped, or its rollback failed: the service may run either revision; why.
    Failed(String),
}

/// The lifecycle stages after all production traffic is on the new revision.
const SHIFTED: [&str; 3] = ["POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"];

/// Whether a service deployment is done, still moving, or ended otherwise. With
/// `until_shifted`, it is done once production traffic has moved, before the bake ends.
pub fn assess(d: &ServiceDeploymentState, until_shifted: bool) -> Progress {
    let stage = d.lifecycle_stage.as_deref().unwrap_or_default();
    let why = |fallback: &str| {
        d.rollback
            .as_ref()
            .and_then(|r| r.reason.clone())
            .or_else(|| d.status_reason.clone())
            .unwrap_or_else(|| fallback.to_owned())
    };
    match d.status.as_str() {
        "SUCCESSFUL" => Progress::Done,
        "PENDING" | "IN_PROGRESS" if until_shifted && SHIFTED.contains(&stage) => Progress::Done,
        "PENDING" | "IN_PROGRESS" => Progress::Waiting(match stage {
            "PRODUCTION_TRAFFIC_SHIFT" => {
                let weight = d
                    .target_service_revision
                    .as_ref()
                    .and_then(|r| r.requested_production_traffic_weight);
                match weight {
                    Some(w) => format!("shifting production traffic ({w:.0}% on the new revision)"),
                    None => "shifting production traffic".to_owned(),
                }
            }
            "" => "waiting for ECS to start it".to_owned(),
            other => format!("lifecycle stage {other}"),
        }),
        "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" => {
            Progress::Waiting(format!("ECS is rolling back: {}", why("no reason given")))
        }
        "STOP_REQUESTED" => Progress::Waiting("stopping".to_owned()),
        "ROLLBACK_SUCCESSFUL" => Progress::RolledBack(why("ECS rolled the deployment back")),
        "ROLLBACK_FAILED" => {
            Progress::Failed(format!("ECS's rollback failed: {}", why("no reason given")))
        }
        "STOPPED" => Progress::Failed(format!(
            "the deployment was stopped without a rollback: {}",
            why("no reason given")
        )),
        other => Progress::Failed(format!("unknown service deployment status `{other}`")),
    }
}

/// What to do after one look at a followed deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Look again later; what it is doing.
    Wait(String),
    /// Ask ECS to stop and roll back (StopServiceDeployment ROLLBACK); why.
    StopWithRollback(String),
    /// Stop following: it ended.
    End(Ended),
}

/// How a followed deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Done,
    /// Back on the old revision; why.
    RolledBack(String),
    /// Stopped, its rollback failed, or it did not finish; why.
    Failed(String),
}

/// One look at a followed deployment. `stopping` is why ferry already asked ECS to roll
/// back, if it did; `fired` an alarm that entered ALARM; `past_deadline` whether the time
/// for the deployment (or, once stopping, for its rollback) is up.
pub fn decide(
    stopping: Option<&str>,
    fired: Option<&str>,
    past_deadline: bool,
    progress: Progress,
) -> Decision {
    if stopping.is_none() {
        if let Some(alarm) = fired {
            return Decision::StopWithRollback(crate::alarms::entered(alarm));
        }
        if past_deadline && !matches!(progress, Progress::Done) {
            return Decision::StopWithRollback(format!(
                "the deployment did not finish in time ({})",
                describe(&progress)
            ));
        }
    }
    match (progress, stopping) {
        (Progress::Done, None) => Decision::End(Ended::Done),
        // ECS finished before the stop took: the new revision runs, and ferry's reason stands.
        (Progress::Done, Some(why)) => Decision::End(Ended::Failed(format!(
            "{why}; ECS finished the deployment before it could be stopped"
        ))),
        (Progress::RolledBack(why), stopping) => {
            Decision::End(Ended::RolledBack(stopping.map_or(why, str::to_owned)))
        }
        (Progress::Failed(why), _) => Decision::End(Ended::Failed(why)),
        (Progress::Waiting(what), Some(why)) if past_deadline => Decision::End(Ended::Failed(
            format!("{why}; ECS's rollback did not finish in time ({what})"),
        )),
        (Progress::Waiting(what), _) => Decision::Wait(what),
    }
}

fn describe(p: &Progress) -> String {
    match p {
        Progress::Waiting(w) | Progress::RolledBack(w) | Progress::Failed(w) => w.clone(),
        Progress::Done => "done".to_owned(),
    }
}

/// The deployment configuration UpdateService sends for `strategy`; `None` for a rolling
/// update, which keeps the service's own.
pub fn configuration(
    strategy: &EcsStrategy,
) -> Option<aws_sdk_ecs::types::DeploymentConfiguration> {
    use aws_sdk_ecs::types::{
        CanaryConfiguration, DeploymentConfiguration, DeploymentStrategy, LinearConfiguration,
    };
    let EcsStrategy::Shifted {
        shift,
        bake_minutes,
        ..
    } = strategy
    else {
        return None;
    };
    let minutes = |m: u32| i32::try_from(m).unwrap_or(i32::MAX);
    let config = DeploymentConfiguration::builder().bake_time_in_minutes(minutes(*bake_minutes));
    Some(
        match shift {
            EcsShift::BlueGreen => config.strategy(DeploymentStrategy::BlueGreen),
            EcsShift::Canary {
                percent,
                minutes: m,
            } => config
                .strategy(DeploymentStrategy::Canary)
                .canary_configuration(
                    CanaryConfiguration::builder()
                        .canary_percent(f64::from(*percent))
                        .canary_bake_time_in_minutes(minutes(*m))
                        .build(),
                ),
            EcsShift::Linear {
                percent,
                minutes: m,
            } => config
                .strategy(DeploymentStrategy::Linear)
                .linear_configuration(
                    LinearConfiguration::builder()
                        .step_percent(f64::from(*percent))
                        .step_bake_time_in_minutes(minutes(*m))
                        .build(),
                ),
        }
        .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting() -> Progress {
        Progress::Waiting("shifting production traffic (10% on the new revision)".into())
    }

    #[test]
    fn an_alarm_asks_ecs_to_roll_back_and_the_rollback_keeps_the_alarm_as_why() {
        assert_eq!(
            decide(None, Some("orders-api-5xx"), false, waiting()),
            Decision::StopWithRollback("alarm orders-api-5xx entered ALARM".into())
        );
        let why = "alarm orders-api-5xx entered ALARM";
        // Asked once: no second stop while ECS rolls back, whatever fires.
        assert_eq!(
            decide(
                Some(why),
                Some("orders-api-5xx"),
                false,
                Progress::Waiting("ECS is rolling back: …".into())
            ),
            Decision::Wait("ECS is rolling back: …".into())
        );
        assert_eq!(
            decide(
                Some(why),
                None,
                false,
                Progress::RolledBack("stopped by user".into())
            ),
            Decision::End(Ended::RolledBack(why.into()))
        );
        // ECS finished first: not a success, and says why.
        assert!(matches!(
            decide(Some(why), None, false, Progress::Done),
            Decision::End(Ended::Failed(w)) if w.contains("finished the deployment before")
        ));
    }

    #[test]
    fn a_deployment_past_its_time_is_rolled_back_and_a_rollback_past_its_time_fails() {
        assert!(matches!(
            decide(None, None, true, waiting()),
            Decision::StopWithRollback(w) if w.contains("did not finish in time (shifting")
        ));
        // Done at the deadline is done.
        assert_eq!(
            decide(None, None, true, Progress::Done),
            Decision::End(Ended::Done)
        );
        assert!(matches!(
            decide(Some("the deployment did not finish in time"), None, true, waiting()),
            Decision::End(Ended::Failed(w)) if w.contains("rollback did not finish")
        ));
        // ECS's own rollback (circuit breaker, its alarms) is reported with ECS's reason.
        assert_eq!(
            decide(
                None,
                None,
                false,
                Progress::RolledBack("circuit breaker".into())
            ),
            Decision::End(Ended::RolledBack("circuit breaker".into()))
        );
    }

    #[test]
    fn a_rolling_update_sends_no_configuration_and_a_canary_sends_its_percent_and_minutes() {
        assert!(configuration(&EcsStrategy::Rolling).is_none());
        let c = configuration(&EcsStrategy::Shifted {
            shift: EcsShift::Canary {
                percent: 10,
                minutes: 5,
            },
            bake_minutes: 15,
            until_shifted: false,
        })
        .unwrap();
        assert_eq!(
            c.strategy(),
            Some(&aws_sdk_ecs::types::DeploymentStrategy::Canary)
        );
        assert_eq!(c.bake_time_in_minutes(), Some(15));
        let canary = c.canary_configuration().unwrap();
        assert_eq!(
            (
                canary.canary_percent(),
                canary.canary_bake_time_in_minutes()
            ),
            (Some(10.0), Some(5))
        );
        let linear = configuration(&EcsStrategy::Shifted {
            shift: EcsShift::Linear {
                percent: 25,
                minutes: 2,
            },
            bake_minutes: 0,
            until_shifted: true,
        })
        .unwrap();
        assert_eq!(
            linear.strategy(),
            Some(&aws_sdk_ecs::types::DeploymentStrategy::Linear)
        );
        let step = linear.linear_configuration().unwrap();
        assert_eq!(
            (step.step_percent(), step.step_bake_time_in_minutes()),
            (Some(25.0), Some(2))
        );
    }
}
