//! The shape of `ferry.yaml` as written, before validation.
//!
//! These types are the single description of the file format: the decoder fills them from
//! YAML, the JSON Schema (`ferry schema`) and the field reference (`docs/manifest.md`) are
//! generated from them, doc comments included. Every string keeps its span so that later
//! checks can point at it.

use ferry_yaml::Spanned;
use schemars::JsonSchema;

/// A string as written, with where it was written.
pub type Text = Spanned<String>;

/// A mapping from names chosen by the user to values, in file order, keys with their spans.
#[derive(Debug, Clone)]
pub struct NamedMap<T>(pub Vec<(Text, T)>);

impl<T> Default for NamedMap<T> {
    fn default() -> Self {
        NamedMap(Vec::new())
    }
}

impl<T> NamedMap<T> {
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k.value == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Text, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.value.as_str()).collect()
    }
}

impl<T: JsonSchema> JsonSchema for NamedMap<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }
}

/// `ferry.yaml`: one pipeline that carries releases from a shared-services account to target accounts.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields, title = "ferry.yaml")]
pub struct Document {
    /// Format version of this file. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: Option<Spanned<u64>>,
    /// Name of the pipeline: lowercase letters, digits and `-`, starting with a letter, at most
    /// 32 characters. It names the pipeline role, the role sessions and the state directory.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]{0,31}$"))]
    pub pipeline: Text,
    /// How executions share stages (as in CodePipeline V2). Default `superseded`.
    pub mode: Option<Spanned<ExecutionMode>>,
    /// The shared-services account that runs the pipeline and holds artifacts and images.
    /// Needed once the pipeline touches AWS (accounts, environments, deploys, repositories,
    /// secrets); a pipeline of local builds runs without it.
    pub shared: Option<SharedDoc>,
    /// Target accounts, by the name that environments and stages use for them.
    #[schemars(default)]
    pub accounts: NamedMap<AccountDoc>,
    /// Where each execution takes its source from. Default: the git repository that holds this
    /// file, branch `main`.
    pub source: Option<SourceDoc>,
    /// Secrets for builds: an environment variable name bound to a Secrets Manager secret in
    /// the shared account, as CodeBuild names them: `name-or-ARN[:json-key[:version-stage[:version-id]]]`.
    /// Values are read at run time, masked in every log line, and never stored.
    #[schemars(default)]
    pub secrets: NamedMap<Text>,
    /// Stages that run before the environments, in order: typically build and test.
    #[schemars(default)]
    pub stages: Vec<StageDoc>,
    /// Environments, in promotion order. Each becomes a stage that runs the `deploy` actions in
    /// its account, after its approval if it has one.
    #[schemars(default)]
    pub environments: Vec<EnvironmentDoc>,
    /// The deploy actions, declared once and run in every environment in order. Their strings
    /// may use `${env}`, `${account_id}`, `${region}` and the environment's `vars`.
    #[schemars(default)]
    pub deploy: Vec<ActionDoc>,
}

impl Document {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "version",
        "pipeline",
        "mode",
        "shared",
        "accounts",
        "source",
        "secrets",
        "stages",
        "environments",
        "deploy",
    ];
}

/// How executions share stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    /// A newer execution replaces an older one waiting to enter a stage.
    #[default]
    Superseded,
    /// Executions run one after another, in the order they started.
    Queued,
    /// Executions run independently of each other.
    Parallel,
}

impl ExecutionMode {
    pub(crate) const NAMES: &'static [&'static str] = &["superseded", "queued", "parallel"];

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Superseded => "superseded",
            ExecutionMode::Queued => "queued",
            ExecutionMode::Parallel => "parallel",
        }
    }
}

/// The shared-services account.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SharedDoc {
    /// 12-digit AWS account id. Quote it: `"011111111111"`.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub id: Text,
    /// AWS region of the pipeline's resources, e.g. `eu-west-1`.
    pub region: Text,
    /// Name of the IAM role the pipeline runs as. Default `ferry-<pipeline>`.
    pub pipeline_role: Option<Text>,
    /// The artifact store.
    pub artifacts: Option<ArtifactsDoc>,
    /// ECR repositories the pipeline pushes images to and the target accounts pull from.
    #[schemars(default)]
    pub repositories: Vec<Text>,
    /// `ferry serve` on ECS Fargate in this account, for `ferry synth terraform` to write.
    pub server: Option<ServerDoc>,
    /// Where builds run by default, and the CodeBuild project of those that run on CodeBuild.
    pub builds: Option<BuildsDoc>,
    /// The pipeline as a native CodePipeline V2 pipeline in this account, which `ferry synth
    /// codepipeline --apply` (or `ferry bootstrap`) creates with its CodeBuild projects.
    pub codepipeline: Option<CodepipelineDoc>,
    /// The pipeline runs in GitHub Actions (a workflow that calls `ferry run`): `ferry
    /// bootstrap` lays GitHub's OIDC provider in this account and lets that workflow assume
    /// the pipeline role, from this repository and branch only.
    pub github_actions: Option<GithubActionsDoc>,
}

/// The GitHub Actions workflow that runs the pipeline.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GithubActionsDoc {
    /// The repository, as `OWNER/NAME`: `acme/orders`.
    pub repository: Text,
    /// The branch whose workflow runs may act as the pipeline. Default `main`.
    pub branch: Option<Text>,
}

impl GithubActionsDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["repository", "branch"];
}

/// The native CodePipeline pipeline.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct CodepipelineDoc {
    /// The CodeConnections (CodeStar) connection to the repository that `source.repo` names:
    /// `arn:aws:codeconnections:eu-west-1:111111111111:connection/…`.
    pub connection: Text,
    /// An image with ferry in it (`deploy/Containerfile`), by tag or digest, for the CodeBuild
    /// actions that run `ferry deploy lambda`. Default `shared.server.image`.
    pub ferry_image: Option<Text>,
    /// A Secrets Manager secret (name or ARN) whose value is the PostgreSQL URL of ferry's
    /// state (`FERRY_STATE_URL`, as `ferry serve` uses it): the Lambda deploys record their
    /// releases in its ledger. Without it they record none.
    pub state_url_secret: Option<Text>,
}

impl CodepipelineDoc {
    pub(crate) const KEYS: &'static [&'static str] =
        &["connection", "ferry_image", "state_url_secret"];
}

impl SharedDoc {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "id",
        "region",
        "pipeline_role",
        "artifacts",
        "repositories",
        "server",
        "builds",
        "codepipeline",
        "github_actions",
    ];
}

/// Where a build runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runner {
    /// On the machine that runs ferry (`ferry run`, `ferry serve`).
    #[default]
    Local,
    /// On the pipeline's CodeBuild project in the shared account (`ferry bootstrap` creates
    /// it and its service role).
    Codebuild,
}

impl Runner {
    pub(crate) const NAMES: &'static [&'static str] = &["local", "codebuild"];

    pub fn as_str(self) -> &'static str {
        match self {
            Runner::Local => "local",
            Runner::Codebuild => "codebuild",
        }
    }
}

/// The pipeline's builds: where they run by default, and the CodeBuild project's machine.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildsDoc {
    /// Where a build runs unless it says otherwise. Default `local`.
    pub runner: Option<Spanned<Runner>>,
    /// The CodeBuild image. Default `aws/codebuild/amazonlinux-x86_64-standard:5.0`.
    pub image: Option<Text>,
    /// The CodeBuild compute type, e.g. `BUILD_GENERAL1_MEDIUM`. Default
    /// `BUILD_GENERAL1_SMALL`.
    #[schemars(regex(pattern = r"^BUILD_[A-Z0-9_]+$"))]
    pub compute_type: Option<Text>,
    /// The VPC every CodeBuild project of the pipeline runs in, for builds and tests that
    /// reach private resources (a database, an internal API). Default: none, CodeBuild's own
    /// network.
    pub vpc: Option<BuildsVpcDoc>,
}

impl BuildsDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["runner", "image", "compute_type", "vpc"];
}

/// The VPC of the pipeline's CodeBuild projects. Their builds reach AWS (S3, CloudWatch
/// Logs, ECR, STS, Secrets Manager) and the forge from its subnets, so those need a route out
/// (a NAT gateway) or VPC endpoints.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildsVpcDoc {
    /// The VPC: `vpc-0abc…`.
    pub id: Text,
    /// Private subnets of that VPC with a route out, up to 16, e.g. one per availability
    /// zone.
    pub subnets: Vec<Text>,
    /// The security groups of the builds' network interfaces, up to 5.
    pub security_groups: Vec<Text>,
}

impl BuildsVpcDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["id", "subnets", "security_groups"];
}

/// `ferry serve` as an ECS Fargate service in the shared account, its task role the pipeline
/// role and its state on an encrypted EFS volume (docs/server.md, "On AWS").
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ServerDoc {
    /// The image built from `deploy/Containerfile`, by tag or digest, e.g.
    /// `111111111111.dkr.ecr.eu-west-1.amazonaws.com/ferry:0.1.0`.
    pub image: Text,
    /// The VPC of its tasks and its state volume: `vpc-0abc…`.
    pub vpc: Text,
    /// Private subnets with a route to AWS and to the forge, one per availability zone.
    pub subnets: Vec<Text>,
    /// CIDR blocks that may reach its port (a load balancer's subnets). Default: none.
    #[schemars(default)]
    pub allowed_cidrs: Vec<Text>,
    /// The port it listens on. Default `8080`.
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<Spanned<u64>>,
    /// Fargate CPU units: 256, 512, 1024, 2048 or 4096. Default `512`.
    pub cpu: Option<Spanned<u64>>,
    /// Memory in MiB, as Fargate allows it for `cpu`. Default `1024`.
    pub memory: Option<Spanned<u64>>,
    /// Poll the repository this often, for forges whose webhooks cannot reach it: `5m`.
    pub poll: Option<Text>,
}

impl ServerDoc {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "image",
        "vpc",
        "subnets",
        "allowed_cidrs",
        "port",
        "cpu",
        "memory",
        "poll",
    ];
}

/// The S3 bucket and the customer-managed KMS key that hold every artifact.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ArtifactsDoc {
    /// Bucket name. Default `ferry-<pipeline>-artifacts-<shared id>`.
    pub bucket: Option<Text>,
    /// Alias of the KMS key that encrypts artifacts. Default `alias/ferry-<pipeline>`.
    #[schemars(regex(pattern = r"^alias/[A-Za-z0-9/_-]+$"))]
    pub kms_alias: Option<Text>,
}

impl ArtifactsDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["bucket", "kms_alias"];
}

/// A target account that releases are deployed to.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AccountDoc {
    /// 12-digit AWS account id. Quote it: `"022222222222"`.
    #[schemars(regex(pattern = r"^[0-9]{12}$"))]
    pub id: Text,
    /// AWS region of the deployed services. Default: the shared account's region.
    pub region: Option<Text>,
    /// Role that the pipeline role assumes to deploy here. Default `ferry-deploy`.
    pub deploy_role: Option<Text>,
    /// ExternalId the pipeline passes when it assumes the deploy role. Not a secret: it guards
    /// against the confused-deputy problem.
    pub external_id: Option<Text>,
    /// Role that `ferry bootstrap` assumes to create the deploy role. Default
    /// `OrganizationAccountAccessRole`, the role AWS Organizations creates in member accounts.
    pub admin_role: Option<Text>,
}

impl AccountDoc {
    pub(crate) const KEYS: &'static [&'static str] =
        &["id", "region", "deploy_role", "external_id", "admin_role"];
}

/// The source repository.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SourceDoc {
    /// A local path (relative to this file) or a git URL. Default `.`.
    pub repo: Option<Text>,
    /// Branch to build. Default `main`.
    pub branch: Option<Text>,
    /// Which pushes start the pipeline under `ferry serve`, as CodePipeline V2's push filters:
    /// a push that any entry matches starts an execution. Default: every push to `branch`.
    #[schemars(default)]
    pub triggers: Vec<TriggerDoc>,
}

impl SourceDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["repo", "branch", "triggers"];
}

/// One push filter. Within it, the branch (or tag) and the changed files must both match.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TriggerDoc {
    /// Branches (glob patterns: `*` within a `/`-separated part, `**` across them) whose pushes
    /// match. Default: the source `branch`.
    pub branches: Option<FilterDoc>,
    /// Tags (glob patterns) whose pushes match; an entry with `tags` matches tag pushes only,
    /// and has no `branches`.
    pub tags: Option<FilterDoc>,
    /// Files a push must touch (glob patterns over the paths changed since the last revision
    /// the pipeline ran); a push that changes only excluded files starts nothing.
    pub file_paths: Option<FilterDoc>,
}

impl TriggerDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["branches", "tags", "file_paths"];
}

/// Glob patterns to include and to exclude; an excluded match wins. With only `exclude`,
/// everything else is included.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FilterDoc {
    /// Patterns to include. Empty: everything not excluded.
    #[schemars(default)]
    pub include: Vec<Text>,
    /// Patterns to exclude, even when included.
    #[schemars(default)]
    pub exclude: Vec<Text>,
}

impl FilterDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["include", "exclude"];
}

/// A stage: actions that run together, by run order.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StageDoc {
    /// Stage name: letters, digits, `-` and `_`, at most 64 characters.
    pub name: Text,
    /// The environment whose account this stage's `ecs` and `lambda` actions deploy to.
    pub environment: Option<Text>,
    /// The stage's actions.
    pub actions: Vec<ActionDoc>,
}

impl StageDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["name", "environment", "actions"];
}

/// One action: a name, a run order, and exactly one of `build`, `approval`, `ecs`, `lambda`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ActionDoc {
    /// Action name, unique in its stage: letters, digits, `-` and `_`, at most 64 characters.
    pub name: Text,
    /// Actions with a lower run order finish before those with a higher one start; actions with
    /// the same run order run in parallel. Default 1.
    #[schemars(range(min = 1, max = 999))]
    pub run_order: Option<Spanned<u64>>,
    #[schemars(flatten)]
    pub kind: ActionKindDoc,
}

impl ActionDoc {
    pub(crate) const KEYS: &'static [&'static str] =
        &["name", "run_order", "build", "approval", "ecs", "lambda"];
}

/// What an action does.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(rename_all = "snake_case")]
pub enum ActionKindDoc {
    /// Run a CodeBuild buildspec (version 0.2).
    Build(BuildDoc),
    /// Wait for a person to approve or reject.
    Approval(ApprovalDoc),
    /// Deploy new images to an ECS service.
    Ecs(EcsDoc),
    /// Deploy new code to a Lambda function and shift its alias.
    Lambda(LambdaDoc),
}

/// A build.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BuildDoc {
    /// A buildspec file, relative to the first input artifact (as in CodeBuild), or an inline
    /// buildspec written as a block string (`buildspec: |` followed by its YAML).
    pub buildspec: Text,
    /// Artifacts the build reads; the first is the working directory. Default `[source]`.
    pub inputs: Option<Vec<Text>>,
    /// Artifacts the build produces, named after the buildspec's `artifacts` section.
    #[schemars(default)]
    pub outputs: Vec<Text>,
    /// Names from the top-level `secrets` that the build sees as environment variables.
    #[schemars(default)]
    pub secrets: Vec<Text>,
    /// Plain environment variables for the build. A value may use what an earlier build
    /// exported (its buildspec's `env.exported-variables`): `#{stage.action.NAME}`, e.g.
    /// `IMAGE_TAG: "#{build.app.VERSION}"`.
    #[schemars(default)]
    pub env: NamedMap<Text>,
    /// Longest the build may run before it is stopped, e.g. `20m`. Default `1h`; at most `36h`.
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub timeout: Option<Text>,
    /// Where the build runs: `local` or `codebuild`. Default `shared.builds.runner`.
    pub runner: Option<Spanned<Runner>>,
}

impl BuildDoc {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "buildspec",
        "inputs",
        "outputs",
        "secrets",
        "env",
        "timeout",
        "runner",
    ];
}

/// A manual approval.
#[derive(Debug, Clone, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ApprovalDoc {
    /// Who may approve: identities (user names or e-mail addresses; under `ferry serve`, token
    /// names) or groups of `ferry serve` tokens. Empty: anyone who can run `ferry approve`.
    #[schemars(default)]
    pub approvers: Vec<Text>,
    /// How long to wait before the approval fails, e.g. `24h`. Default `7d`, the longest allowed.
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub timeout: Option<Text>,
    /// Whether approving or rejecting needs a comment. Default `false`.
    pub comment_required: Option<Spanned<bool>>,
    /// How many distinct approvers must approve, from 1 to 10. Default `1`. One rejection
    /// decides.
    #[schemars(range(min = 1, max = 10))]
    pub required: Option<Spanned<u64>>,
    /// Whether the identity that started the execution, or pushed its commit, is refused as an
    /// approver. Default `false`.
    pub forbid_self: Option<Spanned<bool>>,
}

impl ApprovalDoc {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "approvers",
        "timeout",
        "comment_required",
        "required",
        "forbid_self",
    ];
}

/// An ECS service deployment.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EcsDoc {
    /// Cluster name.
    pub cluster: Text,
    /// Service name.
    pub service: Text,
    /// The input artifact holding the image definitions.
    pub artifact: Text,
    /// Path of the image definitions inside the artifact: CodePipeline's `imagedefinitions.json`
    /// (`[{"name": container, "imageUri": uri}]`) or `imageDetail.json`. Default `imagedefinitions.json`.
    pub image_definitions: Option<Text>,
    /// Longest wait for the service to reach a steady state before rolling back. Default `30m`.
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub timeout: Option<Text>,
    /// CloudWatch alarms in the target account; one entering ALARM during the deploy rolls it back.
    #[schemars(default)]
    pub alarms: Vec<Text>,
    /// The IAM role (a name, in the target account) that the service's task definition gives its
    /// containers (`taskRoleArn`). Registering a revision passes it to ECS, so the deploy role
    /// may pass it — with the execution role, to ECS tasks only, and no other role. Omit
    /// when the task definition has no task role.
    pub task_role: Option<Text>,
    /// The task definition's own execution role (a name, in the target account;
    /// `executionRoleArn`), when it is not ferry's `ferry-<pipeline>-ecs-execution`. The deploy
    /// role may pass exactly it, the shared repositories' policies let it pull, and its own
    /// policies stay yours: `ferry verify --live` reads them. Omit to use ferry's.
    pub execution_role: Option<Text>,
    /// How ECS moves the service to the new revision: `rolling` (the default, a rolling
    /// update), or ECS's own traffic shifting on the service's load balancer — `blue_green`
    /// (all production traffic at once), `canary 10% 5m` (10% for five minutes, then the
    /// rest) or `linear 10% every 1m`. ECS's shifting needs the service's load balancer set
    /// up for it (an alternate target group, production listener rule and its role).
    /// Durations are whole minutes.
    pub strategy: Option<Text>,
    /// With ECS's traffic shifting: how long both revisions stay up once all production
    /// traffic is on the new one, e.g. `15m` (`bakeTimeInMinutes`); a rollback in that time
    /// is instant. Default `0m`.
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub bake: Option<Text>,
    /// With ECS's traffic shifting: when the deploy is done — `baked` (the deployment
    /// succeeded, after the bake) or `shifted` (all production traffic is on the new
    /// revision; ECS finishes the bake by itself, so a long bake does not hold the pipeline).
    /// Default `baked`.
    pub until: Option<Text>,
    /// With ECS's traffic shifting: where ECS pauses the deployment for ferry, each at its own
    /// lifecycle stage. ferry runs the hook's `test` or asks for its `approval`, then tells
    /// ECS to go on (ContinueServiceDeployment CONTINUE) or to roll back (ROLLBACK) — as it
    /// does when the test fails, the approval is rejected or its time runs out.
    #[schemars(default)]
    pub hooks: Vec<Spanned<EcsHookDoc>>,
}

/// A pause in an ECS deployment (a `PAUSE` lifecycle hook) with what ferry does there: one of
/// `test` and `approval`.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EcsHookDoc {
    /// The lifecycle stage ECS pauses at: `post_scale_up`, `test_traffic_shift`,
    /// `post_test_traffic_shift` (the test listener serves the new revision, production
    /// traffic has not moved), `production_traffic_shift` or `post_production_traffic_shift`.
    /// Default `post_test_traffic_shift`.
    pub at: Option<Text>,
    /// A build run on the machine that runs ferry, as the target account's deploy role (its
    /// credentials in the standard `AWS_*` variables), usually against the test listener. It
    /// also sees `FERRY_SERVICE_DEPLOYMENT` and `FERRY_SERVICE_REVISION`. It fails the hook by
    /// failing; it produces no artifacts and runs locally.
    pub test: Option<BuildDoc>,
    /// A ferry approval in the middle of the rollout, decided with `ferry approve` (or the
    /// dashboard) as the stage's approvals are.
    pub approval: Option<ApprovalDoc>,
}

impl EcsHookDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["at", "test", "approval"];
}

impl EcsDoc {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "cluster",
        "service",
        "artifact",
        "image_definitions",
        "timeout",
        "alarms",
        "task_role",
        "execution_role",
        "strategy",
        "bake",
        "until",
        "hooks",
    ];
}

/// A Lambda function deployment.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct LambdaDoc {
    /// Function name.
    pub function: Text,
    /// Alias that serves traffic and is shifted to the new version. Default `live`.
    pub alias: Option<Text>,
    /// The input artifact holding the zip package.
    pub artifact: Option<Text>,
    /// Path of the zip package inside `artifact`.
    pub zip: Option<Text>,
    /// Container image URI, for functions packaged as images (instead of `artifact` + `zip`).
    /// An image in one of `shared.repositories` gets the repository policy Lambda needs to pull
    /// it across accounts.
    pub image_uri: Option<Text>,
    /// How traffic moves to the new version: `all-at-once` (default), `canary <pct>% <bake>`
    /// (e.g. `canary 10% 5m`) or `linear <pct>% every <interval>` (e.g. `linear 20% every 1m`).
    #[schemars(regex(
        pattern = r"^(all-at-once|canary [0-9]{1,2}% ([0-9]+[smhd])+|linear [0-9]{1,2}% every ([0-9]+[smhd])+)$"
    ))]
    pub traffic: Option<Text>,
    /// CloudWatch alarms in the target account; one entering ALARM during the deploy rolls it back.
    #[schemars(default)]
    pub alarms: Vec<Text>,
}

impl LambdaDoc {
    pub(crate) const KEYS: &'static [&'static str] = &[
        "function",
        "alias",
        "artifact",
        "zip",
        "image_uri",
        "traffic",
        "alarms",
    ];
}

/// An environment: a target account that releases are promoted through.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EnvironmentDoc {
    /// Environment name; also the name of its stage.
    pub name: Text,
    /// The target account (a key of `accounts`).
    pub account: Text,
    /// An approval that must be given before this environment is deployed.
    pub approval: Option<ApprovalDoc>,
    /// Values for `${name}` in the `deploy` actions when they run in this environment.
    #[schemars(default)]
    pub vars: NamedMap<Text>,
    /// What must hold before a release enters this environment.
    pub gates: Option<GatesDoc>,
}

impl EnvironmentDoc {
    pub(crate) const KEYS: &'static [&'static str] =
        &["name", "account", "approval", "vars", "gates"];
}

/// An environment's gates. `alarms`, `windows` and `soak` are checked before the
/// environment's deploys start (after its approval, when it has one) and again until all let
/// the release in; a holding gate keeps the stage waiting and says why, and `ferry override`
/// lets a release past them with a reason that the ledger and the audit log keep. `after`
/// watches each deploy once it is done.
#[derive(Debug, Clone, Default, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GatesDoc {
    /// CloudWatch alarms in the environment's account. Entry is held while one is in ALARM,
    /// unless it was already in ALARM when the execution started (a hotfix for what set it
    /// off is not held back).
    #[schemars(default)]
    pub alarms: Vec<Text>,
    /// Deployment windows (`allow`) and freezes (`deny`). With any `allow`, a release enters
    /// only in a minute one of them matches; never in a minute a `deny` matches.
    #[schemars(default)]
    pub windows: Vec<WindowDoc>,
    /// How long the release must have run in the previous environment, e.g. `2h`, deployed and
    /// not rolled back, before it enters this one.
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub soak: Option<Text>,
    /// A watch after the environment's deploys: once each ECS service is steady and each
    /// Lambda alias has all its traffic, these alarms are watched for a while, and the deploy
    /// rolls back if one enters ALARM.
    pub after: Option<AfterDoc>,
}

impl GatesDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["alarms", "windows", "soak", "after"];
}

/// The watch after a deploy.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AfterDoc {
    /// How long to watch, e.g. `15m` (at most 24h). The deploy action, and so the stage, ends
    /// only after it.
    #[schemars(regex(pattern = r"^([0-9]+[smhd])+$"))]
    pub watch: Text,
    /// CloudWatch alarms in the environment's account; one that enters ALARM from the start
    /// of the deploy to the end of the watch rolls it back (one already in ALARM when the
    /// deploy started does not).
    pub alarms: Vec<Text>,
}

impl AfterDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["watch", "alarms"];
}

/// A deployment window or a freeze: a five-field cron expression (minute, hour, day of month,
/// month, day of week) naming the minutes it covers. `* 9-16 * * MON-FRI` is 09:00 to 16:59 on
/// weekdays.
#[derive(Debug, Clone, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WindowDoc {
    /// The minutes in which releases may enter. Give `allow` or `deny`, not both.
    pub allow: Option<Text>,
    /// The minutes in which no release enters: a freeze.
    pub deny: Option<Text>,
    /// The IANA time zone the expression is read in, e.g. `Europe/Berlin`. Default `UTC`.
    pub time_zone: Option<Text>,
}

impl WindowDoc {
    pub(crate) const KEYS: &'static [&'static str] = &["allow", "deny", "time_zone"];
}
