//! `ferry bootstrap`: the foundation laid in the accounts. The key first (every policy names
//! its ARN, which KMS chooses), then the plan made with it, a refusal to touch what is not
//! ferry's, the changes applied in the order AWS accepts, and a read back: settled when a
//! second run would change nothing.

use ferry_aws::foundation::{self as live};
use ferry_engine::model::now_ms;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::{Foundation, Resource};
use serde::Serialize;

use crate::accounts::{Accounts, PlannedChange};
use crate::error::{Error, Result};
use crate::progress::{Operation, Reporter};
use crate::project::Project;
use crate::snapshot::{self, Snapshot};

#[derive(Debug, Clone, Default)]
pub struct BootstrapInput {
    /// Show what would change; change nothing.
    pub dry_run: bool,
    /// Only this target account (and the shared account's policies that name it).
    pub account: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootstrapReport {
    pub pipeline: String,
    pub dry_run: bool,
    pub key_arn: Option<String>,
    pub changes: Vec<PlannedChange>,
    /// Read back afterwards, the accounts are as planned (always true for a dry run).
    pub settled: bool,
    #[serde(skip)]
    pub foundation: Foundation,
}

impl BootstrapReport {
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes
            .iter()
            .filter(|c| c.change.kind == kind)
            .count()
    }
}

pub async fn bootstrap(
    project: &Project,
    input: &BootstrapInput,
    reporter: &dyn Reporter,
) -> Result<BootstrapReport> {
    let m = project.load_with_foundation()?;
    if let Some(only) = &input.account
        && m.account(only).is_none()
    {
        let known: Vec<&str> = m.accounts.iter().map(|a| a.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no account `{only}`; ferry.yaml has: {}",
            known.join(", ")
        )));
    }
    let op = Operation::begin(reporter, format!("bootstrap {}", m.pipeline));
    let mut accounts = Accounts::open(&m, "bootstrap", input.account.as_deref()).await?;
    if input.dry_run {
        let planned = accounts.read().await?;
        return Ok(BootstrapReport {
            pipeline: m.pipeline.clone(),
            dry_run: true,
            key_arn: accounts.key_arn.clone(),
            changes: planned.planned_changes(),
            settled: true,
            foundation: planned.foundation,
        });
    }
    let key_spec = accounts
        .plan()
        .accounts
        .iter()
        .flat_map(|a| &a.resources)
        .find_map(|r| match r {
            Resource::Key(k) => Some(k.clone()),
            _ => None,
        })
        .expect("a foundation has its key");
    let (key, created) =
        live::ensure_key(&accounts.sessions.shared, &m.pipeline, &key_spec).await?;
    if created {
        op.step(&format!("+ kms key {} ({key})", key_spec.alias));
    }
    accounts.key_arn = Some(key.clone());
    let mut planned = accounts.read().await?;
    if created {
        // Made just now (its policy and settings follow): a creation, for the summary.
        let id = Resource::Key(key_spec).id();
        planned
            .changes
            .iter_mut()
            .filter(|c| c.resource == id)
            .for_each(|c| c.kind = ChangeKind::Create);
    }
    // What is not ferry's stops bootstrap, unless it is used as it is.
    let planned_changes = planned.planned_changes();
    if let Some(c) = planned_changes
        .iter()
        .find(|c| c.foreign && !c.used_as_it_is())
    {
        let (account, id) = (&c.change.account, &c.change.resource);
        let fix = if id.is_account_wide() {
            format!(
                "it lacks what the plan needs (see `ferry plan`): add that yourself — for GitHub's provider, `aws iam add-client-id-to-open-id-connect-provider --client-id {} --open-id-connect-provider-arn …` — or tag it to let ferry manage it",
                ferry_manifest::GithubActions::AUDIENCE
            )
        } else {
            "tag it to adopt it, or rename it in ferry.yaml".to_owned()
        };
        return Err(accounts.sessions.shared.fail(
            "ferry:bootstrap",
            &id.to_string(),
            "NotFerrys",
            format!(
                "{id} in account {account} exists but is not ferry's (no ferry:managed-by/ferry:pipeline tags for {}): {fix}",
                m.pipeline
            ),
        )
        .into());
    }
    let in_scope = |c: &Change| {
        input
            .account
            .as_ref()
            .is_none_or(|a| &c.account == a || c.account == "shared")
    };
    let scope: Vec<Change> = planned
        .changes
        .iter()
        .filter(|c| in_scope(c))
        .cloned()
        .collect();
    live::apply(
        &planned.foundation,
        &accounts.sessions,
        &scope,
        &planned.live,
        &|s| op.step(s),
    )
    .await?;
    // Read back: what a second run would change (nothing), and the policies for `ferry run`.
    let after = accounts.read().await?;
    let policies =
        live::live_policies(&after.foundation, &accounts.sessions, &accounts.names()).await;
    drop(op);
    let settled = after
        .changes
        .iter()
        .all(|c| c.kind == ChangeKind::Unchanged || !in_scope(c));
    snapshot::save(
        &project.state_dir,
        &Snapshot {
            pipeline: m.pipeline.clone(),
            key_arn: Some(key.clone()),
            read_ms: now_ms(),
            policies,
        },
        reporter,
    );
    Ok(BootstrapReport {
        pipeline: m.pipeline.clone(),
        dry_run: false,
        key_arn: Some(key),
        changes: planned.planned_changes(),
        settled,
        foundation: planned.foundation,
    })
}
