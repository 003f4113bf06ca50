//! Progress: one event type for every workflow. The library never prints; a caller renders
//! the events — the CLI as a live view on a terminal or as plain lines when piped, the server
//! as Server-Sent Events.

use std::sync::Arc;

use ferry_engine::action::{Observer, RunEvent};
use serde::Serialize;

/// Something a running workflow says.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    /// A long operation began (`bootstrap orders`, `rollback lambda:orders-fn:live`).
    Begin { title: String },
    /// One step of it.
    Step { text: String },
    /// The operation begun last ended.
    End,
    /// An execution was started, resumed, or continued by this process.
    Execution(ExecutionNote),
    /// A stop of the execution was asked for (Ctrl-C).
    StopRequested { forced: bool },
    /// A decision on an approval was recorded.
    Decided {
        execution: String,
        stage: String,
        approve: bool,
        identity: String,
        digests: std::collections::BTreeMap<String, String>,
    },
    /// An execution moved: a stage, an action, a log line, a wait.
    Run(RunEvent),
    /// Something to know that does not stop the workflow.
    Warning { text: String },
}

/// What happened to an execution in this process.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "note", rename_all = "snake_case")]
pub enum ExecutionNote {
    Started {
        id: String,
        pipeline: String,
        revision: String,
        state_dir: String,
    },
    Resumed {
        id: String,
        revision: String,
    },
    /// A failed stage runs again.
    Retrying {
        id: String,
        stage: String,
    },
    /// No process drives it (the one that ran it stopped): this one continues it.
    Continuing {
        id: String,
    },
    /// Another process drives it; one of its actions, leased, runs here.
    Leased {
        id: String,
        stage: String,
        action: String,
    },
    /// Another live process drives it; it continues there.
    DrivenElsewhere {
        id: String,
        driver: String,
    },
}

/// Hears a workflow's progress.
pub trait Reporter: Send + Sync {
    fn report(&self, event: &Progress);
}

/// Hears nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Reporter for Quiet {
    fn report(&self, _: &Progress) {}
}

/// A long operation: `Begin` now, `End` when dropped.
pub(crate) struct Operation<'a> {
    reporter: &'a dyn Reporter,
}

impl<'a> Operation<'a> {
    pub fn begin(reporter: &'a dyn Reporter, title: impl Into<String>) -> Operation<'a> {
        reporter.report(&Progress::Begin {
            title: title.into(),
        });
        Operation { reporter }
    }

    pub fn step(&self, text: &str) {
        self.reporter.report(&Progress::Step {
            text: text.to_owned(),
        });
    }
}

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        self.reporter.report(&Progress::End);
    }
}

pub(crate) fn warn(reporter: &dyn Reporter, text: impl Into<String>) {
    reporter.report(&Progress::Warning { text: text.into() });
}

/// The engine's observer, speaking as progress.
pub(crate) struct Relay(pub Arc<dyn Reporter>);

impl Observer for Relay {
    fn event(&self, event: RunEvent) {
        self.0.report(&Progress::Run(event));
    }
}
