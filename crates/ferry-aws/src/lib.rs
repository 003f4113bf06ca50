//! ferry-aws: every AWS call ferry makes, through the official AWS SDK for Rust.
//!
//! - [`session`]: the base identity and, per target account, its assumed deploy role.
//! - [`lambda`] and [`ecs`]: deploys that wait, check and roll back by themselves; [`deploy`]:
//!   what they share (the [`deploy::Outcome`], the step log).
//! - [`alarms`]: the CloudWatch alarms a deploy watches.
//! - [`artifacts`]: the S3/KMS artifact store; [`secrets`]: the Secrets Manager resolver.
//! - [`actions`]: the engine's `ecs` and `lambda` actions, built on the above.
//! - [`sns`]: notifications published to an SNS topic.
//! - [`error`]: errors that name the account, role, action, resource and AWS error code.
//!
//! Architecture invariant: nothing here prints or stores a credential or a secret value.

pub mod actions;
pub mod alarms;
pub mod artifacts;
pub mod codebuild;
pub mod deploy;
pub mod ecs;
pub mod error;
pub mod foundation;
pub mod gates;
pub mod lambda;
pub mod secrets;
pub mod service_deployment;
pub mod session;
pub mod sns;

/// Registers the `ecs`, `lambda` and `codebuild` action kinds.
pub fn register(registry: &mut ferry_engine::Registry, aws: &session::Aws) {
    registry.register(codebuild::CodebuildKind(aws.clone()));
    registry.register(actions::EcsKind(aws.clone()));
    registry.register(actions::LambdaKind(aws.clone()));
    registry.register(gates::GatesKind(aws.clone()));
}
