//! ferry-plan: the cross-account foundation a `ferry.yaml` needs, worked out without calling
//! AWS.
//!
//! - [`names`]: every name and ARN, made in one place.
//! - [`access`]: the edges — each AWS call the pipeline makes, as (principal, action,
//!   resource) with its context.
//! - [`foundation`]: per account, the resources bootstrap owns, with policies built from the
//!   edges by `ferry-policy`'s least-privilege builder (so policies and edges cannot drift).
//! - [`verify`]: every edge decided by `ferry-policy` against a set of policies — the plan's,
//!   or the live ones ferry-aws fetched.
//! - [`spec`]: the typed resource specs (a struct per kind) that the plan, the live read
//!   and the diff share.
//! - [`diff`]: the plan against what is live: create, change (with a policy diff), unchanged.
//! - [`doctor`]: an AccessDenied message → which policy lacks which statement.
//! - [`synth`]: the same foundation as Terraform, the pipeline as CodePipeline JSON.
//!
//! Architecture invariant: this crate never calls AWS; what is live comes in as data.

pub mod access;
pub mod diff;
pub mod doctor;
pub mod foundation;
pub mod names;
pub mod spec;
pub mod synth;
pub mod verify;

pub use access::Edge;
pub use foundation::{AccountKind, AccountPlan, Foundation, plan};
pub use names::Names;
pub use spec::{Document, Field, Resource, ResourceId};
