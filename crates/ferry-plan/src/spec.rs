//! The resources bootstrap owns, as typed specs: one struct per kind, holding every setting
//! bootstrap makes. The plan builds them (`foundation.rs`), ferry-aws reads what is live into
//! the same structs and applies from them, and `diff.rs` compares them field by field — so
//! a setting is named, and given its value, in exactly one place.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diff::canonical;

/// A JSON policy document (key, bucket, repository, trust, identity or lifecycle policy), as
/// AWS stores it. Two documents are equal when AWS treats them as equal: the order of
/// actions, resources and principals, a lone value or a list of one, a lone statement object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Document(pub Value);

impl PartialEq for Document {
    fn eq(&self, other: &Document) -> bool {
        canonical(&self.0) == canonical(&other.0)
    }
}

impl std::ops::Deref for Document {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.0
    }
}

impl std::ops::DerefMut for Document {
    fn deref_mut(&mut self) -> &mut Value {
        &mut self.0
    }
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Document> for Value {
    fn from(d: Document) -> Value {
        d.0
    }
}

impl From<Value> for Document {
    fn from(v: Value) -> Document {
        Document(v)
    }
}

/// A customer-managed symmetric KMS key and its alias.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySpec {
    pub alias: String,
    pub description: String,
    pub rotation: bool,
    pub policy: Document,
}

/// S3 versioning, as `GetBucketVersioning` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Versioning {
    Enabled,
    Suspended,
}

/// S3 object ownership (`PutBucketOwnershipControls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ObjectOwnership {
    BucketOwnerEnforced,
    BucketOwnerPreferred,
    ObjectWriter,
}

/// The bucket's block of public access: all four on, for an artifact bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
}

/// Default server-side encryption algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SseAlgorithm {
    #[serde(rename = "aws:kms")]
    AwsKms,
    #[serde(rename = "aws:kms:dsse")]
    AwsKmsDsse,
    #[serde(rename = "AES256")]
    Aes256,
}

/// The bucket's default encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketEncryption {
    pub algorithm: SseAlgorithm,
    /// The KMS key (ARN), for `aws:kms`.
    pub key: Option<String>,
    pub bucket_key: bool,
}

/// One S3 lifecycle rule, in the shape of the S3 API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleRule {
    #[serde(rename = "ID")]
    pub id: String,
    pub status: RuleStatus,
    pub filter: LifecycleFilter,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abort_incomplete_multipart_upload: Option<AbortIncompleteMultipartUpload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noncurrent_version_expiration: Option<NoncurrentVersionExpiration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum RuleStatus {
    Enabled,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LifecycleFilter {
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AbortIncompleteMultipartUpload {
    pub days_after_initiation: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NoncurrentVersionExpiration {
    pub noncurrent_days: i32,
}

/// The bucket's lifecycle configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BucketLifecycle {
    pub rules: Vec<LifecycleRule>,
}

/// The artifact bucket. A setting that is not configured reads as `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketSpec {
    pub name: String,
    pub versioning: Option<Versioning>,
    pub ownership: Option<ObjectOwnership>,
    pub public_access_block: Option<PublicAccessBlock>,
    pub encryption: Option<BucketEncryption>,
    pub policy: Option<Document>,
    pub lifecycle: Option<BucketLifecycle>,
}

/// ECR image tag mutability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    Mutable,
    Immutable,
}

/// An ECR repository.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepositorySpec {
    pub name: String,
    pub scan_on_push: bool,
    pub tag_mutability: TagMutability,
    pub lifecycle: Option<Document>,
    pub policy: Option<Document>,
}

/// An IAM role with its inline policies (only ferry's: the plan's, or named `ferry-…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoleSpec {
    pub name: String,
    pub description: String,
    pub trust: Document,
    /// Longest session of the role, in seconds.
    pub max_session_duration: i32,
    pub policies: BTreeMap<String, Document>,
}

/// The CodeBuild project that `runner: codebuild` builds run on, with its log group. Each
/// build brings its own buildspec, source, artifact location and encryption key (StartBuild's
/// overrides), so the project holds only the machine, the service role and the logs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectSpec {
    pub name: String,
    pub description: String,
    /// The service role's ARN.
    pub service_role: String,
    pub image: String,
    pub compute_type: String,
    /// The project's own CloudWatch Logs group.
    pub log_group: String,
    /// How long the group keeps build logs, in days.
    pub log_retention_days: i32,
    /// Whether CodeBuild pulls the image as the service role (an image in ECR) or with its
    /// own credentials (CodeBuild's images).
    pub pull_as_role: bool,
    pub io: ProjectIo,
    /// The VPC its builds run in; `None`: CodeBuild's own network.
    pub vpc: Option<ferry_manifest::CodebuildVpc>,
}

/// Where a project's source, buildspec and artifacts come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProjectIo {
    /// The project `runner: codebuild` builds run on: every build brings its own (StartBuild's
    /// overrides); the defaults name the bucket and the pipeline's prefix.
    Overridden { bucket: String, prefix: String },
    /// An action of the native pipeline: CodePipeline hands it its inputs and takes its
    /// outputs; the buildspec (a path in the first input, or the text) is the project's.
    Pipeline { buildspec: String },
}

/// An SNS topic of the shared account (the native pipeline's approval notifications).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopicSpec {
    pub name: String,
}

/// An IAM OpenID Connect provider (GitHub Actions' token issuer). One per issuer in an
/// account, shared by every role that trusts it: bootstrap creates it when it is missing and
/// otherwise uses the one there, whoever made it, if it admits ferry's audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OidcProviderSpec {
    /// The issuer as IAM names the provider: its URL without `https://`
    /// (`token.actions.githubusercontent.com`).
    pub issuer: String,
    /// The audiences (client ids) it must admit; a live provider may admit others too.
    pub audiences: Vec<String>,
}

impl OidcProviderSpec {
    /// GitHub Actions' provider, admitting the audience AWS's credentials action asks for.
    pub fn github() -> OidcProviderSpec {
        use ferry_manifest::GithubActions;
        OidcProviderSpec {
            issuer: GithubActions::ISSUER.to_owned(),
            audiences: vec![GithubActions::AUDIENCE.to_owned()],
        }
    }

    /// The URL CreateOpenIDConnectProvider takes.
    pub fn url(&self) -> String {
        format!("https://{}", self.issuer)
    }

    /// Its ARN in `account`.
    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:oidc-provider/{}", self.issuer)
    }
}

/// The native CodePipeline V2 pipeline, as CreatePipeline takes it (and `ferry synth
/// codepipeline` prints it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineSpec {
    pub pipeline: crate::synth::codepipeline::Pipeline,
}

/// One resource bootstrap owns. Every one is tagged [`crate::foundation::TAG_PIPELINE`] and
/// [`crate::foundation::TAG_MANAGED_BY`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    Key(KeySpec),
    Bucket(BucketSpec),
    Repository(RepositorySpec),
    Role(RoleSpec),
    Project(ProjectSpec),
    Topic(TopicSpec),
    Pipeline(PipelineSpec),
    OidcProvider(OidcProviderSpec),
}

/// Which resource, by kind and name: how plans, errors and the live state name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceId {
    Key(String),
    Bucket(String),
    Repository(String),
    Role(String),
    Project(String),
    Topic(String),
    Pipeline(String),
    /// By issuer.
    OidcProvider(String),
}

impl ResourceId {
    /// One resource of its kind serves the whole account, whichever pipeline (or person)
    /// made it: bootstrap uses one that is not ferry's when it already has what the plan
    /// needs, rather than refusing it.
    pub fn is_account_wide(&self) -> bool {
        matches!(self, ResourceId::OidcProvider(_))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceId::Key(alias) => write!(f, "kms key {alias}"),
            ResourceId::Bucket(name) => write!(f, "s3 bucket {name}"),
            ResourceId::Repository(name) => write!(f, "ecr repository {name}"),
            ResourceId::Role(name) => write!(f, "iam role {name}"),
            ResourceId::Project(name) => write!(f, "codebuild project {name}"),
            ResourceId::Topic(name) => write!(f, "sns topic {name}"),
            ResourceId::Pipeline(name) => write!(f, "codepipeline pipeline {name}"),
            ResourceId::OidcProvider(issuer) => write!(f, "iam oidc provider {issuer}"),
        }
    }
}

impl Serialize for ResourceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Resource {
    pub fn id(&self) -> ResourceId {
        match self {
            Resource::Key(k) => ResourceId::Key(k.alias.clone()),
            Resource::Bucket(b) => ResourceId::Bucket(b.name.clone()),
            Resource::Repository(r) => ResourceId::Repository(r.name.clone()),
            Resource::Role(r) => ResourceId::Role(r.name.clone()),
            Resource::Project(p) => ResourceId::Project(p.name.clone()),
            Resource::Topic(t) => ResourceId::Topic(t.name.clone()),
            Resource::Pipeline(p) => ResourceId::Pipeline(p.pipeline.name.clone()),
            Resource::OidcProvider(p) => ResourceId::OidcProvider(p.issuer.clone()),
        }
    }

    /// How plans and errors name it: `kms key alias/ferry-orders`, `iam role ferry-deploy`.
    pub fn address(&self) -> String {
        self.id().to_string()
    }

    /// The resource's own policy document (key, bucket or repository policy; a role's trust).
    pub fn policy(&self) -> Option<&Document> {
        match self {
            Resource::Key(k) => Some(&k.policy),
            Resource::Bucket(b) => b.policy.as_ref(),
            Resource::Repository(r) => r.policy.as_ref(),
            Resource::Role(r) => Some(&r.trust),
            Resource::Project(_)
            | Resource::Topic(_)
            | Resource::Pipeline(_)
            | Resource::OidcProvider(_) => None,
        }
    }
}

/// A setting of a resource, as the diff and bootstrap name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Description,
    Rotation,
    Policy,
    Versioning,
    Ownership,
    PublicAccessBlock,
    Encryption,
    Lifecycle,
    ScanOnPush,
    TagMutability,
    Trust,
    MaxSessionDuration,
    Policies,
    ServiceRole,
    Environment,
    Logs,
    Buildspec,
    Vpc,
    Definition,
    Audiences,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = serde_json::to_value(self).unwrap_or_default();
        write!(f, "{}", v.as_str().unwrap_or("?"))
    }
}

/// One setting compared: the field, what is live and what the plan wants, as JSON for the
/// report. Built by each spec's `compare`.
pub(crate) struct Compared {
    pub field: Field,
    pub live: Value,
    pub desired: Value,
}

fn compare_field<T: PartialEq + Serialize>(
    out: &mut Vec<Compared>,
    field: Field,
    desired: &T,
    live: &T,
) {
    if desired != live {
        out.push(Compared {
            field,
            live: serde_json::to_value(live).unwrap_or_default(),
            desired: serde_json::to_value(desired).unwrap_or_default(),
        });
    }
}

impl Resource {
    /// The settings in which `live` differs from `self` (the plan), in field order. `None`
    /// when `live` is another kind of resource.
    pub(crate) fn compare(&self, live: &Resource) -> Option<Vec<Compared>> {
        let mut out = Vec::new();
        let o = &mut out;
        match (self, live) {
            (Resource::Key(d), Resource::Key(l)) => {
                compare_field(o, Field::Description, &d.description, &l.description);
                compare_field(o, Field::Rotation, &d.rotation, &l.rotation);
                compare_field(o, Field::Policy, &d.policy, &l.policy);
            }
            (Resource::Bucket(d), Resource::Bucket(l)) => {
                compare_field(o, Field::Versioning, &d.versioning, &l.versioning);
                compare_field(o, Field::Ownership, &d.ownership, &l.ownership);
                compare_field(
                    o,
                    Field::PublicAccessBlock,
                    &d.public_access_block,
                    &l.public_access_block,
                );
                compare_field(o, Field::Encryption, &d.encryption, &l.encryption);
                compare_field(o, Field::Policy, &d.policy, &l.policy);
                compare_field(o, Field::Lifecycle, &d.lifecycle, &l.lifecycle);
            }
            (Resource::Repository(d), Resource::Repository(l)) => {
                compare_field(o, Field::ScanOnPush, &d.scan_on_push, &l.scan_on_push);
                compare_field(
                    o,
                    Field::TagMutability,
                    &d.tag_mutability,
                    &l.tag_mutability,
                );
                compare_field(o, Field::Lifecycle, &d.lifecycle, &l.lifecycle);
                compare_field(o, Field::Policy, &d.policy, &l.policy);
            }
            (Resource::Role(d), Resource::Role(l)) => {
                compare_field(o, Field::Description, &d.description, &l.description);
                compare_field(o, Field::Trust, &d.trust, &l.trust);
                compare_field(
                    o,
                    Field::MaxSessionDuration,
                    &d.max_session_duration,
                    &l.max_session_duration,
                );
                compare_field(o, Field::Policies, &d.policies, &l.policies);
            }
            (Resource::Project(d), Resource::Project(l)) => {
                compare_field(o, Field::Description, &d.description, &l.description);
                compare_field(o, Field::ServiceRole, &d.service_role, &l.service_role);
                compare_field(
                    o,
                    Field::Environment,
                    &(&d.image, &d.compute_type, d.pull_as_role),
                    &(&l.image, &l.compute_type, l.pull_as_role),
                );
                compare_field(o, Field::Buildspec, &d.io, &l.io);
                compare_field(o, Field::Vpc, &d.vpc, &l.vpc);
                compare_field(
                    o,
                    Field::Logs,
                    &(&d.log_group, d.log_retention_days),
                    &(&l.log_group, l.log_retention_days),
                );
            }
            (Resource::Topic(_), Resource::Topic(_)) => {}
            (Resource::Pipeline(d), Resource::Pipeline(l)) => {
                compare_field(o, Field::Definition, d, l);
            }
            (Resource::OidcProvider(d), Resource::OidcProvider(l)) => {
                // Other audiences may share the provider: only a missing one is a change.
                let missing = d.audiences.iter().any(|a| !l.audiences.contains(a));
                if missing {
                    let mut wanted = l.audiences.clone();
                    wanted.extend(
                        d.audiences
                            .iter()
                            .filter(|a| !l.audiences.contains(a))
                            .cloned(),
                    );
                    compare_field(o, Field::Audiences, &wanted, &l.audiences);
                }
            }
            _ => return None,
        }
        Some(out)
    }
}

/// Where in an organization an SCP is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgLevelKind {
    Root,
    OrganizationalUnit,
    Account,
}

/// The SCPs attached at one level above (or at) an account, as AWS Organizations reads them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScpLevel {
    pub kind: OrgLevelKind,
    /// The root (`r-…`), organizational unit (`ou-…`) or account id.
    pub id: String,
    pub policies: Vec<Document>,
}

impl ScpLevel {
    /// `root r-abcd`, `organizational unit ou-…`, `account 123456789012`: how verify names it.
    pub fn name(&self) -> String {
        let kind = match self.kind {
            OrgLevelKind::Root => "root",
            OrgLevelKind::OrganizationalUnit => "organizational unit",
            OrgLevelKind::Account => "account",
        };
        format!("{kind} {}", self.id)
    }

    /// The kind of level an Organizations target id names.
    pub fn kind_of(id: &str) -> OrgLevelKind {
        if id.starts_with("r-") {
            OrgLevelKind::Root
        } else if id.starts_with("ou-") {
            OrgLevelKind::OrganizationalUnit
        } else {
            OrgLevelKind::Account
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn documents_aws_treats_as_equal_are_equal() {
        let a = Document(
            json!({"Statement": {"Effect": "Allow", "Action": ["b", "a"], "Resource": "r"}}),
        );
        let b = Document(
            json!({"Statement": [{"Resource": ["r"], "Action": ["a", "b"], "Effect": "Allow"}]}),
        );
        assert_eq!(a, b);
        assert_ne!(a, Document(json!({"Statement": []})));
    }

    #[test]
    fn ids_read_as_addresses() {
        assert_eq!(
            ResourceId::Key("alias/ferry-orders".into()).to_string(),
            "kms key alias/ferry-orders"
        );
        assert_eq!(
            serde_json::to_value(ResourceId::Role("ferry-deploy".into())).unwrap(),
            json!("iam role ferry-deploy")
        );
        assert_eq!(Field::PublicAccessBlock.to_string(), "public_access_block");
    }
}
