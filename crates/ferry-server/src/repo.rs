//! A pipeline's repository as the server keeps it: a bare mirror in the state directory,
//! fetched with the user's own git (ssh agent, credential helpers, `.netrc` all apply), and a
//! worktree per revision that runs, so each execution reads the manifest and the source of
//! its own revision (pipeline as code).

use std::path::{Path, PathBuf};

use tokio::process::Command;
use tokio::sync::Mutex;

/// A git command that failed, in words.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`git {command}` failed: {message}")]
pub struct GitError {
    pub command: String,
    pub message: String,
}

async fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    // Never ask for a password on a terminal the server does not have.
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .kill_on_drop(true);
    let out = cmd.output().await.map_err(|e| GitError {
        command: args.join(" "),
        message: format!("cannot run git: {e}"),
    })?;
    if !out.status.success() {
        return Err(GitError {
            command: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// One pipeline's repository.
#[derive(Debug)]
pub struct Repo {
    pub url: String,
    mirror: PathBuf,
    checkouts: PathBuf,
    /// Fetches and worktree changes one at a time.
    lock: Mutex<()>,
}

/// What a ref points at after a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub revision: String,
}

impl Repo {
    pub fn new(state_dir: &Path, pipeline: &str, url: &str) -> Repo {
        Repo {
            url: url.to_owned(),
            mirror: state_dir.join("repos").join(format!("{pipeline}.git")),
            checkouts: state_dir.join("checkouts").join(pipeline),
            lock: Mutex::new(()),
        }
    }

    /// Brings the mirror up to date with the remote (cloning it the first time).
    pub async fn fetch(&self) -> Result<(), GitError> {
        let _held = self.lock.lock().await;
        if !self.mirror.join("HEAD").exists() {
            if let Some(parent) = self.mirror.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            let dest = self.mirror.display().to_string();
            return git(None, &["clone", "--quiet", "--mirror", &self.url, &dest])
                .await
                .map(|_| ());
        }
        git(
            Some(&self.mirror),
            &["fetch", "--quiet", "--prune", "origin"],
        )
        .await
        .map(|_| ())
    }

    /// The commit `reference` (a branch, tag or commit) names in the mirror.
    pub async fn resolve(&self, reference: &str) -> Result<String, GitError> {
        git(
            Some(&self.mirror),
            &["rev-parse", "--verify", &format!("{reference}^{{commit}}")],
        )
        .await
    }

    /// The head of `branch` on the remote, without fetching (what polling watches).
    pub async fn remote_head(&self, branch: &str) -> Result<Option<String>, GitError> {
        let out = git(
            None,
            &["ls-remote", &self.url, &format!("refs/heads/{branch}")],
        )
        .await?;
        Ok(out.split_whitespace().next().map(str::to_owned))
    }

    /// The files that differ between `from` and `to`.
    pub async fn changed(&self, from: &str, to: &str) -> Result<Vec<String>, GitError> {
        let out = git(Some(&self.mirror), &["diff", "--name-only", from, to]).await?;
        Ok(out.lines().map(str::to_owned).collect())
    }

    /// The author of a commit (name and e-mail): who pushed it, when the push does not say.
    pub async fn author(&self, revision: &str) -> Result<(String, String), GitError> {
        let out = git(
            Some(&self.mirror),
            &["log", "-1", "--format=%an%x00%ae", revision],
        )
        .await?;
        let (name, email) = out.split_once('\0').unwrap_or((&out, ""));
        Ok((name.to_owned(), email.to_owned()))
    }

    /// When each of `revisions` the mirror holds was committed (ms since the epoch); the
    /// others are left out.
    pub async fn commit_times(
        &self,
        revisions: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>, GitError> {
        let known: Vec<&str> = revisions.iter().copied().filter(|r| self.has(r)).collect();
        if known.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        let mut args = vec!["show", "-s", "--format=%H %ct"];
        args.extend(known.iter().copied());
        let out = git(Some(&self.mirror), &args).await?;
        Ok(out
            .lines()
            .filter_map(|line| {
                let (rev, secs) = line.split_once(' ')?;
                Some((rev.to_owned(), secs.trim().parse::<i64>().ok()? * 1000))
            })
            .collect())
    }

    /// Whether the mirror holds `revision` (without fetching).
    pub fn has(&self, revision: &str) -> bool {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&self.mirror)
            .args(["cat-file", "-e", &format!("{revision}^{{commit}}")])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// A worktree at `revision` (made once, kept while executions of it may resume).
    pub async fn checkout(&self, revision: &str) -> Result<PathBuf, GitError> {
        let _held = self.lock.lock().await;
        let dir = self.checkouts.join(revision);
        if dir.join(".git").exists() {
            return Ok(dir);
        }
        let _ = std::fs::create_dir_all(&self.checkouts);
        let _ = git(Some(&self.mirror), &["worktree", "prune"]).await;
        let dest = dir.display().to_string();
        git(
            Some(&self.mirror),
            &["worktree", "add", "--force", "--detach", &dest, revision],
        )
        .await?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn commit(dir: &Path, file: &str, text: &str) -> String {
        std::fs::write(dir.join(file), text).unwrap();
        git(Some(dir), &["add", "."]).await.unwrap();
        git(
            Some(dir),
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.com",
                "commit",
                "-qm",
                file,
            ],
        )
        .await
        .unwrap();
        git(Some(dir), &["rev-parse", "HEAD"]).await.unwrap()
    }

    #[tokio::test]
    async fn a_mirror_follows_its_remote_and_checks_out_revisions() {
        let remote = tempfile::tempdir().unwrap();
        git(Some(remote.path()), &["init", "-q", "-b", "main"])
            .await
            .unwrap();
        let first = commit(remote.path(), "a.txt", "1").await;
        let state = tempfile::tempdir().unwrap();
        let url = format!("file://{}", remote.path().display());
        let repo = Repo::new(state.path(), "orders", &url);
        assert_eq!(
            repo.remote_head("main").await.unwrap().as_deref(),
            Some(first.as_str())
        );
        repo.fetch().await.unwrap();
        let second = commit(remote.path(), "b.txt", "2").await;
        repo.fetch().await.unwrap();
        assert_eq!(repo.resolve("main").await.unwrap(), second);
        assert_eq!(repo.changed(&first, &second).await.unwrap(), ["b.txt"]);
        let dir = repo.checkout(&first).await.unwrap();
        assert!(dir.join("a.txt").exists() && !dir.join("b.txt").exists());
        assert_eq!(repo.checkout(&first).await.unwrap(), dir);
        assert_eq!(repo.author(&second).await.unwrap().1, "t@example.com");
    }
}
