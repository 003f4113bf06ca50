//! CloudWatch alarms watched during a deploy. An alarm already in ALARM when the deploy
//! starts is recorded and ignored; one that *enters* ALARM afterwards rolls the deploy back.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::deploy::StepLog;
use crate::error::AwsError;
use crate::session::AccountConfig;

pub struct AlarmWatch {
    client: aws_sdk_cloudwatch::Client,
    account: AccountConfig,
    names: Vec<String>,
    /// Alarms in ALARM before the deploy began.
    pub baseline: BTreeSet<String>,
}

impl AlarmWatch {
    /// Reads the alarms' current states. Every named alarm must exist.
    pub async fn start(account: &AccountConfig, names: &[String]) -> Result<AlarmWatch, AwsError> {
        let mut watch = AlarmWatch {
            client: aws_sdk_cloudwatch::Client::new(&account.config),
            account: account.clone(),
            names: names.to_vec(),
            baseline: BTreeSet::new(),
        };
        if names.is_empty() {
            return Ok(watch);
        }
        let states = watch.states().await?;
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !states.iter().any(|(s, _)| s == *n))
            .collect();
        if !missing.is_empty() {
            let list: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
            return Err(account.fail(
                "cloudwatch:DescribeAlarms",
                &list.join(", "),
                "AlarmNotFound",
                "no such alarm; create it before deploying, or remove it from `alarms`",
            ));
        }
        watch.baseline = states
            .into_iter()
            .filter(|(_, s)| s == "ALARM")
            .map(|(n, _)| n)
            .collect();
        Ok(watch)
    }

    async fn states(&self) -> Result<Vec<(String, String)>, AwsError> {
        Ok(read_states(&self.client, &self.account, &self.names)
            .await?
            .into_iter()
            .map(|a| (a.name, a.state))
            .collect())
    }

    /// An alarm that entered ALARM since the deploy began, if any.
    pub async fn fired(&self) -> Result<Option<String>, AwsError> {
        if self.names.is_empty() {
            return Ok(None);
        }
        Ok(self
            .states()
            .await?
            .into_iter()
            .find(|(n, s)| s == "ALARM" && !self.baseline.contains(n))
            .map(|(n, _)| n))
    }

    /// The watch after a deploy is done (`gates.after`): `Ok(Some(why))` when an alarm entered
    /// ALARM during it; nothing to do for a zero `period`.
    pub(crate) async fn after(
        &self,
        log: &mut StepLog<'_>,
        period: Duration,
        poll: Duration,
    ) -> Result<Option<String>, AwsError> {
        if period.is_zero() {
            return Ok(None);
        }
        log.step(format!(
            "watching {} alarm(s) for {} after the deploy",
            self.names.len(),
            ferry_manifest::values::format_duration(period)
        ));
        Ok(self
            .watch(period, poll)
            .await?
            .map(|alarm| format!("{} during the watch after the deploy", entered(&alarm))))
    }

    /// Watches for `period`, polling every `poll`; returns the alarm that fired, if one did.
    pub async fn watch(
        &self,
        period: Duration,
        poll: Duration,
    ) -> Result<Option<String>, AwsError> {
        let end = tokio::time::Instant::now() + period;
        loop {
            if let Some(alarm) = self.fired().await? {
                return Ok(Some(alarm));
            }
            let now = tokio::time::Instant::now();
            if now >= end {
                return Ok(None);
            }
            tokio::time::sleep(poll.min(end - now)).await;
        }
    }
}

/// Why a deploy rolls back when `alarm` fires.
pub fn entered(alarm: &str) -> String {
    format!("alarm {alarm} entered ALARM")
}

/// An alarm's state as DescribeAlarms reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    pub name: String,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// When it entered that state (`StateUpdatedTimestamp`), in ms since the epoch.
    pub since_ms: Option<i64>,
}

/// The states of the named alarms, metric and composite; an alarm that does not exist is
/// missing from the answer.
pub async fn read_states(
    client: &aws_sdk_cloudwatch::Client,
    account: &AccountConfig,
    names: &[String],
) -> Result<Vec<AlarmState>, AwsError> {
    let out = account
        .call(
            "cloudwatch:DescribeAlarms",
            &names.join(", "),
            client
                .describe_alarms()
                .set_alarm_names(Some(names.to_vec()))
                .send(),
        )
        .await?;
    let state =
        |name: Option<&str>,
         value: Option<&aws_sdk_cloudwatch::types::StateValue>,
         since: Option<&aws_sdk_cloudwatch::primitives::DateTime>| AlarmState {
            name: name.unwrap_or_default().to_owned(),
            state: value.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            since_ms: since.and_then(|t| t.to_millis().ok()),
        };
    let mut states: Vec<AlarmState> = out
        .metric_alarms()
        .iter()
        .map(|a| state(a.alarm_name(), a.state_value(), a.state_updated_timestamp()))
        .collect();
    states.extend(
        out.composite_alarms()
            .iter()
            .map(|a| state(a.alarm_name(), a.state_value(), a.state_updated_timestamp())),
    );
    Ok(states)
}
