//! The opening every foundation workflow shares: sessions in each account (the caller's own
//! in the shared account, each target's admin role), the artifact key's ARN when the key
//! exists, and the plan made with that ARN.

use ferry_aws::foundation::{self as live, Sessions};
use ferry_aws::session::Aws;
use ferry_manifest::Manifest;
use ferry_plan::diff::{Change, ChangeKind, LiveState, diff};
use ferry_plan::{Foundation, Names, plan};
use serde::Serialize;

use crate::error::Result;

/// The foundation of a manifest as it stands in its accounts.
pub(crate) struct Accounts<'m> {
    pub manifest: &'m Manifest,
    pub sessions: Sessions,
    /// The artifact key's ARN, once the key exists.
    pub key_arn: Option<String>,
    /// What [`Accounts::open_reading`] could not read.
    pub unread: Vec<String>,
    /// The key's ARN could not be read (AWS did not answer), as opposed to no key yet.
    pub key_unread: bool,
}

impl<'m> Accounts<'m> {
    /// Opens sessions for `purpose` (`plan`, `bootstrap`, …: it names the AWS sessions) in
    /// every account, or in `only` (and the shared account), and reads the key's ARN.
    pub async fn open(
        manifest: &'m Manifest,
        purpose: &str,
        only: Option<&str>,
    ) -> Result<Accounts<'m>> {
        let aws = Aws::from_env(&format!("ferry-{}-{purpose}", manifest.pipeline)).await?;
        let before_key = plan(&names(manifest, None));
        let sessions = Sessions::open(&aws, &before_key, only).await?;
        let mut accounts = Accounts {
            manifest,
            sessions,
            key_arn: None,
            unread: Vec::new(),
            key_unread: false,
        };
        accounts.key_arn = live::key_arn(&accounts.sessions.shared, &accounts.alias()).await?;
        Ok(accounts)
    }

    /// [`Accounts::open`] for a read that reports what it could not read (`verify --live`):
    /// a key AWS does not answer for (throttled, unavailable, unreachable) is noted in
    /// `unread` and the plan goes on with the key's pending ARN.
    pub async fn open_reading(manifest: &'m Manifest, purpose: &str) -> Result<Accounts<'m>> {
        let aws = Aws::from_env(&format!("ferry-{}-{purpose}", manifest.pipeline)).await?;
        let before_key = plan(&names(manifest, None));
        let sessions = Sessions::open(&aws, &before_key, None).await?;
        let mut accounts = Accounts {
            manifest,
            sessions,
            key_arn: None,
            unread: Vec::new(),
            key_unread: false,
        };
        match live::key_arn(&accounts.sessions.shared, &accounts.alias()).await {
            Ok(arn) => accounts.key_arn = arn,
            Err(e) if e.kind.is_transient() => {
                accounts.key_unread = true;
                accounts
                    .unread
                    .push(format!("kms key {}: {e}", accounts.alias()));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(accounts)
    }

    fn alias(&self) -> String {
        self.manifest
            .shared
            .as_ref()
            .map(|s| s.kms_alias.clone())
            .unwrap_or_default()
    }

    pub fn names(&self) -> Names<'m> {
        names(self.manifest, self.key_arn.as_deref())
    }

    pub fn plan(&self) -> Foundation {
        plan(&self.names())
    }

    /// The plan against what is live.
    pub async fn read(&self) -> Result<Planned> {
        let foundation = self.plan();
        let live = live::read_live(&foundation, &self.sessions).await?;
        let changes = diff(&foundation, &live);
        Ok(Planned {
            foundation,
            live,
            changes,
        })
    }
}

/// The names of a manifest that has a shared account (checked by `load_with_foundation`).
pub(crate) fn names<'m>(manifest: &'m Manifest, key_arn: Option<&str>) -> Names<'m> {
    Names::new(manifest, key_arn).expect("a manifest with a shared account")
}

/// The plan, what is live, and the changes between them.
pub(crate) struct Planned {
    pub foundation: Foundation,
    pub live: LiveState,
    pub changes: Vec<Change>,
}

impl Planned {
    /// Nothing live: every resource to create.
    pub fn offline(manifest: &Manifest) -> Planned {
        let foundation = plan(&names(manifest, None));
        let live = LiveState::default();
        let changes = diff(&foundation, &live);
        Planned {
            foundation,
            live,
            changes,
        }
    }

    pub fn planned_changes(&self) -> Vec<PlannedChange> {
        self.changes
            .iter()
            .map(|c| PlannedChange {
                foreign: self.live.is_foreign(&c.account, &c.resource),
                change: c.clone(),
            })
            .collect()
    }
}

/// A change of the plan, and whether its resource exists but is not ferry's (bootstrap will
/// not touch it).
#[derive(Debug, Clone, Serialize)]
pub struct PlannedChange {
    #[serde(flatten)]
    pub change: Change,
    pub foreign: bool,
}

impl PlannedChange {
    /// Not ferry's, yet used as it is: an account-wide resource (GitHub's OIDC provider) that
    /// already has what the plan needs. Any other resource that is not ferry's stops bootstrap.
    pub fn used_as_it_is(&self) -> bool {
        self.foreign
            && self.change.resource.is_account_wide()
            && self.change.kind == ChangeKind::Unchanged
    }
}
