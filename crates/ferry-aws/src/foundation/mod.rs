//! The foundation in the accounts: read what is live (for `ferry plan` and `verify --live`),
//! apply a plan (`ferry bootstrap`), and remove it (`ferry destroy`). What to create comes from
//! ferry-plan's typed specs; this module only talks to AWS. One file per resource kind, each
//! with its read, apply and remove: [`key`], [`bucket`], [`repository`], [`role`],
//! [`project`] (a CodeBuild project and its log group), [`topic`], [`oidc_provider`] (GitHub
//! Actions' token issuer) and [`pipeline`] (the native
//! CodePipeline pipeline, applied last: its actions name the target roles); the live
//! policies for `verify --live` in [`policies`], with the SCPs from [`organizations`].
//!
//! Order matters across accounts: policies in the shared account name the target accounts'
//! roles, which AWS checks exist, and the target roles' policies name the shared key. So
//! bootstrap makes the shared resources without their cross-account policies, then the target
//! roles, then the shared policies — retrying while IAM propagates new roles.

mod bucket;
mod key;
mod oidc_provider;
mod organizations;
mod pipeline;
mod policies;
mod project;
mod repository;
mod role;
mod topic;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use ferry_plan::diff::{Change, ChangeKind, LiveResource, LiveState};
use ferry_plan::foundation::{AccountKind, AccountPlan, Foundation, is_ferrys};
use ferry_plan::{Field, Resource, ResourceId};
use serde::Serialize;
use serde_json::Value;

use crate::error::{AwsError, AwsErrorKind};
use crate::session::{AccountConfig, Aws, RoleTarget};

pub use key::{ensure_key, key_arn};
pub use policies::live_policies;

/// A session in each account of a foundation: the caller's own in the shared account, the
/// admin role's in each target account.
pub struct Sessions {
    pub shared: AccountConfig,
    pub targets: BTreeMap<String, AccountConfig>,
}

impl Sessions {
    /// Opens them, checking that the caller's credentials are the shared account's. With
    /// `only`, only that account (and the shared one, whose policies name it).
    pub async fn open(
        aws: &Aws,
        foundation: &Foundation,
        only: Option<&str>,
    ) -> Result<Sessions, AwsError> {
        let shared_plan = shared(foundation);
        let mut shared_config = aws.own(Some(&shared_plan.region));
        let who = shared_config
            .call(
                "sts:GetCallerIdentity",
                "the caller",
                aws_sdk_sts::Client::new(&shared_config.config)
                    .get_caller_identity()
                    .send(),
            )
            .await?;
        let account = who.account().unwrap_or_default();
        if account != shared_plan.id {
            return Err(shared_config.fail(
                "sts:GetCallerIdentity",
                who.arn().unwrap_or("the caller"),
                "WrongAccount",
                format!("these credentials are of account {account}; ferry runs bootstrap, plan and verify with credentials of the shared account {}, and reaches the others through their admin role", shared_plan.id),
            ));
        }
        shared_config.site.account = Some(account.to_owned());
        let mut targets = BTreeMap::new();
        let session = aws.with_session(&format!("ferry-{}-bootstrap", foundation.pipeline));
        for a in foundation
            .accounts
            .iter()
            .filter(|a| a.kind == AccountKind::Target)
        {
            if only.is_some_and(|o| o != a.name && o != "shared") {
                continue;
            }
            let Some(admin) = &a.admin_role else { continue };
            let config = session
                .assume(&RoleTarget {
                    role_arn: admin.clone(),
                    external_id: None,
                    region: Some(a.region.clone()),
                })
                .await?;
            targets.insert(a.name.clone(), config);
        }
        Ok(Sessions {
            shared: shared_config,
            targets,
        })
    }

    fn of(&self, account: &AccountPlan) -> Option<&AccountConfig> {
        match account.kind {
            AccountKind::Shared => Some(&self.shared),
            AccountKind::Target => self.targets.get(&account.name),
        }
    }
}

fn shared(foundation: &Foundation) -> &AccountPlan {
    foundation
        .accounts
        .iter()
        .find(|a| a.kind == AccountKind::Shared)
        .expect("a foundation has its shared account")
}

/// A resource as its `read` found it: its settings, its tags, and the settings it could not
/// read.
struct Found {
    resource: Resource,
    tags: BTreeMap<String, String>,
    unreadable: Vec<(Field, String)>,
}

impl Found {
    fn new(resource: Resource, tags: BTreeMap<String, String>) -> Found {
        Found {
            resource,
            tags,
            unreadable: Vec::new(),
        }
    }
}

/// Reads one resource of the plan as it is in its account; `None` when it does not exist.
async fn read(s: &AccountConfig, planned: &Resource) -> Result<Option<Found>, AwsError> {
    match planned {
        Resource::Key(k) => key::read(s, &k.alias).await,
        Resource::Bucket(b) => bucket::read(s, &b.name).await,
        Resource::Repository(r) => repository::read(s, &r.name).await,
        Resource::Role(r) => role::read(s, &r.name, &r.policies).await,
        Resource::Project(p) => project::read(s, &p.name).await,
        Resource::Topic(t) => topic::read(s, &t.name).await,
        Resource::Pipeline(p) => pipeline::read(s, &p.pipeline.name).await,
        Resource::OidcProvider(p) => oidc_provider::read(s, &p.issuer).await,
    }
}

/// Reads every resource of `foundation` that exists.
pub async fn read_live(
    foundation: &Foundation,
    sessions: &Sessions,
) -> Result<LiveState, AwsError> {
    let mut live = LiveState::default();
    for account in &foundation.accounts {
        let Some(s) = sessions.of(account) else {
            continue;
        };
        for r in &account.resources {
            if let Some(found) = read(s, r).await? {
                live.insert(
                    &account.name,
                    LiveResource {
                        managed: is_ferrys(&found.tags, &foundation.pipeline),
                        resource: found.resource,
                        unreadable: found.unreadable,
                    },
                );
            }
        }
    }
    Ok(live)
}

/// The tags of ferry's resources as `(key, value)` pairs.
fn tags(pipeline: &str) -> [(&'static str, String); 2] {
    ferry_plan::foundation::tags(pipeline)
}

/// IAM returns policy documents URL-encoded.
fn url_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A policy document from its text (IAM's URL-encoded form too).
fn document(text: &str) -> ferry_plan::Document {
    let decoded = if text.trim_start().starts_with('%') {
        url_decode(text)
    } else {
        text.to_owned()
    };
    ferry_plan::Document(serde_json::from_str(&decoded).unwrap_or(Value::String(decoded)))
}

/// Runs `call` until IAM has propagated new roles: AWS refuses a policy that names a role it
/// does not know yet, for a few seconds after the role is made.
async fn propagating<F, Fut>(mut call: F) -> Result<(), AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), AwsError>>,
{
    let mut delay = Duration::from_secs(1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        match call().await {
            Err(e)
                if e.kind == AwsErrorKind::UnknownPrincipal
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Which part of a resource an apply step sets: its own settings, or the policies that name
/// other accounts' roles (set once those roles exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Own,
    CrossAccount,
}

/// Applies `changes` (from [`ferry_plan::diff::diff`] of `foundation` against `live`) to the
/// accounts, in the order that lets AWS accept each policy.
pub async fn apply(
    foundation: &Foundation,
    sessions: &Sessions,
    changes: &[Change],
    live: &LiveState,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), AwsError> {
    let pending = |account: &str, id: &ResourceId| {
        changes
            .iter()
            .find(|c| c.account == account && &c.resource == id && c.kind != ChangeKind::Unchanged)
    };
    let pipeline = &foundation.pipeline;
    let shared_plan = shared(foundation);
    let step = |account: &AccountPlan, r: &Resource, phase: Phase| {
        let change = pending(&account.name, &r.id())?;
        let session = sessions.of(account)?;
        let was = live.get(&account.name, &r.id()).map(|l| &l.resource);
        Some((session, change, was, phase))
    };
    // 1. The shared account's own resources, without the policies that name other accounts;
    // 2. the target accounts' roles; 3. the shared policies that name the target roles.
    let targets = foundation
        .accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Target);
    let order = std::iter::once((shared_plan, Phase::Own))
        .chain(targets.map(|a| (a, Phase::Own)))
        .chain(std::iter::once((shared_plan, Phase::CrossAccount)));
    for (account, phase) in order {
        for r in &account.resources {
            let Some((s, change, was, phase)) = step(account, r, phase) else {
                continue;
            };
            let announced = match r {
                Resource::Pipeline(_) => Phase::CrossAccount,
                _ => Phase::Own,
            };
            if phase == announced {
                progress(&format!(
                    "{} {} in {}",
                    change.kind.mark(),
                    change.resource,
                    account.name
                ));
            }
            match r {
                Resource::Key(k) => key::apply(s, k, change, phase).await?,
                Resource::Bucket(b) => bucket::apply(s, pipeline, b, change, phase).await?,
                Resource::Repository(repo) => {
                    repository::apply(s, pipeline, repo, change, phase).await?
                }
                Resource::Role(role) if phase == Phase::Own => {
                    let was = match was {
                        Some(Resource::Role(w)) => Some(w),
                        _ => None,
                    };
                    role::apply(s, pipeline, role, change, was).await?
                }
                Resource::Role(_) => {}
                Resource::Project(p) if phase == Phase::Own => {
                    // Boxed: the CodeBuild requests it keeps for retrying are large.
                    Box::pin(project::apply(s, pipeline, p, change)).await?
                }
                Resource::Project(_) => {}
                Resource::Topic(t) if phase == Phase::Own => {
                    topic::apply(s, pipeline, t, change).await?
                }
                Resource::Topic(_) => {}
                Resource::Pipeline(p) if phase == Phase::CrossAccount => {
                    pipeline::apply(s, pipeline, p, change).await?
                }
                Resource::Pipeline(_) => {}
                Resource::OidcProvider(p) if phase == Phase::Own => {
                    let was = match was {
                        Some(Resource::OidcProvider(w)) => Some(w),
                        _ => None,
                    };
                    oidc_provider::apply(s, pipeline, p, change, was).await?
                }
                Resource::OidcProvider(_) => {}
            }
        }
    }
    Ok(())
}

/// What `ferry destroy` did to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Removal {
    Deleted,
    /// It did not exist.
    Absent,
    /// It exists but is not ferry's (no ferry tags for this pipeline): left alone.
    KeptNotFerrys,
    /// It still holds artifacts or images; `--force` deletes them.
    KeptNotEmpty {
        holds: String,
    },
    /// Something outside the plan still depends on it (a role that trusts the provider).
    KeptInUse {
        by: String,
    },
    /// A KMS key: its alias is deleted, the key scheduled for deletion after `days`.
    ScheduledForDeletion {
        days: i32,
    },
}

impl Removal {
    /// Whether the resource is still there after destroy.
    pub fn kept(&self) -> bool {
        matches!(
            self,
            Removal::KeptNotFerrys | Removal::KeptNotEmpty { .. } | Removal::KeptInUse { .. }
        )
    }
}

impl fmt::Display for Removal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Removal::Deleted => f.write_str("deleted"),
            Removal::Absent => f.write_str("absent"),
            Removal::KeptNotFerrys => {
                f.write_str("kept: not ferry's (no ferry tags for this pipeline)")
            }
            Removal::KeptNotEmpty { holds } => {
                write!(f, "kept: it holds {holds} (--force deletes them)")
            }
            Removal::KeptInUse { by } => write!(f, "kept: {by} still trusts it"),
            Removal::ScheduledForDeletion { days } => write!(
                f,
                "scheduled for deletion in {days} days (KMS's shortest wait); its alias is deleted"
            ),
        }
    }
}

/// What `ferry destroy` did to one resource.
#[derive(Debug, Clone, Serialize)]
pub struct Removed {
    pub account: String,
    pub address: ResourceId,
    #[serde(flatten)]
    pub removal: Removal,
}

/// Removes what bootstrap made, target accounts first. Resources that are not ferry's are
/// left alone; the bucket and repositories only when empty, unless `force`.
pub async fn destroy(
    foundation: &Foundation,
    sessions: &Sessions,
    force: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<Removed>, AwsError> {
    let live = read_live(foundation, sessions).await?;
    let mut out = Vec::new();
    let mut order: Vec<&AccountPlan> = foundation
        .accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Target)
        .collect();
    order.push(shared(foundation));
    for account in order {
        let Some(s) = sessions.of(account) else {
            continue;
        };
        for r in account.resources.iter().rev() {
            let id = r.id();
            let removal = match live.get(&account.name, &id) {
                None => Removal::Absent,
                Some(l) if !l.managed => Removal::KeptNotFerrys,
                Some(_) => {
                    progress(&format!("- {id} in {}", account.name));
                    match r {
                        Resource::Key(k) => key::remove(s, &k.alias).await?,
                        Resource::Bucket(b) => bucket::remove(s, &b.name, force).await?,
                        Resource::Repository(repo) => {
                            repository::remove(s, &repo.name, force).await?
                        }
                        Resource::Role(role) => role::remove(s, &role.name).await?,
                        Resource::Project(p) => project::remove(s, p).await?,
                        Resource::Topic(t) => topic::remove(s, &t.name).await?,
                        Resource::Pipeline(p) => pipeline::remove(s, &p.pipeline.name).await?,
                        Resource::OidcProvider(p) => oidc_provider::remove(s, &p.issuer).await?,
                    }
                }
            };
            out.push(Removed {
                account: account.name.clone(),
                address: id,
                removal,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn iam_documents_are_url_decoded() {
        assert_eq!(
            document("%7B%22Version%22%3A%222012-10-17%22%7D").0,
            json!({"Version": "2012-10-17"})
        );
        assert_eq!(document(r#"{"a": 1}"#).0, json!({"a": 1}));
    }

    #[test]
    fn removals_read_as_before_and_serialize_with_their_outcome() {
        let r = Removed {
            account: "prod".into(),
            address: ResourceId::Repository("orders-api".into()),
            removal: Removal::KeptNotEmpty {
                holds: "images".into(),
            },
        };
        assert_eq!(
            r.removal.to_string(),
            "kept: it holds images (--force deletes them)"
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"account": "prod", "address": "ecr repository orders-api", "outcome": "kept_not_empty", "holds": "images"})
        );
    }
}
