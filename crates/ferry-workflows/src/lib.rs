//! ferry-workflows: every user-level operation of ferry, once, for the command line and the
//! server — as rust-analyzer's `ide` crate is for its front ends.
//!
//! Each workflow takes typed inputs and returns a typed report (serde-serializable where a
//! script reads it); progress comes out as [`Progress`] events to a [`Reporter`]; failures
//! are an [`Error`] with one case per kind. Nothing here prints, parses arguments or
//! renders text.
//!
//! - [`project`]: where a pipeline lives (manifest, state directory), who runs it.
//! - [`pipeline`]: the manifest as the engine runs it; the engine over the state.
//! - The foundation: [`plan`], [`bootstrap`], [`destroy`], [`verify`], [`doctor`], [`synth`].
//! - Executions: [`run`], [`control`] (approve, reject, retry, stop), [`history`] (status,
//!   history), [`logs`]; [`view`] is the one document of an execution.
//! - Deploys: [`deploy`] (Lambda and ECS, outside a pipeline), [`releases`] (the ledger and
//!   rollback).
//! - Files: [`validate`], [`init`], [`policy`] (simulate, lint).
//!
//! Architecture invariant: a workflow is the only implementation of its operation; the CLI
//! and the server call it and render what it returns.

mod accounts;
pub mod bootstrap;
mod buildspecs;
pub mod control;
pub mod delivery;
pub mod deploy;
pub mod destroy;
pub mod doctor;
pub mod error;
pub mod history;
pub mod init;
pub mod logs;
pub mod pipeline;
pub mod plan;
pub mod policy;
pub mod progress;
pub mod project;
pub mod releases;
pub mod review;
pub mod run;
mod snapshot;
pub mod synth;
pub mod validate;
pub mod verify;
pub mod view;

pub use accounts::PlannedChange;
pub use error::{Error, Result};
pub use progress::{ExecutionNote, Progress, Quiet, Reporter};
pub use project::{Project, local_identity};
