//! One module per group of commands: each turns its arguments into a workflow's input, calls
//! the workflow (`ferry-workflows`), and renders the report.

pub mod deploy;
pub mod foundation;
pub mod init;
pub mod pipeline;
pub mod policy;
pub mod release;
pub mod remote;
pub mod schema;
pub mod serve;
pub mod validate;

use crate::cli::{ManifestArg, StateArgs};

/// The project of a command that takes only the manifest.
pub fn project_of(manifest: &ManifestArg) -> ferry_workflows::Project {
    ferry_workflows::Project::new(&manifest.file, None)
}

/// The project of a command that takes the manifest and the state directory.
pub fn project(state: &StateArgs) -> ferry_workflows::Project {
    ferry_workflows::Project::new(&state.manifest.file, state.state_dir.as_deref())
        .with_state_url(state.state_url.as_deref())
}
