//! An IAM role: its trust policy, description, session length and ferry's inline policies.

use std::collections::{BTreeMap, BTreeSet};

use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::RoleSpec;
use ferry_plan::{Document, Field, Resource};

use super::{Found, Removal, document, propagating, tags};
use crate::error::AwsError;
use crate::session::AccountConfig;

fn client(s: &AccountConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&s.config)
}

/// Ferry's tags, as IAM takes them when it creates a role or a provider.
pub(super) fn iam_tags(
    s: &AccountConfig,
    pipeline: &str,
    action: &str,
    resource: &str,
) -> Result<Vec<aws_sdk_iam::types::Tag>, AwsError> {
    tags(pipeline)
        .into_iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| s.fail(action, resource, "InvalidTag", e.to_string()))
        })
        .collect()
}

pub(super) async fn inline_policy_names(
    s: &AccountConfig,
    role: &str,
) -> Result<Vec<String>, AwsError> {
    let list = s
        .call(
            "iam:ListRolePolicies",
            role,
            client(s).list_role_policies().role_name(role).send(),
        )
        .await?;
    Ok(list.policy_names().to_vec())
}

pub(super) async fn inline_policy(
    s: &AccountConfig,
    role: &str,
    policy: &str,
) -> Result<Document, AwsError> {
    let p = s
        .call(
            "iam:GetRolePolicy",
            &format!("{role}/{policy}"),
            client(s)
                .get_role_policy()
                .role_name(role)
                .policy_name(policy)
                .send(),
        )
        .await?;
    Ok(document(p.policy_document()))
}

/// The role as it is, with only ferry's inline policies: the plan's (`planned`), or named
/// `ferry-…`; others are the team's and left out.
pub(super) async fn read(
    s: &AccountConfig,
    name: &str,
    planned: &BTreeMap<String, Document>,
) -> Result<Option<Found>, AwsError> {
    let iam = client(s);
    let Some(out) = s
        .find("iam:GetRole", name, iam.get_role().role_name(name).send())
        .await?
    else {
        return Ok(None);
    };
    let role = out
        .role()
        .ok_or_else(|| s.fail("iam:GetRole", name, "NoRole", "no role returned"))?;
    let mut tags: BTreeMap<String, String> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    if tags.is_empty()
        && let Ok(t) = s
            .call(
                "iam:ListRoleTags",
                name,
                iam.list_role_tags().role_name(name).send(),
            )
            .await
    {
        tags = t
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect();
    }
    let mut policies = BTreeMap::new();
    for policy in inline_policy_names(s, name).await? {
        if planned.contains_key(&policy) || policy.starts_with("ferry-") {
            let doc = inline_policy(s, name, &policy).await?;
            policies.insert(policy, doc);
        }
    }
    let spec = RoleSpec {
        name: name.to_owned(),
        description: role.description().unwrap_or_default().to_owned(),
        trust: role
            .assume_role_policy_document()
            .map_or(Document(serde_json::Value::Null), document),
        max_session_duration: role
            .max_session_duration()
            .unwrap_or(ferry_plan::foundation::ROLE_MAX_SESSION_SECS),
        policies,
    };
    Ok(Some(Found::new(Resource::Role(spec), tags)))
}

/// Creates or updates the role; `was` is the role as it was read (its policies, for the ones
/// to delete).
pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &RoleSpec,
    change: &Change,
    was: Option<&RoleSpec>,
) -> Result<(), AwsError> {
    let iam = client(s);
    let name = spec.name.as_str();
    let trust = spec.trust.to_string();
    if change.kind == ChangeKind::Create {
        let create = iam
            .create_role()
            .role_name(name)
            .description(&spec.description)
            .assume_role_policy_document(&trust)
            .max_session_duration(spec.max_session_duration)
            .set_tags(Some(iam_tags(s, pipeline, "iam:CreateRole", name)?));
        propagating(|| async {
            s.call("iam:CreateRole", name, create.clone().send())
                .await
                .map(|_| ())
        })
        .await?;
    } else {
        if change.touches(Field::Trust) {
            propagating(|| async {
                s.call(
                    "iam:UpdateAssumeRolePolicy",
                    name,
                    iam.update_assume_role_policy()
                        .role_name(name)
                        .policy_document(&trust)
                        .send(),
                )
                .await
                .map(|_| ())
            })
            .await?;
        }
        if change.touches(Field::Description) || change.touches(Field::MaxSessionDuration) {
            s.call(
                "iam:UpdateRole",
                name,
                iam.update_role()
                    .role_name(name)
                    .description(&spec.description)
                    .max_session_duration(spec.max_session_duration)
                    .send(),
            )
            .await?;
        }
    }
    if change.touches(Field::Policies) {
        for (policy_name, doc) in &spec.policies {
            s.call(
                "iam:PutRolePolicy",
                &format!("{name}/{policy_name}"),
                iam.put_role_policy()
                    .role_name(name)
                    .policy_name(policy_name)
                    .policy_document(doc.to_string())
                    .send(),
            )
            .await?;
        }
        // ferry's inline policies the plan no longer has.
        let live: BTreeSet<&String> = was.map(|w| w.policies.keys().collect()).unwrap_or_default();
        for stale in live.into_iter().filter(|p| !spec.policies.contains_key(*p)) {
            s.call(
                "iam:DeleteRolePolicy",
                &format!("{name}/{stale}"),
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(stale)
                    .send(),
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn remove(s: &AccountConfig, name: &str) -> Result<Removal, AwsError> {
    let iam = client(s);
    for policy in inline_policy_names(s, name).await? {
        s.call(
            "iam:DeleteRolePolicy",
            &format!("{name}/{policy}"),
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send(),
        )
        .await?;
    }
    s.call(
        "iam:DeleteRole",
        name,
        iam.delete_role().role_name(name).send(),
    )
    .await?;
    Ok(Removal::Deleted)
}
