//! `ferry destroy`: what bootstrap made, removed, target accounts first.

use ferry_aws::foundation::{self as live, Removed, Sessions};
use serde::Serialize;

use crate::accounts::names;
use crate::error::Result;
use crate::progress::{Operation, Reporter};
use crate::project::Project;

#[derive(Debug, Clone, Default)]
pub struct DestroyInput {
    /// Also delete the artifacts in the bucket and the images in the repositories.
    pub force: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct DestroyReport {
    pub removed: Vec<Removed>,
}

pub async fn destroy(
    project: &Project,
    input: &DestroyInput,
    reporter: &dyn Reporter,
) -> Result<DestroyReport> {
    let m = project.load_with_foundation()?;
    let op = Operation::begin(reporter, format!("destroy {}", m.pipeline));
    let aws = ferry_aws::session::Aws::from_env(&format!("ferry-{}-destroy", m.pipeline)).await?;
    let foundation = ferry_plan::plan(&names(&m, None));
    let sessions = Sessions::open(&aws, &foundation, None).await?;
    let removed = live::destroy(&foundation, &sessions, input.force, &|s| op.step(s)).await?;
    Ok(DestroyReport { removed })
}
