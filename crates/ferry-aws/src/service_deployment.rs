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
    pub lifecycle_hook_details: Vec<HookState>,
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
            lifecycle_hook_details: d
                .lifecycle_hook_details()
                .iter()
                .map(|h| HookState {
                    hook_id: h.hook_id().unwrap_or_default().to_owned(),
                    target_type: h
                        .target_type()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                    status: h
                        .status()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                })
                .collect(),
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

/// A service deployment's lifecycle stages, in order.
const LIFECYCLE: [&str; 10] = [
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

fn order(stage: &str) -> usize {
    LIFECYCLE
        .iter()
        .position(|s| *s == stage)
        .unwrap_or(LIFECYCLE.len())
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

/// A lifecycle hook ECS is running in a deployment (`lifecycleHookDetails`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HookState {
    /// What ContinueServiceDeployment names.
    pub hook_id: String,
    /// `AWS_LAMBDA` or `PAUSE`.
    pub target_type: String,
    /// `AWAITING_ACTION`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`.
    pub status: String,
}

/// What to do after one look at a followed deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look again later; what it is doing.
    Wait(String),
    /// Ask ECS to stop and roll back (StopServiceDeployment ROLLBACK); why.
    StopWithRollback(String),
    /// ECS paused at one of ferry's hooks (`at`, as the API names the stage): run its check,
    /// then tell ECS what [`Follow::answer`] says.
    RunHook { hook_id: String, at: String },
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

/// What ferry sees besides the deployment itself at one look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seen<'a> {
    /// An alarm that entered ALARM since the deploy started.
    pub fired: Option<&'a str>,
    /// An operator asked to stop (`ferry stop --force`); why.
    pub stop: Option<&'a str>,
    /// The time for the deployment (or, once ferry asked to roll back, for the rollback) is up.
    pub past_deadline: bool,
}

/// The state machine that follows one service deployment: pure, fed each
/// DescribeServiceDeployments answer and what ferry saw besides, it says what to do next.
/// An alarm, a stop or the deadline asks ECS to roll back once; a pause at one of ferry's
/// hooks is run and answered once; a rollback keeps ferry's reason.
#[derive(Debug, Clone)]
pub struct Follow {
    until_shifted: bool,
    /// The stages of ferry's hooks, as the API names them.
    hooks: Vec<String>,
    /// Why ferry asked ECS to roll back, once it did.
    stopping: Option<String>,
    /// The stages of ferry's hooks it has answered (ECS pauses once at each).
    answered: Vec<String>,
}

impl Follow {
    pub fn new(until_shifted: bool, hooks: Vec<String>) -> Follow {
        Follow {
            until_shifted,
            hooks,
            stopping: None,
            answered: Vec::new(),
        }
    }

    /// Why ferry asked ECS to roll back, if it did.
    pub fn stopping(&self) -> Option<&str> {
        self.stopping.as_deref()
    }

    /// One look at the deployment.
    pub fn look(&mut self, d: &ServiceDeploymentState, seen: Seen<'_>) -> Step {
        let mut progress = assess(d, self.until_shifted);
        // Done once shifted, but a hook of ferry's at this stage or later is still to come:
        // ECS would wait for its answer, so ferry waits too.
        if progress == Progress::Done && d.status != "SUCCESSFUL" {
            let stage = d.lifecycle_stage.as_deref().unwrap_or_default();
            if let Some(hook) = self
                .hooks
                .iter()
                .find(|h| order(h) >= order(stage) && !self.answered.contains(h))
            {
                progress = Progress::Waiting(format!(
                    "lifecycle stage {stage}, before the hook at {hook}"
                ));
            }
        }
        if self.stopping.is_none() {
            let why = seen
                .stop
                .map(str::to_owned)
                .or_else(|| seen.fired.map(crate::alarms::entered))
                .or_else(|| {
                    (seen.past_deadline && !matches!(progress, Progress::Done)).then(|| {
                        format!(
                            "the deployment did not finish in time ({})",
                            describe(&progress)
                        )
                    })
                });
            if let Some(why) = why {
                self.stopping = Some(why.clone());
                return Step::StopWithRollback(why);
            }
            if matches!(progress, Progress::Waiting(_))
                && let Some(hook) = self.paused(d)
            {
                return Step::RunHook {
                    hook_id: hook.hook_id.clone(),
                    at: d.lifecycle_stage.clone().unwrap_or_default(),
                };
            }
        }
        match (progress, self.stopping.as_deref()) {
            (Progress::Done, None) => Step::End(Ended::Done),
            // ECS finished before the stop took: the new revision runs, and ferry's reason stands.
            (Progress::Done, Some(why)) => Step::End(Ended::Failed(format!(
                "{why}; ECS finished the deployment before it could be stopped"
            ))),
            (Progress::RolledBack(why), stopping) => {
                Step::End(Ended::RolledBack(stopping.map_or(why, str::to_owned)))
            }
            (Progress::Failed(why), _) => Step::End(Ended::Failed(why)),
            (Progress::Waiting(what), Some(why)) if seen.past_deadline => Step::End(Ended::Failed(
                format!("{why}; ECS's rollback did not finish in time ({what})"),
            )),
            (Progress::Waiting(what), _) => Step::Wait(what),
        }
    }

    /// After a hook's check, what to tell ECS (ContinueServiceDeployment): `None` is
    /// CONTINUE, `Some(why)` ROLLBACK. `verdict` is the check's result (`Err` why it failed);
    /// a stop or an alarm seen while it ran rolls the deployment back too.
    pub fn answer(
        &mut self,
        at: &str,
        verdict: Result<(), String>,
        seen: Seen<'_>,
    ) -> Option<String> {
        self.answered.push(at.to_owned());
        let why = seen
            .stop
            .map(str::to_owned)
            .or_else(|| seen.fired.map(crate::alarms::entered))
            .or(verdict.err());
        if let Some(why) = &why {
            self.stopping = Some(why.clone());
        }
        why
    }

    /// A `PAUSE` hook of ferry's that awaits an answer it has not given.
    fn paused<'d>(&self, d: &'d ServiceDeploymentState) -> Option<&'d HookState> {
        let stage = d.lifecycle_stage.as_deref()?;
        if !self.hooks.iter().any(|h| h == stage) || self.answered.iter().any(|a| a == stage) {
            return None;
        }
        d.lifecycle_hook_details
            .iter()
            .find(|h| h.target_type == "PAUSE" && h.status == "AWAITING_ACTION")
    }
}

fn describe(p: &Progress) -> String {
    match p {
        Progress::Waiting(w) | Progress::RolledBack(w) | Progress::Failed(w) => w.clone(),
        Progress::Done => "done".to_owned(),
    }
}

/// A `PAUSE` lifecycle hook ferry answers: where ECS waits, and how long ferry's check may
/// take.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct PauseHook {
    /// The lifecycle stage as the API names it.
    pub at: String,
    pub timeout: std::time::Duration,
}

impl PauseHook {
    /// How long ECS waits before it rolls back by itself: ferry's time for the check and ten
    /// minutes more, so ferry answers first while it runs, and a deployment whose follower
    /// died still ends rolled back (the API allows 1 to 20160 minutes).
    pub fn ecs_timeout_minutes(&self) -> i32 {
        let minutes = self.timeout.as_secs().div_ceil(60) + 10;
        i32::try_from(minutes.min(20160)).unwrap_or(20160)
    }
}

/// The deployment configuration UpdateService sends for `strategy` and ferry's `hooks`;
/// `None` for a rolling update, which keeps the service's own.
pub fn configuration(
    strategy: &EcsStrategy,
    hooks: &[PauseHook],
) -> Option<aws_sdk_ecs::types::DeploymentConfiguration> {
    use aws_sdk_ecs::types::{
        CanaryConfiguration, DeploymentConfiguration, DeploymentLifecycleHook,
        DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
        DeploymentLifecycleHookTargetType, DeploymentLifecycleHookTimeoutConfiguration,
        DeploymentStrategy, LinearConfiguration,
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
    let mut config =
        DeploymentConfiguration::builder().bake_time_in_minutes(minutes(*bake_minutes));
    for hook in hooks {
        config = config.lifecycle_hooks(
            DeploymentLifecycleHook::builder()
                .target_type(DeploymentLifecycleHookTargetType::Pause)
                .lifecycle_stages(DeploymentLifecycleHookStage::from(hook.at.as_str()))
                .timeout_configuration(
                    DeploymentLifecycleHookTimeoutConfiguration::builder()
                        .timeout_in_minutes(hook.ecs_timeout_minutes())
                        .action(DeploymentLifecycleHookAction::Rollback)
                        .build(),
                )
                .build(),
        );
    }
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

    fn at(status: &str, stage: &str) -> ServiceDeploymentState {
        ServiceDeploymentState {
            service_deployment_arn: "arn:aws:ecs:us-east-1:222222222222:service-deployment/c/s/d1"
                .into(),
            status: status.into(),
            lifecycle_stage: Some(stage.into()),
            ..ServiceDeploymentState::default()
        }
    }

    fn paused(stage: &str, hook: &str) -> ServiceDeploymentState {
        ServiceDeploymentState {
            lifecycle_hook_details: vec![HookState {
                hook_id: hook.into(),
                target_type: "PAUSE".into(),
                status: "AWAITING_ACTION".into(),
            }],
            ..at("IN_PROGRESS", stage)
        }
    }

    fn rolled_back(reason: &str) -> ServiceDeploymentState {
        ServiceDeploymentState {
            rollback: Some(RollbackState {
                reason: Some(reason.into()),
                service_revision_arn: None,
            }),
            ..at("ROLLBACK_SUCCESSFUL", "CLEAN_UP")
        }
    }

    fn fired(alarm: &str) -> Seen<'_> {
        Seen {
            fired: Some(alarm),
            ..Seen::default()
        }
    }

    const LATE: Seen<'static> = Seen {
        fired: None,
        stop: None,
        past_deadline: true,
    };

    #[test]
    fn an_alarm_asks_ecs_to_roll_back_once_and_the_rollback_keeps_the_alarm_as_why() {
        let mut f = Follow::new(false, Vec::new());
        let shifting = at("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT");
        assert_eq!(
            f.look(&shifting, fired("orders-api-5xx")),
            Step::StopWithRollback("alarm orders-api-5xx entered ALARM".into())
        );
        // Asked once: no second stop while ECS rolls back, whatever fires.
        assert!(matches!(
            f.look(&at("ROLLBACK_IN_PROGRESS", "CLEAN_UP"), fired("orders-api-5xx")),
            Step::Wait(w) if w.starts_with("ECS is rolling back")
        ));
        assert_eq!(
            f.look(&rolled_back("stopped by user"), Seen::default()),
            Step::End(Ended::RolledBack(
                "alarm orders-api-5xx entered ALARM".into()
            ))
        );
        // ECS finished first: not a success, and says why.
        let mut f = Follow::new(false, Vec::new());
        f.look(&shifting, fired("orders-api-5xx"));
        assert!(matches!(
            f.look(&at("SUCCESSFUL", "CLEAN_UP"), Seen::default()),
            Step::End(Ended::Failed(w)) if w.contains("finished the deployment before")
        ));
    }

    #[test]
    fn a_deployment_past_its_time_is_rolled_back_and_a_rollback_past_its_time_fails() {
        let mut f = Follow::new(false, Vec::new());
        let shifting = at("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT");
        assert!(matches!(
            f.look(&shifting, LATE),
            Step::StopWithRollback(w) if w.contains("did not finish in time (shifting")
        ));
        assert!(matches!(
            f.look(&at("ROLLBACK_IN_PROGRESS", "CLEAN_UP"), LATE),
            Step::End(Ended::Failed(w)) if w.contains("rollback did not finish")
        ));
        // Done at the deadline is done.
        assert_eq!(
            Follow::new(false, Vec::new()).look(&at("SUCCESSFUL", "CLEAN_UP"), LATE),
            Step::End(Ended::Done)
        );
        // ECS's own rollback (circuit breaker, its alarms) is reported with ECS's reason.
        assert_eq!(
            Follow::new(false, Vec::new()).look(&rolled_back("circuit breaker"), Seen::default()),
            Step::End(Ended::RolledBack("circuit breaker".into()))
        );
    }

    #[test]
    fn a_pause_at_a_hook_of_ferrys_is_run_and_answered_once() {
        let hooks = vec!["POST_TEST_TRAFFIC_SHIFT".to_owned()];
        let mut f = Follow::new(false, hooks);
        let pause = paused("POST_TEST_TRAFFIC_SHIFT", "ecs-pause-1");
        assert_eq!(
            f.look(&pause, Seen::default()),
            Step::RunHook {
                hook_id: "ecs-pause-1".into(),
                at: "POST_TEST_TRAFFIC_SHIFT".into()
            }
        );
        assert_eq!(
            f.answer("POST_TEST_TRAFFIC_SHIFT", Ok(()), Seen::default()),
            None
        );
        // ECS has not moved on yet: ferry does not answer twice.
        assert!(matches!(f.look(&pause, Seen::default()), Step::Wait(_)));
        // A pause ferry did not ask for is not its to answer.
        let mut f = Follow::new(false, vec!["POST_TEST_TRAFFIC_SHIFT".to_owned()]);
        assert!(matches!(
            f.look(&paused("POST_SCALE_UP", "someone-elses"), Seen::default()),
            Step::Wait(_)
        ));
    }

    #[test]
    fn a_failed_check_or_an_alarm_during_it_rolls_back_from_the_hook_and_keeps_why() {
        let mut f = Follow::new(false, vec!["POST_TEST_TRAFFIC_SHIFT".to_owned()]);
        let why = f.answer(
            "POST_TEST_TRAFFIC_SHIFT",
            Err("rejected by bob: 500s on /orders".into()),
            Seen::default(),
        );
        assert_eq!(why.as_deref(), Some("rejected by bob: 500s on /orders"));
        assert_eq!(
            f.look(
                &rolled_back("rolled back by ContinueServiceDeployment"),
                Seen::default()
            ),
            Step::End(Ended::RolledBack("rejected by bob: 500s on /orders".into()))
        );
        let mut f = Follow::new(false, vec!["POST_TEST_TRAFFIC_SHIFT".to_owned()]);
        assert_eq!(
            f.answer("POST_TEST_TRAFFIC_SHIFT", Ok(()), fired("orders-api-5xx"))
                .as_deref(),
            Some("alarm orders-api-5xx entered ALARM")
        );
    }

    #[test]
    fn until_shifted_waits_for_a_hook_still_to_come_after_the_shift() {
        let mut f = Follow::new(true, vec!["POST_PRODUCTION_TRAFFIC_SHIFT".to_owned()]);
        // In the stage, before ECS has put up the pause: not done yet.
        assert!(matches!(
            f.look(&at("IN_PROGRESS", "POST_PRODUCTION_TRAFFIC_SHIFT"), Seen::default()),
            Step::Wait(w) if w.contains("before the hook at POST_PRODUCTION_TRAFFIC_SHIFT")
        ));
        let pause = paused("POST_PRODUCTION_TRAFFIC_SHIFT", "h2");
        assert!(matches!(
            f.look(&pause, Seen::default()),
            Step::RunHook { .. }
        ));
        assert_eq!(
            f.answer("POST_PRODUCTION_TRAFFIC_SHIFT", Ok(()), Seen::default()),
            None
        );
        assert_eq!(
            f.look(&at("IN_PROGRESS", "BAKE_TIME"), Seen::default()),
            Step::End(Ended::Done)
        );
    }

    #[test]
    fn ferry_stop_rolls_a_shifting_deployment_back_instead_of_cutting_it_off() {
        let mut f = Follow::new(false, Vec::new());
        let stop = Seen {
            stop: Some("stopped by `ferry stop --force`"),
            ..Seen::default()
        };
        assert_eq!(
            f.look(&at("IN_PROGRESS", "BAKE_TIME"), stop),
            Step::StopWithRollback("stopped by `ferry stop --force`".into())
        );
        assert_eq!(
            f.look(
                &rolled_back("Service deployment rolled back by user."),
                stop
            ),
            Step::End(Ended::RolledBack("stopped by `ferry stop --force`".into()))
        );
    }

    #[test]
    fn each_hook_is_sent_as_a_pause_at_its_stage_that_rolls_back_when_nobody_answers() {
        use aws_sdk_ecs::types::{
            DeploymentLifecycleHookAction, DeploymentLifecycleHookStage,
            DeploymentLifecycleHookTargetType,
        };
        let blue_green = EcsStrategy::Shifted {
            shift: EcsShift::BlueGreen,
            bake_minutes: 10,
            until_shifted: false,
        };
        let hooks = [PauseHook {
            at: "POST_TEST_TRAFFIC_SHIFT".into(),
            timeout: std::time::Duration::from_secs(600),
        }];
        let c = configuration(&blue_green, &hooks).unwrap();
        let [hook] = c.lifecycle_hooks() else {
            panic!("one hook: {:?}", c.lifecycle_hooks());
        };
        assert_eq!(
            hook.target_type(),
            Some(&DeploymentLifecycleHookTargetType::Pause)
        );
        assert_eq!(
            hook.lifecycle_stages(),
            [DeploymentLifecycleHookStage::PostTestTrafficShift]
        );
        assert_eq!(hook.hook_target_arn(), None);
        let timeout = hook.timeout_configuration().unwrap();
        assert_eq!(timeout.timeout_in_minutes(), Some(20));
        assert_eq!(
            timeout.action(),
            Some(&DeploymentLifecycleHookAction::Rollback)
        );
        assert!(
            configuration(&blue_green, &[])
                .unwrap()
                .lifecycle_hooks()
                .is_empty()
        );
    }

    #[test]
    fn a_pause_gets_ecs_time_beyond_ferrys_and_within_the_apis_range() {
        let hook = |secs| PauseHook {
            at: "POST_TEST_TRAFFIC_SHIFT".into(),
            timeout: std::time::Duration::from_secs(secs),
        };
        assert_eq!(hook(3600).ecs_timeout_minutes(), 70);
        assert_eq!(hook(61).ecs_timeout_minutes(), 12);
        assert_eq!(hook(30 * 24 * 3600).ecs_timeout_minutes(), 20160);
    }

    #[test]
    fn a_rolling_update_sends_no_configuration_and_a_canary_sends_its_percent_and_minutes() {
        assert!(configuration(&EcsStrategy::Rolling, &[]).is_none());
        let c = configuration(
            &EcsStrategy::Shifted {
                shift: EcsShift::Canary {
                    percent: 10,
                    minutes: 5,
                },
                bake_minutes: 15,
                until_shifted: false,
            },
            &[],
        )
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
        let linear = configuration(
            &EcsStrategy::Shifted {
                shift: EcsShift::Linear {
                    percent: 25,
                    minutes: 2,
                },
                bake_minutes: 0,
                until_shifted: true,
            },
            &[],
        )
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
