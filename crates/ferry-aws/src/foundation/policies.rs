//! The policies really in the accounts, for `ferry verify --live`: each edge principal's
//! inline and attached policies and permissions boundary; the key, bucket, repository and
//! trust policies; and the SCPs of each account when the shared account can read them.

use std::collections::BTreeSet;

use ferry_plan::foundation::Foundation;
use ferry_plan::verify::PolicyStore;
use ferry_plan::{Document, Names, Resource};

use super::organizations::read_scps;
use super::role::{inline_policy, inline_policy_names};
use super::{Sessions, document, read, shared};
use crate::error::AwsError;
use crate::session::AccountConfig;

/// Reads them. An unreadable policy is reported, and its edges fail; unreadable SCPs are
/// reported only.
pub async fn live_policies(
    foundation: &Foundation,
    sessions: &Sessions,
    names: &Names<'_>,
) -> PolicyStore {
    let mut store = PolicyStore::default();
    read_scps(foundation, &sessions.shared, &mut store).await;
    let principals: BTreeSet<&str> = foundation
        .edges
        .iter()
        .filter(|e| e.by_role())
        .map(|e| e.principal.as_str())
        .chain(
            foundation
                .edges
                .iter()
                .filter(|e| e.action.starts_with("sts:AssumeRole"))
                .map(|e| e.resource.as_str()),
        )
        .collect();
    for role_arn in principals {
        let account_id = role_arn.split(':').nth(4).unwrap_or_default();
        let Some(session) = foundation
            .accounts
            .iter()
            .find(|a| a.id == account_id)
            .and_then(|a| sessions.of(a))
        else {
            store
                .unreadable
                .push(format!("{role_arn}: no session in account {account_id}"));
            continue;
        };
        if let Err(e) = read_role_policies(session, role_arn, &mut store).await {
            store.unreadable.push(format!("{role_arn}: {e}"));
        }
    }
    for r in &shared(foundation).resources {
        let arn = match r {
            Resource::Key(_) => names.key_arn.clone(),
            Resource::Bucket(b) => format!("arn:aws:s3:::{}", b.name),
            Resource::Repository(repo) => names.repository_arn(&repo.name),
            // Trust policies are read with each role above; a project has no policy.
            Resource::Role(_)
            | Resource::Project(_)
            | Resource::Topic(_)
            | Resource::Pipeline(_)
            | Resource::OidcProvider(_) => continue,
        };
        match read(&sessions.shared, r).await {
            Ok(Some(found)) => {
                if let Some(policy) = found.resource.policy() {
                    store.resource(&arn, policy.clone());
                }
            }
            Ok(None) => {}
            Err(e) => {
                store.mark_not_read(&arn);
                store.unreadable.push(format!("{}: {e}", r.address()));
            }
        }
    }
    store
}

async fn read_role_policies(
    s: &AccountConfig,
    role_arn: &str,
    store: &mut PolicyStore,
) -> Result<(), AwsError> {
    let iam = aws_sdk_iam::Client::new(&s.config);
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    // A role that does not exist has no policies: its edges fail, which is the finding.
    let Some(out) = s
        .find(
            "iam:GetRole",
            role_arn,
            iam.get_role().role_name(name).send(),
        )
        .await?
    else {
        return Ok(());
    };
    let Some(role) = out.role() else {
        return Ok(());
    };
    if let Some(trust) = role.assume_role_policy_document() {
        store.resource(role_arn, document(trust));
    }
    for policy in inline_policy_names(s, name).await? {
        let doc = inline_policy(s, name, &policy).await?;
        store.identity(role_arn, &policy, doc);
    }
    let attached = s
        .call(
            "iam:ListAttachedRolePolicies",
            role_arn,
            iam.list_attached_role_policies().role_name(name).send(),
        )
        .await?;
    for p in attached.attached_policies() {
        let arn = p.policy_arn().unwrap_or_default();
        let doc = managed_policy(&iam, s, arn).await?;
        store.identity(role_arn, p.policy_name().unwrap_or(arn), doc);
    }
    if let Some(boundary) = role
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn())
    {
        let doc = managed_policy(&iam, s, boundary).await?;
        store.boundary(role_arn, doc);
    }
    Ok(())
}

async fn managed_policy(
    iam: &aws_sdk_iam::Client,
    s: &AccountConfig,
    arn: &str,
) -> Result<Document, AwsError> {
    let policy = s
        .call(
            "iam:GetPolicy",
            arn,
            iam.get_policy().policy_arn(arn).send(),
        )
        .await?;
    let version = policy
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_owned();
    let v = s
        .call(
            "iam:GetPolicyVersion",
            arn,
            iam.get_policy_version()
                .policy_arn(arn)
                .version_id(&version)
                .send(),
        )
        .await?;
    Ok(v.policy_version()
        .and_then(|p| p.document())
        .map_or(Document(serde_json::Value::Null), document))
}
