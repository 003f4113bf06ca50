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

/// A deploy's report, as the release ledger records it.
pub trait Released {
    fn outcome(&self) -> Outcome;
    /// This deploy as an entry of the ledger, made in account `account_id`, with `outcome`
    /// ([`Outcome::ledger_outcome`]).
    fn release(&self, account_id: &str, outcome: &str) -> ferry_engine::model::ReleaseRecord;
}

impl Outcome {
    /// What the release ledger records of a deploy that ended so: a release, or a rolled-back
    /// one; nothing when it changed nothing, or failed and could not be put back (a failure,
    /// not a release).
    pub fn ledger_outcome(self) -> Option<&'static str> {
        match self {
            Outcome::Deployed => Some("Deployed"),
            Outcome::RolledBack => Some("RolledBack"),
            Outcome::AlreadyDeployed | Outcome::RollbackFailed => None,
        }
    }
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
