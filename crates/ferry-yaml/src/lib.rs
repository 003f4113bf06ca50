//! Spanned YAML for ferry's configuration files.
//!
//! ferry reads two kinds of YAML written by people: `ferry.yaml` and CodeBuild buildspecs.
//! Both must report *every* problem in one run, each with `file:line:col`, the source line
//! underlined and a hint. Serde stops at the first error, so instead this crate:
//!
//! 1. reads the file with limits ([`SourceFile::read`]): size, UTF-8, no binary;
//! 2. parses it into a [`Node`] tree that keeps a byte [`Span`] on every node
//!    ([`parse`]), expanding aliases under a node budget so a "billion laughs" document
//!    fails fast instead of eating memory;
//! 3. lets each caller decode the tree into its own types with [`Decoder`], which collects
//!    [`Diagnostic`]s (wrong type, unknown key with "did you mean", missing key) and keeps going;
//! 4. renders the diagnostics as text ([`render_text`]) or JSON ([`diagnostics_json`]).
//!
//! The parser underneath is `granit-parser`, the panic-free, fuzzed YAML 1.2 parser that
//! `serde-saphyr` is built on.

mod decode;
mod diagnostic;
mod node;
mod source;

pub use decode::{Decoder, Fields, did_you_mean};
pub use diagnostic::{Diagnostic, Severity, diagnostics_json, render_text};
pub use node::{Entry, Limits, Node, Scalar, ScalarStyle, Value, parse};
pub use source::{Location, SourceFile, Span, Spanned};
