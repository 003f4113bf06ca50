//! The `source` action: the revision of the repository as the `source` artifact.
//!
//! A local repository is archived with `git archive` at the execution's revision, limited to
//! the directory the pipeline names (its subtree becomes the artifact's root). A directory
//! outside git is zipped as it is. A URL is cloned first. `git` itself does the work, with the
//! user's own configuration and credentials.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::action::{Action, ActionContext, ActionError, ActionKind, ActionOutput};
use crate::artifact::{zip_dir, zip_files};
use crate::model::ActionDef;

/// The revision of a directory that is not in a git repository.
pub const LOCAL_REVISION: &str = "local";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// An absolute directory, or a git URL.
    pub repo: String,
    #[serde(default)]
    pub branch: Option<String>,
}

pub struct SourceKind;

impl ActionKind for SourceKind {
    type Config = SourceConfig;

    fn name(&self) -> &'static str {
        "source"
    }

    fn build(&self, config: SourceConfig, _def: &ActionDef) -> Result<Arc<dyn Action>, String> {
        Ok(Arc::new(Source { config }))
    }
}

struct Source {
    config: SourceConfig,
}

fn failed(msg: impl Into<String>) -> ActionError {
    ActionError::Failed(msg.into())
}

/// Runs git; the error says which command failed and what git said.
pub fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`git {}` in {} failed: {}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn is_url(repo: &str) -> bool {
    repo.contains("://") || repo.starts_with("git@")
}

/// Marks a revision whose directory had changes not committed: `<HEAD>+worktree`.
pub const WORKTREE: &str = "+worktree";

/// The revision an execution of `repo` builds: `requested` resolved to a commit; otherwise
/// HEAD when the pipeline's directory has no uncommitted change, or `<HEAD>+worktree` when it
/// has — then the files are taken as they are (tracked and untracked, minus what
/// `.gitignore` excludes). A URL keeps the branch name, resolved when cloned. A directory
/// outside git is [`LOCAL_REVISION`].
pub fn resolve_revision(
    repo: &str,
    branch: Option<&str>,
    requested: Option<&str>,
) -> Result<String, String> {
    if is_url(repo) {
        return Ok(requested.or(branch).unwrap_or("HEAD").to_owned());
    }
    let dir = Path::new(repo);
    if git(dir, &["rev-parse", "--is-inside-work-tree"]).is_err() {
        return match requested {
            None => Ok(LOCAL_REVISION.into()),
            Some(r) => Err(format!(
                "--revision {r}: {} is not in a git repository",
                dir.display()
            )),
        };
    }
    if let Some(r) = requested {
        return git(dir, &["rev-parse", "--verify", &format!("{r}^{{commit}}")]).map_err(|_| {
            format!(
                "`{r}` is not a commit of the repository at {}",
                dir.display()
            )
        });
    }
    let head = git(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]).unwrap_or_default();
    let changes = git(
        dir,
        &["status", "--porcelain", "--untracked-files=all", "--", "."],
    )?;
    Ok(if changes.is_empty() && !head.is_empty() {
        head
    } else {
        format!("{head}{WORKTREE}")
    })
}

#[async_trait]
impl Action for Source {
    fn runs_anywhere(&self) -> bool {
        false
    }

    async fn run(&self, ctx: &ActionContext) -> Result<ActionOutput, ActionError> {
        let revision = ctx.execution.revision.clone();
        let zip = ctx.workdir.join("source.zip");
        std::fs::create_dir_all(&ctx.workdir)
            .map_err(|e| failed(format!("cannot create {}: {e}", ctx.workdir.display())))?;
        let repo = self.config.repo.clone();
        let branch = self.config.branch.clone();
        let workdir = ctx.workdir.clone();
        let zip_path = zip.clone();
        // git and zip are blocking work.
        let resolved = tokio::task::spawn_blocking(move || {
            archive(&repo, branch.as_deref(), &revision, &workdir, &zip_path)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(failed)?;
        ctx.log.line(&format!(
            "[ferry] source {} at {resolved}",
            self.config.repo
        ));
        let artifact = ctx
            .artifacts
            .put(ctx.outputs.first().map_or("source", String::as_str), &zip)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let _ = std::fs::remove_file(&zip);
        Ok(ActionOutput {
            outputs: json!({"repository": self.config.repo, "revision": resolved, "sha256": artifact.sha256}),
            artifacts: vec![artifact],
            release: None,
        })
    }
}

/// Writes the source zip; returns the resolved revision.
fn archive(
    repo: &str,
    branch: Option<&str>,
    revision: &str,
    workdir: &Path,
    zip: &Path,
) -> Result<String, String> {
    let zip_arg = zip.display().to_string();
    if is_url(repo) {
        let clone: PathBuf = workdir.join("clone");
        let mut args = vec!["clone", "--quiet"];
        if let Some(b) = branch.filter(|_| revision == branch.unwrap_or_default()) {
            args.extend(["--branch", b]);
        }
        let clone_arg = clone.display().to_string();
        args.extend([repo, clone_arg.as_str()]);
        git(workdir, &args)?;
        let sha = git(
            &clone,
            &["rev-parse", "--verify", &format!("{revision}^{{commit}}")],
        )?;
        git(&clone, &["archive", "--format=zip", "-o", &zip_arg, &sha])?;
        return Ok(sha);
    }
    let dir = Path::new(repo);
    if revision == LOCAL_REVISION {
        let excludes = [
            ".git/**".to_owned(),
            ".ferry/**".to_owned(),
            "target/**".to_owned(),
            ".tools/**".to_owned(),
        ];
        zip_dir(dir, &["**/*".to_owned()], &excludes, false, zip).map_err(|e| e.to_string())?;
        return Ok(LOCAL_REVISION.into());
    }
    if revision.ends_with(WORKTREE) {
        // The files as they are: tracked and untracked, not ignored, relative to `dir`.
        let listed = git(
            dir,
            &[
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
        )?;
        let files: Vec<String> = listed
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        zip_files(dir, &files, zip).map_err(|e| e.to_string())?;
        return Ok(revision.to_owned());
    }
    // Only the pipeline's directory: `REV:path/to/dir` is that subtree.
    let prefix = git(dir, &["rev-parse", "--show-prefix"])?;
    let tree = format!("{revision}:{}", prefix.trim_end_matches('/'));
    git(dir, &["archive", "--format=zip", "-o", &zip_arg, &tree])?;
    Ok(revision.to_owned())
}
