//! Every name and ARN the foundation uses, made in one place.

use ferry_manifest::{Account, Manifest, SharedAccount};

/// The key ARN before bootstrap has created the key (its id is chosen by KMS). Plans and
/// offline verification use it consistently; bootstrap and `--live` use the real one.
pub const PENDING_KEY_ID: &str = "created-by-bootstrap";

/// Names of one pipeline's foundation.
#[derive(Debug, Clone)]
pub struct Names<'a> {
    pub manifest: &'a Manifest,
    pub shared: &'a SharedAccount,
    /// The artifact key's ARN: the real one, or the pending placeholder.
    pub key_arn: String,
}

impl<'a> Names<'a> {
    /// `None` for a pipeline without a shared account (no AWS foundation).
    pub fn new(manifest: &'a Manifest, key_arn: Option<&str>) -> Option<Names<'a>> {
        let shared = manifest.shared.as_ref()?;
        let key_arn = key_arn.map_or_else(
            || {
                format!(
                    "arn:aws:kms:{}:{}:key/{PENDING_KEY_ID}",
                    shared.region, shared.id
                )
            },
            str::to_owned,
        );
        Some(Names {
            manifest,
            shared,
            key_arn,
        })
    }

    pub fn pipeline(&self) -> &str {
        &self.manifest.pipeline
    }

    pub fn pipeline_role(&self) -> String {
        role_arn(&self.shared.id, &self.shared.pipeline_role)
    }

    /// A session of a role, as the request principal of an edge.
    pub fn session(role_arn: &str) -> String {
        let (account, name) = split_role(role_arn);
        format!("arn:aws:sts::{account}:assumed-role/{name}/ferry")
    }

    pub fn deploy_role(&self, account: &Account) -> String {
        account.deploy_role_arn()
    }

    /// The ECS task execution role ferry makes in a target account: it may pull the shared
    /// repositories' images.
    pub fn execution_role_name(&self) -> String {
        format!("ferry-{}-ecs-execution", self.pipeline())
    }

    pub fn execution_role(&self, account: &Account) -> String {
        role_arn(&account.id, &self.execution_role_name())
    }

    /// GitHub's OIDC provider in the shared account: the principal GitHub Actions' workflow
    /// runs call as.
    pub fn github_provider_arn(&self) -> String {
        crate::spec::OidcProviderSpec::github().arn(&self.shared.id)
    }

    pub fn key_alias_arn(&self) -> String {
        format!(
            "arn:aws:kms:{}:{}:{}",
            self.shared.region, self.shared.id, self.shared.kms_alias
        )
    }

    pub fn bucket_arn(&self) -> String {
        format!("arn:aws:s3:::{}", self.shared.artifact_bucket)
    }

    /// Where this pipeline's artifacts live in the bucket: `<pipeline>/`.
    pub fn artifact_prefix(&self) -> String {
        format!("{}/", self.pipeline())
    }

    pub fn artifacts_arn(&self) -> String {
        format!("{}/{}*", self.bucket_arn(), self.artifact_prefix())
    }

    /// One artifact, as an edge's resource.
    pub fn artifact_sample(&self) -> String {
        format!(
            "{}/{}0123abcd.zip",
            self.bucket_arn(),
            self.artifact_prefix()
        )
    }

    /// The CodeBuild project that `runner: codebuild` builds run on: `ferry-<pipeline>`.
    pub fn codebuild_project(&self) -> String {
        format!("ferry-{}", self.pipeline())
    }

    pub fn codebuild_project_arn(&self) -> String {
        self.project_arn(&self.codebuild_project())
    }

    /// The CodeBuild project of one action of the native pipeline:
    /// `ferry-<pipeline>-<stage>-<action>`.
    pub fn native_project(&self, stage: &str, action: &str) -> String {
        format!("ferry-{}-{stage}-{action}", self.pipeline())
    }

    pub fn project_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:codebuild:{}:{}:project/{name}",
            self.shared.region, self.shared.id
        )
    }

    /// The role CodePipeline runs the native pipeline as: `ferry-<pipeline>-codepipeline`,
    /// apart from the pipeline role, which people and `ferry serve` act as.
    pub fn codepipeline_role_name(&self) -> String {
        format!("ferry-{}-codepipeline", self.pipeline())
    }

    pub fn codepipeline_role(&self) -> String {
        role_arn(&self.shared.id, &self.codepipeline_role_name())
    }

    /// The topic the native pipeline's approvals notify: `ferry-<pipeline>-approvals`.
    pub fn approvals_topic(&self) -> String {
        format!("ferry-{}-approvals", self.pipeline())
    }

    pub fn approvals_topic_arn(&self) -> String {
        format!(
            "arn:aws:sns:{}:{}:{}",
            self.shared.region,
            self.shared.id,
            self.approvals_topic()
        )
    }

    /// The project's service role: what a build on CodeBuild may do.
    pub fn build_role_name(&self) -> String {
        format!("ferry-{}-build", self.pipeline())
    }

    pub fn build_role(&self) -> String {
        role_arn(&self.shared.id, &self.build_role_name())
    }

    /// The project's own log group.
    pub fn build_log_group(&self) -> String {
        format!("/aws/codebuild/{}", self.codebuild_project())
    }

    pub fn build_log_group_arn(&self) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{}",
            self.shared.region,
            self.shared.id,
            self.build_log_group()
        )
    }

    /// Where CodeBuild writes a build's outputs, under the pipeline's prefix:
    /// `<pipeline>/codebuild/`. Inputs are the content-addressed artifacts beside it.
    pub fn build_output_prefix(&self) -> String {
        format!("{}codebuild/", self.artifact_prefix())
    }

    /// The ECR repository an image URI (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]`)
    /// is in, as an ARN; `None` for an image elsewhere.
    pub fn ecr_repository_of(uri: &str) -> Option<String> {
        let (registry, rest) = uri.split_once('/')?;
        let mut host = registry.split('.');
        let (account, dkr, ecr, region) = (host.next()?, host.next()?, host.next()?, host.next()?);
        if dkr != "dkr" || ecr != "ecr" || account.len() != 12 {
            return None;
        }
        let repo = rest.split(['@', ':']).next()?;
        Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}"))
    }

    pub fn repository_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            self.shared.region, self.shared.id
        )
    }

    /// A secret's ARN pattern: Secrets Manager appends `-` and six random characters to names.
    pub fn secret_pattern(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}-??????",
                self.shared.region, self.shared.id
            )
        }
    }

    /// A Parameter Store parameter by name (`/a/b` or `b`), or its ARN as given.
    pub fn parameter_arn(&self, name: &str) -> String {
        if name.starts_with("arn:") {
            name.to_owned()
        } else {
            format!(
                "arn:aws:ssm:{}:{}:parameter/{}",
                self.shared.region,
                self.shared.id,
                name.trim_start_matches('/')
            )
        }
    }

    /// One secret, as an edge's resource.
    pub fn secret_sample(&self, id: &str) -> String {
        if id.starts_with("arn:") {
            id.to_owned()
        } else {
            format!(
                "arn:aws:secretsmanager:{}:{}:secret:{id}-AbCdEf",
                self.shared.region, self.shared.id
            )
        }
    }

    pub fn function_arn(account: &Account, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            account.region, account.id
        )
    }

    pub fn service_arn(account: &Account, cluster: &str, service: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:service/{cluster}/{service}",
            account.region, account.id
        )
    }

    /// The service deployments of one service (ECS's own traffic shifting).
    pub fn service_deployments_arn(account: &Account, cluster: &str, service: &str) -> String {
        format!(
            "arn:aws:ecs:{}:{}:service-deployment/{cluster}/{service}/*",
            account.region, account.id
        )
    }

    pub fn task_definitions_arn(account: &Account) -> String {
        format!(
            "arn:aws:ecs:{}:{}:task-definition/*",
            account.region, account.id
        )
    }

    pub fn alarm_arn(account: &Account, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            account.region, account.id
        )
    }
}

pub fn role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// (account, name) of `arn:aws:iam::ACCOUNT:role/NAME`.
pub fn split_role(arn: &str) -> (&str, &str) {
    let account = arn.split(':').nth(4).unwrap_or_default();
    let name = arn.rsplit('/').next().unwrap_or_default();
    (account, name)
}

/// The account of an ARN (`arn:partition:service:region:ACCOUNT:…`); S3 ARNs have none.
pub fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}
