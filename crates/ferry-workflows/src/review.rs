//! What approving a stage changes in its environment: for each deploy, what runs there now
//! (the ledger's current release) beside what this execution's artifacts put there — an ECS
//! service's images (ferry registers a copy of the current task definition with these images,
//! so they are the new task definition's only difference) and a Lambda function's code
//! SHA-256 (as Lambda reports it: base64 of the zip's SHA-256).

use std::collections::HashMap;
use std::path::PathBuf;

use ferry_aws::ecs;
use ferry_aws::lambda::Package;
use ferry_engine::model::Release;
use ferry_manifest::{ActionKind, LambdaPackage};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::project::Project;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeployChange {
    pub action: String,
    pub target: String,
    /// The release running now; `None` before the first.
    pub now: Option<Release>,
    /// ECS: each container's image now and after.
    pub images: Vec<ImageChange>,
    /// Lambda: the code's SHA-256 now and after.
    pub code: Option<CodeChange>,
    /// Whether approving changes what runs.
    pub changed: bool,
    /// Why what comes could not be read (the artifact is gone, the file is not in it).
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImageChange {
    pub container: Option<String>,
    pub now: Option<String>,
    pub next: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CodeChange {
    pub now: Option<String>,
    pub next: Option<String>,
}

/// Each deploy of `environment`: now, and after `execution` deploys it.
pub async fn changes(
    project: &Project,
    execution: &str,
    environment: &str,
) -> Result<Vec<DeployChange>> {
    let manifest = project.load()?;
    if manifest.environment(environment).is_none() {
        return Err(Error::NotFound(format!("no environment `{environment}`")));
    }
    let store = project.store()?;
    let refs = store.artifacts(execution)?;
    let artifacts = crate::pipeline::artifact_store(project, &manifest).await?;
    let work = project.state_dir.join("review").join(execution);
    let mut opened: HashMap<String, std::result::Result<PathBuf, String>> = HashMap::new();
    let ledger = store.releases(&manifest.pipeline, Some(environment), None, 500)?;
    let mut out = Vec::new();
    for (stage, _, action) in manifest.deployments() {
        if stage.environment.as_deref() != Some(environment) {
            continue;
        }
        let Some(target) = action.kind.release_target().map(|t| t.to_string()) else {
            continue;
        };
        let now = ledger
            .iter()
            .find(|r| {
                r.record.target == target
                    && matches!(r.record.outcome.as_str(), "Deployed" | "Restored")
            })
            .cloned();
        let mut change = DeployChange {
            action: action.name.clone(),
            target,
            now,
            images: Vec::new(),
            code: None,
            changed: false,
            error: None,
        };
        let (artifact, file) = match &action.kind {
            ActionKind::Ecs(e) => (e.artifact.clone(), e.image_definitions.clone()),
            ActionKind::Lambda(l) => match &l.package {
                LambdaPackage::Zip { artifact, path } => (artifact.clone(), path.clone()),
                LambdaPackage::Image { .. } => {
                    change.changed = true;
                    out.push(change);
                    continue;
                }
            },
            _ => continue,
        };
        if !opened.contains_key(&artifact) {
            let dir = work.join(&artifact);
            let got = async {
                let r = refs
                    .iter()
                    .rev()
                    .find(|r| r.name == artifact)
                    .ok_or_else(|| format!("{execution} has made no artifact `{artifact}` yet"))?;
                std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
                let zip = work.join(format!("{artifact}.zip"));
                artifacts.get(r, &zip).await.map_err(|e| e.to_string())?;
                ferry_engine::artifact::unzip(&zip, &dir).map_err(|e| e.to_string())?;
                Ok::<_, String>(dir)
            }
            .await;
            opened.insert(artifact.clone(), got);
        }
        let dir = match &opened[&artifact] {
            Ok(d) => d.clone(),
            Err(e) => {
                change.error = Some(e.clone());
                out.push(change);
                continue;
            }
        };
        let path = dir.join(&file);
        if !path.starts_with(&dir) || file.contains("..") {
            change.error = Some(format!("`{file}` is outside the artifact"));
            out.push(change);
            continue;
        }
        match &action.kind {
            ActionKind::Ecs(_) => match ecs::read_image_definitions(&path) {
                Ok(next) => {
                    let current = current_images(change.now.as_ref());
                    for i in next {
                        let now = current
                            .iter()
                            .find(|(c, _)| Some(c) == i.container.as_ref() || i.container.is_none())
                            .map(|(_, img)| img.clone());
                        change.changed |= now.as_deref() != Some(i.image_uri.as_str());
                        change.images.push(ImageChange {
                            container: i.container,
                            now,
                            next: i.image_uri,
                        });
                    }
                }
                Err(e) => change.error = Some(e),
            },
            _ => match std::fs::read(&path) {
                Ok(bytes) => {
                    let next = Package::Zip(bytes).code_sha256();
                    let now = change.now.as_ref().and_then(|r| r.record.digest.clone());
                    change.changed = now != next;
                    change.code = Some(CodeChange { now, next });
                }
                Err(e) => change.error = Some(format!("cannot read `{file}` in `{artifact}`: {e}")),
            },
        }
        out.push(change);
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// The images a release put in place, by container (`details.images` of an ECS release).
fn current_images(release: Option<&Release>) -> Vec<(String, String)> {
    release
        .and_then(|r| serde_json::from_value(r.record.details["images"].clone()).ok())
        .unwrap_or_default()
}
