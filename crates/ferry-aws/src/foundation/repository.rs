//! An ECR repository of the shared account: scanning, tag mutability, lifecycle policy and
//! the repository policy that lets the target accounts pull.

use std::collections::BTreeMap;

use aws_sdk_ecr::types as t;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::RepositorySpec;
use ferry_plan::spec::TagMutability;
use ferry_plan::{Field, Resource};

use super::{Found, Phase, Removal, document, propagating, tags};
use crate::error::{AwsError, AwsErrorKind};
use crate::session::AccountConfig;

fn client(s: &AccountConfig) -> aws_sdk_ecr::Client {
    aws_sdk_ecr::Client::new(&s.config)
}

fn mutability(m: TagMutability) -> t::ImageTagMutability {
    match m {
        TagMutability::Mutable => t::ImageTagMutability::Mutable,
        TagMutability::Immutable => t::ImageTagMutability::Immutable,
    }
}

pub(super) async fn read(s: &AccountConfig, name: &str) -> Result<Option<Found>, AwsError> {
    let ecr = client(s);
    let Some(repo) = s
        .find(
            "ecr:DescribeRepositories",
            name,
            ecr.describe_repositories().repository_names(name).send(),
        )
        .await?
        .and_then(|r| r.repositories().first().cloned())
    else {
        return Ok(None);
    };
    // Absent policies read as none; ECR answers "not found" for both.
    let lifecycle = s
        .find(
            "ecr:GetLifecyclePolicy",
            name,
            ecr.get_lifecycle_policy().repository_name(name).send(),
        )
        .await
        .ok()
        .flatten()
        .and_then(|l| l.lifecycle_policy_text().map(document));
    let policy = s
        .find(
            "ecr:GetRepositoryPolicy",
            name,
            ecr.get_repository_policy().repository_name(name).send(),
        )
        .await
        .ok()
        .flatten()
        .and_then(|p| p.policy_text().map(document));
    let arn = repo.repository_arn().unwrap_or_default();
    let tags: BTreeMap<String, String> = s
        .call(
            "ecr:ListTagsForResource",
            arn,
            ecr.list_tags_for_resource().resource_arn(arn).send(),
        )
        .await
        .map(|t| {
            t.tags()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let spec = RepositorySpec {
        name: name.to_owned(),
        scan_on_push: repo
            .image_scanning_configuration()
            .is_some_and(|c| c.scan_on_push()),
        tag_mutability: match repo.image_tag_mutability() {
            Some(t::ImageTagMutability::Immutable) => TagMutability::Immutable,
            _ => TagMutability::Mutable,
        },
        lifecycle,
        policy,
    };
    Ok(Some(Found::new(Resource::Repository(spec), tags)))
}

pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &RepositorySpec,
    change: &Change,
    phase: Phase,
) -> Result<(), AwsError> {
    let ecr = client(s);
    let name = spec.name.as_str();
    let scanning = t::ImageScanningConfiguration::builder()
        .scan_on_push(spec.scan_on_push)
        .build();
    if phase == Phase::CrossAccount {
        if let Some(policy) = spec
            .policy
            .as_ref()
            .filter(|_| change.touches(Field::Policy))
        {
            let text = policy.to_string();
            propagating(|| async {
                s.call(
                    "ecr:SetRepositoryPolicy",
                    name,
                    ecr.set_repository_policy()
                        .repository_name(name)
                        .policy_text(&text)
                        .send(),
                )
                .await
                .map(|_| ())
            })
            .await?;
        }
        return Ok(());
    }
    if change.kind == ChangeKind::Create {
        let mut create = ecr
            .create_repository()
            .repository_name(name)
            .image_tag_mutability(mutability(spec.tag_mutability))
            .image_scanning_configuration(scanning);
        for (k, v) in tags(pipeline) {
            create =
                create.tags(t::Tag::builder().key(k).value(v).build().map_err(|e| {
                    s.fail("ecr:CreateRepository", name, "InvalidTag", e.to_string())
                })?);
        }
        s.call("ecr:CreateRepository", name, create.send()).await?;
    } else {
        if change.touches(Field::TagMutability) {
            s.call(
                "ecr:PutImageTagMutability",
                name,
                ecr.put_image_tag_mutability()
                    .repository_name(name)
                    .image_tag_mutability(mutability(spec.tag_mutability))
                    .send(),
            )
            .await?;
        }
        if change.touches(Field::ScanOnPush) {
            s.call(
                "ecr:PutImageScanningConfiguration",
                name,
                ecr.put_image_scanning_configuration()
                    .repository_name(name)
                    .image_scanning_configuration(scanning)
                    .send(),
            )
            .await?;
        }
    }
    if let Some(lifecycle) = spec
        .lifecycle
        .as_ref()
        .filter(|_| change.touches(Field::Lifecycle))
    {
        s.call(
            "ecr:PutLifecyclePolicy",
            name,
            ecr.put_lifecycle_policy()
                .repository_name(name)
                .lifecycle_policy_text(lifecycle.to_string())
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
    let deleted = s
        .call(
            "ecr:DeleteRepository",
            name,
            client(s)
                .delete_repository()
                .repository_name(name)
                .force(force)
                .send(),
        )
        .await;
    match deleted {
        Ok(_) => Ok(Removal::Deleted),
        // The only conflict DeleteRepository reports: the repository holds images.
        Err(e) if e.kind == AwsErrorKind::Conflict => Ok(Removal::KeptNotEmpty {
            holds: "images".into(),
        }),
        Err(e) => Err(e),
    }
}
