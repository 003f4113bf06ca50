//! The foundation: the resources each account needs, with their policies, built from the
//! access edges by `ferry-policy`'s least-privilege builder.

use std::collections::BTreeMap;

use ferry_policy::builder::{self, Need, NeedCondition, PrincipalRef};
use serde::Serialize;
use serde_json::{Value, json};

use crate::access::{Edge, edges};
use crate::names::{Names, account_of, role_arn};

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

/// One resource bootstrap owns. Every one is tagged [`TAG_PIPELINE`] and [`TAG_MANAGED_BY`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    /// A customer-managed KMS key (symmetric, rotation on) and its alias.
    Key {
        alias: String,
        description: String,
        policy: Value,
    },
    /// The artifact bucket: versioned, owner-enforced, public access blocked, SSE-KMS by default.
    Bucket {
        name: String,
        key_arn: String,
        policy: Value,
        lifecycle: Value,
    },
    /// An ECR repository: scan on push, immutable tags.
    Repository {
        name: String,
        lifecycle: Value,
        policy: Option<Value>,
    },
    /// An IAM role with its inline policies.
    Role {
        name: String,
        description: String,
        trust: Value,
        policies: BTreeMap<String, Value>,
    },
}

pub const TAG_PIPELINE: &str = "ferry:pipeline";
pub const TAG_MANAGED_BY: &str = "ferry:managed-by";

impl Resource {
    /// How plans and errors name it: `kms key alias/ferry-orders`, `iam role ferry-deploy`.
    pub fn address(&self) -> String {
        match self {
            Resource::Key { alias, .. } => format!("kms key {alias}"),
            Resource::Bucket { name, .. } => format!("s3 bucket {name}"),
            Resource::Repository { name, .. } => format!("ecr repository {name}"),
            Resource::Role { name, .. } => format!("iam role {name}"),
        }
    }

    /// What bootstrap sets, as one JSON document: the plan compares it with what is live.
    pub fn desired(&self) -> Value {
        match self {
            Resource::Key {
                description,
                policy,
                ..
            } => json!({"description": description, "rotation": true, "policy": policy}),
            Resource::Bucket {
                key_arn,
                policy,
                lifecycle,
                ..
            } => json!({
                "versioning": "Enabled",
                "ownership": "BucketOwnerEnforced",
                "public_access_block": {"BlockPublicAcls": true, "IgnorePublicAcls": true, "BlockPublicPolicy": true, "RestrictPublicBuckets": true},
                "encryption": {"algorithm": "aws:kms", "key": key_arn, "bucket_key": true},
                "policy": policy,
                "lifecycle": lifecycle,
            }),
            Resource::Repository {
                lifecycle, policy, ..
            } => {
                json!({"scan_on_push": true, "tag_mutability": "IMMUTABLE", "lifecycle": lifecycle, "policy": policy})
            }
            Resource::Role {
                description,
                trust,
                policies,
                ..
            } => json!({"description": description, "trust": trust, "policies": policies}),
        }
    }
}

impl Foundation {
    pub fn account(&self, name: &str) -> Option<&AccountPlan> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// The policies of the plan, as the verifier reads them.
    pub fn policies(&self, names: &Names<'_>) -> crate::verify::PolicyStore {
        let mut store = crate::verify::PolicyStore::default();
        for account in &self.accounts {
            for r in &account.resources {
                match r {
                    Resource::Key { policy, .. } => store.resource(&names.key_arn, policy.clone()),
                    Resource::Bucket { name, policy, .. } => {
                        store.resource(&format!("arn:aws:s3:::{name}"), policy.clone())
                    }
                    Resource::Repository {
                        name,
                        policy: Some(p),
                        ..
                    } => store.resource(&names.repository_arn(name), p.clone()),
                    Resource::Repository { .. } => {}
                    Resource::Role {
                        name,
                        trust,
                        policies,
                        ..
                    } => {
                        let arn = role_arn(&account.id, name);
                        store.resource(&arn, trust.clone());
                        for (policy_name, doc) in policies {
                            store.identity(&arn, policy_name, doc.clone());
                        }
                    }
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
        Resource::Key {
            alias: shared.kms_alias.clone(),
            description: format!("ferry: artifacts of pipeline {}", m.pipeline),
            policy: key_policy(names, &edges),
        },
        Resource::Bucket {
            name: shared.artifact_bucket.clone(),
            key_arn: names.key_arn.clone(),
            policy: bucket_policy(names, &edges),
            lifecycle: json!({"Rules": [{
                "ID": "ferry-tidy",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
                "NoncurrentVersionExpiration": {"NoncurrentDays": 30}
            }]}),
        },
    ];
    for repo in &shared.repositories {
        let holder = names.repository_arn(repo);
        let needs = resource_needs(names, &edges, &holder, None);
        shared_resources.push(Resource::Repository {
            name: repo.clone(),
            lifecycle: json!({"rules": [{
                "rulePriority": 1,
                "description": "expire untagged images after 14 days",
                "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
                "action": {"type": "expire"}
            }]}),
            policy: (!needs.is_empty()).then(|| builder::build(needs).to_json()),
        });
    }
    shared_resources.push(Resource::Role {
        name: shared.pipeline_role.clone(),
        description: format!("ferry: runs pipeline {}", m.pipeline),
        // The shared account's IAM decides who may act as the pipeline (people through a
        // profile, CI through its role), and CodeBuild may run it.
        trust: builder::build([
            Need::new("account", "sts:AssumeRole", "*")
                .for_principal(PrincipalRef::Aws(format!(
                    "arn:aws:iam::{}:root",
                    shared.id
                )))
                .on_own_resource(),
            Need::new("codebuild", "sts:AssumeRole", "*")
                .for_principal(PrincipalRef::Service("codebuild.amazonaws.com".into()))
                .on_own_resource(),
        ])
        .to_json(),
        policies: BTreeMap::from([(
            "ferry-pipeline".to_owned(),
            identity_policy(names, &edges, &pipeline_role),
        )]),
    });
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
        let mut resources = vec![Resource::Role {
            name: account.deploy_role.clone(),
            description: format!(
                "ferry: deploys pipeline {} into {}",
                m.pipeline, account.name
            ),
            trust: builder::build(resource_needs(names, &edges, &deploy, None)).to_json(),
            policies: BTreeMap::from([(
                "ferry-deploy".to_owned(),
                identity_policy(names, &edges, &deploy),
            )]),
        }];
        let execution = names.execution_role(account);
        if edges.iter().any(|e| e.principal == execution) {
            resources.push(Resource::Role {
                name: names.execution_role_name(),
                description: format!(
                    "ferry: ECS task execution role of pipeline {}: pulls its images",
                    m.pipeline
                ),
                trust: builder::build([Need::new("ecs-tasks", "sts:AssumeRole", "*")
                    .for_principal(PrincipalRef::Service("ecs-tasks.amazonaws.com".into()))
                    .on_own_resource()])
                .to_json(),
                policies: BTreeMap::from([(
                    "ferry-ecr-pull".to_owned(),
                    identity_policy(names, &edges, &execution),
                )]),
            });
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

/// The label of an edge's statement: its service, so each service gets statements of its own.
fn label(e: &Edge) -> String {
    e.action.split(':').next().unwrap_or("grant").to_owned()
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
            condition: e.condition.clone(),
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
            let condition = if e.action == "sts:AssumeRole" {
                // The ExternalId is checked where the role is: in its trust policy.
                e.context
                    .iter()
                    .find(|(k, _)| k == "sts:ExternalId")
                    .map(|(k, v)| NeedCondition {
                        operator: "StringEquals".into(),
                        key: k.clone(),
                        values: vec![v.clone()],
                    })
            } else {
                e.condition.clone()
            };
            Need {
                label: label(e),
                principal: Some(if e.by_role() {
                    PrincipalRef::Aws(e.principal.clone())
                } else {
                    PrincipalRef::Service(e.principal.clone())
                }),
                action: e.action.clone(),
                resource: resource.map(str::to_owned).or_else(|| {
                    (!holder.starts_with("arn:aws:iam:") && !holder.starts_with("arn:aws:ecr:"))
                        .then(|| e.grant.clone())
                }),
                condition,
            }
        })
        .collect()
}

fn key_policy(names: &Names<'_>, edges: &[Edge]) -> Value {
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
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn bucket_policy(names: &Names<'_>, edges: &[Edge]) -> Value {
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
    json!({"Version": "2012-10-17", "Statement": statements})
}
