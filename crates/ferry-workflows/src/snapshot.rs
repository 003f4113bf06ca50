//! The policies last read from the accounts (by bootstrap or `verify --live`), kept in the
//! state directory so that `ferry run` can check a changed manifest against them before it
//! deploys, without reading the accounts again.

use std::path::{Path, PathBuf};

use ferry_manifest::Manifest;
use ferry_plan::plan;
use ferry_plan::verify::{PolicyStore, verify};
use serde::{Deserialize, Serialize};

use crate::accounts::names;
use crate::error::{Error, Result};
use crate::progress::{Reporter, warn};
use crate::project::Project;
use crate::verify::{Against, VerifyReport};

#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub pipeline: String,
    pub key_arn: Option<String>,
    pub read_ms: i64,
    pub policies: PolicyStore,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("foundation.json")
}

/// Keeps the live policies; failing to is a warning (`ferry run` then says the foundation
/// was not verified from here).
pub(crate) fn save(state_dir: &Path, snapshot: &Snapshot, reporter: &dyn Reporter) {
    let path = path(state_dir);
    let written = std::fs::create_dir_all(state_dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(snapshot).unwrap_or_default(),
        )
    });
    if let Err(e) = written {
        warn(
            reporter,
            format!("cannot keep the live policies in {}: {e}", path.display()),
        );
    }
}

pub(crate) fn load(state_dir: &Path, pipeline: &str) -> Option<Snapshot> {
    let text = std::fs::read(path(state_dir)).ok()?;
    serde_json::from_slice::<Snapshot>(&text)
        .ok()
        .filter(|s| s.pipeline == pipeline)
}

/// Before `ferry run` deploys: the manifest's edges against the policies last read from the
/// accounts. [`Error::AccessNotGranted`] when one is denied (the run would fail mid-way).
pub(crate) fn check_before_run(
    project: &Project,
    m: &Manifest,
    reporter: &dyn Reporter,
) -> Result<()> {
    if m.shared.is_none() || m.deployments().next().is_none() {
        return Ok(());
    }
    let Some(snapshot) = load(&project.state_dir, &m.pipeline) else {
        warn(
            reporter,
            "the foundation was not verified from here yet: `ferry verify --live` proves every access before a deploy",
        );
        return Ok(());
    };
    // The buildspecs' reads too, as `ferry bootstrap` granted them.
    let mut planned = m.clone();
    crate::buildspecs::fill_reads(project, &mut planned);
    let names = names(&planned, snapshot.key_arn.as_deref());
    let foundation = plan(&names);
    let report = verify(&snapshot.policies, &foundation.edges, &names);
    if report.ok() {
        return Ok(());
    }
    Err(Error::AccessNotGranted(Box::new(VerifyReport::new(
        m,
        Against::LastRead,
        report,
    ))))
}
