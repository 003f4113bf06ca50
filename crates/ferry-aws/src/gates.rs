//! The engine's `gates` action: what must hold before a release enters an environment —
//! no alarm of its account in ALARM, a deployment window open and no freeze, and enough soak
//! in the environment before. It runs beside the stage's approval, lets the stage go on only
//! once that approval is given and every gate is open (so a decision given during a freeze
//! waits for the freeze to end), and records what holds on each look, which `ferry status`,
//! the API and the dashboard show. `ferry override` lets the release past, with a reason.
//!
//! [`assess`] is the decision, pure, on what was read; the action reads and waits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ferry_engine::action::{Action, ActionContext, ActionError, ActionKind, ActionOutput};
use ferry_engine::model::{ActionDef, ApprovalStatus, Release, Status};
use ferry_manifest::schedule::{self, Closed, Window};
use ferry_manifest::values::format_duration;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::actions::{Target, target_session};
use crate::alarms::{AlarmState, read_states};
use crate::session::Aws;

/// The `gates` action's configuration: one environment's `gates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatesConfig {
    /// The environment's account, where its alarms are read (as its deploy role).
    pub target: Target,
    #[serde(default)]
    pub alarms: Vec<String>,
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default)]
    pub soak: Option<Soak>,
    /// The stage's approval action: the gates let the stage go on only once it is given.
    #[serde(default)]
    pub approval: Option<String>,
}

/// How long a release must have run in another environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Soak {
    pub environment: String,
    pub secs: u64,
}

/// Why a gate holds the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// An alarm that entered ALARM after the execution started.
    Alarm { name: String },
    /// A named alarm the account does not have: a typo must not open the gate.
    AlarmMissing { name: String },
    /// A freeze covers now.
    Frozen {
        window: String,
        opens_ms: Option<i64>,
    },
    /// No deployment window covers now.
    OutsideWindows { opens_ms: Option<i64> },
    /// The release has not finished deploying to the soak environment.
    NotDeployed { environment: String },
    /// It has, but not long enough ago. A time rather than what is left, so the hold reads
    /// the same on every look and is recorded once.
    Soaking {
        environment: String,
        secs: u64,
        until_ms: i64,
    },
    /// It was deployed there, and then replaced or rolled back.
    Replaced { environment: String, target: String },
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or_default()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string()
}

fn when(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => format!("opens {}", utc(ms)),
        None => format!(
            "stays closed for the next {} days",
            schedule::LOOKAHEAD_DAYS
        ),
    }
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::Alarm { name } => write!(
                f,
                "alarm `{name}` is in ALARM, and entered it after this execution started"
            ),
            Hold::AlarmMissing { name } => write!(
                f,
                "alarm `{name}` does not exist in the account; create it, or remove it from `gates.alarms`"
            ),
            Hold::Frozen { window, opens_ms } => {
                write!(f, "frozen by {window}; {}", when(*opens_ms))
            }
            Hold::OutsideWindows { opens_ms } => {
                write!(f, "outside the deployment windows; {}", when(*opens_ms))
            }
            Hold::NotDeployed { environment } => write!(
                f,
                "soak: the release has not finished deploying to {environment}"
            ),
            Hold::Soaking {
                environment,
                secs,
                until_ms,
            } => write!(
                f,
                "soak: it must run in {environment} for {}, until {}",
                format_duration(Duration::from_secs(*secs)),
                utc(*until_ms)
            ),
            Hold::Replaced {
                environment,
                target,
            } => write!(
                f,
                "soak: {environment} no longer runs it ({target} was rolled back or replaced)"
            ),
        }
    }
}

/// What the action read for one look at the gates.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub now_ms: i64,
    /// When the execution started: an alarm already in ALARM then does not hold it.
    pub started_ms: i64,
    pub alarms: Vec<AlarmState>,
    /// When the release's stages in the soak environment ended, if they all succeeded.
    pub soak_since_ms: Option<i64>,
    /// The soak environment's ledger entries of the targets the release deployed there, each
    /// target's newest first.
    pub soak_ledger: Vec<Release>,
}

/// What holds the release now; empty: every gate is open.
pub fn assess(config: &GatesConfig, execution: &str, facts: &Facts) -> Vec<Hold> {
    let mut holds = Vec::new();
    for name in &config.alarms {
        let Some(alarm) = facts.alarms.iter().find(|a| &a.name == name) else {
            holds.push(Hold::AlarmMissing { name: name.clone() });
            continue;
        };
        let fired_since_start = alarm.state == "ALARM"
            // No timestamp: the state is not known to predate the execution.
            && alarm.since_ms.is_none_or(|t| t >= facts.started_ms);
        if fired_since_start {
            holds.push(Hold::Alarm { name: name.clone() });
        }
    }
    let now = jiff::Timestamp::from_millisecond(facts.now_ms).unwrap_or_default();
    match schedule::closed_at(&config.windows, now) {
        None => {}
        Some(closed) => {
            let opens_ms = schedule::next_open(&config.windows, now).map(|t| t.as_millisecond());
            holds.push(match closed {
                Closed::Frozen(w) => Hold::Frozen {
                    window: w.to_string(),
                    opens_ms,
                },
                Closed::OutsideWindows => Hold::OutsideWindows { opens_ms },
            });
        }
    }
    if let Some(soak) = &config.soak {
        let environment = soak.environment.clone();
        let mut seen = Vec::new();
        let replaced = facts.soak_ledger.iter().find_map(|r| {
            // Each target's newest entry decides.
            if seen.contains(&r.record.target) {
                return None;
            }
            seen.push(r.record.target.clone());
            (r.execution_id != execution || r.record.outcome != "Deployed")
                .then(|| r.record.target.clone())
        });
        match (facts.soak_since_ms, replaced) {
            (None, _) => holds.push(Hold::NotDeployed { environment }),
            (Some(_), Some(target)) => holds.push(Hold::Replaced {
                environment,
                target,
            }),
            (Some(since), None) => {
                let ran = u64::try_from(facts.now_ms - since).unwrap_or(0) / 1000;
                if ran < soak.secs {
                    holds.push(Hold::Soaking {
                        environment,
                        secs: soak.secs,
                        until_ms: since.saturating_add_unsigned(soak.secs * 1000),
                    });
                }
            }
        }
    }
    holds
}

pub struct GatesKind(pub Aws);

impl ActionKind for GatesKind {
    type Config = GatesConfig;
    fn name(&self) -> &'static str {
        "gates"
    }
    fn build(&self, config: GatesConfig, _: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(GatesAction {
            aws: self.0.clone(),
            config,
        }))
    }
}

struct GatesAction {
    aws: Aws,
    config: GatesConfig,
}

/// Alarms are read at most this many polls apart: a waiting gate should not spend the
/// account's CloudWatch request rate.
const POLLS_PER_ALARM_READ: u32 = 20;

fn failed(e: impl fmt::Display) -> ActionError {
    ActionError::Failed(e.to_string())
}

impl GatesAction {
    /// The soak environment's facts: when the release's stages there ended, and the newest
    /// ledger entries of what it deployed there.
    fn soak_facts(&self, ctx: &ActionContext, facts: &mut Facts) -> Result<(), ActionError> {
        let Some(soak) = &self.config.soak else {
            return Ok(());
        };
        let exec = &ctx.execution;
        let stages: Vec<&str> = exec
            .definition
            .stages
            .iter()
            .filter(|s| s.environment.as_deref() == Some(soak.environment.as_str()))
            .map(|s| s.name.as_str())
            .collect();
        let runs = ctx.store.stage_runs(&exec.id).map_err(failed)?;
        let ended: Option<Vec<i64>> = stages
            .iter()
            .map(|name| {
                runs.iter()
                    .find(|r| r.stage == *name && r.status == Status::Succeeded)
                    .and_then(|r| r.ended_ms)
            })
            .collect();
        facts.soak_since_ms = ended.and_then(|e| e.into_iter().max());
        let ledger = ctx
            .store
            .releases(&exec.pipeline, Some(&soak.environment), None, 200)
            .map_err(failed)?;
        let mine: Vec<&String> = ledger
            .iter()
            .filter(|r| r.execution_id == exec.id)
            .map(|r| &r.record.target)
            .collect();
        facts.soak_ledger = ledger
            .iter()
            .filter(|r| mine.contains(&&r.record.target))
            .cloned()
            .collect();
        Ok(())
    }

    /// Whether the stage's approval, if it has one, is given; an approval refused or
    /// expired fails the gates (the stage does not go on).
    fn approved(&self, ctx: &ActionContext) -> Result<bool, ActionError> {
        let Some(action) = &self.config.approval else {
            return Ok(true);
        };
        let status = ctx
            .store
            .approval(&ctx.execution.id, &ctx.stage, action)
            .map_err(failed)?
            .map(|a| a.status);
        match status {
            Some(ApprovalStatus::Approved) => Ok(true),
            Some(ApprovalStatus::Rejected | ApprovalStatus::Expired) => Err(ActionError::Failed(
                format!("the stage's approval `{action}` was not given"),
            )),
            Some(ApprovalStatus::Pending) | None => Ok(false),
        }
    }
}

#[async_trait]
impl Action for GatesAction {
    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let account = if self.config.alarms.is_empty() {
            None
        } else {
            let account = target_session(&self.aws, ctx, &self.config.target).await?;
            let client = aws_sdk_cloudwatch::Client::new(&account.config);
            Some((account, client))
        };
        let mut facts = Facts {
            started_ms: ctx.execution.created_ms,
            ..Facts::default()
        };
        let mut polls = 0u32;
        let mut said: Option<Vec<String>> = None;
        let mut held: Vec<String> = Vec::new();
        loop {
            let gate = ctx
                .store
                .gates(&ctx.execution.id)
                .map_err(failed)?
                .into_iter()
                .find(|g| g.stage == ctx.stage);
            if let Some(o) = gate.and_then(|g| g.overridden) {
                ctx.log.line(&format!(
                    "[ferry] gates overridden by {}: {}",
                    o.identity, o.reason
                ));
                return Ok(ActionOutput {
                    outputs: json!({"held": held, "overridden_by": o.identity, "reason": o.reason}),
                    ..ActionOutput::default()
                });
            }
            let approved = self.approved(ctx)?;
            let due = polls.is_multiple_of(POLLS_PER_ALARM_READ);
            polls = polls.wrapping_add(1);
            facts.now_ms = ctx.settings.clock.now_ms();
            self.soak_facts(ctx, &mut facts)?;
            let mut holds = assess(&self.config, &ctx.execution.id, &facts);
            // Alarms are read on their schedule, and again before the release is let in: it
            // never enters on a reading from polls ago.
            if let Some((account, client)) = &account
                && (due || (holds.is_empty() && approved))
            {
                facts.alarms = read_states(client, account, &self.config.alarms)
                    .await
                    .map_err(failed)?;
                holds = assess(&self.config, &ctx.execution.id, &facts);
            }
            let holds: Vec<String> = holds.iter().map(Hold::to_string).collect();
            if said.as_ref() != Some(&holds) {
                ctx.store
                    .record_gate(&ctx.execution.id, &ctx.stage, &holds)
                    .map_err(failed)?;
                if !holds.is_empty() {
                    ctx.log.held(&holds);
                }
                for hold in &holds {
                    if !held.contains(hold) {
                        held.push(hold.clone());
                    }
                }
                said = Some(holds.clone());
            }
            if holds.is_empty() && approved {
                ctx.log.line("[ferry] every gate is open");
                return Ok(ActionOutput {
                    outputs: json!({"held": held}),
                    ..ActionOutput::default()
                });
            }
            // Held: waiting for time or alarms holds no worker.
            ctx.slot.release();
            tokio::select! {
                () = tokio::time::sleep(ctx.settings.poll) => {}
                () = ctx.cancel.cancelled() => return Err(ActionError::Cancelled),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_engine::model::ReleaseRecord;
    use ferry_manifest::schedule::Rule;

    fn config() -> GatesConfig {
        GatesConfig {
            target: Target {
                account_id: "333333333333".into(),
                region: "us-east-1".into(),
                role_arn: "arn:aws:iam::333333333333:role/ferry-deploy".into(),
                external_id: None,
            },
            alarms: vec!["orders-errors".into()],
            windows: vec![],
            soak: None,
            approval: None,
        }
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn alarm(state: &str, since: &str) -> AlarmState {
        AlarmState {
            name: "orders-errors".into(),
            state: state.into(),
            since_ms: Some(ms(since)),
        }
    }

    #[test]
    fn an_alarm_holds_unless_it_was_already_firing_when_the_execution_started() {
        let c = config();
        let facts = |a| Facts {
            now_ms: ms("2026-12-02T12:00:00Z"),
            started_ms: ms("2026-12-02T11:00:00Z"),
            alarms: vec![a],
            ..Facts::default()
        };
        let fired_later = facts(alarm("ALARM", "2026-12-02T11:30:00Z"));
        assert_eq!(
            assess(&c, "e1", &fired_later),
            vec![Hold::Alarm {
                name: "orders-errors".into()
            }]
        );
        // Firing before the execution started: the hotfix for it is let through.
        let hotfix = facts(alarm("ALARM", "2026-12-02T10:00:00Z"));
        assert_eq!(assess(&c, "e1", &hotfix), vec![]);
        // One the account does not have holds: a misspelt name never opens the gate.
        let mut other = alarm("ALARM", "2026-12-02T11:30:00Z");
        other.name = "orders-error".into();
        assert_eq!(
            assess(&c, "e1", &facts(other)),
            vec![Hold::AlarmMissing {
                name: "orders-errors".into()
            }]
        );
        assert_eq!(
            assess(&c, "e1", &facts(alarm("OK", "2026-12-02T11:30:00Z"))),
            vec![]
        );
    }

    #[test]
    fn a_freeze_holds_with_the_time_it_ends() {
        let mut c = config();
        c.alarms.clear();
        c.windows = vec![Window::new(Rule::Deny, "* * 24-26 12 *", "UTC").unwrap()];
        let facts = Facts {
            now_ms: ms("2026-12-25T08:00:00Z"),
            ..Facts::default()
        };
        let holds = assess(&c, "e1", &facts);
        assert_eq!(
            holds,
            vec![Hold::Frozen {
                window: "deny `* * 24-26 12 *` (UTC)".into(),
                opens_ms: Some(ms("2026-12-27T00:00:00Z")),
            }]
        );
        assert_eq!(
            holds[0].to_string(),
            "frozen by deny `* * 24-26 12 *` (UTC); opens 2026-12-27 00:00 UTC"
        );
    }

    fn entry(execution: &str, target: &str, outcome: &str) -> Release {
        Release {
            id: 1,
            pipeline: "orders".into(),
            environment: "qa".into(),
            execution_id: execution.into(),
            revision: "abc".into(),
            approved_by: None,
            created_ms: 0,
            record: ReleaseRecord {
                target: target.into(),
                version: "2".into(),
                digest: None,
                previous_version: None,
                details: serde_json::Value::Null,
                outcome: outcome.into(),
                verified: true,
            },
            blocked: None,
            gate_override: None,
        }
    }

    #[test]
    fn soak_counts_from_the_end_of_the_previous_environment_and_needs_it_still_running_there() {
        let mut c = config();
        c.alarms.clear();
        c.soak = Some(Soak {
            environment: "qa".into(),
            secs: 7200,
        });
        let mut facts = Facts {
            now_ms: ms("2026-12-02T12:00:00Z"),
            ..Facts::default()
        };
        assert_eq!(
            assess(&c, "e1", &facts),
            vec![Hold::NotDeployed {
                environment: "qa".into()
            }]
        );
        facts.soak_since_ms = Some(ms("2026-12-02T11:00:00Z"));
        facts.soak_ledger = vec![entry("e1", "lambda:orders-fn:live", "Deployed")];
        let holds = assess(&c, "e1", &facts);
        assert_eq!(
            holds,
            vec![Hold::Soaking {
                environment: "qa".into(),
                secs: 7200,
                until_ms: ms("2026-12-02T13:00:00Z"),
            }]
        );
        assert_eq!(
            holds[0].to_string(),
            "soak: it must run in qa for 2h, until 2026-12-02 13:00 UTC"
        );
        facts.now_ms = ms("2026-12-02T13:00:00Z");
        assert_eq!(assess(&c, "e1", &facts), vec![]);
        // Rolled back in qa since: no longer soaking.
        facts
            .soak_ledger
            .insert(0, entry("e0", "lambda:orders-fn:live", "Restored"));
        assert_eq!(
            assess(&c, "e1", &facts),
            vec![Hold::Replaced {
                environment: "qa".into(),
                target: "lambda:orders-fn:live".into()
            }]
        );
    }
}
