//! The access edges: every AWS call the pipeline makes, as (principal, action, resource),
//! with the context the call carries. Policies are built from them and verified against
//! them, so the two cannot drift apart.

use ferry_manifest::{ActionKind, Build, GithubActions, LambdaPackage, Manifest};
use ferry_policy::builder::{NeedCondition, PrincipalRef};
use serde::Serialize;

use crate::names::{Names, account_of, role_arn};

/// One call the pipeline makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The environment whose stage makes the call; `None` for the pipeline's own calls in the
    /// shared account (artifacts, secrets, images).
    pub environment: Option<String>,
    /// The stage (or `pipeline` for the pipeline's own calls).
    pub stage: String,
    /// The role making the call.
    pub principal: String,
    pub action: String,
    /// The resource, as the call names it.
    pub resource: String,
    /// The resource as a policy grants it (a pattern, when the call's resource varies).
    pub grant: String,
    /// The context the call carries, which the grant's condition reads.
    pub context: Vec<(String, String)>,
    /// The conditions the grant carries (all must hold).
    #[serde(skip)]
    pub conditions: Vec<NeedCondition>,
    /// The name of the statement that grants it, when not the action's service.
    #[serde(skip)]
    pub label: Option<String>,
    /// Why the pipeline makes this call.
    pub why: String,
    /// The principal is a role of the team's, not of the plan: ferry writes the resource's
    /// side of the grant, and its own policies are the team's (read by `verify --live`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub teams_role: bool,
}

impl Edge {
    fn new(scope: &Scope, principal: &str, action: &str, resource: &str, why: &str) -> Edge {
        Edge {
            environment: scope.environment.clone(),
            stage: scope.stage.clone(),
            principal: principal.to_owned(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            grant: resource.to_owned(),
            // Every call ferry makes goes over TLS.
            context: vec![("aws:SecureTransport".into(), "true".into())],
            conditions: Vec::new(),
            label: None,
            why: why.to_owned(),
            teams_role: false,
        }
    }

    fn by_teams_role(mut self, yes: bool) -> Edge {
        self.teams_role = yes;
        self
    }

    fn granted_as(mut self, pattern: &str) -> Edge {
        pattern.clone_into(&mut self.grant);
        self
    }

    /// The call carries `key = value`, and the grant requires it.
    fn when(self, operator: &str, key: &str, value: &str) -> Edge {
        self.when_matching(operator, key, value, vec![value.to_owned()])
    }

    /// The call carries `key = value`; the grant requires `key` to match one of `patterns`.
    fn when_matching(
        mut self,
        operator: &str,
        key: &str,
        value: &str,
        patterns: Vec<String>,
    ) -> Edge {
        self.context.push((key.to_owned(), value.to_owned()));
        self.conditions.push(NeedCondition {
            operator: operator.into(),
            key: key.into(),
            values: patterns,
        });
        self
    }

    /// Its grant gets a statement of its own, named `label`.
    fn labelled(mut self, label: &str) -> Edge {
        self.label = Some(label.to_owned());
        self
    }

    /// How a resource policy names the caller.
    pub fn principal_ref(&self) -> PrincipalRef {
        if self.by_role() {
            PrincipalRef::Aws(self.principal.clone())
        } else if self.principal.starts_with("arn:") {
            PrincipalRef::Federated(self.principal.clone())
        } else {
            PrincipalRef::Service(self.principal.clone())
        }
    }

    /// Whether an IAM role makes the call (else a service principal, such as Lambda pulling
    /// an image, or a web identity from an OIDC provider): only a role has identity policies,
    /// and it calls as a session of itself.
    pub fn by_role(&self) -> bool {
        self.principal.starts_with("arn:") && self.principal.contains(":role/")
    }

    /// The call carries `key = value`, which only a resource policy's statement reads.
    fn carrying(mut self, key: &str, value: &str) -> Edge {
        self.context.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The account that owns the resource (S3 buckets: the shared account).
    pub fn resource_account<'n>(&'n self, names: &'n Names<'_>) -> &'n str {
        if self.resource == "*" {
            // Actions on no resource type act in the caller's own account.
            account_of(&self.principal).unwrap_or_default()
        } else if self.resource.starts_with("arn:aws:s3:::") {
            &names.shared.id
        } else {
            account_of(&self.resource).unwrap_or(&names.shared.id)
        }
    }

    /// Whether the resource's own policy must grant this call too: a trust policy always, a
    /// key policy always, any other resource policy when the call crosses accounts.
    pub fn needs_resource_grant(&self, names: &Names<'_>) -> bool {
        let service = self.action.split(':').next().unwrap_or_default();
        match service {
            "sts" | "kms" => true,
            "s3" | "ecr" => {
                self.resource != "*"
                    && self.resource_account(names)
                        != account_of(&self.principal).unwrap_or_default()
            }
            _ => false,
        }
    }

    /// The resource whose policy grants the resource side: the bucket of an object, the key,
    /// the repository, the role assumed.
    pub fn holder(&self) -> String {
        match self.resource.strip_prefix("arn:aws:s3:::") {
            Some(rest) => format!("arn:aws:s3:::{}", rest.split('/').next().unwrap_or(rest)),
            None => self.resource.clone(),
        }
    }
}

struct Scope {
    environment: Option<String>,
    stage: String,
}

/// The service principal that pulls a Lambda function's container image.
const LAMBDA_SERVICE: &str = "lambda.amazonaws.com";

/// The shared repository an image URI (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO[:TAG|@DIGEST]`)
/// names, if it names one of the manifest's.
fn shared_repository<'n>(names: &'n Names<'_>, uri: &str) -> Option<&'n str> {
    let (registry, rest) = uri.split_once('/')?;
    let account = registry.split('.').next()?;
    let repo = rest.split(['@', ':']).next()?;
    if account != names.shared.id {
        return None;
    }
    names
        .shared
        .repositories
        .iter()
        .find(|r| *r == repo)
        .map(String::as_str)
}

/// Every call the pipeline of `manifest` makes.
pub fn edges(names: &Names<'_>) -> Vec<Edge> {
    let m: &Manifest = names.manifest;
    let pipeline = names.pipeline_role();
    let mut out = Vec::new();
    let own = Scope {
        environment: None,
        stage: "pipeline".into(),
    };
    let via_s3 = format!("s3.{}.amazonaws.com", names.shared.region);

    // The pipeline's own calls in the shared account: artifacts, secrets, images.
    let artifacts = names.artifacts_arn();
    let sample = names.artifact_sample();
    out.push(
        Edge::new(
            &own,
            &pipeline,
            "s3:PutObject",
            &sample,
            "store an artifact",
        )
        .granted_as(&artifacts)
        .carrying("s3:x-amz-server-side-encryption", "aws:kms"),
    );
    out.push(
        Edge::new(
            &own,
            &pipeline,
            "s3:GetObject",
            &sample,
            "read an artifact (and HeadObject, to skip uploading one twice)",
        )
        .granted_as(&artifacts),
    );
    out.push(
        Edge::new(
            &own,
            &pipeline,
            "s3:ListBucket",
            &names.bucket_arn(),
            "let HeadObject answer 404, not 403, for an artifact not stored yet",
        )
        .when(
            "StringLike",
            "s3:prefix",
            &format!("{}*", names.artifact_prefix()),
        ),
    );
    for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
        out.push(
            Edge::new(
                &own,
                &pipeline,
                action,
                &names.key_arn,
                "SSE-KMS: encrypt and decrypt artifacts through S3",
            )
            .when("StringEquals", "kms:ViaService", &via_s3),
        );
    }
    secret_reads(
        names,
        &own,
        &pipeline,
        m.secrets
            .iter()
            .map(|s| (s.name.as_str(), s.secret_id.as_str())),
        |s| format!("read secret {s} for builds"),
        &mut out,
    );
    // ferry reads what a local build's buildspec names for it (ssm:GetParameter each).
    let local = builds(m).filter(|b| !on_codebuild(names, b));
    buildspec_reads(names, &own, &pipeline, local, "ssm:GetParameter", &mut out);
    image_pushes(
        names,
        &own,
        &pipeline,
        "log in to ECR to push images",
        |repo| format!("push images to {repo}"),
        &mut out,
    );
    if names.shared.server.is_some() {
        // `ferry serve` on ECS, as its task role: its state volume (only a file system
        // tagged with this pipeline), and ECS Exec, through which operators make tokens.
        let (region, id) = (&names.shared.region, &names.shared.id);
        let file_systems = format!("arn:aws:elasticfilesystem:{region}:{id}:file-system/*");
        let sample =
            format!("arn:aws:elasticfilesystem:{region}:{id}:file-system/fs-0123456789abcdef0");
        for action in [
            "elasticfilesystem:ClientMount",
            "elasticfilesystem:ClientWrite",
        ] {
            out.push(
                Edge::new(
                    &own,
                    &pipeline,
                    action,
                    &sample,
                    "mount ferry serve's state volume",
                )
                .granted_as(&file_systems)
                .when(
                    "StringEquals",
                    "aws:ResourceTag/ferry:pipeline",
                    &m.pipeline,
                ),
            );
        }
        for action in [
            "ssmmessages:CreateControlChannel",
            "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel",
            "ssmmessages:OpenDataChannel",
        ] {
            out.push(Edge::new(
                &own,
                &pipeline,
                action,
                "*",
                "ECS Exec into ferry serve's task (`ferry serve token create`)",
            ));
        }
    }

    if let Some(github) = &names.shared.github_actions {
        // A workflow run of the repository's branch, with GitHub's token (its audience is the
        // one aws-actions/configure-aws-credentials asks for): only the pipeline role's trust
        // policy decides (a web identity has no policies of its own).
        out.push(
            Edge::new(
                &own,
                &names.github_provider_arn(),
                "sts:AssumeRoleWithWebIdentity",
                &pipeline,
                &format!(
                    "GitHub Actions runs the pipeline from {} on {}",
                    github.repository, github.branch
                ),
            )
            .when(
                "StringEquals",
                &GithubActions::claim("aud"),
                GithubActions::AUDIENCE,
            )
            .when(
                "StringEquals",
                &GithubActions::claim("sub"),
                &github.subject(),
            )
            .labelled("github actions"),
        );
    }

    codebuild_edges(names, &own, &mut out);

    // Each environment's stage, as that account's deploy role.
    for stage in &m.stages {
        let (Some(env), Some(account)) = (
            &stage.environment,
            stage.account.as_deref().and_then(|a| m.account(a)),
        ) else {
            continue;
        };
        let deploys: Vec<&ActionKind> = stage
            .actions
            .iter()
            .map(|a| &a.kind)
            .filter(|k| matches!(k, ActionKind::Ecs(_) | ActionKind::Lambda(_)))
            .collect();
        // The entry gates read the environment's alarms as its deploy role too, and its
        // deploys watch the `after` alarms with their own.
        let gates = m.environment(env).map(|e| &e.gates);
        let gate_alarms: &[String] = gates.map(|g| g.alarms.as_slice()).unwrap_or_default();
        let after_alarms: &[String] = gates
            .and_then(|g| g.after.as_ref())
            .map(|a| a.alarms.as_slice())
            .unwrap_or_default();
        if deploys.is_empty() && gate_alarms.is_empty() {
            continue;
        }
        let scope = Scope {
            environment: Some(env.clone()),
            stage: stage.name.clone(),
        };
        let deploy = names.deploy_role(account);
        let mut assume = Edge::new(
            &scope,
            &pipeline,
            "sts:AssumeRole",
            &deploy,
            &format!("act in {} as its deploy role", account.name),
        );
        if let Some(external_id) = &account.external_id {
            assume = assume.carrying("sts:ExternalId", external_id);
        }
        out.push(assume);
        let reads_artifacts = deploys.iter().any(|k| !matches!(k, ActionKind::Lambda(l) if matches!(l.package, LambdaPackage::Image { .. })));
        if reads_artifacts {
            out.push(
                Edge::new(
                    &scope,
                    &deploy,
                    "s3:GetObject",
                    &sample,
                    "read the artifact it deploys",
                )
                .granted_as(&artifacts),
            );
            out.push(
                Edge::new(
                    &scope,
                    &deploy,
                    "kms:Decrypt",
                    &names.key_arn,
                    "decrypt that artifact through S3",
                )
                .when("StringEquals", "kms:ViaService", &via_s3),
            );
        }
        let mut alarms: Vec<&str> = Vec::new();
        if !deploys.is_empty() {
            alarms.extend(after_alarms.iter().map(String::as_str));
        }
        for kind in deploys {
            match kind {
                ActionKind::Lambda(l) => {
                    let function = Names::function_arn(account, &l.function);
                    for action in [
                        "lambda:GetAlias",
                        "lambda:GetFunction",
                        "lambda:GetFunctionConfiguration",
                        "lambda:UpdateFunctionCode",
                        "lambda:ListVersionsByFunction",
                        "lambda:PublishVersion",
                        "lambda:UpdateAlias",
                        "lambda:CreateAlias",
                    ] {
                        out.push(Edge::new(
                            &scope,
                            &deploy,
                            action,
                            &function,
                            &format!("deploy {}:{}", l.function, l.alias),
                        ));
                    }
                    // Calls on a version or alias name the qualified ARN.
                    out.push(
                        Edge::new(
                            &scope,
                            &deploy,
                            "lambda:GetFunctionConfiguration",
                            &format!("{function}:{}", l.alias),
                            "read the code a version holds",
                        )
                        .granted_as(&format!("{function}:*")),
                    );
                    if let LambdaPackage::Image { uri } = &l.package
                        && let Some(repo) = shared_repository(names, uri)
                    {
                        let repo_arn = names.repository_arn(repo);
                        for action in ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"] {
                            // Lambda checks that whoever points a function at an image may pull
                            // it, then pulls it itself, as the function.
                            out.push(Edge::new(
                                &scope,
                                &deploy,
                                action,
                                &repo_arn,
                                &format!("update {} to an image from {repo}", l.function),
                            ));
                            out.push(
                                Edge::new(
                                    &scope,
                                    LAMBDA_SERVICE,
                                    action,
                                    &repo_arn,
                                    &format!("Lambda pulls {}'s image from {repo}", l.function),
                                )
                                .carrying("aws:SourceAccount", &account.id)
                                .when_matching(
                                    "StringLike",
                                    "aws:SourceArn",
                                    &function,
                                    vec![function.clone(), format!("{function}:*")],
                                ),
                            );
                        }
                    }
                    alarms.extend(l.alarms.iter().map(String::as_str));
                }
                ActionKind::Ecs(e) => {
                    let service = Names::service_arn(account, &e.cluster, &e.service);
                    for action in ["ecs:DescribeServices", "ecs:UpdateService"] {
                        out.push(Edge::new(
                            &scope,
                            &deploy,
                            action,
                            &service,
                            &format!("update {}/{} and watch it", e.cluster, e.service),
                        ));
                    }
                    if e.strategy != ferry_manifest::EcsStrategy::Rolling {
                        let deployments =
                            Names::service_deployments_arn(account, &e.cluster, &e.service);
                        let sample = deployments.replace('*', "a1b2c3");
                        let mut calls = vec![
                            (
                                "ecs:DescribeServiceDeployments",
                                "follow ECS's traffic shifting",
                            ),
                            (
                                "ecs:StopServiceDeployment",
                                "ask ECS to roll back on an alarm",
                            ),
                        ];
                        if !e.hooks.is_empty() {
                            calls.push((
                                "ecs:ContinueServiceDeployment",
                                "answer ECS's pauses at ferry's hooks",
                            ));
                        }
                        for (action, why) in calls {
                            let why = format!("{why} on {}/{}", e.cluster, e.service);
                            // The call names the deployment; IAM authorizes it on the
                            // service as well (both are its resource types).
                            out.push(
                                Edge::new(&scope, &deploy, action, &sample, &why)
                                    .granted_as(&deployments),
                            );
                            out.push(Edge::new(&scope, &deploy, action, &service, &why));
                        }
                    }
                    // The family is the service's task definition's, which the manifest does not name.
                    let revision = Names::task_definitions_arn(account)
                        .replace('*', &format!("{}:2", e.service));
                    out.push(Edge::new(
                        &scope,
                        &deploy,
                        "ecs:DescribeTaskDefinition",
                        "*",
                        "read the service's task definition",
                    ));
                    out.push(
                        Edge::new(
                            &scope,
                            &deploy,
                            "ecs:RegisterTaskDefinition",
                            &revision,
                            "register it again with the new images",
                        )
                        .granted_as(&Names::task_definitions_arn(account)),
                    );
                    out.push(
                        Edge::new(
                            &scope,
                            &deploy,
                            "ecs:TagResource",
                            &revision,
                            "tag the new revision with the attempt's idempotency key",
                        )
                        .granted_as(&Names::task_definitions_arn(account))
                        .when(
                            "StringEquals",
                            "ecs:CreateAction",
                            "RegisterTaskDefinition",
                        ),
                    );
                    // The task definition's execution role: the team's own, or ferry's.
                    let execution = e.execution_role.as_ref().map_or_else(
                        || names.execution_role(account),
                        |r| role_arn(&account.id, r),
                    );
                    out.push(
                        Edge::new(
                            &scope,
                            &deploy,
                            "iam:PassRole",
                            &execution,
                            if e.execution_role.is_some() {
                                "register a task definition that uses its own execution role"
                            } else {
                                "register a task definition that uses ferry's execution role"
                            },
                        )
                        .when(
                            "StringEquals",
                            "iam:PassedToService",
                            "ecs-tasks.amazonaws.com",
                        ),
                    );
                    if let Some(task_role) = &e.task_role {
                        out.push(
                            Edge::new(
                                &scope,
                                &deploy,
                                "iam:PassRole",
                                &role_arn(&account.id, task_role),
                                "register a task definition that gives its containers this task role",
                            )
                            .when(
                                "StringEquals",
                                "iam:PassedToService",
                                "ecs-tasks.amazonaws.com",
                            ),
                        );
                    }
                    if !names.shared.repositories.is_empty() {
                        out.push(
                            Edge::new(
                                &scope,
                                &execution,
                                "ecr:GetAuthorizationToken",
                                "*",
                                "ECS logs in to the shared ECR to start tasks",
                            )
                            .by_teams_role(e.execution_role.is_some()),
                        );
                    }
                    for repo in &names.shared.repositories {
                        for action in [
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:GetDownloadUrlForLayer",
                            "ecr:BatchGetImage",
                        ] {
                            out.push(
                                Edge::new(
                                    &scope,
                                    &execution,
                                    action,
                                    &names.repository_arn(repo),
                                    &format!("ECS pulls images from {repo}"),
                                )
                                .by_teams_role(e.execution_role.is_some()),
                            );
                        }
                    }
                    alarms.extend(e.alarms.iter().map(String::as_str));
                }
                _ => {}
            }
        }
        alarms.sort_unstable();
        alarms.dedup();
        for alarm in alarms {
            out.push(Edge::new(
                &scope,
                &deploy,
                "cloudwatch:DescribeAlarms",
                &Names::alarm_arn(account, alarm),
                &format!("watch alarm {alarm} during the deploy"),
            ));
        }
        for alarm in gate_alarms {
            out.push(Edge::new(
                &scope,
                &deploy,
                "cloudwatch:DescribeAlarms",
                &Names::alarm_arn(account, alarm),
                &format!("hold entry to {env} while alarm {alarm} is in ALARM"),
            ));
        }
    }
    dedup(out)
}

/// The service principal that runs CodeBuild builds.
const CODEBUILD_SERVICE: &str = "codebuild.amazonaws.com";

/// Builds with `runner: codebuild`: the pipeline starts and follows them on its project; the
/// project's service role reads their inputs, writes their outputs under the pipeline's
/// prefix, writes its own log group, reads the secrets those builds name and pushes images.
fn codebuild_edges(names: &Names<'_>, own: &Scope, out: &mut Vec<Edge>) {
    let m = names.manifest;
    let native = names.shared.codepipeline.as_ref();
    let runner_builds = builds(m)
        .filter(|b| b.runner == ferry_manifest::Runner::Codebuild)
        .count();
    if runner_builds == 0 && native.is_none() {
        return;
    }
    let builds: Vec<&Build> = builds(m).filter(|b| on_codebuild(names, b)).collect();
    let pipeline = names.pipeline_role();
    let streams = format!("{}:log-stream:*", names.build_log_group_arn());
    let stream = format!(
        "{}:log-stream:0123abcd-0123-4567-89ab-0123456789ab",
        names.build_log_group_arn()
    );
    if runner_builds > 0 {
        let project = names.codebuild_project_arn();
        for (action, why) in [
            (
                "codebuild:StartBuild",
                "start a build on the pipeline's CodeBuild project",
            ),
            ("codebuild:BatchGetBuilds", "follow a build on CodeBuild"),
            (
                "codebuild:StopBuild",
                "stop a build on `ferry stop` or a timeout",
            ),
            (
                "codebuild:ListBuildsForProject",
                "find a build started before a crash instead of starting a second",
            ),
        ] {
            out.push(Edge::new(own, &pipeline, action, &project, why));
        }
        out.push(
            Edge::new(
                own,
                &pipeline,
                "logs:GetLogEvents",
                &stream,
                "copy a CodeBuild build's log into ferry's, masked",
            )
            .granted_as(&streams),
        );
    }
    if let Some(native) = native {
        native_pipeline_edges(names, native, own, out);
    }

    let role = names.build_role();
    out.push(
        Edge::new(
            own,
            CODEBUILD_SERVICE,
            "sts:AssumeRole",
            &role,
            "CodeBuild runs the pipeline's builds as this role",
        )
        .when("StringEquals", "aws:SourceAccount", &names.shared.id),
    );
    for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
        out.push(
            Edge::new(
                own,
                &role,
                action,
                &stream,
                "write the build's log to its own group",
            )
            .granted_as(&streams),
        );
    }
    let via_s3 = format!("s3.{}.amazonaws.com", names.shared.region);
    out.push(
        Edge::new(
            own,
            &role,
            "s3:GetObject",
            &names.artifact_sample(),
            "download the build's input artifacts",
        )
        .granted_as(&names.artifacts_arn()),
    );
    // Outputs of ferry's builds go under `<pipeline>/codebuild/`; CodePipeline chooses the
    // keys of its actions' outputs, under `<pipeline>/`.
    let outputs = if native.is_some() {
        format!("{}/{}", names.bucket_arn(), names.artifact_prefix())
    } else {
        format!("{}/{}", names.bucket_arn(), names.build_output_prefix())
    };
    out.push(
        Edge::new(
            own,
            &role,
            "s3:PutObject",
            &format!("{outputs}0123abcd/app.zip"),
            "upload the build's output artifacts under the pipeline's prefix",
        )
        .granted_as(&format!("{outputs}*"))
        .carrying("s3:x-amz-server-side-encryption", "aws:kms"),
    );
    for action in ["s3:GetBucketAcl", "s3:GetBucketLocation"] {
        out.push(Edge::new(
            own,
            &role,
            action,
            &names.bucket_arn(),
            "CodeBuild checks the artifact bucket before it uploads",
        ));
    }
    for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
        out.push(
            Edge::new(
                own,
                &role,
                action,
                &names.key_arn,
                "SSE-KMS: the build's artifacts through S3",
            )
            .when("StringEquals", "kms:ViaService", &via_s3),
        );
    }
    let mut secrets: Vec<&str> = builds
        .iter()
        .flat_map(|b| b.secrets.iter().map(String::as_str))
        .collect();
    secrets.sort_unstable();
    secrets.dedup();
    let named = m
        .secrets
        .iter()
        .filter(|s| secrets.contains(&s.name.as_str()))
        .map(|s| (s.name.as_str(), s.secret_id.as_str()));
    secret_reads(
        names,
        own,
        &role,
        named,
        |s| format!("CodeBuild reads secret {s} for the build"),
        out,
    );
    // CodeBuild reads a buildspec's parameters with one ssm:GetParameters call.
    buildspec_reads(
        names,
        own,
        &role,
        builds.iter().copied(),
        "ssm:GetParameters",
        out,
    );
    image_pushes(
        names,
        own,
        &role,
        "log in to ECR to push images from the build",
        |repo| format!("push images to {repo} from the build"),
        out,
    );
    if let Some(vpc) = &names.shared.codebuild.vpc {
        vpc_edges(names, own, &role, vpc, out);
    }
}

/// Projects in a VPC: for each build CodeBuild makes a network interface in one of the
/// subnets, as the service role, lets itself attach it, and removes it afterwards.
fn vpc_edges(
    names: &Names<'_>,
    own: &Scope,
    role: &str,
    vpc: &ferry_manifest::CodebuildVpc,
    out: &mut Vec<Edge>,
) {
    let (region, id) = (&names.shared.region, &names.shared.id);
    let ec2 = |kind: &str, name: &str| format!("arn:aws:ec2:{region}:{id}:{kind}/{name}");
    let interfaces = ec2("network-interface", "*");
    let interface = ec2("network-interface", "eni-0123456789abcdef0");
    let why = "make a build's network interface in the VPC";
    // CreateNetworkInterface is authorized on the new interface, its subnet and each of its
    // security groups: the grant names those, not the account's others.
    out.push(
        Edge::new(own, role, "ec2:CreateNetworkInterface", &interface, why).granted_as(&interfaces),
    );
    let subnets: Vec<String> = vpc.subnets.iter().map(|s| ec2("subnet", s)).collect();
    let groups = vpc.security_groups.iter().map(|g| ec2("security-group", g));
    for arn in subnets.iter().cloned().chain(groups) {
        out.push(Edge::new(
            own,
            role,
            "ec2:CreateNetworkInterface",
            &arn,
            why,
        ));
    }
    out.push(
        Edge::new(
            own,
            role,
            "ec2:CreateNetworkInterfacePermission",
            &interface,
            "let CodeBuild attach the interface to the build",
        )
        .granted_as(&interfaces)
        .when_matching(
            "StringEquals",
            "ec2:Subnet",
            subnets.first().map_or("", String::as_str),
            subnets.clone(),
        )
        .when("StringEquals", "ec2:AuthorizedService", CODEBUILD_SERVICE),
    );
    out.push(
        Edge::new(
            own,
            role,
            "ec2:DeleteNetworkInterface",
            &interface,
            "remove a build's network interface when it ends",
        )
        .granted_as(&interfaces)
        .when("StringEquals", "ec2:Vpc", &ec2("vpc", &vpc.id)),
    );
    // The Describe calls support no resource-level permissions: AWS allows only "*".
    for action in [
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcs",
    ] {
        out.push(Edge::new(
            own,
            role,
            action,
            "*",
            "CodeBuild reads the VPC's network before it makes a build's interface",
        ));
    }
}

/// Every build of the pipeline.
fn builds(m: &Manifest) -> impl Iterator<Item = &Build> + Clone {
    m.stages
        .iter()
        .flat_map(|s| &s.actions)
        .filter_map(|a| match &a.kind {
            ActionKind::Build(b) => Some(b),
            _ => None,
        })
}

/// Whether `build` runs on CodeBuild: it says so, or the native pipeline runs every build.
fn on_codebuild(names: &Names<'_>, build: &Build) -> bool {
    names.shared.codepipeline.is_some() || build.runner == ferry_manifest::Runner::Codebuild
}

/// `principal` reads each secret of `bindings` (a name for the reason, and its secret id).
fn secret_reads<'b>(
    names: &Names<'_>,
    scope: &Scope,
    principal: &str,
    bindings: impl IntoIterator<Item = (&'b str, &'b str)>,
    why: impl Fn(&str) -> String,
    out: &mut Vec<Edge>,
) {
    for (name, secret_id) in bindings {
        let id = secret_base(secret_id);
        out.push(
            Edge::new(
                scope,
                principal,
                "secretsmanager:GetSecretValue",
                &names.secret_sample(&id),
                &why(name),
            )
            .granted_as(&names.secret_pattern(&id)),
        );
    }
}

/// `principal` reads what the buildspecs of `builds` name in their `env`: each secret, and
/// each parameter through `get_parameters` (the call its reader makes).
fn buildspec_reads<'b>(
    names: &Names<'_>,
    scope: &Scope,
    principal: &str,
    builds: impl Iterator<Item = &'b Build>,
    get_parameters: &str,
    out: &mut Vec<Edge>,
) {
    let (mut secrets, mut parameters) = (Vec::new(), Vec::new());
    for build in builds {
        secrets.extend(build.reads.secrets.iter().map(String::as_str));
        parameters.extend(build.reads.parameters.iter().map(String::as_str));
    }
    for list in [&mut secrets, &mut parameters] {
        list.sort_unstable();
        list.dedup();
    }
    secret_reads(
        names,
        scope,
        principal,
        secrets.iter().map(|s| (*s, *s)),
        |s| format!("read secret {s}, which a buildspec names"),
        out,
    );
    for parameter in parameters {
        out.push(Edge::new(
            scope,
            principal,
            get_parameters,
            &names.parameter_arn(parameter),
            &format!("read parameter {parameter}, which a buildspec names"),
        ));
    }
}

/// `principal` pushes images to the shared repositories.
fn image_pushes(
    names: &Names<'_>,
    scope: &Scope,
    principal: &str,
    login_why: &str,
    push_why: impl Fn(&str) -> String,
    out: &mut Vec<Edge>,
) {
    if names.shared.repositories.is_empty() {
        return;
    }
    // GetAuthorizationToken acts on no resource: AWS allows only "*".
    out.push(Edge::new(
        scope,
        principal,
        "ecr:GetAuthorizationToken",
        "*",
        login_why,
    ));
    for repo in &names.shared.repositories {
        for action in [
            "ecr:BatchCheckLayerAvailability",
            "ecr:InitiateLayerUpload",
            "ecr:UploadLayerPart",
            "ecr:CompleteLayerUpload",
            "ecr:PutImage",
            "ecr:BatchGetImage",
        ] {
            out.push(Edge::new(
                scope,
                principal,
                action,
                &names.repository_arn(repo),
                &push_why(repo),
            ));
        }
    }
}

/// The native pipeline's own calls: CodePipeline as its own role (the connection, its
/// CodeBuild actions, the approval topic, the artifacts, the deploy roles of its ECS
/// deploys), and its Lambda deploys, which run `ferry deploy lambda` in CodeBuild as the
/// build role and assume the deploy role.
fn native_pipeline_edges(
    names: &Names<'_>,
    native: &ferry_manifest::Codepipeline,
    own: &Scope,
    out: &mut Vec<Edge>,
) {
    let m = names.manifest;
    let pipeline = names.codepipeline_role();
    let via_s3 = format!("s3.{}.amazonaws.com", names.shared.region);
    for (action, why) in [
        ("s3:PutObject", "store an action's output artifact"),
        ("s3:GetObject", "hand an action its input artifact"),
        (
            "s3:GetObjectVersion",
            "read an artifact version between actions",
        ),
    ] {
        let mut e = Edge::new(own, &pipeline, action, &names.artifact_sample(), why)
            .granted_as(&names.artifacts_arn());
        if action == "s3:PutObject" {
            e = e.carrying("s3:x-amz-server-side-encryption", "aws:kms");
        }
        out.push(e);
    }
    for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
        out.push(
            Edge::new(
                own,
                &pipeline,
                action,
                &names.key_arn,
                "SSE-KMS: the pipeline's artifacts through S3",
            )
            .when("StringEquals", "kms:ViaService", &via_s3),
        );
    }
    out.push(
        Edge::new(
            own,
            CODEPIPELINE_SERVICE,
            "sts:AssumeRole",
            &pipeline,
            "CodePipeline runs the native pipeline as this role",
        )
        .when("StringEquals", "aws:SourceAccount", &names.shared.id),
    );
    for action in [
        "codeconnections:UseConnection",
        "codestar-connections:UseConnection",
    ] {
        out.push(Edge::new(
            own,
            &pipeline,
            action,
            &native.connection,
            "take the source through the repository's connection",
        ));
    }
    for project in crate::synth::codepipeline::projects(names) {
        for action in ["codebuild:StartBuild", "codebuild:BatchGetBuilds"] {
            out.push(Edge::new(
                own,
                &pipeline,
                action,
                &names.project_arn(&project.name),
                &format!("run {}.{} on CodeBuild", project.stage, project.action),
            ));
        }
    }
    out.push(Edge::new(
        own,
        &pipeline,
        "sns:Publish",
        &names.approvals_topic_arn(),
        "tell approvers an approval waits",
    ));
    out.push(Edge::new(
        own,
        &pipeline,
        "s3:GetBucketVersioning",
        &names.bucket_arn(),
        "CodePipeline checks the artifact store is versioned",
    ));

    let role = names.build_role();
    if let Some(repo) = native
        .ferry_image
        .as_deref()
        .and_then(Names::ecr_repository_of)
    {
        // GetAuthorizationToken acts on no resource: AWS allows only "*".
        out.push(Edge::new(
            own,
            &role,
            "ecr:GetAuthorizationToken",
            "*",
            "CodeBuild pulls the image with ferry as the service role",
        ));
        for action in [
            "ecr:BatchCheckLayerAvailability",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchGetImage",
        ] {
            out.push(Edge::new(
                own,
                &role,
                action,
                &repo,
                "CodeBuild pulls the image with ferry for the Lambda deploys",
            ));
        }
    }
    let deploys_lambda = m
        .stages
        .iter()
        .flat_map(|s| &s.actions)
        .any(|a| matches!(a.kind, ActionKind::Lambda(_)));
    if let Some(secret) = native
        .state_url_secret
        .as_deref()
        .filter(|_| deploys_lambda)
    {
        secret_reads(
            names,
            own,
            &role,
            [("FERRY_STATE_URL", secret)],
            |_| "CodeBuild reads the URL of ferry's state for the Lambda deploys' ledger".into(),
            out,
        );
    }
    for stage in &m.stages {
        let (Some(env), Some(account)) = (
            &stage.environment,
            stage.account.as_deref().and_then(|a| m.account(a)),
        ) else {
            continue;
        };
        let scope = Scope {
            environment: Some(env.clone()),
            stage: stage.name.clone(),
        };
        let assume = |by: &str, why: String| {
            let e = Edge::new(
                &scope,
                by,
                "sts:AssumeRole",
                &names.deploy_role(account),
                &why,
            );
            match &account.external_id {
                Some(id) => e.carrying("sts:ExternalId", id),
                None => e,
            }
        };
        let kinds = || stage.actions.iter().map(|a| &a.kind);
        if kinds().any(|k| matches!(k, ActionKind::Ecs(_))) {
            out.push(assume(
                &pipeline,
                format!(
                    "CodePipeline's ECS deploy acts in {} as its deploy role",
                    account.name
                ),
            ));
        }
        if kinds().any(|k| matches!(k, ActionKind::Lambda(_))) {
            out.push(assume(
                &role,
                format!(
                    "`ferry deploy lambda` in CodeBuild acts in {} as its deploy role",
                    account.name
                ),
            ));
        }
    }
}

/// The service principal that runs CodePipeline pipelines.
const CODEPIPELINE_SERVICE: &str = "codepipeline.amazonaws.com";

/// A secret binding's secret, without the JSON key, stage or version that may follow it.
pub fn secret_base(binding: &str) -> String {
    let parts: Vec<&str> = binding.split(':').collect();
    if binding.starts_with("arn:") {
        parts[..parts.len().min(7)].join(":")
    } else {
        parts[0].to_owned()
    }
}

/// The same call from the same stage once.
fn dedup(edges: Vec<Edge>) -> Vec<Edge> {
    let mut out: Vec<Edge> = Vec::with_capacity(edges.len());
    for e in edges {
        if !out.iter().any(|o| {
            o.stage == e.stage
                && o.principal == e.principal
                && o.action == e.action
                && o.resource == e.resource
        }) {
            out.push(e);
        }
    }
    out
}
