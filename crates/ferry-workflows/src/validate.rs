//! `ferry validate`: every problem of the manifest, and of the buildspecs ferry can read
//! before a run (inline ones, and files in a local source directory).

use ferry_manifest::{ActionKind, Loaded, Manifest};
use ferry_yaml::{Diagnostic, SourceFile};

use crate::project::Project;

/// The manifest's diagnostics and each checked buildspec's.
#[derive(Debug)]
pub struct ValidateReport {
    pub loaded: Loaded,
    /// Buildspecs with problems, each with its diagnostics.
    pub buildspecs: Vec<(SourceFile, Vec<Diagnostic>)>,
    /// Warnings count as failures.
    pub strict: bool,
}

impl ValidateReport {
    fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.loaded
            .diagnostics
            .iter()
            .chain(self.buildspecs.iter().flat_map(|(_, d)| d))
    }

    pub fn errors(&self) -> usize {
        self.diagnostics().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics().filter(|d| !d.is_error()).count()
    }

    pub fn valid(&self) -> bool {
        self.errors() == 0 && !(self.strict && self.warnings() > 0)
    }

    /// The report as one JSON document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.loaded.file.name(),
            "valid": self.valid(),
            "errors": self.errors(),
            "warnings": self.warnings(),
            "diagnostics": self
                .loaded
                .diagnostics_json()
                .into_iter()
                .chain(self.buildspecs.iter().flat_map(|(f, d)| ferry_yaml::diagnostics_json(f, d)))
                .collect::<Vec<_>>(),
        })
    }
}

pub fn validate(project: &Project, strict: bool) -> ValidateReport {
    let loaded = ferry_manifest::load(&project.manifest);
    let buildspecs = loaded
        .manifest
        .as_ref()
        .map(|m| {
            let (mut out, exports) = buildspecs(project, m);
            let unexported = unexported_refs(m, &loaded.file, &exports);
            if !unexported.is_empty() {
                out.push((loaded.file.clone(), unexported));
            }
            out
        })
        .unwrap_or_default();
    ValidateReport {
        loaded,
        buildspecs,
        strict,
    }
}

/// What a build whose buildspec could be read exports.
struct BuildExports {
    stage: String,
    action: String,
    /// Its `env.exported-variables`.
    names: Vec<String>,
    /// Inline (final), or a working-tree file, which the revision that runs may change.
    inline: bool,
}

/// The readable buildspecs' problems, and what each exports.
fn buildspecs(
    project: &Project,
    manifest: &Manifest,
) -> (Vec<(SourceFile, Vec<Diagnostic>)>, Vec<BuildExports>) {
    let mut out = Vec::new();
    let mut exports = Vec::new();
    for read in crate::buildspecs::read(project, manifest) {
        if let Some(spec) = read.spec {
            exports.push(BuildExports {
                stage: read.stage,
                action: read.action,
                names: spec.env.exported_variables,
                inline: read.inline,
            });
        }
        if !read.diagnostics.is_empty() {
            out.push((read.file, read.diagnostics));
        }
    }
    (out, exports)
}

/// `#{stage.action.NAME}` uses whose exporting build's buildspec was read and does not export
/// `NAME`: an error for an inline buildspec, a warning for a working-tree file.
fn unexported_refs(
    manifest: &Manifest,
    file: &SourceFile,
    exports: &[BuildExports],
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for stage in &manifest.stages {
        for action in &stage.actions {
            let ActionKind::Build(build) = &action.kind else {
                continue;
            };
            for r in &build.imports {
                let Some(BuildExports { names, inline, .. }) = exports
                    .iter()
                    .find(|e| e.stage == r.stage && e.action == r.action)
                else {
                    continue;
                };
                if names.contains(&r.variable) {
                    continue;
                }
                let text = r.text();
                let message = format!(
                    "`{}.{}` reads `{text}`, but the buildspec of `{}.{}` does not export `{}`",
                    stage.name, action.name, r.stage, r.action, r.variable
                );
                let listed = if names.is_empty() {
                    "it exports nothing".to_owned()
                } else {
                    format!("it exports: {}", names.join(", "))
                };
                let mut d = if *inline {
                    Diagnostic::error("unexported-variable", message)
                } else {
                    Diagnostic::warning("unexported-variable", message)
                };
                d = d.with_hint(format!(
                    "add `{}` to its `env.exported-variables`, or fix the name ({listed})",
                    r.variable
                ));
                if let Some(at) = file.text().find(&text) {
                    d = d.at(ferry_yaml::Span::new(at, at + text.len()));
                }
                out.push(d);
            }
        }
    }
    out
}
