//! Where a pipeline lives on this machine: its manifest, and the state directory that holds
//! its executions, logs, artifacts and the last live read of its foundation.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferry_engine::store::{PostgresStore, SqliteStore, Store};
use ferry_manifest::Manifest;

use crate::error::{Error, Result};

/// A manifest and its state directory.
#[derive(Debug, Clone)]
pub struct Project {
    pub manifest: PathBuf,
    /// Logs, work directories, local artifacts; and the executions unless `state_url`.
    pub state_dir: PathBuf,
    /// The PostgreSQL database that holds the executions, shared by every ferry naming it.
    pub state_url: Option<String>,
}

impl Project {
    /// The manifest at `manifest`; the state in `state_dir`, by default `.ferry/` beside it
    /// (executions too, unless [`Project::with_state_url`] names a database).
    pub fn new(manifest: &Path, state_dir: Option<&Path>) -> Project {
        Project {
            manifest: manifest.to_owned(),
            state_dir: state_dir
                .map_or_else(|| manifest_dir(manifest).join(".ferry"), Path::to_path_buf),
            state_url: None,
        }
    }

    /// The same project with its executions in `url` (or in its state directory).
    #[must_use]
    pub fn with_state_url(mut self, url: Option<&str>) -> Project {
        self.state_url = url.filter(|u| !u.is_empty()).map(str::to_owned);
        self
    }

    /// Reads and validates the manifest.
    pub fn load(&self) -> Result<Manifest> {
        let loaded = ferry_manifest::load(&self.manifest);
        if loaded.has_errors() {
            return Err(Error::InvalidManifest(Box::new(loaded)));
        }
        loaded
            .manifest
            .ok_or_else(|| Error::InvalidManifest(Box::new(ferry_manifest::load(&self.manifest))))
    }

    /// The manifest when it can be read (to find its executions, and to continue them with
    /// its AWS settings); `None` otherwise.
    pub fn try_load(&self) -> Option<Manifest> {
        ferry_manifest::load(&self.manifest).manifest
    }

    /// The manifest, which must have a shared account: the foundation lives there. It carries
    /// what its readable buildspecs read, which the plan grants.
    pub fn load_with_foundation(&self) -> Result<Manifest> {
        let mut m = self.load()?;
        if m.shared.is_none() {
            return Err(Error::Usage(format!(
                "{} has no `shared` account: a pipeline of local builds needs no foundation",
                self.manifest.display()
            )));
        }
        crate::buildspecs::fill_reads(self, &mut m);
        Ok(m)
    }

    pub fn store(&self) -> Result<Arc<dyn Store>> {
        open_store(&self.state_dir, self.state_url.as_deref())
    }

    /// The directory of the manifest, absolute.
    pub fn dir(&self) -> PathBuf {
        manifest_dir(&self.manifest)
    }

    /// The source repository as the engine reads it: an absolute directory, or a URL.
    pub fn source_repo(&self, manifest: &Manifest) -> String {
        let repo = &manifest.source.repo;
        if ferry_engine::source::is_url(repo) {
            return repo.clone();
        }
        let dir = self.dir().join(repo);
        std::fs::canonicalize(&dir)
            .unwrap_or(dir)
            .display()
            .to_string()
    }
}

/// Whether `text` names a database (`postgres://…`, `postgresql://…`) rather than a directory.
pub fn is_database_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The store at `url` when one is given (a PostgreSQL URL, shared by every ferry that names
/// it), else `state.db` in `state_dir`.
pub fn open_store(state_dir: &Path, url: Option<&str>) -> Result<Arc<dyn Store>> {
    if let Some(url) = url {
        if !is_database_url(url) {
            return Err(Error::Usage(
                "the state URL must be a PostgreSQL URL: postgres://user:password@host:5432/db"
                    .into(),
            ));
        }
        return PostgresStore::open(url)
            .map(|s| Arc::new(s) as Arc<dyn Store>)
            .map_err(|e| match e {
                // A setting in the URL that cannot be used, as a URL that is not one.
                ferry_engine::store::StoreError::Tls(_) => Error::Usage(e.to_string()),
                other => Error::Failed(other.to_string()),
            });
    }
    let path = state_dir.join("state.db");
    SqliteStore::open(&path)
        .map(|s| Arc::new(s) as Arc<dyn Store>)
        .map_err(|e| Error::Failed(format!("{}: {e}", path.display())))
}

fn manifest_dir(manifest: &Path) -> PathBuf {
    let dir = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// Who is running ferry on this machine: `FERRY_IDENTITY`, else git's user.email, else
/// `$USER`. (The server knows its callers by their tokens instead.)
pub fn local_identity() -> String {
    if let Ok(id) = std::env::var("FERRY_IDENTITY")
        && !id.trim().is_empty()
    {
        return id;
    }
    let git = std::process::Command::new("git")
        .args(["config", "user.email"])
        .output();
    if let Ok(out) = git
        && out.status.success()
    {
        let email = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !email.is_empty() {
            return email;
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}
