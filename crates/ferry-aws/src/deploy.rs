//! What every deploy shares: how it ended, and the log of its steps.

use serde::Serialize;

/// How a deploy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Deployed,
    AlreadyDeployed,
    RolledBack,
    /// Failed, and putting the old version back failed too.
    RollbackFailed,
}

/// The steps of a deploy: each is told to the caller as it happens (progress) and kept for
/// the report.
pub(crate) struct StepLog<'a> {
    sink: &'a (dyn Fn(&str) + Send + Sync),
    pub lines: Vec<String>,
}

impl<'a> StepLog<'a> {
    pub fn new(sink: &'a (dyn Fn(&str) + Send + Sync)) -> StepLog<'a> {
        StepLog {
            sink,
            lines: Vec::new(),
        }
    }

    pub fn step(&mut self, text: String) {
        (self.sink)(&text);
        self.lines.push(text);
    }
}
