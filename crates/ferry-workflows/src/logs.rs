//! `ferry logs`: the log of an execution's actions, or of one, printed or followed.

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::view::find;

#[derive(Debug, Clone)]
pub struct LogsInput {
    pub execution: String,
    /// `stage.action`, or an action name that is unique in the pipeline; `None`: every action.
    pub action: Option<String>,
    /// Keep reading as the log grows, until the action ends.
    pub follow: bool,
}

/// What `logs` hands its caller, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogText {
    /// The log of one attempt begins (given when every action's log is read).
    Heading {
        stage: String,
        action: String,
        attempt: u32,
    },
    /// Text of the log, as written (masked when it was written).
    Text(String),
}

/// Reads the logs, handing each piece of text to `out` as it comes.
pub async fn logs(
    project: &Project,
    input: &LogsInput,
    out: &mut (dyn FnMut(LogText) + Send),
) -> Result<()> {
    let store = project.store()?;
    let pipeline = project.try_load().map(|m| m.pipeline);
    let exec = find(
        &store,
        pipeline.as_deref(),
        &input.execution,
        &project.state_dir,
    )?;
    let runs = store.action_runs(&exec.id)?;
    let selected: Vec<_> = match &input.action {
        None => runs.iter().collect(),
        Some(sel) => {
            let matching: Vec<_> = runs
                .iter()
                .filter(|r| {
                    &format!("{}.{}", r.stage, r.action) == sel
                        || (&r.action == sel && !sel.contains('.'))
                })
                .collect();
            let stages: BTreeSet<&str> = matching.iter().map(|r| r.stage.as_str()).collect();
            if stages.len() > 1 {
                return Err(Error::Usage(format!(
                    "`{sel}` is an action of several stages; name one as stage.action"
                )));
            }
            // The latest attempt.
            matching
                .into_iter()
                .max_by_key(|r| r.attempt)
                .into_iter()
                .collect()
        }
    };
    if selected.is_empty() {
        let known: Vec<String> = runs
            .iter()
            .map(|r| format!("{}.{}", r.stage, r.action))
            .collect();
        return Err(Error::NotFound(format!(
            "no log of that action in {}; actions that ran: {}",
            exec.id,
            known.join(", ")
        )));
    }
    for run in &selected {
        let Some(path) = &run.log_path else { continue };
        let path = PathBuf::from(path);
        if input.action.is_none() {
            out(LogText::Heading {
                stage: run.stage.clone(),
                action: run.action.clone(),
                attempt: run.attempt,
            });
        }
        let mut offset = 0;
        loop {
            offset = read_from(&path, offset, out);
            if !input.follow {
                break;
            }
            let ended = store
                .action_runs(&exec.id)?
                .iter()
                .find(|r| {
                    r.stage == run.stage && r.action == run.action && r.attempt == run.attempt
                })
                .is_none_or(|r| r.status.is_final());
            if ended {
                read_from(&path, offset, out);
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Hands the file's text from `offset` to `out`; returns the new end.
fn read_from(path: &Path, offset: u64, out: &mut (dyn FnMut(LogText) + Send)) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut text = String::new();
    let read = f.read_to_string(&mut text).unwrap_or(0);
    if !text.is_empty() {
        out(LogText::Text(text));
    }
    offset + read as u64
}
