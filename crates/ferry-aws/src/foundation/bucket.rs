//! The artifact bucket: versioning, ownership, the block of public access, default
//! encryption, lifecycle and bucket policy.

use std::collections::BTreeMap;

use aws_sdk_s3::types as t;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::BucketSpec;
use ferry_plan::spec::{
    AbortIncompleteMultipartUpload, BucketEncryption, BucketLifecycle, LifecycleFilter,
    LifecycleRule, NoncurrentVersionExpiration, ObjectOwnership, PublicAccessBlock, RuleStatus,
    SseAlgorithm, Versioning,
};
use ferry_plan::{Field, Resource};

use super::{Found, Phase, Removal, document, propagating, tags};
use crate::error::AwsError;
use crate::session::{AccountConfig, s3_client};

fn resource(name: &str) -> String {
    format!("s3://{name}")
}

/// One setting as read: `Ok(None)` when it is not configured (S3 answers NoSuch…).
fn setting<T>(found: &mut Found, field: Field, read: Result<Option<T>, AwsError>) -> Option<T> {
    match read {
        Ok(v) => v,
        Err(e) => {
            // Unreadable (a response the SDK cannot parse, say): left as it is, reported.
            found.unreadable.push((
                field,
                format!(
                    "{}: {}",
                    e.code,
                    e.message.chars().take(120).collect::<String>()
                ),
            ));
            None
        }
    }
}

pub(super) async fn read(s: &AccountConfig, name: &str) -> Result<Option<Found>, AwsError> {
    let s3 = s3_client(&s.config);
    let res = resource(name);
    if s.find("s3:HeadBucket", &res, s3.head_bucket().bucket(name).send())
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let tags: BTreeMap<String, String> = s
        .find(
            "s3:GetBucketTagging",
            &res,
            s3.get_bucket_tagging().bucket(name).send(),
        )
        .await
        .ok()
        .flatten()
        .map(|t| {
            t.tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let mut found = Found::new(
        Resource::Bucket(BucketSpec {
            name: name.to_owned(),
            versioning: None,
            ownership: None,
            public_access_block: None,
            encryption: None,
            policy: None,
            lifecycle: None,
        }),
        tags,
    );
    let versioning = s
        .find(
            "s3:GetBucketVersioning",
            &res,
            s3.get_bucket_versioning().bucket(name).send(),
        )
        .await
        .map(|v| {
            v.and_then(|v| match v.status() {
                Some(t::BucketVersioningStatus::Enabled) => Some(Versioning::Enabled),
                Some(t::BucketVersioningStatus::Suspended) => Some(Versioning::Suspended),
                _ => None,
            })
        });
    let versioning = setting(&mut found, Field::Versioning, versioning);
    let ownership = s
        .find(
            "s3:GetBucketOwnershipControls",
            &res,
            s3.get_bucket_ownership_controls().bucket(name).send(),
        )
        .await
        .map(|o| {
            o.and_then(
                |o| match o.ownership_controls()?.rules().first()?.object_ownership() {
                    t::ObjectOwnership::BucketOwnerEnforced => {
                        Some(ObjectOwnership::BucketOwnerEnforced)
                    }
                    t::ObjectOwnership::BucketOwnerPreferred => {
                        Some(ObjectOwnership::BucketOwnerPreferred)
                    }
                    t::ObjectOwnership::ObjectWriter => Some(ObjectOwnership::ObjectWriter),
                    _ => None,
                },
            )
        });
    let ownership = setting(&mut found, Field::Ownership, ownership);
    let block = s
        .find(
            "s3:GetPublicAccessBlock",
            &res,
            s3.get_public_access_block().bucket(name).send(),
        )
        .await
        .map(|b| {
            b.and_then(|b| {
                b.public_access_block_configuration()
                    .map(|c| PublicAccessBlock {
                        block_public_acls: c.block_public_acls().unwrap_or(false),
                        ignore_public_acls: c.ignore_public_acls().unwrap_or(false),
                        block_public_policy: c.block_public_policy().unwrap_or(false),
                        restrict_public_buckets: c.restrict_public_buckets().unwrap_or(false),
                    })
            })
        });
    let public_access_block = setting(&mut found, Field::PublicAccessBlock, block);
    let encryption = s
        .find(
            "s3:GetBucketEncryption",
            &res,
            s3.get_bucket_encryption().bucket(name).send(),
        )
        .await
        .map(|e| {
            e.and_then(|e| {
                let rule = e.server_side_encryption_configuration()?.rules().first()?;
                let d = rule.apply_server_side_encryption_by_default()?;
                let algorithm = match d.sse_algorithm() {
                    t::ServerSideEncryption::AwsKms => SseAlgorithm::AwsKms,
                    t::ServerSideEncryption::AwsKmsDsse => SseAlgorithm::AwsKmsDsse,
                    _ => SseAlgorithm::Aes256,
                };
                Some(BucketEncryption {
                    algorithm,
                    key: d.kms_master_key_id().map(str::to_owned),
                    bucket_key: rule.bucket_key_enabled().unwrap_or(false),
                })
            })
        });
    let encryption = setting(&mut found, Field::Encryption, encryption);
    let policy = s
        .find(
            "s3:GetBucketPolicy",
            &res,
            s3.get_bucket_policy().bucket(name).send(),
        )
        .await
        .map(|p| p.and_then(|p| p.policy().map(document)));
    let policy = setting(&mut found, Field::Policy, policy);
    let lifecycle = s
        .find(
            "s3:GetBucketLifecycleConfiguration",
            &res,
            s3.get_bucket_lifecycle_configuration().bucket(name).send(),
        )
        .await
        .map(|l| {
            l.map(|l| BucketLifecycle {
                rules: l.rules().iter().map(lifecycle_rule).collect(),
            })
        });
    let lifecycle = setting(&mut found, Field::Lifecycle, lifecycle);
    found.resource = Resource::Bucket(BucketSpec {
        name: name.to_owned(),
        versioning,
        ownership,
        public_access_block,
        encryption,
        policy,
        lifecycle,
    });
    Ok(Some(found))
}

fn lifecycle_rule(r: &t::LifecycleRule) -> LifecycleRule {
    LifecycleRule {
        id: r.id().unwrap_or_default().to_owned(),
        status: if r.status() == &t::ExpirationStatus::Enabled {
            RuleStatus::Enabled
        } else {
            RuleStatus::Disabled
        },
        filter: LifecycleFilter {
            prefix: r
                .filter()
                .and_then(|f| f.prefix())
                .unwrap_or_default()
                .to_owned(),
        },
        abort_incomplete_multipart_upload: r.abort_incomplete_multipart_upload().and_then(|a| {
            a.days_after_initiation()
                .map(|days| AbortIncompleteMultipartUpload {
                    days_after_initiation: days,
                })
        }),
        noncurrent_version_expiration: r.noncurrent_version_expiration().and_then(|n| {
            n.noncurrent_days().map(|days| NoncurrentVersionExpiration {
                noncurrent_days: days,
            })
        }),
    }
}

/// A builder's error as an error about the bucket (the SDK refuses a request it cannot form).
fn invalid(s: &AccountConfig, action: &str, name: &str, e: impl std::fmt::Display) -> AwsError {
    s.fail(action, &resource(name), "InvalidRequest", e.to_string())
}

pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &BucketSpec,
    change: &Change,
    phase: Phase,
) -> Result<(), AwsError> {
    let s3 = s3_client(&s.config);
    let name = spec.name.as_str();
    let res = resource(name);
    if phase == Phase::CrossAccount {
        if let Some(policy) = spec
            .policy
            .as_ref()
            .filter(|_| change.touches(Field::Policy))
        {
            let text = policy.to_string();
            propagating(|| async {
                s.call(
                    "s3:PutBucketPolicy",
                    &res,
                    s3.put_bucket_policy().bucket(name).policy(&text).send(),
                )
                .await
                .map(|_| ())
            })
            .await?;
        }
        return Ok(());
    }
    if change.kind == ChangeKind::Create {
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
        s.call("s3:CreateBucket", &res, create.send()).await?;
        let tag_set = tags(pipeline)
            .into_iter()
            .map(|(k, v)| t::Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(s, "s3:PutBucketTagging", name, e))?;
        let tagging = t::Tagging::builder()
            .set_tag_set(Some(tag_set))
            .build()
            .map_err(|e| invalid(s, "s3:PutBucketTagging", name, e))?;
        s.call(
            "s3:PutBucketTagging",
            &res,
            s3.put_bucket_tagging().bucket(name).tagging(tagging).send(),
        )
        .await?;
    }
    if let Some(b) = spec
        .public_access_block
        .filter(|_| change.touches(Field::PublicAccessBlock))
    {
        let block = t::PublicAccessBlockConfiguration::builder()
            .block_public_acls(b.block_public_acls)
            .ignore_public_acls(b.ignore_public_acls)
            .block_public_policy(b.block_public_policy)
            .restrict_public_buckets(b.restrict_public_buckets)
            .build();
        s.call(
            "s3:PutPublicAccessBlock",
            &res,
            s3.put_public_access_block()
                .bucket(name)
                .public_access_block_configuration(block)
                .send(),
        )
        .await?;
    }
    if let Some(ownership) = spec.ownership.filter(|_| change.touches(Field::Ownership)) {
        let action = "s3:PutBucketOwnershipControls";
        let rule = t::OwnershipControlsRule::builder()
            .object_ownership(match ownership {
                ObjectOwnership::BucketOwnerEnforced => t::ObjectOwnership::BucketOwnerEnforced,
                ObjectOwnership::BucketOwnerPreferred => t::ObjectOwnership::BucketOwnerPreferred,
                ObjectOwnership::ObjectWriter => t::ObjectOwnership::ObjectWriter,
            })
            .build()
            .map_err(|e| invalid(s, action, name, e))?;
        let controls = t::OwnershipControls::builder()
            .rules(rule)
            .build()
            .map_err(|e| invalid(s, action, name, e))?;
        s.call(
            action,
            &res,
            s3.put_bucket_ownership_controls()
                .bucket(name)
                .ownership_controls(controls)
                .send(),
        )
        .await?;
    }
    if let Some(versioning) = spec
        .versioning
        .filter(|_| change.touches(Field::Versioning))
    {
        let status = match versioning {
            Versioning::Enabled => t::BucketVersioningStatus::Enabled,
            Versioning::Suspended => t::BucketVersioningStatus::Suspended,
        };
        s.call(
            "s3:PutBucketVersioning",
            &res,
            s3.put_bucket_versioning()
                .bucket(name)
                .versioning_configuration(
                    t::VersioningConfiguration::builder().status(status).build(),
                )
                .send(),
        )
        .await?;
    }
    if let Some(e) = spec
        .encryption
        .as_ref()
        .filter(|_| change.touches(Field::Encryption))
    {
        let action = "s3:PutBucketEncryption";
        let algorithm = match e.algorithm {
            SseAlgorithm::AwsKms => t::ServerSideEncryption::AwsKms,
            SseAlgorithm::AwsKmsDsse => t::ServerSideEncryption::AwsKmsDsse,
            SseAlgorithm::Aes256 => t::ServerSideEncryption::Aes256,
        };
        let default = t::ServerSideEncryptionByDefault::builder()
            .sse_algorithm(algorithm)
            .set_kms_master_key_id(e.key.clone())
            .build()
            .map_err(|err| invalid(s, action, name, err))?;
        let rule = t::ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default)
            .bucket_key_enabled(e.bucket_key)
            .build();
        let config = t::ServerSideEncryptionConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|err| invalid(s, action, name, err))?;
        s.call(
            action,
            &res,
            s3.put_bucket_encryption()
                .bucket(name)
                .server_side_encryption_configuration(config)
                .send(),
        )
        .await?;
    }
    if let Some(lifecycle) = spec
        .lifecycle
        .as_ref()
        .filter(|_| change.touches(Field::Lifecycle))
    {
        let action = "s3:PutBucketLifecycleConfiguration";
        let mut rules = Vec::new();
        for r in &lifecycle.rules {
            let mut rule = t::LifecycleRule::builder()
                .id(&r.id)
                .status(match r.status {
                    RuleStatus::Enabled => t::ExpirationStatus::Enabled,
                    RuleStatus::Disabled => t::ExpirationStatus::Disabled,
                })
                .filter(
                    t::LifecycleRuleFilter::builder()
                        .prefix(&r.filter.prefix)
                        .build(),
                );
            if let Some(a) = r.abort_incomplete_multipart_upload {
                rule = rule.abort_incomplete_multipart_upload(
                    t::AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(a.days_after_initiation)
                        .build(),
                );
            }
            if let Some(n) = r.noncurrent_version_expiration {
                rule = rule.noncurrent_version_expiration(
                    t::NoncurrentVersionExpiration::builder()
                        .noncurrent_days(n.noncurrent_days)
                        .build(),
                );
            }
            rules.push(rule.build().map_err(|e| invalid(s, action, name, e))?);
        }
        let config = t::BucketLifecycleConfiguration::builder()
            .set_rules(Some(rules))
            .build()
            .map_err(|e| invalid(s, action, name, e))?;
        s.call(
            action,
            &res,
            s3.put_bucket_lifecycle_configuration()
                .bucket(name)
                .lifecycle_configuration(config)
                .send(),
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn remove(
    s: &AccountConfig,
    name: &str,
    force: bool,
) -> Result<Removal, AwsError> {
    let s3 = s3_client(&s.config);
    let res = resource(name);
    let versions = s
        .call(
            "s3:ListObjectVersions",
            &res,
            s3.list_object_versions().bucket(name).send(),
        )
        .await?;
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
        return Ok(Removal::KeptNotEmpty {
            holds: format!("{} object version(s)", objects.len()),
        });
    }
    for (key, version) in objects {
        s.call(
            "s3:DeleteObject",
            &format!("{res}/{key}"),
            s3.delete_object()
                .bucket(name)
                .key(&key)
                .set_version_id(version)
                .send(),
        )
        .await?;
    }
    s.call(
        "s3:DeleteBucket",
        &res,
        s3.delete_bucket().bucket(name).send(),
    )
    .await?;
    Ok(Removal::Deleted)
}
