//! `ferry doctor`: an AccessDenied message as AWS printed it → which policy, in which account,
//! lacks which statement.

use ferry_plan::doctor::Diagnosis;

use crate::accounts::names;
use crate::error::{Error, Result};
use crate::project::Project;

pub fn doctor(project: &Project, message: &str) -> Result<Diagnosis> {
    let m = project.load_with_foundation()?;
    let denial = ferry_plan::doctor::parse(message).map_err(Error::Usage)?;
    // The message names the real key; the plan then uses it.
    let shared = m.shared.as_ref().expect("checked by load_with_foundation");
    let key = denial
        .resource
        .clone()
        .filter(|r| r.starts_with(&format!("arn:aws:kms:{}:{}:key/", shared.region, shared.id)));
    let names = names(&m, key.as_deref());
    let foundation = ferry_plan::plan(&names);
    Ok(ferry_plan::doctor::diagnose(denial, &foundation, &names))
}
