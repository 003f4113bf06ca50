//! `ferry status`, `ferry history`: executions as the store has them.

use std::sync::Arc;

use ferry_engine::model::ExecutionQuery;
use ferry_engine::store::Store;

use crate::error::{Error, Result};
use crate::project::Project;
use crate::view::{ExecutionView, find};

/// One execution, newest first, for `ferry history`.
pub use ferry_engine::model::ExecutionSummary;

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
    ExecutionView::read(&store, &exec.id)
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
    Ok(store.summaries(query)?)
}
