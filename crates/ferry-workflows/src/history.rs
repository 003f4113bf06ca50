//! `ferry status`, `ferry history`: executions as the store has them.

use std::sync::Arc;

use ferry_engine::model::{ExecutionQuery, Status};
use ferry_engine::store::Store;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::project::Project;
use crate::view::{ExecutionView, find};

/// One execution, newest first, for `ferry history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionSummary {
    pub id: String,
    pub pipeline: String,
    pub status: Status,
    pub revision: String,
    pub trigger: String,
    pub branch: Option<String>,
    pub reason: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// An execution (by id or number), or the newest.
pub fn status(project: &Project, execution: Option<&str>) -> Result<ExecutionView> {
    let store = project.store()?;
    let pipeline = project.try_load().map(|m| m.pipeline);
    let exec = match execution {
        Some(key) => find(&store, pipeline.as_deref(), key, &project.state_dir)?,
        None => store
            .executions(&ExecutionQuery::newest(pipeline.as_deref(), 1))?
            .pop()
            .ok_or_else(|| {
                Error::NotFound("no executions yet; start one with `ferry run`".into())
            })?,
    };
    ExecutionView::of(&store, &exec)
}

/// The newest `limit` executions of the project's pipeline.
pub fn history(project: &Project, limit: usize) -> Result<Vec<ExecutionSummary>> {
    let pipeline = project.try_load().map(|m| m.pipeline);
    list(
        &project.store()?,
        &ExecutionQuery::newest(pipeline.as_deref(), limit),
    )
}

/// The executions `query` asks for, newest first.
pub fn list(store: &Arc<dyn Store>, query: &ExecutionQuery) -> Result<Vec<ExecutionSummary>> {
    Ok(store
        .executions(query)?
        .into_iter()
        .map(|e| ExecutionSummary {
            id: e.id,
            pipeline: e.pipeline,
            status: e.status,
            revision: e.revision,
            trigger: e.trigger,
            branch: e.branch,
            reason: e.reason,
            created_ms: e.created_ms,
            updated_ms: e.updated_ms,
        })
        .collect())
}
