//! Notifications: when an approval waits, an execution fails, a deploy rolls back, a release
//! reaches an environment — to incoming webhooks (Slack's JSON shape) and SNS topics, each
//! with a link to the execution. Delivery happens in the background with retries and is
//! recorded; a notification that cannot be delivered never holds the pipeline.

use std::sync::Arc;
use std::time::Duration;

use ferry_aws::session::Aws;
use serde_json::json;

use crate::config::Channel;
use crate::metrics::Metrics;
use crate::store::ServerStore;

/// Attempts per notification and channel.
const ATTEMPTS: u32 = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    ApprovalWaiting {
        pipeline: String,
        execution: String,
        stage: String,
    },
    ExecutionFailed {
        pipeline: String,
        execution: String,
        reason: String,
    },
    RolledBack {
        pipeline: String,
        execution: String,
        environment: String,
        target: String,
    },
    Released {
        pipeline: String,
        execution: String,
        environment: String,
        target: String,
        version: String,
    },
}

impl Notice {
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::ApprovalWaiting { .. } => "approval_waiting",
            Notice::ExecutionFailed { .. } => "execution_failed",
            Notice::RolledBack { .. } => "rolled_back",
            Notice::Released { .. } => "released",
        }
    }

    fn execution(&self) -> &str {
        match self {
            Notice::ApprovalWaiting { execution, .. }
            | Notice::ExecutionFailed { execution, .. }
            | Notice::RolledBack { execution, .. }
            | Notice::Released { execution, .. } => execution,
        }
    }

    /// A one-line title and the message, with the link.
    pub fn text(&self, base_url: &str) -> (String, String) {
        let link = format!("{base_url}/executions/{}", self.execution());
        let title = match self {
            Notice::ApprovalWaiting {
                pipeline,
                execution,
                stage,
            } => format!("{pipeline}: {execution} waits for approval of {stage}"),
            Notice::ExecutionFailed {
                pipeline,
                execution,
                reason,
            } => format!("{pipeline}: {execution} failed: {reason}"),
            Notice::RolledBack {
                pipeline,
                environment,
                target,
                ..
            } => format!("{pipeline}: {target} in {environment} was rolled back"),
            Notice::Released {
                pipeline,
                environment,
                target,
                version,
                ..
            } => format!("{pipeline}: {target} {version} reached {environment}"),
        };
        let action = match self {
            Notice::ApprovalWaiting { .. } => "Review and decide",
            _ => "Open the execution",
        };
        let message = format!("{title}\n{action}: {link}");
        (title, message)
    }
}

pub struct Notifier {
    channels: Vec<Channel>,
    base_url: String,
    http: reqwest::Client,
    aws: Option<Aws>,
    store: Arc<ServerStore>,
    metrics: Arc<Metrics>,
    /// The wait before the second attempt; it doubles each time.
    first_backoff: Duration,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    pub fn new(
        channels: Vec<Channel>,
        base_url: String,
        aws: Option<Aws>,
        store: Arc<ServerStore>,
        metrics: Arc<Metrics>,
    ) -> Notifier {
        Notifier {
            channels,
            base_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            aws,
            store,
            metrics,
            first_backoff: Duration::from_millis(500),
        }
    }

    /// Sends `notice` to every channel in the background.
    pub fn send(self: &Arc<Self>, notice: &Notice) {
        for channel in self.channels.clone() {
            let this = self.clone();
            let notice = notice.clone();
            tokio::spawn(async move { this.deliver(&channel, &notice).await });
        }
    }

    async fn deliver(&self, channel: &Channel, notice: &Notice) {
        let (title, message) = notice.text(&self.base_url);
        let name = match channel {
            Channel::Webhook(_) => "webhook",
            Channel::Sns(_) => "sns",
        };
        let mut backoff = self.first_backoff;
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let result = match channel {
                Channel::Webhook(url) => self
                    .http
                    .post(url)
                    .json(&json!({"text": message}))
                    .send()
                    .await
                    .map_err(|e| format!("{}", e.without_url()))
                    .and_then(|r| {
                        if r.status().is_success() {
                            Ok(())
                        } else {
                            Err(format!("the webhook answered {}", r.status()))
                        }
                    }),
                Channel::Sns(topic) => match &self.aws {
                    Some(aws) => ferry_aws::sns::publish(aws, topic, &title, &message)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                    None => Err("no AWS identity to publish with".into()),
                },
            };
            match result {
                Ok(()) => {
                    let _ =
                        self.store
                            .record_notification(name, notice.kind(), attempt, "delivered");
                    return;
                }
                Err(e) => last = e,
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(channel = name, event = notice.kind(), error = %last, "notification not delivered");
        self.metrics.notification_failed(name);
        let _ = self
            .store
            .record_notification(name, notice.kind(), ATTEMPTS, &last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_notice_links_to_the_execution() {
        let n = Notice::ApprovalWaiting {
            pipeline: "orders".into(),
            execution: "orders-7".into(),
            stage: "prod".into(),
        };
        let (title, message) = n.text("https://ferry.example.com");
        assert_eq!(title, "orders: orders-7 waits for approval of prod");
        assert!(
            message.ends_with("Review and decide: https://ferry.example.com/executions/orders-7")
        );
    }
}
