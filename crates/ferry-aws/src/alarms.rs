//! CloudWatch alarms watched during a deploy. An alarm already in ALARM when the deploy
//! starts is recorded and ignored; one that *enters* ALARM afterwards rolls the deploy back.

use std::collections::BTreeSet;
use std::time::Duration;

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
        let out = self
            .account
            .call(
                "cloudwatch:DescribeAlarms",
                &self.names.join(", "),
                self.client
                    .describe_alarms()
                    .set_alarm_names(Some(self.names.clone()))
                    .send(),
            )
            .await?;
        let mut states: Vec<(String, String)> = out
            .metric_alarms()
            .iter()
            .map(|a| {
                (
                    a.alarm_name().unwrap_or_default().to_owned(),
                    a.state_value()
                        .map(|s| s.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
            .collect();
        states.extend(out.composite_alarms().iter().map(|a| {
            (
                a.alarm_name().unwrap_or_default().to_owned(),
                a.state_value()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            )
        }));
        Ok(states)
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
