//! `ferry.yaml` → a typed, validated [`Manifest`].
//!
//! ```
//! let loaded = ferry_manifest::from_str("ferry.yaml", "pipeline: orders\nshared: {id: \"111111111111\", region: eu-west-1}\n");
//! assert!(!loaded.has_errors());
//! assert_eq!(loaded.manifest.unwrap().shared.unwrap().pipeline_role, "ferry-orders");
//! ```
//!
//! Reading goes in three steps, each collecting [`Diagnostic`]s so that one run reports every
//! problem: `ferry-yaml` parses the text into a spanned tree (syntax, limits, duplicate keys);
//! [`decode`] fills the [`document`] types (types, unknown and missing keys); [`resolve`] checks
//! values and references and expands environments into stages.
//!
//! Architecture invariant: this crate reads the one file it is given and does no other I/O.

pub mod document;
pub mod model;
pub mod schedule;
pub mod schema;
pub mod templates;
pub mod values;

mod decode;
mod resolve;

use std::path::Path;

pub use ferry_yaml::{Diagnostic, Severity, SourceFile};
pub use model::*;
pub use resolve::{GATES_ACTION, is_production_like};

/// The outcome of reading a manifest: the model when it is valid, and every diagnostic.
#[derive(Debug)]
pub struct Loaded {
    pub file: SourceFile,
    /// `Some` when there are no errors (warnings allowed).
    pub manifest: Option<Manifest>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn has_warnings(&self) -> bool {
        self.diagnostics.iter().any(|d| !d.is_error())
    }

    /// Diagnostics as text, one block per problem (see [`ferry_yaml::render_text`]).
    pub fn render(&self, color: bool) -> String {
        ferry_yaml::render_text(&self.file, &self.diagnostics, color)
    }

    /// Diagnostics as JSON objects (see [`ferry_yaml::diagnostics_json`]).
    pub fn diagnostics_json(&self) -> Vec<serde_json::Value> {
        ferry_yaml::diagnostics_json(&self.file, &self.diagnostics)
    }
}

/// Reads and validates the manifest at `path`.
pub fn load(path: &Path) -> Loaded {
    let limits = ferry_yaml::Limits::default();
    match SourceFile::read(path, &limits) {
        Ok(file) => from_source(file),
        Err(mut d) => {
            if d.code == "unreadable-file" && !path.exists() {
                d = d.with_hint("run `ferry init` to write a starter ferry.yaml, or pass the manifest with `-f PATH`");
            }
            Loaded {
                file: SourceFile::new(path.display().to_string(), ""),
                manifest: None,
                diagnostics: vec![d],
            }
        }
    }
}

/// Validates manifest text; `name` is the file name diagnostics print.
pub fn from_str(name: &str, text: &str) -> Loaded {
    from_source(SourceFile::new(name, text))
}

fn from_source(file: SourceFile) -> Loaded {
    let mut diagnostics = Vec::new();
    let root = ferry_yaml::parse(&file, &ferry_yaml::Limits::default(), &mut diagnostics);
    let mut d = ferry_yaml::Decoder { diagnostics };
    let document = root
        .as_ref()
        .and_then(|root| decode::document(&mut d, root));
    // Resolve even after decode errors, so one run also reports bad values and references.
    let manifest = document
        .as_ref()
        .and_then(|doc| resolve::resolve(&file, doc, &mut d));
    let mut diagnostics = d.diagnostics;
    // Deploy actions are checked once per environment; report each problem once.
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.code, d.span, d.message.clone())));
    diagnostics.sort_by_key(|d| (d.span.map_or(0, |s| s.start), d.severity));
    let failed = diagnostics.iter().any(Diagnostic::is_error);
    Loaded {
        file,
        manifest: if failed { None } else { manifest },
        diagnostics,
    }
}

#[cfg(test)]
mod tests {
    /// The first action of stage `stage` of a manifest that must load without errors: a build.
    fn build_of(text: &str, stage: usize) -> crate::Build {
        let loaded = crate::from_str("ferry.yaml", text);
        assert!(!loaded.has_errors(), "{}", loaded.render(false));
        let m = loaded.manifest.unwrap();
        match &m.stages[stage].actions[0].kind {
            crate::ActionKind::Build(b) => b.clone(),
            other => panic!("not a build: {other:?}"),
        }
    }

    /// Regression: an inline buildspec (`buildspec: |`) ends in a newline and was refused as
    /// "leading or trailing spaces".
    #[test]
    fn inline_buildspec_block_is_accepted() {
        let text = "pipeline: x\nstages:\n  - name: build\n    actions:\n      - name: b\n        build:\n          buildspec: |\n            version: 0.2\n            phases:\n              build:\n                commands: [true]\n";
        let b = build_of(text, 0);
        assert!(
            matches!(&b.buildspec, crate::Buildspec::Inline { line: 8, .. }),
            "{:?}",
            b.buildspec
        );
    }

    #[test]
    fn a_build_reads_what_an_earlier_build_exported() {
        let text = "pipeline: x\nstages:\n  - name: build\n    actions:\n      - name: app\n        build: {buildspec: b.yml}\n  - name: test\n    actions:\n      - name: smoke\n        build:\n          buildspec: s.yml\n          env: {TAG: 'v#{build.app.VERSION}-#{build.app.VERSION}'}\n";
        let b = build_of(text, 1);
        assert_eq!(b.imports.len(), 1, "each reference once: {:?}", b.imports);
        assert_eq!(b.imports[0].text(), "#{build.app.VERSION}");
    }
}
