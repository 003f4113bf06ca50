//! The artifact key: a customer-managed KMS key, its alias, rotation and key policy.

use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::KeySpec;
use ferry_plan::{Field, Resource};

use super::{Found, Phase, Removal, document, propagating, tags};
use crate::error::AwsError;
use crate::session::AccountConfig;

/// KMS never deletes a key at once: 7 days is the shortest wait it allows.
const DELETION_WINDOW_DAYS: i32 = 7;

fn client(s: &AccountConfig) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::new(&s.config)
}

/// The artifact key's ARN, when its alias exists.
pub async fn key_arn(s: &AccountConfig, alias: &str) -> Result<Option<String>, AwsError> {
    let key = s
        .find(
            "kms:DescribeKey",
            alias,
            client(s).describe_key().key_id(alias).send(),
        )
        .await?;
    Ok(key.and_then(|k| k.key_metadata().and_then(|m| m.arn()).map(str::to_owned)))
}

/// The key of `spec`'s alias, created (with its description, rotation and tags, then aliased)
/// when it does not exist yet. Every policy of the plan names the key's ARN, which KMS
/// chooses, so bootstrap makes it first. Returns the ARN and whether it was created.
pub async fn ensure_key(
    s: &AccountConfig,
    pipeline: &str,
    spec: &KeySpec,
) -> Result<(String, bool), AwsError> {
    let alias = &spec.alias;
    if let Some(arn) = key_arn(s, alias).await? {
        return Ok((arn, false));
    }
    let kms = client(s);
    let mut create = kms.create_key().description(&spec.description);
    for (k, v) in tags(pipeline) {
        create = create.tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| s.fail("kms:CreateKey", alias, "InvalidTag", e.to_string()))?,
        );
    }
    let key = s.call("kms:CreateKey", alias, create.send()).await?;
    let meta = key
        .key_metadata()
        .ok_or_else(|| s.fail("kms:CreateKey", alias, "NoKey", "no key returned"))?;
    let (id, arn) = (
        meta.key_id().to_owned(),
        meta.arn().unwrap_or_default().to_owned(),
    );
    s.call(
        "kms:CreateAlias",
        alias,
        kms.create_alias()
            .alias_name(alias)
            .target_key_id(&id)
            .send(),
    )
    .await?;
    if spec.rotation {
        s.call(
            "kms:EnableKeyRotation",
            &arn,
            kms.enable_key_rotation().key_id(&id).send(),
        )
        .await?;
    }
    Ok((arn, true))
}

pub(super) async fn read(s: &AccountConfig, alias: &str) -> Result<Option<Found>, AwsError> {
    let kms = client(s);
    let Some(key) = s
        .find(
            "kms:DescribeKey",
            alias,
            kms.describe_key().key_id(alias).send(),
        )
        .await?
    else {
        return Ok(None);
    };
    let meta = key
        .key_metadata()
        .ok_or_else(|| s.fail("kms:DescribeKey", alias, "NoKey", "no key metadata"))?;
    let id = meta.key_id().to_owned();
    let policy = s
        .call(
            "kms:GetKeyPolicy",
            &id,
            kms.get_key_policy()
                .key_id(&id)
                .policy_name("default")
                .send(),
        )
        .await?;
    let rotation = s
        .call(
            "kms:GetKeyRotationStatus",
            &id,
            kms.get_key_rotation_status().key_id(&id).send(),
        )
        .await?;
    let tag_list = s
        .call(
            "kms:ListResourceTags",
            &id,
            kms.list_resource_tags().key_id(&id).send(),
        )
        .await?;
    let tags = tag_list
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect();
    let spec = KeySpec {
        alias: alias.to_owned(),
        description: meta.description().unwrap_or_default().to_owned(),
        rotation: rotation.key_rotation_enabled(),
        policy: document(policy.policy().unwrap_or("{}")),
    };
    Ok(Some(Found::new(Resource::Key(spec), tags)))
}

pub(super) async fn apply(
    s: &AccountConfig,
    spec: &KeySpec,
    change: &Change,
    phase: Phase,
) -> Result<(), AwsError> {
    let kms = client(s);
    let id = || async {
        Ok::<_, AwsError>(
            key_arn(s, &spec.alias)
                .await?
                .unwrap_or_else(|| spec.alias.clone()),
        )
    };
    match phase {
        // Created by `ensure_key` before the plan was made; a key that drifted gets its
        // description and rotation back.
        Phase::Own if change.kind == ChangeKind::Update => {
            let id = id().await?;
            if change.touches(Field::Description) {
                s.call(
                    "kms:UpdateKeyDescription",
                    &id,
                    kms.update_key_description()
                        .key_id(&id)
                        .description(&spec.description)
                        .send(),
                )
                .await?;
            }
            if change.touches(Field::Rotation) {
                if spec.rotation {
                    s.call(
                        "kms:EnableKeyRotation",
                        &id,
                        kms.enable_key_rotation().key_id(&id).send(),
                    )
                    .await?;
                } else {
                    s.call(
                        "kms:DisableKeyRotation",
                        &id,
                        kms.disable_key_rotation().key_id(&id).send(),
                    )
                    .await?;
                }
            }
        }
        Phase::Own => {}
        Phase::CrossAccount if change.touches(Field::Policy) => {
            let id = id().await?;
            let text = spec.policy.to_string();
            propagating(|| async {
                s.call(
                    "kms:PutKeyPolicy",
                    &id,
                    kms.put_key_policy()
                        .key_id(&id)
                        .policy_name("default")
                        .policy(&text)
                        .send(),
                )
                .await
                .map(|_| ())
            })
            .await?;
        }
        Phase::CrossAccount => {}
    }
    Ok(())
}

pub(super) async fn remove(s: &AccountConfig, alias: &str) -> Result<Removal, AwsError> {
    let kms = client(s);
    let Some(arn) = key_arn(s, alias).await? else {
        return Ok(Removal::Absent);
    };
    s.call(
        "kms:DeleteAlias",
        alias,
        kms.delete_alias().alias_name(alias).send(),
    )
    .await?;
    // By key id: AWS takes the ARN too, the emulator only the id.
    let id = arn.rsplit('/').next().unwrap_or(&arn);
    s.call(
        "kms:ScheduleKeyDeletion",
        &arn,
        kms.schedule_key_deletion()
            .key_id(id)
            .pending_window_in_days(DELETION_WINDOW_DAYS)
            .send(),
    )
    .await?;
    Ok(Removal::ScheduledForDeletion {
        days: DELETION_WINDOW_DAYS,
    })
}
