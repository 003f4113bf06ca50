//! The buildspecs ferry can read before a run: inline ones, and files in a local source
//! directory read by builds whose first input is `source`. `ferry validate` checks them; the
//! loaded manifest carries what their `env` reads, so the plan grants it.

use std::path::Path;

use ferry_manifest::{ActionKind, Buildspec, BuildspecReads, Manifest};
use ferry_yaml::{Diagnostic, Limits, SourceFile};

use crate::project::Project;

/// One build's buildspec, as read before the run.
pub(crate) struct ReadBuildspec {
    pub stage: String,
    pub action: String,
    /// Inline (final), or a working-tree file, which the revision that runs may change.
    pub inline: bool,
    pub file: SourceFile,
    /// `None` when it could not be read or parsed (the diagnostics say why).
    pub spec: Option<ferry_engine::buildspec::Buildspec>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Each build's buildspec that can be read now, in manifest order; a build whose buildspec is
/// in an artifact made at run time has none.
pub(crate) fn read(project: &Project, manifest: &Manifest) -> Vec<ReadBuildspec> {
    let path = &project.manifest;
    let repo = project.source_repo(manifest);
    let mut out = Vec::new();
    for stage in &manifest.stages {
        for action in &stage.actions {
            let ActionKind::Build(build) = &action.kind else {
                continue;
            };
            let read = |file, spec, diagnostics| ReadBuildspec {
                stage: stage.name.clone(),
                action: action.name.clone(),
                inline: matches!(build.buildspec, Buildspec::Inline { .. }),
                file,
                spec,
                diagnostics,
            };
            let file = match &build.buildspec {
                Buildspec::Inline { text, line } => SourceFile::new(
                    format!(
                        "{} (inline buildspec of {}.{}, from line {line})",
                        path.display(),
                        stage.name,
                        action.name
                    ),
                    text.clone(),
                ),
                Buildspec::File(file)
                    if build.inputs.first().map(String::as_str) == Some("source")
                        && !ferry_engine::source::is_url(&repo) =>
                {
                    let full = Path::new(&repo).join(file);
                    match SourceFile::read(&full, &Limits::default()) {
                        Ok(f) => f,
                        Err(d) => {
                            let name =
                                format!("{} ({}.{})", full.display(), stage.name, action.name);
                            // A warning: the build reads the buildspec from its revision, which
                            // may hold a file the working tree does not (yet).
                            let d = Diagnostic::warning("missing-buildspec", d.message)
                                .with_hint(format!("`{file}` is read from the source repository ({repo}) when the build runs"));
                            out.push(read(SourceFile::new(name, ""), None, vec![d]));
                            continue;
                        }
                    }
                }
                // In an artifact produced at run time: checked when the build runs.
                Buildspec::File(_) => continue,
            };
            let (spec, diagnostics) = ferry_engine::buildspec::parse(&file);
            out.push(read(file, spec, diagnostics));
        }
    }
    out
}

/// Records in `manifest` what each readable buildspec's `env` reads
/// ([`ferry_manifest::Build::reads`]).
pub(crate) fn fill_reads(project: &Project, manifest: &mut Manifest) {
    for read in read(project, manifest) {
        let Some(spec) = read.spec else { continue };
        let build = manifest
            .stages
            .iter_mut()
            .filter(|s| s.name == read.stage)
            .flat_map(|s| &mut s.actions)
            .find(|a| a.name == read.action)
            .and_then(|a| match &mut a.kind {
                ActionKind::Build(b) => Some(b),
                _ => None,
            });
        if let Some(build) = build {
            build.reads = BuildspecReads {
                secrets: spec
                    .env
                    .secrets_manager
                    .into_iter()
                    .map(|(_, r)| r.secret_id)
                    .collect(),
                parameters: spec
                    .env
                    .parameter_store
                    .into_iter()
                    .map(|(_, p)| p)
                    .collect(),
            };
        }
    }
}
