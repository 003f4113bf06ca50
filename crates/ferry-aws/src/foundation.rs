//! The foundation in the accounts: read what is live (for `ferry plan` and `verify --live`),
//! apply a plan (`ferry bootstrap`), and remove it (`ferry destroy`). What to create comes from
//! ferry-plan; this module only talks to AWS.
//!
//! Order matters across accounts: policies in the shared account name the target accounts'
//! roles, which AWS checks exist, and the target roles' policies name the shared key. So
//! bootstrap makes the shared resources without their cross-account policies, then the target
//! roles, then the shared policies — retrying while IAM propagates new roles.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_sdk_iam::error::ProvideErrorMetadata;
use ferry_plan::Names;
use ferry_plan::diff::{Change, ChangeKind, LiveState};
use ferry_plan::foundation::{
    AccountKind, AccountPlan, Foundation, Resource, TAG_MANAGED_BY, TAG_PIPELINE,
};
use ferry_plan::verify::PolicyStore;
use serde_json::{Value, json};

use crate::error::AwsError;
use crate::session::{AccountConfig, Aws, CallLog, RoleTarget, s3_client};

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
        aws.calls.record("sts:GetCallerIdentity");
        let who = aws_sdk_sts::Client::new(&shared_config.config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| {
                shared_config
                    .site
                    .error("sts:GetCallerIdentity", "the caller", &e)
            })?;
        let account = who.account().unwrap_or_default();
        if account != shared_plan.id {
            return Err(shared_config.site.fail(
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

fn tags(pipeline: &str) -> [(&'static str, String); 2] {
    [
        (TAG_PIPELINE, pipeline.to_owned()),
        (TAG_MANAGED_BY, "ferry".to_owned()),
    ]
}

fn is_ferrys(tags: &BTreeMap<String, String>, pipeline: &str) -> bool {
    tags.get(TAG_MANAGED_BY).map(String::as_str) == Some("ferry")
        && tags.get(TAG_PIPELINE).map(String::as_str) == Some(pipeline)
}

/// IAM returns policy documents URL-encoded.
fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(
                std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                16,
            )
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A policy document from its text (IAM's URL-encoded form too).
fn document(text: &str) -> Value {
    let decoded = if text.trim_start().starts_with('%') {
        url_decode(text)
    } else {
        text.to_owned()
    };
    serde_json::from_str(&decoded).unwrap_or(Value::String(decoded))
}

/// The artifact key's ARN, when its alias exists.
pub async fn key_arn(
    shared: &AccountConfig,
    calls: &CallLog,
    alias: &str,
) -> Result<Option<String>, AwsError> {
    calls.record("kms:DescribeKey");
    let key = aws_sdk_kms::Client::new(&shared.config)
        .describe_key()
        .key_id(alias)
        .send()
        .await;
    Ok(shared
        .site
        .found("kms:DescribeKey", alias, key)?
        .and_then(|k| k.key_metadata().and_then(|m| m.arn()).map(str::to_owned)))
}

/// The key of `alias`, created (with rotation, tagged, aliased) when it does not exist yet.
pub async fn ensure_key(
    shared: &AccountConfig,
    calls: &CallLog,
    pipeline: &str,
    alias: &str,
    description: &str,
) -> Result<(String, bool), AwsError> {
    if let Some(arn) = key_arn(shared, calls, alias).await? {
        return Ok((arn, false));
    }
    let kms = aws_sdk_kms::Client::new(&shared.config);
    calls.record("kms:CreateKey");
    let mut create = kms.create_key().description(description);
    for (k, v) in tags(pipeline) {
        create = create.tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| {
                    shared
                        .site
                        .fail("kms:CreateKey", alias, "InvalidTag", e.to_string())
                })?,
        );
    }
    let key = create
        .send()
        .await
        .map_err(|e| shared.site.error("kms:CreateKey", alias, &e))?;
    let meta = key.key_metadata().ok_or_else(|| {
        shared
            .site
            .fail("kms:CreateKey", alias, "NoKey", "no key returned")
    })?;
    let (id, arn) = (
        meta.key_id().to_owned(),
        meta.arn().unwrap_or_default().to_owned(),
    );
    calls.record("kms:CreateAlias");
    kms.create_alias()
        .alias_name(alias)
        .target_key_id(&id)
        .send()
        .await
        .map_err(|e| shared.site.error("kms:CreateAlias", alias, &e))?;
    calls.record("kms:EnableKeyRotation");
    kms.enable_key_rotation()
        .key_id(&id)
        .send()
        .await
        .map_err(|e| shared.site.error("kms:EnableKeyRotation", &arn, &e))?;
    Ok((arn, true))
}

/// What is live, and which existing resources are not ferry's (no ferry tags for this pipeline).
#[derive(Debug, Default)]
pub struct Live {
    pub state: LiveState,
    pub foreign: BTreeSet<(String, String)>,
}

/// Reads every resource of `foundation` that exists.
pub async fn read_live(
    foundation: &Foundation,
    sessions: &Sessions,
    calls: &CallLog,
) -> Result<Live, AwsError> {
    let mut live = Live::default();
    for account in &foundation.accounts {
        let Some(s) = sessions.of(account) else {
            continue;
        };
        for r in &account.resources {
            let found = match r {
                Resource::Key { alias, .. } => read_key(s, calls, alias).await?,
                Resource::Bucket { name, .. } => read_bucket(s, calls, name).await?,
                Resource::Repository { name, .. } => read_repository(s, calls, name).await?,
                Resource::Role { name, policies, .. } => {
                    read_role(s, calls, name, policies).await?
                }
            };
            if let Some((doc, tags)) = found {
                if !is_ferrys(&tags, &foundation.pipeline) {
                    live.foreign.insert((account.name.clone(), r.address()));
                }
                live.state.insert(&account.name, &r.address(), doc);
            }
        }
    }
    Ok(live)
}

type Found = Option<(Value, BTreeMap<String, String>)>;

async fn read_key(s: &AccountConfig, calls: &CallLog, alias: &str) -> Result<Found, AwsError> {
    let kms = aws_sdk_kms::Client::new(&s.config);
    calls.record("kms:DescribeKey");
    let Some(key) = s.site.found(
        "kms:DescribeKey",
        alias,
        kms.describe_key().key_id(alias).send().await,
    )?
    else {
        return Ok(None);
    };
    let meta = key.key_metadata().ok_or_else(|| {
        s.site
            .fail("kms:DescribeKey", alias, "NoKey", "no key metadata")
    })?;
    let id = meta.key_id().to_owned();
    calls.record("kms:GetKeyPolicy");
    let policy = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| s.site.error("kms:GetKeyPolicy", &id, &e))?;
    calls.record("kms:GetKeyRotationStatus");
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .map_err(|e| s.site.error("kms:GetKeyRotationStatus", &id, &e))?;
    calls.record("kms:ListResourceTags");
    let tag_list = kms
        .list_resource_tags()
        .key_id(&id)
        .send()
        .await
        .map_err(|e| s.site.error("kms:ListResourceTags", &id, &e))?;
    let tags = tag_list
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect();
    let doc = json!({"description": meta.description().unwrap_or_default(), "rotation": rotation.key_rotation_enabled(), "policy": document(policy.policy().unwrap_or("{}"))});
    Ok(Some((doc, tags)))
}

async fn read_bucket(s: &AccountConfig, calls: &CallLog, name: &str) -> Result<Found, AwsError> {
    let s3 = s3_client(&s.config);
    let site = &s.site;
    let resource = format!("s3://{name}");
    calls.record("s3:HeadBucket");
    if let Err(e) = s3.head_bucket().bucket(name).send().await {
        let err = site.error("s3:HeadBucket", &resource, &e);
        let missing =
            err.is_not_found() || e.raw_response().is_some_and(|r| r.status().as_u16() == 404);
        return if missing { Ok(None) } else { Err(err) };
    }
    // A configuration not set reads as null (the plan sets it); one that cannot be read is
    // marked so, and left alone.
    let settled = |r: Result<Value, AwsError>| match r {
        Ok(v) => v,
        Err(e) if e.is_not_found() || e.code.starts_with("NoSuch") => Value::Null,
        Err(e) => ferry_plan::diff::unreadable(&format!(
            "{}: {}",
            e.code,
            e.message.chars().take(120).collect::<String>()
        )),
    };
    calls.record("s3:GetBucketVersioning");
    let versioning = settled(
        s3.get_bucket_versioning()
            .bucket(name)
            .send()
            .await
            .map(|v| json!(v.status().map(|s| s.as_str())))
            .map_err(|e| site.error("s3:GetBucketVersioning", &resource, &e)),
    );
    calls.record("s3:GetBucketOwnershipControls");
    let ownership = settled(
        s3.get_bucket_ownership_controls()
            .bucket(name)
            .send()
            .await
            .map(|o| {
                json!(
                    o.ownership_controls()
                        .and_then(|c| c.rules().first())
                        .map(|r| r.object_ownership().as_str().to_owned())
                )
            })
            .map_err(|e| site.error("s3:GetBucketOwnershipControls", &resource, &e)),
    );
    calls.record("s3:GetPublicAccessBlock");
    let block = settled(
        s3.get_public_access_block()
            .bucket(name)
            .send()
            .await
            .map(|b| {
                json!(b.public_access_block_configuration().map(|c| json!({"BlockPublicAcls": c.block_public_acls().unwrap_or(false), "IgnorePublicAcls": c.ignore_public_acls().unwrap_or(false), "BlockPublicPolicy": c.block_public_policy().unwrap_or(false), "RestrictPublicBuckets": c.restrict_public_buckets().unwrap_or(false)})))
            })
            .map_err(|e| site.error("s3:GetPublicAccessBlock", &resource, &e)),
    );
    calls.record("s3:GetBucketEncryption");
    let encryption = settled(
        s3.get_bucket_encryption()
            .bucket(name)
            .send()
            .await
            .map(|e| {
                json!(e.server_side_encryption_configuration().and_then(|c| c.rules().first()).map(|r| {
                    let d = r.apply_server_side_encryption_by_default();
                    json!({"algorithm": d.map(|d| d.sse_algorithm().as_str()), "key": d.and_then(|d| d.kms_master_key_id()), "bucket_key": r.bucket_key_enabled().unwrap_or(false)})
                }))
            })
            .map_err(|e| site.error("s3:GetBucketEncryption", &resource, &e)),
    );
    calls.record("s3:GetBucketPolicy");
    let policy = settled(
        s3.get_bucket_policy()
            .bucket(name)
            .send()
            .await
            .map(|p| p.policy().map_or(Value::Null, document))
            .map_err(|e| site.error("s3:GetBucketPolicy", &resource, &e)),
    );
    calls.record("s3:GetBucketLifecycleConfiguration");
    let lifecycle = settled(
        s3.get_bucket_lifecycle_configuration()
            .bucket(name)
            .send()
            .await
            .map(|l| {
                json!({"Rules": l.rules().iter().map(|r| {
                    let mut rule = json!({"ID": r.id(), "Status": r.status().as_str(), "Filter": {"Prefix": r.filter().and_then(|f| f.prefix()).unwrap_or("")}});
                    if let Some(a) = r.abort_incomplete_multipart_upload() {
                        rule["AbortIncompleteMultipartUpload"] = json!({"DaysAfterInitiation": a.days_after_initiation()});
                    }
                    if let Some(n) = r.noncurrent_version_expiration() {
                        rule["NoncurrentVersionExpiration"] = json!({"NoncurrentDays": n.noncurrent_days()});
                    }
                    rule
                }).collect::<Vec<_>>()})
            })
            .map_err(|e| site.error("s3:GetBucketLifecycleConfiguration", &resource, &e)),
    );
    calls.record("s3:GetBucketTagging");
    let tags = match s3.get_bucket_tagging().bucket(name).send().await {
        Ok(t) => t
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let doc = json!({
        "versioning": versioning,
        "ownership": ownership,
        "public_access_block": block,
        "encryption": encryption,
        "policy": policy,
        "lifecycle": lifecycle,
    });
    Ok(Some((doc, tags)))
}

async fn read_repository(
    s: &AccountConfig,
    calls: &CallLog,
    name: &str,
) -> Result<Found, AwsError> {
    let ecr = aws_sdk_ecr::Client::new(&s.config);
    calls.record("ecr:DescribeRepositories");
    let listed = ecr
        .describe_repositories()
        .repository_names(name)
        .send()
        .await;
    let Some(repo) = s
        .site
        .found("ecr:DescribeRepositories", name, listed)?
        .and_then(|r| r.repositories().first().cloned())
    else {
        return Ok(None);
    };
    calls.record("ecr:GetLifecyclePolicy");
    let lifecycle = ecr
        .get_lifecycle_policy()
        .repository_name(name)
        .send()
        .await
        .ok()
        .and_then(|l| l.lifecycle_policy_text().map(document));
    calls.record("ecr:GetRepositoryPolicy");
    let policy = ecr
        .get_repository_policy()
        .repository_name(name)
        .send()
        .await
        .ok()
        .and_then(|p| p.policy_text().map(document));
    calls.record("ecr:ListTagsForResource");
    let tags = match ecr
        .list_tags_for_resource()
        .resource_arn(repo.repository_arn().unwrap_or_default())
        .send()
        .await
    {
        Ok(t) => t
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        Err(_) => BTreeMap::new(),
    };
    let doc = json!({
        "scan_on_push": repo.image_scanning_configuration().is_some_and(|c| c.scan_on_push()),
        "tag_mutability": repo.image_tag_mutability().map(|m| m.as_str()),
        "lifecycle": lifecycle,
        "policy": policy,
    });
    Ok(Some((doc, tags)))
}

async fn read_role(
    s: &AccountConfig,
    calls: &CallLog,
    name: &str,
    planned: &BTreeMap<String, Value>,
) -> Result<Found, AwsError> {
    let iam = aws_sdk_iam::Client::new(&s.config);
    calls.record("iam:GetRole");
    let Some(role) = s.site.found(
        "iam:GetRole",
        name,
        iam.get_role().role_name(name).send().await,
    )?
    else {
        return Ok(None);
    };
    let role = role.role().ok_or_else(|| {
        s.site
            .fail("iam:GetRole", name, "NoRole", "no role returned")
    })?;
    let mut tags: BTreeMap<String, String> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    if tags.is_empty() {
        calls.record("iam:ListRoleTags");
        if let Ok(t) = iam.list_role_tags().role_name(name).send().await {
            tags = t
                .tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
        }
    }
    // Only ferry's inline policies: ones of the plan, or named `ferry-…`; others are the team's.
    let mut policies = serde_json::Map::new();
    for policy in inline_policy_names(&iam, s, calls, name).await? {
        if planned.contains_key(&policy) || policy.starts_with("ferry-") {
            calls.record("iam:GetRolePolicy");
            let p = iam
                .get_role_policy()
                .role_name(name)
                .policy_name(&policy)
                .send()
                .await
                .map_err(|e| {
                    s.site
                        .error("iam:GetRolePolicy", &format!("{name}/{policy}"), &e)
                })?;
            policies.insert(policy, document(p.policy_document()));
        }
    }
    let doc = json!({
        "description": role.description().unwrap_or_default(),
        "trust": role.assume_role_policy_document().map(document),
        "policies": policies,
    });
    Ok(Some((doc, tags)))
}

async fn inline_policy_names(
    iam: &aws_sdk_iam::Client,
    s: &AccountConfig,
    calls: &CallLog,
    role: &str,
) -> Result<Vec<String>, AwsError> {
    calls.record("iam:ListRolePolicies");
    let list = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| s.site.error("iam:ListRolePolicies", role, &e))?;
    Ok(list.policy_names().to_vec())
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
                if (e.code.contains("Malformed")
                    || e.code == "InvalidParameterException"
                    || e.code == "InvalidArgument")
                    && e.message.to_lowercase().contains("principal")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            other => return other,
        }
    }
}

/// Applies `changes` (from [`ferry_plan::diff::diff`]) to the accounts, in the order that
/// lets AWS accept each policy. Resources that exist but are not ferry's are refused.
pub async fn apply(
    foundation: &Foundation,
    sessions: &Sessions,
    calls: &CallLog,
    changes: &[Change],
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), AwsError> {
    let pending = |account: &str, address: &str| {
        changes.iter().find(|c| {
            c.account == account && c.address == address && c.kind != ChangeKind::Unchanged
        })
    };
    let shared_plan = shared(foundation);
    // 1. The shared account's own resources, without the policies that name other accounts.
    for r in &shared_plan.resources {
        let Some(change) = pending(&shared_plan.name, &r.address()) else {
            continue;
        };
        progress(&format!("{} {} in shared", change.kind.mark(), r.address()));
        apply_resource(
            &sessions.shared,
            calls,
            &foundation.pipeline,
            r,
            change,
            Phase::Own,
        )
        .await?;
    }
    // 2. The target accounts' roles.
    for account in foundation
        .accounts
        .iter()
        .filter(|a| a.kind == AccountKind::Target)
    {
        let Some(s) = sessions.targets.get(&account.name) else {
            continue;
        };
        for r in &account.resources {
            let Some(change) = pending(&account.name, &r.address()) else {
                continue;
            };
            progress(&format!(
                "{} {} in {}",
                change.kind.mark(),
                r.address(),
                account.name
            ));
            apply_resource(s, calls, &foundation.pipeline, r, change, Phase::Own).await?;
        }
    }
    // 3. The shared policies that name the target roles.
    for r in &shared_plan.resources {
        let Some(change) = pending(&shared_plan.name, &r.address()) else {
            continue;
        };
        apply_resource(
            &sessions.shared,
            calls,
            &foundation.pipeline,
            r,
            change,
            Phase::CrossAccount,
        )
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Own,
    CrossAccount,
}

fn changed(change: &Change, field: &str) -> bool {
    change.kind == ChangeKind::Create || change.fields.iter().any(|f| f.field == field)
}

async fn apply_resource(
    s: &AccountConfig,
    calls: &CallLog,
    pipeline: &str,
    r: &Resource,
    change: &Change,
    phase: Phase,
) -> Result<(), AwsError> {
    let site = &s.site;
    match (r, phase) {
        (
            Resource::Key {
                alias, description, ..
            },
            Phase::Own,
        ) => {
            // Created, with its description and rotation, by `ensure_key` before the plan was
            // made; a key that drifted gets them back.
            if change.kind == ChangeKind::Update {
                let kms = aws_sdk_kms::Client::new(&s.config);
                let id = key_arn(s, calls, alias)
                    .await?
                    .unwrap_or_else(|| alias.clone());
                if changed(change, "description") {
                    calls.record("kms:UpdateKeyDescription");
                    kms.update_key_description()
                        .key_id(&id)
                        .description(description)
                        .send()
                        .await
                        .map_err(|e| site.error("kms:UpdateKeyDescription", &id, &e))?;
                }
                if changed(change, "rotation") {
                    calls.record("kms:EnableKeyRotation");
                    kms.enable_key_rotation()
                        .key_id(&id)
                        .send()
                        .await
                        .map_err(|e| site.error("kms:EnableKeyRotation", &id, &e))?;
                }
            }
        }
        (Resource::Key { alias, policy, .. }, Phase::CrossAccount) => {
            if changed(change, "policy") {
                let kms = aws_sdk_kms::Client::new(&s.config);
                let id = key_arn(s, calls, alias)
                    .await?
                    .unwrap_or_else(|| alias.clone());
                let text = policy.to_string();
                propagating(|| async {
                    calls.record("kms:PutKeyPolicy");
                    kms.put_key_policy()
                        .key_id(&id)
                        .policy_name("default")
                        .policy(&text)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| site.error("kms:PutKeyPolicy", &id, &e))
                })
                .await?;
            }
        }
        (
            Resource::Bucket {
                name,
                key_arn,
                lifecycle,
                ..
            },
            Phase::Own,
        ) => apply_bucket(s, calls, pipeline, name, key_arn, lifecycle, change).await?,
        (Resource::Bucket { name, policy, .. }, Phase::CrossAccount) => {
            if changed(change, "policy") {
                let s3 = s3_client(&s.config);
                let text = policy.to_string();
                propagating(|| async {
                    calls.record("s3:PutBucketPolicy");
                    s3.put_bucket_policy()
                        .bucket(name)
                        .policy(&text)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| site.error("s3:PutBucketPolicy", &format!("s3://{name}"), &e))
                })
                .await?;
            }
        }
        (
            Resource::Repository {
                name, lifecycle, ..
            },
            Phase::Own,
        ) => apply_repository(s, calls, pipeline, name, lifecycle, change).await?,
        (
            Resource::Repository {
                name,
                policy: Some(policy),
                ..
            },
            Phase::CrossAccount,
        ) => {
            if changed(change, "policy") {
                let ecr = aws_sdk_ecr::Client::new(&s.config);
                let text = policy.to_string();
                propagating(|| async {
                    calls.record("ecr:SetRepositoryPolicy");
                    ecr.set_repository_policy()
                        .repository_name(name)
                        .policy_text(&text)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| site.error("ecr:SetRepositoryPolicy", name, &e))
                })
                .await?;
            }
        }
        (Resource::Repository { .. }, Phase::CrossAccount) => {}
        (
            Resource::Role {
                name,
                description,
                trust,
                policies,
            },
            Phase::Own,
        ) => {
            apply_role(
                s,
                calls,
                pipeline,
                name,
                description,
                trust,
                policies,
                change,
            )
            .await?
        }
        (Resource::Role { .. }, Phase::CrossAccount) => {}
    }
    Ok(())
}

async fn apply_bucket(
    s: &AccountConfig,
    calls: &CallLog,
    pipeline: &str,
    name: &str,
    key_arn: &str,
    lifecycle: &Value,
    change: &Change,
) -> Result<(), AwsError> {
    use aws_sdk_s3::types as t;
    let s3 = s3_client(&s.config);
    let site = &s.site;
    let resource = format!("s3://{name}");
    let err = |action: &'static str| {
        move |e: &dyn std::fmt::Display| {
            site.fail(
                action,
                &format!("s3://{name}"),
                "InvalidRequest",
                e.to_string(),
            )
        }
    };
    if change.kind == ChangeKind::Create {
        calls.record("s3:CreateBucket");
        let mut create = s3.create_bucket().bucket(name);
        let region = s
            .config
            .region()
            .map(ToString::to_string)
            .unwrap_or_default();
        if region != "us-east-1" && !region.is_empty() {
            create = create.create_bucket_configuration(
                t::CreateBucketConfiguration::builder()
                    .location_constraint(t::BucketLocationConstraint::from(region.as_str()))
                    .build(),
            );
        }
        create
            .send()
            .await
            .map_err(|e| site.error("s3:CreateBucket", &resource, &e))?;
        calls.record("s3:PutBucketTagging");
        let tagging = t::Tagging::builder()
            .set_tag_set(Some(
                tags(pipeline)
                    .into_iter()
                    .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err("s3:PutBucketTagging")(&e))?,
            ))
            .build()
            .map_err(|e| err("s3:PutBucketTagging")(&e))?;
        s3.put_bucket_tagging()
            .bucket(name)
            .tagging(tagging)
            .send()
            .await
            .map_err(|e| site.error("s3:PutBucketTagging", &resource, &e))?;
    }
    if changed(change, "public_access_block") {
        calls.record("s3:PutPublicAccessBlock");
        let block = t::PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        s3.put_public_access_block()
            .bucket(name)
            .public_access_block_configuration(block)
            .send()
            .await
            .map_err(|e| site.error("s3:PutPublicAccessBlock", &resource, &e))?;
    }
    if changed(change, "ownership") {
        calls.record("s3:PutBucketOwnershipControls");
        let rule = t::OwnershipControlsRule::builder()
            .object_ownership(t::ObjectOwnership::BucketOwnerEnforced)
            .build()
            .map_err(|e| err("s3:PutBucketOwnershipControls")(&e))?;
        let controls = t::OwnershipControls::builder()
            .rules(rule)
            .build()
            .map_err(|e| err("s3:PutBucketOwnershipControls")(&e))?;
        s3.put_bucket_ownership_controls()
            .bucket(name)
            .ownership_controls(controls)
            .send()
            .await
            .map_err(|e| site.error("s3:PutBucketOwnershipControls", &resource, &e))?;
    }
    if changed(change, "versioning") {
        calls.record("s3:PutBucketVersioning");
        s3.put_bucket_versioning()
            .bucket(name)
            .versioning_configuration(
                t::VersioningConfiguration::builder()
                    .status(t::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| site.error("s3:PutBucketVersioning", &resource, &e))?;
    }
    if changed(change, "encryption") {
        calls.record("s3:PutBucketEncryption");
        let default = t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(t::ServerSideEncryption::AwsKms)
            .kms_master_key_id(key_arn)
            .build()
            .map_err(|e| err("s3:PutBucketEncryption")(&e))?;
        let rule = t::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(true)
            .build();
        let config = t::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| err("s3:PutBucketEncryption")(&e))?;
        s3.put_bucket_encryption()
            .bucket(name)
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(|e| site.error("s3:PutBucketEncryption", &resource, &e))?;
    }
    if changed(change, "lifecycle") {
        calls.record("s3:PutBucketLifecycleConfiguration");
        let mut rules = Vec::new();
        for r in lifecycle["Rules"].as_array().into_iter().flatten() {
            let mut rule = t::LifecycleRule::builder()
                .id(r["ID"].as_str().unwrap_or("ferry"))
                .status(t::ExpirationStatus::Enabled)
                .filter(
                    t::LifecycleRuleFilter::builder()
                        .prefix(r["Filter"]["Prefix"].as_str().unwrap_or(""))
                        .build(),
                );
            if let Some(days) = r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"].as_i64()
            {
                rule = rule.abort_incomplete_multipart_upload(
                    t::AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(i32::try_from(days).unwrap_or(7))
                        .build(),
                );
            }
            if let Some(days) = r["NoncurrentVersionExpiration"]["NoncurrentDays"].as_i64() {
                rule = rule.noncurrent_version_expiration(
                    t::NoncurrentVersionExpiration::builder()
                        .noncurrent_days(i32::try_from(days).unwrap_or(30))
                        .build(),
                );
            }
            rules.push(
                rule.build()
                    .map_err(|e| err("s3:PutBucketLifecycleConfiguration")(&e))?,
            );
        }
        let config = t::BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| err("s3:PutBucketLifecycleConfiguration")(&e))?;
        s3.put_bucket_lifecycle_configuration()
            .bucket(name)
            .lifecycle_configuration(config)
            .send()
            .await
            .map_err(|e| site.error("s3:PutBucketLifecycleConfiguration", &resource, &e))?;
    }
    Ok(())
}

async fn apply_repository(
    s: &AccountConfig,
    calls: &CallLog,
    pipeline: &str,
    name: &str,
    lifecycle: &Value,
    change: &Change,
) -> Result<(), AwsError> {
    use aws_sdk_ecr::types as t;
    let ecr = aws_sdk_ecr::Client::new(&s.config);
    let site = &s.site;
    if change.kind == ChangeKind::Create {
        calls.record("ecr:CreateRepository");
        let mut create = ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(t::ImageTagMutability::Immutable)
            .image_scanning_configuration(
                t::ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            );
        for (k, v) in tags(pipeline) {
            create = create.tags(t::Tag::builder().key(k).value(v).build().map_err(|e| {
                site.fail("ecr:CreateRepository", name, "InvalidTag", e.to_string())
            })?);
        }
        create
            .send()
            .await
            .map_err(|e| site.error("ecr:CreateRepository", name, &e))?;
    } else {
        if changed(change, "tag_mutability") {
            calls.record("ecr:PutImageTagMutability");
            ecr.put_image_tag_mutability()
                .repository_name(name)
                .image_tag_mutability(t::ImageTagMutability::Immutable)
                .send()
                .await
                .map_err(|e| site.error("ecr:PutImageTagMutability", name, &e))?;
        }
        if changed(change, "scan_on_push") {
            calls.record("ecr:PutImageScanningConfiguration");
            ecr.put_image_scanning_configuration()
                .repository_name(name)
                .image_scanning_configuration(
                    t::ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| site.error("ecr:PutImageScanningConfiguration", name, &e))?;
        }
    }
    if changed(change, "lifecycle") {
        calls.record("ecr:PutLifecyclePolicy");
        ecr.put_lifecycle_policy()
            .repository_name(name)
            .lifecycle_policy_text(lifecycle.to_string())
            .send()
            .await
            .map_err(|e| site.error("ecr:PutLifecyclePolicy", name, &e))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_role(
    s: &AccountConfig,
    calls: &CallLog,
    pipeline: &str,
    name: &str,
    description: &str,
    trust: &Value,
    policies: &BTreeMap<String, Value>,
    change: &Change,
) -> Result<(), AwsError> {
    let iam = aws_sdk_iam::Client::new(&s.config);
    let site = &s.site;
    let trust_text = trust.to_string();
    if change.kind == ChangeKind::Create {
        let mut create = iam
            .create_role()
            .role_name(name)
            .description(description)
            .assume_role_policy_document(&trust_text)
            .max_session_duration(3600);
        for (k, v) in tags(pipeline) {
            create = create.tags(
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| site.fail("iam:CreateRole", name, "InvalidTag", e.to_string()))?,
            );
        }
        propagating(|| async {
            calls.record("iam:CreateRole");
            create
                .clone()
                .send()
                .await
                .map(|_| ())
                .map_err(|e| site.error("iam:CreateRole", name, &e))
        })
        .await?;
    } else {
        if changed(change, "trust") {
            propagating(|| async {
                calls.record("iam:UpdateAssumeRolePolicy");
                iam.update_assume_role_policy()
                    .role_name(name)
                    .policy_document(&trust_text)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| site.error("iam:UpdateAssumeRolePolicy", name, &e))
            })
            .await?;
        }
        if changed(change, "description") {
            calls.record("iam:UpdateRole");
            iam.update_role()
                .role_name(name)
                .description(description)
                .send()
                .await
                .map_err(|e| site.error("iam:UpdateRole", name, &e))?;
        }
    }
    if changed(change, "policies") {
        let live: BTreeSet<String> = match change.fields.iter().find(|f| f.field == "policies") {
            Some(f) => f
                .before
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default(),
            None => BTreeSet::new(),
        };
        for (policy_name, doc) in policies {
            calls.record("iam:PutRolePolicy");
            iam.put_role_policy()
                .role_name(name)
                .policy_name(policy_name)
                .policy_document(doc.to_string())
                .send()
                .await
                .map_err(|e| {
                    site.error("iam:PutRolePolicy", &format!("{name}/{policy_name}"), &e)
                })?;
        }
        // ferry's inline policies the plan no longer has.
        for stale in live.iter().filter(|p| !policies.contains_key(*p)) {
            calls.record("iam:DeleteRolePolicy");
            iam.delete_role_policy()
                .role_name(name)
                .policy_name(stale)
                .send()
                .await
                .map_err(|e| site.error("iam:DeleteRolePolicy", &format!("{name}/{stale}"), &e))?;
        }
    }
    Ok(())
}

/// What `ferry destroy` did to one resource.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Removed {
    pub account: String,
    pub address: String,
    pub outcome: String,
}

/// Removes what bootstrap made, target accounts first. Resources that are not ferry's are
/// left alone; the bucket and repositories only when empty, unless `force`.
pub async fn destroy(
    foundation: &Foundation,
    sessions: &Sessions,
    calls: &CallLog,
    force: bool,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<Removed>, AwsError> {
    let live = read_live(foundation, sessions, calls).await?;
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
            let key = (account.name.clone(), r.address());
            let outcome = if !live.state.resources.contains_key(&key) {
                "absent".to_owned()
            } else if live.foreign.contains(&key) {
                "kept: not ferry's (no ferry tags for this pipeline)".to_owned()
            } else {
                progress(&format!("- {} in {}", r.address(), account.name));
                remove(s, calls, r, force).await?
            };
            out.push(Removed {
                account: account.name.clone(),
                address: r.address(),
                outcome,
            });
        }
    }
    Ok(out)
}

async fn remove(
    s: &AccountConfig,
    calls: &CallLog,
    r: &Resource,
    force: bool,
) -> Result<String, AwsError> {
    let site = &s.site;
    match r {
        Resource::Role { name, .. } => {
            let iam = aws_sdk_iam::Client::new(&s.config);
            for policy in inline_policy_names(&iam, s, calls, name).await? {
                calls.record("iam:DeleteRolePolicy");
                iam.delete_role_policy()
                    .role_name(name)
                    .policy_name(&policy)
                    .send()
                    .await
                    .map_err(|e| {
                        site.error("iam:DeleteRolePolicy", &format!("{name}/{policy}"), &e)
                    })?;
            }
            calls.record("iam:DeleteRole");
            iam.delete_role()
                .role_name(name)
                .send()
                .await
                .map_err(|e| site.error("iam:DeleteRole", name, &e))?;
            Ok("deleted".into())
        }
        Resource::Repository { name, .. } => {
            calls.record("ecr:DeleteRepository");
            match aws_sdk_ecr::Client::new(&s.config)
                .delete_repository()
                .repository_name(name)
                .force(force)
                .send()
                .await
            {
                Ok(_) => Ok("deleted".into()),
                Err(e) if e.code() == Some("RepositoryNotEmptyException") => {
                    Ok("kept: it holds images (--force deletes them)".into())
                }
                Err(e) => Err(site.error("ecr:DeleteRepository", name, &e)),
            }
        }
        Resource::Bucket { name, .. } => {
            let s3 = s3_client(&s.config);
            let resource = format!("s3://{name}");
            calls.record("s3:ListObjectVersions");
            let versions = s3
                .list_object_versions()
                .bucket(name)
                .send()
                .await
                .map_err(|e| site.error("s3:ListObjectVersions", &resource, &e))?;
            let objects: Vec<(String, Option<String>)> = versions
                .versions()
                .iter()
                .map(|v| {
                    (
                        v.key().unwrap_or_default().to_owned(),
                        v.version_id().map(str::to_owned),
                    )
                })
                .chain(versions.delete_markers().iter().map(|m| {
                    (
                        m.key().unwrap_or_default().to_owned(),
                        m.version_id().map(str::to_owned),
                    )
                }))
                .collect();
            if !objects.is_empty() && !force {
                return Ok(format!(
                    "kept: it holds {} object version(s) (--force deletes them)",
                    objects.len()
                ));
            }
            for (key, version) in objects {
                calls.record("s3:DeleteObject");
                s3.delete_object()
                    .bucket(name)
                    .key(&key)
                    .set_version_id(version)
                    .send()
                    .await
                    .map_err(|e| site.error("s3:DeleteObject", &format!("{resource}/{key}"), &e))?;
            }
            calls.record("s3:DeleteBucket");
            s3.delete_bucket()
                .bucket(name)
                .send()
                .await
                .map_err(|e| site.error("s3:DeleteBucket", &resource, &e))?;
            Ok("deleted".into())
        }
        Resource::Key { alias, .. } => {
            let kms = aws_sdk_kms::Client::new(&s.config);
            let Some(arn) = key_arn(s, calls, alias).await? else {
                return Ok("absent".into());
            };
            calls.record("kms:DeleteAlias");
            kms.delete_alias()
                .alias_name(alias)
                .send()
                .await
                .map_err(|e| site.error("kms:DeleteAlias", alias, &e))?;
            // KMS never deletes a key at once: 7 days is the shortest wait it allows.
            calls.record("kms:ScheduleKeyDeletion");
            // By key id: AWS takes the ARN too, the emulator only the id.
            let id = arn.rsplit('/').next().unwrap_or(&arn);
            kms.schedule_key_deletion()
                .key_id(id)
                .pending_window_in_days(7)
                .send()
                .await
                .map_err(|e| site.error("kms:ScheduleKeyDeletion", &arn, &e))?;
            Ok(
                "scheduled for deletion in 7 days (KMS's shortest wait); its alias is deleted"
                    .into(),
            )
        }
    }
}

/// The policies really in the accounts, for `ferry verify --live`: each edge principal's
/// inline and attached policies and permissions boundary; the key, bucket, repository and
/// trust policies; and the SCPs of each account when the shared account can read them. An
/// unreadable policy is reported, and its edges fail; unreadable SCPs are reported only.
pub async fn live_policies(
    foundation: &Foundation,
    sessions: &Sessions,
    calls: &CallLog,
    names: &Names<'_>,
) -> PolicyStore {
    let mut store = PolicyStore::default();
    read_scps(foundation, &sessions.shared, calls, &mut store).await;
    let principals: BTreeSet<&str> = foundation
        .edges
        .iter()
        .filter(|e| e.by_role())
        .map(|e| e.principal.as_str())
        .chain(
            foundation
                .edges
                .iter()
                .filter(|e| e.action == "sts:AssumeRole")
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
        if let Err(e) = read_role_policies(session, calls, role_arn, &mut store).await {
            store.unreadable.push(format!("{role_arn}: {e}"));
        }
    }
    let shared_session = &sessions.shared;
    for r in &shared(foundation).resources {
        let read = match r {
            Resource::Key { alias, .. } => read_key(shared_session, calls, alias)
                .await
                .map(|f| f.map(|(d, _)| (names.key_arn.clone(), d["policy"].clone()))),
            Resource::Bucket { name, .. } => read_bucket(shared_session, calls, name)
                .await
                .map(|f| f.map(|(d, _)| (format!("arn:aws:s3:::{name}"), d["policy"].clone()))),
            Resource::Repository { name, .. } => read_repository(shared_session, calls, name)
                .await
                .map(|f| f.map(|(d, _)| (names.repository_arn(name), d["policy"].clone()))),
            Resource::Role { .. } => continue,
        };
        match read {
            Ok(Some((arn, policy))) if !policy.is_null() => store.resource(&arn, policy),
            Ok(_) => {}
            Err(e) => store.unreadable.push(format!("{}: {e}", r.address())),
        }
    }
    store
}

/// The SCPs of every account of the foundation, root first, as AWS Organizations gives them
/// to the shared account: it reads them when it is the organization's management account or
/// a delegated administrator for policies. When it cannot, verify says so and goes on: an
/// SCP may then still deny what the other policies allow.
async fn read_scps(
    foundation: &Foundation,
    s: &AccountConfig,
    calls: &CallLog,
    store: &mut PolicyStore,
) {
    let org = aws_sdk_organizations::Client::new(&s.config);
    calls.record("organizations:DescribeOrganization");
    let management = match org.describe_organization().send().await {
        Ok(out) => out
            .organization()
            .and_then(|o| o.master_account_id())
            .unwrap_or_default()
            .to_owned(),
        Err(e) => {
            let e = s
                .site
                .error("organizations:DescribeOrganization", "the organization", &e);
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
        match account_scps(&org, s, calls, &account.id, &mut cache).await {
            Ok(levels) => {
                for (level, docs) in levels {
                    store.scp_level(&account.id, &level, docs);
                }
            }
            Err(e) if e.is_not_found() => store.unreadable.push(format!(
                "service control policies of account {} ({}): it is not in the organization of {management}",
                account.id, account.name
            )),
            Err(e) if e.is_access_denied() => {
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
    levels: BTreeMap<String, Vec<Value>>,
}

/// One account's SCP levels, root first: the root, each organizational unit down, the account.
async fn account_scps(
    org: &aws_sdk_organizations::Client,
    s: &AccountConfig,
    calls: &CallLog,
    account_id: &str,
    cache: &mut OrgCache,
) -> Result<Vec<(String, Vec<Value>)>, AwsError> {
    use aws_sdk_organizations::types::{ParentType, PolicyType};
    let mut chain = vec![account_id.to_owned()];
    // Organizations nests at most five OUs below the root.
    while chain.len() <= 7 {
        let child = chain.last().cloned().unwrap_or_default();
        if !cache.parents.contains_key(&child) {
            calls.record("organizations:ListParents");
            let out = org
                .list_parents()
                .child_id(&child)
                .send()
                .await
                .map_err(|e| s.site.error("organizations:ListParents", &child, &e))?;
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
            let mut docs = Vec::new();
            let mut next = None;
            loop {
                calls.record("organizations:ListPoliciesForTarget");
                let out = org
                    .list_policies_for_target()
                    .target_id(&target)
                    .filter(PolicyType::ServiceControlPolicy)
                    .set_next_token(next)
                    .send()
                    .await
                    .map_err(|e| {
                        s.site
                            .error("organizations:ListPoliciesForTarget", &target, &e)
                    })?;
                for id in out.policies().iter().filter_map(|p| p.id()) {
                    calls.record("organizations:DescribePolicy");
                    let policy = org
                        .describe_policy()
                        .policy_id(id)
                        .send()
                        .await
                        .map_err(|e| s.site.error("organizations:DescribePolicy", id, &e))?;
                    let content = policy
                        .policy()
                        .and_then(|p| p.content())
                        .unwrap_or_default();
                    docs.push(document(content));
                }
                next = out.next_token().map(str::to_owned);
                if next.is_none() {
                    break;
                }
            }
            cache.levels.insert(target.clone(), docs);
        }
        let level = if target.starts_with("r-") {
            format!("root {target}")
        } else if target.starts_with("ou-") {
            format!("organizational unit {target}")
        } else {
            format!("account {target}")
        };
        levels.push((level, cache.levels[&target].clone()));
    }
    Ok(levels)
}

async fn read_role_policies(
    s: &AccountConfig,
    calls: &CallLog,
    role_arn: &str,
    store: &mut PolicyStore,
) -> Result<(), AwsError> {
    let iam = aws_sdk_iam::Client::new(&s.config);
    let name = role_arn.rsplit('/').next().unwrap_or_default();
    calls.record("iam:GetRole");
    // A role that does not exist has no policies: its edges fail, which is the finding.
    let Some(role) = s.site.found(
        "iam:GetRole",
        role_arn,
        iam.get_role().role_name(name).send().await,
    )?
    else {
        return Ok(());
    };
    let Some(role) = role.role() else {
        return Ok(());
    };
    if let Some(trust) = role.assume_role_policy_document() {
        store.resource(role_arn, document(trust));
    }
    for policy in inline_policy_names(&iam, s, calls, name).await? {
        calls.record("iam:GetRolePolicy");
        let p = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(&policy)
            .send()
            .await
            .map_err(|e| {
                s.site
                    .error("iam:GetRolePolicy", &format!("{name}/{policy}"), &e)
            })?;
        store.identity(role_arn, &policy, document(p.policy_document()));
    }
    calls.record("iam:ListAttachedRolePolicies");
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| s.site.error("iam:ListAttachedRolePolicies", role_arn, &e))?;
    for p in attached.attached_policies() {
        let arn = p.policy_arn().unwrap_or_default();
        let doc = managed_policy(&iam, s, calls, arn).await?;
        store.identity(role_arn, p.policy_name().unwrap_or(arn), doc);
    }
    if let Some(boundary) = role
        .permissions_boundary()
        .and_then(|b| b.permissions_boundary_arn())
    {
        let doc = managed_policy(&iam, s, calls, boundary).await?;
        store.boundary(role_arn, doc);
    }
    Ok(())
}

async fn managed_policy(
    iam: &aws_sdk_iam::Client,
    s: &AccountConfig,
    calls: &CallLog,
    arn: &str,
) -> Result<Value, AwsError> {
    calls.record("iam:GetPolicy");
    let policy = iam
        .get_policy()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| s.site.error("iam:GetPolicy", arn, &e))?;
    let version = policy
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_owned();
    calls.record("iam:GetPolicyVersion");
    let v = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&version)
        .send()
        .await
        .map_err(|e| s.site.error("iam:GetPolicyVersion", arn, &e))?;
    Ok(v.policy_version()
        .and_then(|p| p.document())
        .map(document)
        .unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iam_documents_are_url_decoded() {
        assert_eq!(
            document("%7B%22Version%22%3A%222012-10-17%22%7D"),
            json!({"Version": "2012-10-17"})
        );
        assert_eq!(document(r#"{"a": 1}"#), json!({"a": 1}));
    }
}
