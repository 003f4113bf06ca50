//! `ferry init`: a commented starter `ferry.yaml` and `buildspec.yml`.

use std::path::{Path, PathBuf};

use ferry_manifest::templates::Starter;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct InitInput {
    pub dir: PathBuf,
    /// Add an ECS service deploy to each environment.
    pub ecs: bool,
    /// Add a Lambda function deploy to each environment.
    pub lambda: bool,
    /// The pipeline's name; `None`: the directory's.
    pub name: Option<String>,
    /// Overwrite existing files.
    pub force: bool,
}

/// Writes the starter files; returns their paths.
pub fn init(input: &InitInput) -> Result<Vec<PathBuf>> {
    let starter = Starter {
        ecs: input.ecs,
        lambda: input.lambda,
    };
    let name = input
        .name
        .clone()
        .unwrap_or_else(|| pipeline_name(&input.dir));
    if let Some(why) = ferry_manifest::values::names::pipeline(&name) {
        return Err(Error::Usage(format!(
            "`{name}` cannot be a pipeline name: {why}; pass --name"
        )));
    }
    let files = [
        ("ferry.yaml", starter.manifest(&name)),
        ("buildspec.yml", starter.buildspec()),
    ];
    if !input.force
        && let Some((existing, _)) = files.iter().find(|(f, _)| input.dir.join(f).exists())
    {
        return Err(Error::Failed(format!(
            "{} already exists; pass --force to overwrite it",
            input.dir.join(existing).display()
        )));
    }
    std::fs::create_dir_all(&input.dir)
        .map_err(|e| Error::io(format!("cannot create {}", input.dir.display()), e))?;
    let mut written = Vec::new();
    for (file, text) in &files {
        let path = input.dir.join(file);
        std::fs::write(&path, text).map_err(|e| Error::write(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

/// The directory's name, made into a valid pipeline name.
fn pipeline_name(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let raw = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("app")
        .to_ascii_lowercase();
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = cleaned
        .trim_matches('-')
        .chars()
        .take(32)
        .collect::<String>();
    if trimmed.starts_with(|c: char| c.is_ascii_lowercase()) {
        trimmed
    } else {
        format!("app-{trimmed}").chars().take(32).collect()
    }
}
