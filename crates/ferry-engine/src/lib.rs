//! ferry's pipeline engine: executions as a persisted state machine.
//!
//! - [`store`]: the `Store` trait and its SQLite implementation; every transition is
//!   committed before the side effect it announces.
//! - [`driver`]: the [`Engine`]: starts executions, drives them stage by stage (execution
//!   modes, run orders, timeouts, stop, retry), and reconciles interrupted actions.
//! - [`action`]: the `Action` trait — the only way work runs — and the registry of kinds.
//! - The engine's own kinds: [`source`] (git), [`build`] (CodeBuild buildspecs, see
//!   [`buildspec`]), [`approval`].
//! - [`artifact`]: content-addressed, envelope-encrypted artifacts.
//! - [`mask`]: secret masking for every log line and stored output.
//!
//! Architecture invariant: the engine knows nothing of ECS, Lambda or AWS; deploy actions
//! plug in through the registry.

pub mod action;
pub mod approval;
pub mod artifact;
pub mod build;
pub mod buildspec;
pub mod builtins;
pub mod driver;
pub mod encoding;
pub mod mask;
pub mod model;
pub mod secrets;
pub mod source;
pub mod store;

pub use action::{
    Action, ActionContext, ActionError, ActionKind, ActionOutput, Clock, Observer, Reconciled,
    Registry, RunEvent, Settings,
};
pub use driver::{Engine, EngineError, Refused, crash_hook_from_env};
