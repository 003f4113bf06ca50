//! `GET /metrics`, in Prometheus's text format: executions and actions by status, their
//! durations, executions running and waiting for a stage, webhook deliveries and
//! notification failures.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use ferry_engine::action::RunEvent;
use ferry_engine::model::Status;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub struct Metrics {
    registry: Registry,
    executions: Family<Labels, Counter>,
    actions: Family<Labels, Counter>,
    execution_seconds: Histogram,
    action_seconds: Histogram,
    running: Gauge,
    queued: Gauge,
    deliveries: Family<Labels, Counter>,
    notification_failures: Family<Labels, Counter>,
    /// When each running action and execution began, and which wait for a stage.
    clocks: Mutex<Clocks>,
}

#[derive(Default)]
struct Clocks {
    actions: HashMap<(String, String, String), Instant>,
    executions: HashMap<String, Instant>,
    waiting: HashMap<String, ()>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ferry");
        let executions = Family::<Labels, Counter>::default();
        let actions = Family::<Labels, Counter>::default();
        let execution_seconds = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        let action_seconds = Histogram::new(exponential_buckets(0.05, 2.0, 16));
        let running = Gauge::default();
        let queued = Gauge::default();
        let deliveries = Family::<Labels, Counter>::default();
        let notification_failures = Family::<Labels, Counter>::default();
        registry.register(
            "executions",
            "Executions that ended, by pipeline and status",
            executions.clone(),
        );
        registry.register(
            "actions",
            "Action attempts that ended, by pipeline, kind of end and status",
            actions.clone(),
        );
        registry.register(
            "execution_duration_seconds",
            "How long executions ran, start to end",
            execution_seconds.clone(),
        );
        registry.register(
            "action_duration_seconds",
            "How long action attempts ran",
            action_seconds.clone(),
        );
        registry.register(
            "executions_running",
            "Executions this server drives now",
            running.clone(),
        );
        registry.register(
            "queue_depth",
            "Executions waiting for a stage another execution holds",
            queued.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries, by source and outcome",
            deliveries.clone(),
        );
        registry.register(
            "notification_failures",
            "Notifications that could not be delivered after retries, by channel",
            notification_failures.clone(),
        );
        Metrics {
            registry,
            executions,
            actions,
            execution_seconds,
            action_seconds,
            running,
            queued,
            deliveries,
            notification_failures,
            clocks: Mutex::new(Clocks::default()),
        }
    }

    fn clocks(&self) -> std::sync::MutexGuard<'_, Clocks> {
        self.clocks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts what an execution's event says.
    pub fn observe(&self, pipeline: &str, execution: &str, event: &RunEvent) {
        let mut clocks = self.clocks();
        match event {
            RunEvent::Execution { status, .. } if *status == Status::InProgress => {
                clocks
                    .executions
                    .entry(execution.to_owned())
                    .or_insert_with(Instant::now);
            }
            RunEvent::Execution { status, .. } if status.is_final() => {
                self.executions
                    .get_or_create(&labels(&[
                        ("pipeline", pipeline),
                        ("status", status.as_str()),
                    ]))
                    .inc();
                if let Some(start) = clocks.executions.remove(execution) {
                    self.execution_seconds
                        .observe(start.elapsed().as_secs_f64());
                }
                if clocks.waiting.remove(execution).is_some() {
                    self.queued.dec();
                }
            }
            RunEvent::Waiting { why, .. }
                if why.contains("holds the stage")
                    && clocks.waiting.insert(execution.to_owned(), ()).is_none() =>
            {
                self.queued.inc();
            }
            RunEvent::Stage { status, .. }
                if *status == Status::InProgress && clocks.waiting.remove(execution).is_some() =>
            {
                self.queued.dec();
            }
            RunEvent::Action {
                stage,
                action,
                status,
                ..
            } => {
                let key = (execution.to_owned(), stage.clone(), action.clone());
                if *status == Status::InProgress {
                    clocks.actions.insert(key, Instant::now());
                } else if status.is_final() {
                    self.actions
                        .get_or_create(&labels(&[
                            ("pipeline", pipeline),
                            ("status", status.as_str()),
                        ]))
                        .inc();
                    if let Some(start) = clocks.actions.remove(&key) {
                        self.action_seconds.observe(start.elapsed().as_secs_f64());
                    }
                }
            }
            _ => {}
        }
    }

    pub fn running(&self, n: usize) {
        self.running.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn delivery(&self, source: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&labels(&[("source", source), ("outcome", outcome)]))
            .inc();
    }

    pub fn notification_failed(&self, channel: &str) {
        self.notification_failures
            .get_or_create(&labels(&[("channel", channel)]))
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_executions_and_actions_are_counted_by_status() {
        let m = Metrics::new();
        let action = |status| RunEvent::Action {
            stage: "build".into(),
            action: "compile".into(),
            attempt: 1,
            status,
            detail: None,
        };
        m.observe("orders", "orders-1", &action(Status::InProgress));
        m.observe("orders", "orders-1", &action(Status::Succeeded));
        m.observe(
            "orders",
            "orders-1",
            &RunEvent::Execution {
                id: "orders-1".into(),
                status: Status::Failed,
                reason: None,
            },
        );
        m.delivery("github", "started");
        let text = m.render();
        for needle in [
            r#"ferry_actions_total{pipeline="orders",status="Succeeded"} 1"#,
            r#"ferry_executions_total{pipeline="orders",status="Failed"} 1"#,
            r#"ferry_webhook_deliveries_total{source="github",outcome="started"} 1"#,
            "ferry_action_duration_seconds_count 1",
            "ferry_queue_depth 0",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
    }
}
