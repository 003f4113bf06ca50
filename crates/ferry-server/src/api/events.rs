//! `GET /api/v1/events`: Server-Sent Events of every change, resumable with `Last-Event-ID`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{ApiError, AppState, Endpoint, Params, require};
use crate::auth::Role;
use crate::events::{Filter, ServerEvent};

pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            Method::GET,
            "/api/v1/events",
            "Server-Sent Events of execution, stage, action, log, approval and release changes; send `Last-Event-ID` to resume. Each event's data is a ServerEvent; `resync` means events were missed: read the state again",
            get(events),
        )
        .role(Role::Viewer)
        .query::<EventsQuery>()
        .answers_stream::<ServerEvent>(200, "text/event-stream", "the events, as they happen; each one's `data` is a ServerEvent, its `event` the kind"),
    ]
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct EventsQuery {
    /// Only this pipeline's events.
    pub pipeline: Option<String>,
    /// Only this execution's events.
    pub execution: Option<String>,
    /// As `Last-Event-ID`, for clients that cannot set headers.
    pub last_event_id: Option<u64>,
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(q): Params<EventsQuery>,
) -> Result<Response, ApiError> {
    require(&state, &headers, Role::Viewer)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(q.last_event_id);
    let filter = Filter {
        pipeline: q.pipeline,
        execution: q.execution,
    };
    let stream = event_stream(state, filter, last);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

struct Cursor {
    state: AppState,
    filter: Filter,
    /// The newest id the client has been taken past.
    last: u64,
    queued: std::collections::VecDeque<Event>,
    wake: tokio::sync::watch::Receiver<u64>,
}

fn sse(e: &ServerEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .json_data(e)
        .unwrap_or_default()
}

impl Cursor {
    /// Queues what happened after `last`.
    fn catch_up(&mut self) {
        let backlog = self.state.hub.since(Some(self.last), &self.filter);
        if backlog.gap {
            self.queued.push_back(
                Event::default()
                    .event("resync")
                    .data("events were missed: read the state again"),
            );
        }
        self.queued.extend(backlog.events.iter().map(sse));
        self.last = backlog.upto;
    }
}

fn event_stream(
    state: AppState,
    filter: Filter,
    last: Option<u64>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let mut cursor = Cursor {
        wake: state.hub.subscribe(),
        filter,
        // A new client starts from now; a resumed one after what it was sent.
        last: last.unwrap_or_else(|| state.hub.latest()),
        queued: std::collections::VecDeque::new(),
        state,
    };
    if last.is_some() {
        cursor.catch_up();
    }
    stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.queued.pop_front() {
                return Some((Ok(e), c));
            }
            let shutdown = c.state.shutdown.clone();
            tokio::select! {
                changed = c.wake.changed() => if changed.is_err() { return None },
                () = shutdown.cancelled() => return None,
            }
            c.catch_up();
        }
    })
}
