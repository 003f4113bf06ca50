//! `ferry plan`: what bootstrap would create or change in each account.

use ferry_plan::Foundation;
use serde::Serialize;

use crate::accounts::{Accounts, Planned, PlannedChange};
use crate::error::Result;
use crate::progress::{Operation, Reporter};
use crate::project::Project;

#[derive(Debug, Clone, Default)]
pub struct PlanInput {
    /// Read nothing: show every resource as to create.
    pub offline: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub pipeline: String,
    pub offline: bool,
    pub changes: Vec<PlannedChange>,
    pub foundation: Foundation,
}

pub async fn plan(
    project: &Project,
    input: &PlanInput,
    reporter: &dyn Reporter,
) -> Result<PlanReport> {
    let m = project.load_with_foundation()?;
    let planned = if input.offline {
        Planned::offline(&m)
    } else {
        // Dozens of reads across the accounts: say what is happening meanwhile.
        let _op = Operation::begin(
            reporter,
            format!("plan {}: reading the accounts", m.pipeline),
        );
        Accounts::open(&m, "plan", None).await?.read().await?
    };
    Ok(PlanReport {
        pipeline: m.pipeline.clone(),
        offline: input.offline,
        changes: planned.planned_changes(),
        foundation: planned.foundation,
    })
}
