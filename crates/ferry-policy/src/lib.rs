//! IAM policies with AWS semantics: parse, evaluate, explain.
//!
//! ```
//! use ferry_policy::{PolicySet, Principal, Request, authorize, parse_str};
//!
//! let key_policy = parse_str(r#"{"Version": "2012-10-17", "Statement": [
//!     {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:role/ferry-deploy"},
//!      "Action": "kms:Decrypt", "Resource": "*"}]}"#).unwrap();
//! let role_policy = parse_str(r#"{"Version": "2012-10-17", "Statement": [
//!     {"Effect": "Allow", "Action": "kms:Decrypt",
//!      "Resource": "arn:aws:kms:us-east-1:111111111111:key/k"}]}"#).unwrap();
//! let set = PolicySet { identity: vec![role_policy], resource: Some(key_policy), ..PolicySet::default() };
//! let who = Principal::parse("arn:aws:sts::222222222222:assumed-role/ferry-deploy/run-1").unwrap();
//! let req = Request::new(who, "kms:Decrypt", "arn:aws:kms:us-east-1:111111111111:key/k")
//!     .with_resource_account("111111111111");
//! assert!(authorize(&set, &req).is_allowed());
//! ```
//!
//! Modules follow Cedar's split: [`ast`] (the typed policy), [`parse`] (JSON → AST, errors
//! with a JSON path and a position), [`pattern`] (compiled wildcards), [`condition`]
//! (operators), [`eval`] (does a statement apply?), [`authorize`] (the layered decision and
//! its explanation).
//!
//! [`evaluate`] decides without building an explanation and allocates nothing (beyond
//! substituting policy variables); [`authorize`] runs the same decision and explains it.
//! Measured with `cargo bench -p ferry-policy` on a 2-core machine: 2.5 M evaluations per
//! second per core on pipeline-sized policies (≤ 10 statements, 0 allocations each), 139 k on a
//! 200-statement policy. Conformance: politest 90/90, AWS documentation examples 15/15,
//! iam-simulate 210/212 outside its excluded tags (`docs/policy.md`).
//!
//! Architecture invariant: this crate knows nothing of pipelines and never calls AWS.

pub mod ast;
pub mod authorize;
pub mod builder;
pub mod case;
pub mod catalog;
pub mod condition;
pub mod eval;
pub mod lint;
pub mod parse;
pub mod pattern;
pub mod request;

pub use ast::{Effect, Policy};
pub use authorize::{
    Decision, MissingGrant, OrgLevel, Outcome, PolicySet, ResourceKind, StatementRef, authorize,
    evaluate,
};
pub use case::{Case, CaseError};
pub use eval::{Grant, Layer};
pub use parse::{PolicyError, parse_file, parse_json, parse_str};
pub use request::{Context, ContextValue, Principal, Request};
