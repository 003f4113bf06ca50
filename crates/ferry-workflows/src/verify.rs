//! `ferry verify`: every edge — an AWS call the pipeline makes — decided against the plan's
//! policies, or with `live` against the policies in the accounts.

use std::collections::BTreeMap;

use ferry_aws::foundation as live;
use ferry_engine::model::now_ms;
use ferry_manifest::Manifest;
use ferry_plan::verify::{Report, verify as decide};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::accounts::{Accounts, names};
use crate::error::{Error, Result};
use crate::progress::{Operation, Reporter};
use crate::project::Project;
use crate::snapshot::{self, Snapshot};

#[derive(Debug, Clone, Default)]
pub struct VerifyInput {
    /// Read the policies in the accounts.
    pub live: bool,
    /// Only this environment's edges (and the pipeline's own).
    pub env: Option<String>,
}

/// What the edges were decided against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// The plan's own policies.
    Plan,
    /// The policies in the accounts, read now.
    Accounts,
    /// The policies bootstrap or `verify --live` last read (before `ferry run`).
    LastRead,
}

/// An account by name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountName {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub live: bool,
    pub ok: bool,
    #[serde(flatten)]
    pub report: Report,
    #[serde(skip)]
    pub against: Against,
    /// The shared account's id, for the heading of the pipeline's own edges.
    #[serde(skip)]
    pub shared_account: String,
    /// Each environment's account.
    #[serde(skip)]
    pub environments: BTreeMap<String, AccountName>,
}

impl VerifyReport {
    pub(crate) fn new(m: &Manifest, against: Against, report: Report) -> VerifyReport {
        VerifyReport {
            live: against == Against::Accounts,
            ok: report.ok(),
            against,
            shared_account: m.shared.as_ref().map(|s| s.id.clone()).unwrap_or_default(),
            environments: m
                .environments
                .iter()
                .filter_map(|e| {
                    let a = m.account(&e.account)?;
                    Some((
                        e.name.clone(),
                        AccountName {
                            name: a.name.clone(),
                            id: a.id.clone(),
                        },
                    ))
                })
                .collect(),
            report,
        }
    }
}

pub async fn verify(
    project: &Project,
    input: &VerifyInput,
    reporter: &dyn Reporter,
) -> Result<VerifyReport> {
    let m = project.load_with_foundation()?;
    if let Some(env) = &input.env
        && m.environment(env).is_none()
    {
        let known: Vec<&str> = m.environments.iter().map(|e| e.name.as_str()).collect();
        return Err(Error::Usage(format!(
            "no environment `{env}`; ferry.yaml has: {}",
            known.join(", ")
        )));
    }
    let (key_arn, policies) = if input.live {
        let _op = Operation::begin(
            reporter,
            format!(
                "verify {}: reading the policies in the accounts",
                m.pipeline
            ),
        );
        let accounts = Accounts::open_reading(&m, "verify").await?;
        let mut policies =
            live::live_policies(&accounts.plan(), &accounts.sessions, &accounts.names()).await;
        policies.unreadable.extend(accounts.unread.iter().cloned());
        if accounts.key_unread {
            // The key's edges are then not decided (its policy is unknown), not denied.
            policies.mark_not_read(&accounts.names().key_arn);
        }
        (accounts.key_arn, policies)
    } else {
        let names = names(&m, None);
        (None, ferry_plan::plan(&names).policies(&names))
    };
    let names = names(&m, key_arn.as_deref());
    let foundation = ferry_plan::plan(&names);
    // Every edge is decided, so that a grant another environment uses is not called wider
    // than needed; `env` then keeps that environment's edges and the pipeline's own.
    let mut report = decide(&policies, &foundation.edges, &names);
    if let Some(env) = &input.env {
        report
            .results
            .retain(|r| r.edge.environment.is_none() || r.edge.environment.as_ref() == Some(env));
    }
    if input.live {
        snapshot::save(
            &project.state_dir,
            &Snapshot {
                pipeline: m.pipeline.clone(),
                key_arn,
                read_ms: now_ms(),
                policies,
            },
            reporter,
        );
    }
    let against = if input.live {
        Against::Accounts
    } else {
        Against::Plan
    };
    Ok(VerifyReport::new(&m, against, report))
}

/// One environment's edges, decided before a release goes into it: what an approver sees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnvironmentCheck {
    pub environment: String,
    /// `last_read`: the policies bootstrap or `verify --live` last read from the accounts;
    /// `plan`: the plan's own, when they were never read from here.
    pub against: String,
    /// When the policies were read, for `last_read`.
    pub read_ms: Option<i64>,
    pub ok: bool,
    /// How many calls were decided (the environment's and the pipeline's own).
    pub edges: usize,
    pub denied: Vec<DeniedEdge>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DeniedEdge {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub reason: String,
}

/// The environment's edges against the policies last read from the accounts, or the plan's
/// when none were read. Reads nothing from AWS.
pub fn environment_check(project: &Project, environment: &str) -> Result<EnvironmentCheck> {
    let m = project.load_with_foundation()?;
    if m.environment(environment).is_none() {
        return Err(Error::NotFound(format!("no environment `{environment}`")));
    }
    let last = snapshot::load(&project.state_dir, &m.pipeline);
    let names = names(&m, last.as_ref().and_then(|s| s.key_arn.as_deref()));
    let foundation = ferry_plan::plan(&names);
    let mut report = match &last {
        Some(s) => decide(&s.policies, &foundation.edges, &names),
        None => decide(&foundation.policies(&names), &foundation.edges, &names),
    };
    report.results.retain(|r| {
        r.edge.environment.is_none() || r.edge.environment.as_deref() == Some(environment)
    });
    let denied: Vec<DeniedEdge> = report
        .results
        .iter()
        .filter(|r| !r.allowed)
        .map(|r| DeniedEdge {
            principal: r.edge.principal.clone(),
            action: r.edge.action.clone(),
            resource: r.edge.resource.clone(),
            reason: r.reason.clone(),
        })
        .collect();
    Ok(EnvironmentCheck {
        environment: environment.to_owned(),
        against: if last.is_some() { "last_read" } else { "plan" }.to_owned(),
        read_ms: last.as_ref().map(|s| s.read_ms),
        ok: denied.is_empty(),
        edges: report.results.len(),
        denied,
    })
}
