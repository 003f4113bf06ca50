//! Live events: every change of an execution (its status, a stage, an action, a log line, a
//! wait, an approval decision, a release) with an id that only grows, kept in a ring for
//! clients that reconnect with `Last-Event-ID`. Ids start from the clock at each start of the
//! server, so they keep growing across restarts; a client whose last id is older than the
//! ring is told to `resync` (read the execution again) before the events that follow.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::watch;

/// How many events the ring keeps.
const KEPT: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ServerEvent {
    pub id: u64,
    /// `execution`, `stage`, `action`, `log`, `waiting`, `approval`, `release`.
    pub kind: String,
    pub pipeline: String,
    pub execution: String,
    /// The change itself.
    pub data: serde_json::Value,
    pub at_ms: i64,
}

/// What a client gets from [`EventHub::since`].
#[derive(Debug, Clone, PartialEq)]
pub struct Backlog {
    pub events: Vec<ServerEvent>,
    /// Events the client asked to resume from are no longer kept: it must read the state again.
    pub gap: bool,
    /// The newest id looked at: where the client is now, whatever the filter kept.
    pub upto: u64,
}

/// Which events a client wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub pipeline: Option<String>,
    pub execution: Option<String>,
}

impl Filter {
    fn wants(&self, e: &ServerEvent) -> bool {
        self.pipeline.as_ref().is_none_or(|p| *p == e.pipeline)
            && self.execution.as_ref().is_none_or(|x| *x == e.execution)
    }
}

struct Ring {
    next: u64,
    events: VecDeque<ServerEvent>,
}

pub struct EventHub {
    ring: Mutex<Ring>,
    /// The newest id, for waiting clients.
    latest: watch::Sender<u64>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").finish_non_exhaustive()
    }
}

impl Default for EventHub {
    fn default() -> Self {
        EventHub::new()
    }
}

impl EventHub {
    pub fn new() -> EventHub {
        EventHub::starting_at(u64::try_from(ferry_engine::model::now_ms()).unwrap_or(0) * 1000)
    }

    /// A hub whose first event has id `start + 1`.
    pub fn starting_at(start: u64) -> EventHub {
        EventHub {
            ring: Mutex::new(Ring {
                next: start + 1,
                events: VecDeque::new(),
            }),
            latest: watch::channel(start).0,
        }
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records an event; returns its id.
    pub fn publish(
        &self,
        kind: &str,
        pipeline: &str,
        execution: &str,
        data: serde_json::Value,
    ) -> u64 {
        let id = {
            let mut ring = self.ring();
            let id = ring.next;
            ring.next += 1;
            ring.events.push_back(ServerEvent {
                id,
                kind: kind.to_owned(),
                pipeline: pipeline.to_owned(),
                execution: execution.to_owned(),
                data,
                at_ms: ferry_engine::model::now_ms(),
            });
            if ring.events.len() > KEPT {
                ring.events.pop_front();
            }
            id
        };
        self.latest.send_replace(id);
        id
    }

    /// The events after `after` that `filter` wants. Without `after`, none: a new client
    /// starts from now.
    pub fn since(&self, after: Option<u64>, filter: &Filter) -> Backlog {
        let ring = self.ring();
        let upto = ring.next - 1;
        let Some(after) = after else {
            return Backlog {
                events: Vec::new(),
                gap: false,
                upto,
            };
        };
        let oldest = ring.events.front().map_or(ring.next, |e| e.id);
        Backlog {
            upto: upto.max(after),
            gap: after + 1 < oldest,
            events: ring
                .events
                .iter()
                .filter(|e| e.id > after && filter.wants(e))
                .cloned()
                .collect(),
        }
    }

    /// The newest id now.
    pub fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Wakes when a new event is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_client_resumes_after_its_last_id_in_order_and_filtered() {
        let hub = EventHub::new();
        let a1 = hub.publish("stage", "orders", "orders-1", json!({"n": 1}));
        hub.publish("stage", "orders", "orders-2", json!({"n": 2}));
        let a3 = hub.publish("action", "orders", "orders-1", json!({"n": 3}));
        let only_1 = Filter {
            execution: Some("orders-1".into()),
            ..Filter::default()
        };
        let b = hub.since(Some(a1), &only_1);
        assert!(!b.gap);
        assert_eq!(b.events.iter().map(|e| e.id).collect::<Vec<_>>(), [a3]);
        assert!(hub.since(None, &only_1).events.is_empty());
        assert_eq!(hub.latest(), a3);
    }

    #[test]
    fn an_id_older_than_the_ring_is_a_gap() {
        let hub = EventHub::starting_at(1_000);
        let first = hub.publish("log", "p", "p-1", json!({}));
        for _ in 0..KEPT + 5 {
            hub.publish("log", "p", "p-1", json!({}));
        }
        let b = hub.since(Some(first), &Filter::default());
        assert!(b.gap);
        assert_eq!(b.events.len(), KEPT);
        // Ids from an earlier run of the server are older than any of this one's.
        assert!(
            EventHub::starting_at(2_000_000)
                .since(Some(first), &Filter::default())
                .gap
        );
    }
}
