//! The foundation: the resources each account needs, with their policies, built from the
//! access edges by `ferry-policy`'s least-privilege builder.

use std::collections::BTreeMap;

use ferry_policy::builder::{self, Need, NeedCondition, PrincipalRef};
use serde::Serialize;
use serde_json::{Value, json};

use crate::access::{Edge, edges};
use crate::names::{Names, account_of, role_arn};
use crate::spec::{
    AbortIncompleteMultipartUpload, BucketEncryption, BucketLifecycle, LifecycleFilter,
    LifecycleRule, NoncurrentVersionExpiration, ObjectOwnership, PublicAccessBlock, RuleStatus,
    SseAlgorithm, TagMutability, Versioning,
};

/// Every resource of one pipeline's foundation, per account, and the edges it serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Foundation {
    pub pipeline: String,
    /// The shared account first, then the target accounts in manifest order.
    pub accounts: Vec<AccountPlan>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Shared,
    Target,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountPlan {
    /// `shared`, or the target account's name in the manifest.
    pub name: String,
    pub id: String,
    pub region: String,
    pub kind: AccountKind,
    /// The role bootstrap acts as there (`None`: the caller's own identity, in the shared account).
    pub admin_role: Option<String>,
    pub resources: Vec<Resource>,
}

pub use crate::spec::{
    BucketSpec, Document, Field, KeySpec, OidcProviderSpec, PipelineSpec, ProjectIo, ProjectSpec,
    RepositorySpec, Resource, ResourceId, RoleSpec, TopicSpec,
};

pub const TAG_PIPELINE: &str = "ferry:pipeline";
pub const TAG_MANAGED_BY: &str = "ferry:managed-by";

/// The tags bootstrap puts on every resource of `pipeline`, by which it knows them as its own.
pub fn tags(pipeline: &str) -> [(&'static str, String); 2] {
    [
        (TAG_PIPELINE, pipeline.to_owned()),
        (TAG_MANAGED_BY, "ferry".to_owned()),
    ]
}

/// Whether `tags` mark a resource as bootstrap's for `pipeline`.
pub fn is_ferrys(tags: &BTreeMap<String, String>, pipeline: &str) -> bool {
    tags.get(TAG_MANAGED_BY).map(String::as_str) == Some("ferry")
        && tags.get(TAG_PIPELINE).map(String::as_str) == Some(pipeline)
}

/// How long the CodeBuild project's log group keeps build logs: a year, for audits (and
/// checkov's CKV_AWS_338).
pub const BUILD_LOG_RETENTION_DAYS: i32 = 365;

/// IAM's default (and ferry's) longest role session: one hour.
pub const ROLE_MAX_SESSION_SECS: i32 = 3600;

impl Foundation {
    pub fn account(&self, name: &str) -> Option<&AccountPlan> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The policies of the plan, as the verifier reads them.
    pub fn policies(&self, names: &Names<'_>) -> crate::verify::PolicyStore {
        let mut store = crate::verify::PolicyStore::default();
        for edge in self.edges.iter().filter(|e| e.teams_role) {
            store.assume_teams_role(&edge.principal);
        }
        for account in &self.accounts {
            for r in &account.resources {
                match r {
                    Resource::Key(k) => store.resource(&names.key_arn, k.policy.clone()),
                    Resource::Bucket(b) => {
                        if let Some(p) = &b.policy {
                            store.resource(&format!("arn:aws:s3:::{}", b.name), p.clone());
                        }
                    }
                    Resource::Repository(repo) => {
                        if let Some(p) = &repo.policy {
                            store.resource(&names.repository_arn(&repo.name), p.clone());
                        }
                    }
                    Resource::Role(role) => {
                        let arn = role_arn(&account.id, &role.name);
                        store.resource(&arn, role.trust.clone());
                        for (policy_name, doc) in &role.policies {
                            store.identity(&arn, policy_name, doc.clone());
                        }
                    }
                    Resource::Project(_)
                    | Resource::Topic(_)
                    | Resource::Pipeline(_)
                    | Resource::OidcProvider(_) => {}
                }
            }
        }
        store
    }
}

/// The foundation `names.manifest` needs.
pub fn plan(names: &Names<'_>) -> Foundation {
    let edges = edges(names);
    let m = names.manifest;
    let shared = names.shared;
    let pipeline_role = names.pipeline_role();

    let mut shared_resources = vec![
        Resource::Key(KeySpec {
            alias: shared.kms_alias.clone(),
            description: format!("ferry: artifacts of pipeline {}", m.pipeline),
            rotation: true,
            policy: key_policy(names, &edges),
        }),
        Resource::Bucket(artifact_bucket(names, &edges)),
    ];
    for repo in &shared.repositories {
        let holder = names.repository_arn(repo);
        let needs = resource_needs(names, &edges, &holder, None);
        shared_resources.push(Resource::Repository(RepositorySpec {
            name: repo.clone(),
            scan_on_push: true,
            tag_mutability: TagMutability::Immutable,
            lifecycle: Some(Document(json!({"rules": [{
                "rulePriority": 1,
                "description": "expire untagged images after 14 days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
                "action": {"type": "expire"}
            }]}))),
            policy: (!needs.is_empty()).then(|| Document(builder::build(needs).to_json())),
        }));
    }
    // The shared account's IAM decides who may act as the pipeline (people through a
    // profile, CI through its role), and CodeBuild may run it.
    let mut trust = vec![
        Need::new("account", "sts:AssumeRole", "*")
            .for_principal(PrincipalRef::Aws(format!(
                "arn:aws:iam::{}:root",
                shared.id
            )))
            .on_own_resource(),
        Need::new("codebuild", "sts:AssumeRole", "*")
            .for_principal(PrincipalRef::Service("codebuild.amazonaws.com".into()))
            .on_own_resource(),
    ];
    if shared.server.is_some() {
        // `ferry serve` on ECS runs as the pipeline: its task role. Only tasks of this
        // account (no confused deputy).
        trust.push(
            Need::new("ecs-tasks", "sts:AssumeRole", "*")
                .for_principal(PrincipalRef::Service("ecs-tasks.amazonaws.com".into()))
                .when("StringEquals", "aws:SourceAccount", &[&shared.id])
                .on_own_resource(),
        );
    }
    if shared.github_actions.is_some() {
        shared_resources.push(Resource::OidcProvider(OidcProviderSpec::github()));
    }
    // And whatever the edges say may assume it (GitHub Actions' workflow runs).
    trust.extend(resource_needs(names, &edges, &pipeline_role, None));
    shared_resources.push(role(
        &shared.pipeline_role,
        format!("ferry: runs pipeline {}", m.pipeline),
        builder::build(trust).to_json(),
        "ferry-pipeline",
        identity_policy(names, &edges, &pipeline_role),
    ));
    let build_role = names.build_role();
    if edges.iter().any(|e| e.principal == build_role) {
        shared_resources.push(role(
            &names.build_role_name(),
            format!("ferry: CodeBuild service role of pipeline {}", m.pipeline),
            builder::build(resource_needs(names, &edges, &build_role, None)).to_json(),
            "ferry-build",
            identity_policy(names, &edges, &build_role),
        ));
        let project = |name: String, description: String, image: &str, io: ProjectIo| {
            Resource::Project(ProjectSpec {
                name,
                description,
                service_role: build_role.clone(),
                image: image.to_owned(),
                compute_type: shared.codebuild.compute_type.clone(),
                log_group: names.build_log_group(),
                log_retention_days: BUILD_LOG_RETENTION_DAYS,
                pull_as_role: Names::ecr_repository_of(image).is_some(),
                io,
                vpc: shared.codebuild.vpc.clone(),
            })
        };
        let runner = names.codebuild_project_arn();
        if edges.iter().any(|e| e.resource == runner) {
            shared_resources.push(project(
                names.codebuild_project(),
                format!("ferry: builds of pipeline {}", m.pipeline),
                &shared.codebuild.image,
                ProjectIo::Overridden {
                    bucket: shared.artifact_bucket.clone(),
                    prefix: names.build_output_prefix(),
                },
            ));
        }
        if shared.codepipeline.is_some() {
            for p in crate::synth::codepipeline::projects(names) {
                shared_resources.push(project(
                    p.name,
                    format!(
                        "ferry: {}.{} of pipeline {} in CodePipeline",
                        p.stage, p.action, m.pipeline
                    ),
                    &p.image,
                    ProjectIo::Pipeline {
                        buildspec: p.buildspec,
                    },
                ));
            }
        }
    }
    if shared.codepipeline.is_some() {
        let codepipeline = names.codepipeline_role();
        shared_resources.push(role(
            &names.codepipeline_role_name(),
            format!(
                "ferry: CodePipeline runs pipeline {} as this role",
                m.pipeline
            ),
            builder::build(resource_needs(names, &edges, &codepipeline, None)).to_json(),
            "ferry-codepipeline",
            identity_policy(names, &edges, &codepipeline),
        ));
        shared_resources.push(Resource::Topic(TopicSpec {
            name: names.approvals_topic(),
        }));
        let (pipeline, _) = crate::synth::codepipeline::codepipeline(names);
        shared_resources.push(Resource::Pipeline(PipelineSpec { pipeline }));
    }
    let mut accounts = vec![AccountPlan {
        name: "shared".into(),
        id: shared.id.clone(),
        region: shared.region.clone(),
        kind: AccountKind::Shared,
        admin_role: None,
        resources: shared_resources,
    }];

    for account in &m.accounts {
        let deploy = names.deploy_role(account);
        if !edges.iter().any(|e| e.principal == deploy) {
            continue;
        }
        let mut resources = vec![role(
            &account.deploy_role,
            format!(
                "ferry: deploys pipeline {} into {}",
                m.pipeline, account.name
            ),
            builder::build(resource_needs(names, &edges, &deploy, None)).to_json(),
            "ferry-deploy",
            identity_policy(names, &edges, &deploy),
        )];
        let execution = names.execution_role(account);
        if edges.iter().any(|e| e.principal == execution) {
            resources.push(role(
                &names.execution_role_name(),
                format!(
                    "ferry: ECS task execution role of pipeline {}: pulls its images",
                    m.pipeline
                ),
                builder::build([Need::new("ecs-tasks", "sts:AssumeRole", "*")
                    .for_principal(PrincipalRef::Service("ecs-tasks.amazonaws.com".into()))
                    .on_own_resource()])
                .to_json(),
                "ferry-ecr-pull",
                identity_policy(names, &edges, &execution),
            ));
        }
        accounts.push(AccountPlan {
            name: account.name.clone(),
            id: account.id.clone(),
            region: account.region.clone(),
            kind: AccountKind::Target,
            admin_role: Some(role_arn(&account.id, &account.admin_role)),
            resources,
        });
    }
    Foundation {
        pipeline: m.pipeline.clone(),
        accounts,
        edges,
    }
}

/// A role of the plan with one inline policy.
fn role(name: &str, description: String, trust: Value, policy: &str, doc: Value) -> Resource {
    Resource::Role(RoleSpec {
        name: name.to_owned(),
        description,
        trust: Document(trust),
        max_session_duration: ROLE_MAX_SESSION_SECS,
        policies: BTreeMap::from([(policy.to_owned(), Document(doc))]),
    })
}

/// The artifact bucket: versioned, owner-enforced, public access blocked, SSE-KMS under the
/// pipeline's key with a bucket key, incomplete uploads and old versions expired.
fn artifact_bucket(names: &Names<'_>, edges: &[Edge]) -> BucketSpec {
    BucketSpec {
        name: names.shared.artifact_bucket.clone(),
        versioning: Some(Versioning::Enabled),
        ownership: Some(ObjectOwnership::BucketOwnerEnforced),
        public_access_block: Some(PublicAccessBlock::ALL),
        encryption: Some(BucketEncryption {
            algorithm: SseAlgorithm::AwsKms,
            key: Some(names.key_arn.clone()),
            bucket_key: true,
        }),
        policy: Some(bucket_policy(names, edges)),
        lifecycle: Some(BucketLifecycle {
            rules: vec![LifecycleRule {
                id: "ferry-tidy".into(),
                status: RuleStatus::Enabled,
                filter: LifecycleFilter {
                    prefix: String::new(),
                },
                abort_incomplete_multipart_upload: Some(AbortIncompleteMultipartUpload {
                    days_after_initiation: 7,
                }),
                noncurrent_version_expiration: Some(NoncurrentVersionExpiration {
                    noncurrent_days: 30,
                }),
            }],
        }),
    }
}

/// The label of an edge's statement: its service, so each service gets statements of its own.
fn label(e: &Edge) -> String {
    e.label
        .clone()
        .unwrap_or_else(|| e.action.split(':').next().unwrap_or("grant").to_owned())
}

/// The identity policy of `principal`: exactly its edges, but those a resource policy in the
/// same account grants by naming the principal (a key policy does; the identity policy would
/// add nothing).
fn identity_policy(names: &Names<'_>, edges: &[Edge], principal: &str) -> Value {
    let needs = edges
        .iter()
        .filter(|e| e.principal == principal)
        .filter(|e| {
            !(e.needs_resource_grant(names)
                && Some(e.resource_account(names)) == account_of(principal))
        })
        .map(|e| Need {
            label: label(e),
            principal: None,
            action: e.action.clone(),
            resource: Some(e.grant.clone()),
            conditions: e.conditions.clone(),
        });
    builder::build(needs).to_json()
}

/// What the policy of `holder` must grant: every edge on it that needs the resource side.
/// Trust and repository policies apply to their own resource; a key policy's `"*"` is the key.
fn resource_needs(
    names: &Names<'_>,
    edges: &[Edge],
    holder: &str,
    resource: Option<&str>,
) -> Vec<Need> {
    edges
        .iter()
        .filter(|e| e.holder() == holder && e.needs_resource_grant(names))
        .map(|e| {
            // The ExternalId is checked where the role is: in its trust policy.
            let external_id = e
                .context
                .iter()
                .find(|(k, _)| e.action == "sts:AssumeRole" && k == "sts:ExternalId")
                .map(|(k, v)| NeedCondition {
                    operator: "StringEquals".into(),
                    key: k.clone(),
                    values: vec![v.clone()],
                });
            Need {
                label: label(e),
                principal: Some(e.principal_ref()),
                action: e.action.clone(),
                resource: resource.map(str::to_owned).or_else(|| {
                    (!holder.starts_with("arn:aws:iam:") && !holder.starts_with("arn:aws:ecr:"))
                        .then(|| e.grant.clone())
                }),
                conditions: external_id.map_or_else(|| e.conditions.clone(), |c| vec![c]),
            }
        })
        .collect()
}

fn key_policy(names: &Names<'_>, edges: &[Edge]) -> Document {
    // AWS's default first statement: the account's IAM policies may grant use of the key
    // (without it only the key policy could, and the key could become unmanageable).
    let mut statements = vec![json!({
        "Sid": "AccountAdministersKey",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", names.shared.id)},
        "Action": "kms:*",
        "Resource": "*"
    })];
    let built = builder::build(resource_needs(names, edges, &names.key_arn, Some("*")));
    statements.extend(built.statements.iter().map(|s| s.to_json()));
    Document(json!({"Version": "2012-10-17", "Statement": statements}))
}

fn bucket_policy(names: &Names<'_>, edges: &[Edge]) -> Document {
    let bucket = names.bucket_arn();
    let mut statements = vec![
        json!({
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket.clone(), format!("{bucket}/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}
        }),
        json!({
            "Sid": "DenyUnencryptedUploads",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": format!("{bucket}/*"),
            "Condition": {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
        }),
    ];
    let built = builder::build(resource_needs(names, edges, &bucket, None));
    statements.extend(built.statements.iter().map(|s| s.to_json()));
    Document(json!({"Version": "2012-10-17", "Statement": statements}))
}
