//! The SCPs that apply to each account, read through AWS Organizations by the shared account:
//! it may when it is the organization's management account or a delegated administrator for
//! policies. When it cannot, verify says so and goes on: an SCP may then still deny what the
//! other policies allow.

use std::collections::BTreeMap;

use aws_sdk_organizations::types::{ParentType, PolicyType};
use ferry_plan::Document;
use ferry_plan::foundation::Foundation;
use ferry_plan::spec::ScpLevel;
use ferry_plan::verify::PolicyStore;

use super::document;
use crate::error::{AwsError, AwsErrorKind};
use crate::session::AccountConfig;

/// Organizations nests at most five OUs below the root: an account's chain is at most seven.
const LONGEST_CHAIN: usize = 7;

/// Reads the SCPs of every account of the foundation into `store`, root first.
pub(super) async fn read_scps(foundation: &Foundation, s: &AccountConfig, store: &mut PolicyStore) {
    let org = aws_sdk_organizations::Client::new(&s.config);
    let management = match s
        .call(
            "organizations:DescribeOrganization",
            "the organization",
            org.describe_organization().send(),
        )
        .await
    {
        Ok(out) => out
            .organization()
            .and_then(|o| o.master_account_id())
            .unwrap_or_default()
            .to_owned(),
        Err(e) => {
            store.unreadable.push(format!(
                "service control policies ({}): an SCP can still deny what these policies allow",
                e.code
            ));
            return;
        }
    };
    let mut cache = OrgCache::default();
    for account in &foundation.accounts {
        // SCPs never restrict the management account's own principals.
        if account.id == management {
            continue;
        }
        match account_scps(&org, s, &account.id, &mut cache).await {
            Ok(levels) => {
                for level in levels {
                    store.scp_level(&account.id, level);
                }
            }
            Err(e) if e.kind == AwsErrorKind::NotFound => store.unreadable.push(format!(
                "service control policies of account {} ({}): it is not in the organization of {management}",
                account.id, account.name
            )),
            Err(e) if e.kind == AwsErrorKind::AccessDenied => {
                // Said once: it holds for every account.
                store.unreadable.push(format!(
                    "service control policies ({} on {}: the shared account is neither the organization's management account nor a delegated administrator for policies); an SCP can still deny what these policies allow",
                    e.code, e.action
                ));
                return;
            }
            Err(e) => store.unreadable.push(format!(
                "service control policies of account {} ({}): {e}",
                account.id, account.name
            )),
        }
    }
}

/// What has been read of the organization, so that the root and the organizational units that
/// several accounts share are read once.
#[derive(Default)]
struct OrgCache {
    /// Child id → its parent's id, and whether that parent is the root.
    parents: BTreeMap<String, (String, bool)>,
    /// Target id (root, OU or account) → the SCPs attached there.
    levels: BTreeMap<String, Vec<Document>>,
}

/// One account's SCP levels, root first: the root, each organizational unit down, the account.
async fn account_scps(
    org: &aws_sdk_organizations::Client,
    s: &AccountConfig,
    account_id: &str,
    cache: &mut OrgCache,
) -> Result<Vec<ScpLevel>, AwsError> {
    let mut chain = vec![account_id.to_owned()];
    while chain.len() <= LONGEST_CHAIN {
        let child = chain.last().cloned().unwrap_or_default();
        if !cache.parents.contains_key(&child) {
            let out = s
                .call(
                    "organizations:ListParents",
                    &child,
                    org.list_parents().child_id(&child).send(),
                )
                .await?;
            let Some(parent) = out.parents().first() else {
                break;
            };
            let is_root = parent.r#type() == Some(&ParentType::Root);
            let id = parent.id().unwrap_or_default().to_owned();
            cache.parents.insert(child.clone(), (id, is_root));
        }
        let (parent, is_root) = cache.parents[&child].clone();
        chain.push(parent);
        if is_root {
            break;
        }
    }
    chain.reverse();
    let mut levels = Vec::new();
    for target in chain {
        if !cache.levels.contains_key(&target) {
            let docs = attached(org, s, &target).await?;
            cache.levels.insert(target.clone(), docs);
        }
        levels.push(ScpLevel {
            kind: ScpLevel::kind_of(&target),
            policies: cache.levels[&target].clone(),
            id: target,
        });
    }
    Ok(levels)
}

/// The SCPs attached at one target (root, OU or account), every page of them.
async fn attached(
    org: &aws_sdk_organizations::Client,
    s: &AccountConfig,
    target: &str,
) -> Result<Vec<Document>, AwsError> {
    let mut docs = Vec::new();
    let mut next = None;
    loop {
        let out = s
            .call(
                "organizations:ListPoliciesForTarget",
                target,
                org.list_policies_for_target()
                    .target_id(target)
                    .filter(PolicyType::ServiceControlPolicy)
                    .set_next_token(next)
                    .send(),
            )
            .await?;
        for id in out.policies().iter().filter_map(|p| p.id()) {
            let policy = s
                .call(
                    "organizations:DescribePolicy",
                    id,
                    org.describe_policy().policy_id(id).send(),
                )
                .await?;
            let content = policy
                .policy()
                .and_then(|p| p.content())
                .unwrap_or_default();
            docs.push(document(content));
        }
        next = out.next_token().map(str::to_owned);
        if next.is_none() {
            return Ok(docs);
        }
    }
}
