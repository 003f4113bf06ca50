//! `ferry synth`: the foundation as Terraform, the pipeline as a CodePipeline V2 definition.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::accounts::names;
use crate::bootstrap::{BootstrapInput, BootstrapReport, bootstrap};
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::project::Project;

#[derive(Debug, Clone, Serialize)]
pub struct TerraformReport {
    /// The files written.
    pub written: Vec<PathBuf>,
    /// The checkov checks the modules skip, and why.
    pub skipped: Vec<(&'static str, &'static str)>,
}

/// Writes the Terraform modules into `out`.
pub fn terraform(project: &Project, out: &Path) -> Result<TerraformReport> {
    let m = project.load_with_foundation()?;
    let names = names(&m, None);
    let foundation = ferry_plan::plan(&names);
    let mut written = Vec::new();
    for file in ferry_plan::synth::terraform::terraform(&foundation, &names) {
        let path = out.join(&file.path);
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, file.text))
            .map_err(|e| Error::write(&path, e))?;
        written.push(path);
    }
    Ok(TerraformReport {
        written,
        skipped: ferry_plan::synth::terraform::SKIPPED.to_vec(),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct CodepipelineReport {
    pub definition: serde_json::Value,
    /// What the user must still provide (CodeBuild projects, a source connection).
    pub notes: Vec<String>,
    /// Where the definition was written, when it was.
    pub written: Option<PathBuf>,
}

/// The CodePipeline definition; written to `out` when given.
pub fn codepipeline(project: &Project, out: Option<&Path>) -> Result<CodepipelineReport> {
    let m = project.load_with_foundation()?;
    let (pipeline, notes) = ferry_plan::synth::codepipeline::codepipeline(&names(&m, None));
    let definition = serde_json::json!({ "pipeline": pipeline });
    if let Some(path) = out {
        let text = serde_json::to_string_pretty(&definition).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| Error::write(path, e))?;
    }
    Ok(CodepipelineReport {
        definition,
        notes,
        written: out.map(Path::to_path_buf),
    })
}

/// `ferry synth codepipeline --apply`: the native pipeline, its CodeBuild projects, its
/// approval topic and the roles they run as, laid (or brought back to the manifest) with the
/// rest of the foundation — bootstrap's own apply, since the pipeline is part of the
/// foundation once `shared.codepipeline` names it.
pub async fn apply_codepipeline(
    project: &Project,
    reporter: &dyn Reporter,
) -> Result<BootstrapReport> {
    let m = project.load_with_foundation()?;
    let has_native = m.shared.as_ref().is_some_and(|s| s.codepipeline.is_some());
    if !has_native {
        return Err(Error::Usage(
            "the manifest does not ask for a native pipeline: add `shared.codepipeline: {connection: arn:aws:codeconnections:…}` (the connection to the repository), then run this again".into(),
        ));
    }
    bootstrap(
        project,
        &BootstrapInput {
            dry_run: false,
            account: None,
        },
        reporter,
    )
    .await
}
