//! What both backends read and write the same way: the text forms of statuses and stop modes,
//! JSON columns, and how a vote decides an approval.

use super::{Decision, Result, StageEntry, StoreError};
use crate::approval::rules::Verdict;
use crate::model::{Approval, ApprovalStatus, Mode, Status, StopMode};

pub(super) fn status(s: &str) -> Result<Status> {
    Status::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown status `{s}`")))
}

pub(super) fn approval_status(s: &str) -> Result<ApprovalStatus> {
    match s {
        "Pending" => Ok(ApprovalStatus::Pending),
        "Approved" => Ok(ApprovalStatus::Approved),
        "Rejected" => Ok(ApprovalStatus::Rejected),
        "Expired" => Ok(ApprovalStatus::Expired),
        other => Err(StoreError::Corrupt(format!("approval status `{other}`"))),
    }
}

pub(super) fn stop_mode(s: Option<&str>) -> Option<StopMode> {
    match s {
        Some("graceful") => Some(StopMode::Graceful),
        Some("forced") => Some(StopMode::Forced),
        _ => None,
    }
}

pub(super) fn stop_text(mode: StopMode) -> &'static str {
    match mode {
        StopMode::Graceful => "graceful",
        StopMode::Forced => "forced",
    }
}

pub(super) fn json_column<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// What a vote the rules allowed does to its approval: `None` while it waits for more
/// approvers; else the status it takes and who decided it.
pub(super) fn decided(
    current: &Approval,
    decision: &Decision,
    verdict: Verdict,
) -> Option<(&'static str, String)> {
    match verdict {
        Verdict::Waiting { .. } => None,
        Verdict::Approved => {
            let mut who: Vec<&str> = current
                .votes
                .iter()
                .filter(|v| v.approve)
                .map(|v| v.identity.as_str())
                .collect();
            who.push(&decision.identity);
            Some(("Approved", who.join(", ")))
        }
        Verdict::Rejected => Some(("Rejected", decision.identity.clone())),
    }
}

/// Whether execution `id` (number `seq` of its pipeline) enters a stage under `mode`, given
/// the execution holding it and that one's number (if any) and `next`, the waiter that goes
/// next (the newest when superseded, else the oldest). The store then drops `id` from the
/// waiters unless it waits, and on `Entered` takes the lock.
///
/// Superseded, an execution behind a newer one is superseded whether the newer one still
/// waits or already holds the stage: entering after it would deploy an older revision over
/// a newer one.
pub(super) fn stage_entry(
    mode: Mode,
    (id, seq): (&str, i64),
    holder: Option<(String, i64)>,
    next: String,
) -> StageEntry {
    let holder = holder.filter(|(h, _)| h != id);
    if mode == Mode::Superseded && next != id {
        StageEntry::Superseded { by: next }
    } else if mode == Mode::Superseded
        && let Some((newer, _)) = holder.as_ref().filter(|(_, s)| *s > seq)
    {
        StageEntry::Superseded { by: newer.clone() }
    } else if let Some((holder, _)) = holder {
        StageEntry::Waiting { holder }
    } else if next != id {
        StageEntry::Waiting { holder: next }
    } else {
        StageEntry::Entered
    }
}
