//! The validated pipeline: what the rest of ferry works from.
//!
//! Defaults are filled in, environments are expanded into stages (the `deploy` actions
//! copied into each, variables substituted), and every reference is known to resolve.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::document::{ExecutionMode, Runner};
pub use crate::values::Traffic;

#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub pipeline: String,
    pub mode: ExecutionMode,
    /// The shared-services account; `None` for a pipeline of local builds only.
    pub shared: Option<SharedAccount>,
    /// Target accounts, in file order.
    pub accounts: Vec<Account>,
    pub source: Source,
    /// Secret bindings: environment variable name → Secrets Manager secret id.
    pub secrets: Vec<SecretBinding>,
    /// Environments in promotion order.
    pub environments: Vec<Environment>,
    /// Every stage in run order: the declared stages, then one per environment.
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SharedAccount {
    pub id: String,
    pub region: String,
    pub pipeline_role: String,
    pub artifact_bucket: String,
    pub kms_alias: String,
    pub repositories: Vec<String>,
    /// `ferry serve` on ECS Fargate, when the manifest asks for it.
    pub server: Option<Server>,
    /// The machine of the CodeBuild project that `runner: codebuild` builds run on.
    pub codebuild: CodebuildMachine,
    /// The native CodePipeline pipeline, when the manifest asks for it.
    pub codepipeline: Option<Codepipeline>,
    /// The GitHub Actions workflow that runs the pipeline as its role, when there is one.
    pub github_actions: Option<GithubActions>,
}

/// The GitHub Actions workflow that may act as the pipeline role, through GitHub's OIDC
/// provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GithubActions {
    /// `OWNER/NAME`.
    pub repository: String,
    pub branch: String,
}

impl GithubActions {
    /// GitHub's token issuer, as IAM names its OIDC provider (the URL without `https://`).
    pub const ISSUER: &'static str = "token.actions.githubusercontent.com";
    /// The audience `aws-actions/configure-aws-credentials` asks GitHub's token for.
    pub const AUDIENCE: &'static str = "sts.amazonaws.com";

    /// A claim of GitHub's token as a trust policy's condition key reads it
    /// (`token.actions.githubusercontent.com:sub`).
    pub fn claim(name: &str) -> String {
        format!("{}:{name}", GithubActions::ISSUER)
    }

    /// The token's `sub` claim for a workflow run on the branch: what the trust requires.
    pub fn subject(&self) -> String {
        format!("repo:{}:ref:refs/heads/{}", self.repository, self.branch)
    }
}

/// The pipeline as a native CodePipeline V2 pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Codepipeline {
    /// The CodeConnections connection ARN.
    pub connection: String,
    /// The image with ferry that runs Lambda deploys in CodeBuild; `None` when the pipeline
    /// deploys no Lambda function.
    pub ferry_image: Option<String>,
    /// The secret holding the PostgreSQL URL of ferry's state, whose ledger the Lambda
    /// deploys record into; `None`: they record nothing.
    pub state_url_secret: Option<String>,
}

/// The CodeBuild projects' build environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodebuildMachine {
    pub image: String,
    pub compute_type: String,
    /// The VPC the projects run in; `None`: CodeBuild's own network.
    pub vpc: Option<CodebuildVpc>,
}

/// A VPC for CodeBuild: its id, private subnets and the builds' security groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodebuildVpc {
    pub id: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
}

impl CodebuildVpc {
    /// CodeBuild's limits on a project's `vpcConfig`.
    pub const MAX_SUBNETS: usize = 16;
    pub const MAX_SECURITY_GROUPS: usize = 5;
}

impl CodebuildMachine {
    pub const DEFAULT_IMAGE: &'static str = "aws/codebuild/amazonlinux-x86_64-standard:5.0";
    pub const DEFAULT_COMPUTE_TYPE: &'static str = "BUILD_GENERAL1_SMALL";
}

/// `ferry serve` as an ECS Fargate service in the shared account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Server {
    pub image: String,
    pub vpc: String,
    pub subnets: Vec<String>,
    pub allowed_cidrs: Vec<String>,
    pub port: u16,
    /// Fargate CPU units and memory (MiB), a combination Fargate offers.
    pub cpu: u32,
    pub memory: u32,
    pub poll: Option<Duration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub name: String,
    pub id: String,
    pub region: String,
    pub deploy_role: String,
    pub external_id: Option<String>,
    pub admin_role: String,
}

impl Account {
    pub fn deploy_role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.id, self.deploy_role)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// A path relative to the manifest's directory, or a git URL.
    pub repo: String,
    pub branch: String,
    /// Push filters; empty: every push to `branch`.
    pub triggers: Vec<Trigger>,
}

/// One push filter, as CodePipeline V2 has them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trigger {
    /// `None`: the source branch.
    pub branches: Option<Globs>,
    /// Set: the filter matches tag pushes only.
    pub tags: Option<Globs>,
    pub file_paths: Option<Globs>,
}

/// Glob patterns to include and exclude (exclude wins; no `include`: everything).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Globs {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Globs {
    /// Compiles a pattern as triggers read them: `*` stays within a `/`-separated part, `**`
    /// crosses them.
    pub fn compile(pattern: &str) -> Result<globset::GlobMatcher, String> {
        globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher())
            .map_err(|e| e.kind().to_string())
    }

    /// Whether `name` is included and not excluded. (Patterns were checked when the manifest
    /// was read; one that does not compile matches nothing.)
    pub fn matches(&self, name: &str) -> bool {
        let any = |patterns: &[String]| {
            patterns
                .iter()
                .any(|p| Globs::compile(p).is_ok_and(|g| g.is_match(name)))
        };
        (self.include.is_empty() || any(&self.include)) && !any(&self.exclude)
    }
}

/// A push, as a trigger sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push<'a> {
    /// To a branch; `changed` are the files it changed since the last revision the pipeline
    /// ran (`None`: not known, as for a first push).
    Branch {
        name: &'a str,
        changed: Option<&'a [String]>,
    },
    Tag {
        name: &'a str,
    },
}

impl Source {
    /// Whether `push` starts the pipeline; `Err` says why not.
    pub fn triggered_by(&self, push: &Push<'_>) -> Result<(), String> {
        if self.triggers.is_empty() {
            return match push {
                Push::Branch { name, .. } if *name == self.branch => Ok(()),
                Push::Branch { name, .. } => Err(format!(
                    "a push to `{name}`, not to the pipeline's branch `{}`",
                    self.branch
                )),
                Push::Tag { name } => Err(format!(
                    "a tag push (`{name}`) and no trigger asks for tags"
                )),
            };
        }
        let mut why = Vec::new();
        for t in &self.triggers {
            let (name, changed) = match (push, &t.tags) {
                (Push::Tag { name }, Some(tags)) if tags.matches(name) => return Ok(()),
                (Push::Tag { name }, _) => {
                    why.push(format!("tag `{name}` matches no trigger's tags"));
                    continue;
                }
                (Push::Branch { .. }, Some(_)) => continue,
                (Push::Branch { name, changed }, None) => (*name, *changed),
            };
            let branch_ok = match &t.branches {
                Some(b) => b.matches(name),
                None => name == self.branch,
            };
            if !branch_ok {
                why.push(format!("branch `{name}` is not one the trigger includes"));
                continue;
            }
            match (&t.file_paths, changed) {
                (Some(paths), Some(files)) if !files.iter().any(|f| paths.matches(f)) => {
                    why.push(format!(
                        "none of the {} changed file(s) is one the trigger includes",
                        files.len()
                    ));
                }
                _ => return Ok(()),
            }
        }
        why.dedup();
        Err(why.join("; "))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretBinding {
    pub name: String,
    pub secret_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    pub name: String,
    /// Name of the target account.
    pub account: String,
    pub approval: Option<Approval>,
    pub gates: Gates,
}

/// What must hold before a release enters an environment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Gates {
    /// Alarms in the environment's account that hold entry while in ALARM (unless already in
    /// ALARM when the execution started).
    pub alarms: Vec<String>,
    pub windows: Vec<crate::schedule::Window>,
    /// How long the release must have run in the previous environment.
    pub soak: Option<Soak>,
    /// Alarms watched for a while after each deploy of the environment.
    pub after: Option<AfterWatch>,
}

/// How long a release must have run in an environment before it enters the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Soak {
    /// The environment before.
    pub environment: String,
    #[serde(serialize_with = "as_duration")]
    pub duration: Duration,
}

/// A watch after a deploy: `alarms` observed for `watch` once it is done, rolling it back if
/// one enters ALARM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AfterWatch {
    #[serde(serialize_with = "as_duration")]
    pub watch: Duration,
    pub alarms: Vec<String>,
}

impl Gates {
    /// Whether anything is checked before entry.
    pub fn hold_entry(&self) -> bool {
        !self.alarms.is_empty() || !self.windows.is_empty() || self.soak.is_some()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    pub name: String,
    /// The environment this stage deploys to, if it deploys.
    pub environment: Option<String>,
    /// Name of the account its `ecs` and `lambda` actions deploy to.
    pub account: Option<String>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub name: String,
    /// Lower first; equal run orders run in parallel. An environment's approval has 0.
    pub run_order: u32,
    pub kind: ActionKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Build(Build),
    Approval(Approval),
    Ecs(EcsDeploy),
    Lambda(LambdaDeploy),
}

impl ActionKind {
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::Build(_) => "build",
            ActionKind::Approval(_) => "approval",
            ActionKind::Ecs(_) => "ecs",
            ActionKind::Lambda(_) => "lambda",
        }
    }

    /// Artifacts the action reads.
    pub fn inputs(&self) -> Vec<&str> {
        match self {
            ActionKind::Build(b) => b.inputs.iter().map(String::as_str).collect(),
            ActionKind::Approval(_) => Vec::new(),
            ActionKind::Ecs(e) => std::iter::once(e.artifact.as_str())
                .chain(e.hooks.iter().flat_map(|h| match &h.check {
                    EcsHookCheck::Test(b) => b.inputs.iter().map(String::as_str).collect(),
                    EcsHookCheck::Approval(_) => Vec::new(),
                }))
                .fold(Vec::new(), |mut all, a| {
                    if !all.contains(&a) {
                        all.push(a);
                    }
                    all
                }),
            ActionKind::Lambda(l) => match &l.package {
                LambdaPackage::Zip { artifact, .. } => vec![artifact.as_str()],
                LambdaPackage::Image { .. } => Vec::new(),
            },
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub buildspec: Buildspec,
    /// The first input is the build's working directory.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Names of secret bindings the build sees.
    pub secrets: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The `#{stage.action.NAME}` references in `env` values, each once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub imports: Vec<crate::values::ExportedRef>,
    #[serde(serialize_with = "as_duration")]
    pub timeout: Duration,
    /// Where it runs: this machine, or the pipeline's CodeBuild project.
    pub runner: Runner,
    /// What its buildspec's `env` reads, so the plan grants it. This crate reads no
    /// buildspec: the loader that can (ferry-workflows, from the inline text or the working
    /// tree) fills it; empty until then.
    #[serde(skip_serializing_if = "BuildspecReads::is_empty")]
    pub reads: BuildspecReads,
}

/// The secrets and parameters a buildspec's `env` names, which the build's runner reads
/// before the build starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildspecReads {
    /// `env.secrets-manager`: secret ids (a name or an ARN), without the JSON key or version.
    pub secrets: Vec<String>,
    /// `env.parameter-store`: Parameter Store names (or ARNs).
    pub parameters: Vec<String>,
}

impl BuildspecReads {
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.parameters.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Buildspec {
    /// A path relative to the first input artifact.
    File(String),
    /// Buildspec text written in the manifest; `line` is where it starts in the manifest.
    Inline { text: String, line: usize },
}

#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// Identities or groups that may decide; empty: anyone.
    pub approvers: Vec<String>,
    #[serde(serialize_with = "as_duration")]
    pub timeout: Duration,
    pub comment_required: bool,
    /// Distinct approvers needed.
    pub required: u32,
    /// The identity that started the execution or pushed its commit may not decide.
    pub forbid_self: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct EcsDeploy {
    pub cluster: String,
    pub service: String,
    pub artifact: String,
    pub image_definitions: String,
    #[serde(serialize_with = "as_duration")]
    pub timeout: Duration,
    pub alarms: Vec<String>,
    /// The task definition's task role, by name in the target account.
    pub task_role: Option<String>,
    /// The task definition's own execution role, by name in the target account; `None`:
    /// ferry's.
    pub execution_role: Option<String>,
    /// How ECS moves the service to the new revision.
    pub strategy: EcsStrategy,
    /// Where ECS pauses the deployment for ferry (only with ECS's traffic shifting), each at
    /// its own lifecycle stage.
    pub hooks: Vec<EcsHook>,
}

/// A `PAUSE` lifecycle hook: ECS waits at `at` until ferry, having run `check`, tells it to
/// continue or to roll back.
#[derive(Debug, Clone, Serialize)]
pub struct EcsHook {
    /// The lifecycle stage as the ECS API names it, e.g. `POST_TEST_TRAFFIC_SHIFT`.
    pub at: String,
    pub check: EcsHookCheck,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EcsHookCheck {
    /// A build run locally as the deploy role; it passes by succeeding.
    Test(Build),
    /// A ferry approval: approve → continue; reject or time out → roll back.
    Approval(Approval),
}

impl EcsHook {
    /// The lifecycle stages a `PAUSE` hook may wait at, as ferry.yaml writes them.
    pub const STAGES: [&'static str; 5] = [
        "post_scale_up",
        "test_traffic_shift",
        "post_test_traffic_shift",
        "production_traffic_shift",
        "post_production_traffic_shift",
    ];

    /// How long ferry's check may take: the build's or the approval's timeout.
    pub fn timeout(&self) -> Duration {
        match &self.check {
            EcsHookCheck::Test(b) => b.timeout,
            EcsHookCheck::Approval(a) => a.timeout,
        }
    }
}

/// An ECS deployment strategy (`deploymentConfiguration.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum EcsStrategy {
    /// A rolling update: ferry sends no strategy and follows the service to steady state.
    Rolling,
    /// ECS shifts the service's production traffic itself; ferry follows the service
    /// deployment through its lifecycle.
    Shifted {
        shift: EcsShift,
        /// `bakeTimeInMinutes`.
        bake_minutes: u32,
        /// Done once all traffic is shifted, rather than after the bake.
        until_shifted: bool,
    },
}

impl EcsStrategy {
    /// How long ECS takes by design until the deploy is done — the canary's bake or the
    /// linear steps, and the bake unless `until: shifted` — on top of the time to start and
    /// stop tasks (the deploy's `timeout`).
    pub fn planned(&self) -> Duration {
        let EcsStrategy::Shifted {
            shift,
            bake_minutes,
            until_shifted,
        } = self
        else {
            return Duration::ZERO;
        };
        let shifting = match shift {
            EcsShift::BlueGreen => 0,
            EcsShift::Canary { minutes, .. } => *minutes,
            EcsShift::Linear { percent, minutes } => {
                u32::from(100u8.div_ceil((*percent).max(1))) * minutes
            }
        };
        let bake = if *until_shifted { 0 } else { *bake_minutes };
        Duration::from_secs(u64::from(shifting + bake) * 60)
    }
}

/// How ECS moves production traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EcsShift {
    /// `BLUE_GREEN`: all at once.
    BlueGreen,
    /// `CANARY`: `percent` for `minutes`, then the rest.
    Canary { percent: u8, minutes: u32 },
    /// `LINEAR`: `percent` more every `minutes`.
    Linear { percent: u8, minutes: u32 },
}

#[derive(Debug, Clone, Serialize)]
pub struct LambdaDeploy {
    pub function: String,
    pub alias: String,
    pub package: LambdaPackage,
    pub traffic: Traffic,
    pub alarms: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LambdaPackage {
    /// A zip file inside an input artifact.
    Zip {
        artifact: String,
        path: String,
    },
    Image {
        uri: String,
    },
}

/// What a deploy changes, as the release ledger names it: `lambda:orders-fn:live`,
/// `ecs:orders-prod/orders-api`. The one place that format is made and read, so a deploy's
/// ledger entries and `ferry rollback`'s look-up of them always agree.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReleaseTarget {
    Lambda { function: String, alias: String },
    Ecs { cluster: String, service: String },
}

impl std::fmt::Display for ReleaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReleaseTarget::Lambda { function, alias } => write!(f, "lambda:{function}:{alias}"),
            ReleaseTarget::Ecs { cluster, service } => write!(f, "ecs:{cluster}/{service}"),
        }
    }
}

impl std::str::FromStr for ReleaseTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<ReleaseTarget, String> {
        let parsed = if let Some(rest) = s.strip_prefix("lambda:") {
            rest.rsplit_once(':')
                .map(|(function, alias)| ReleaseTarget::Lambda {
                    function: function.to_owned(),
                    alias: alias.to_owned(),
                })
        } else if let Some(rest) = s.strip_prefix("ecs:") {
            rest.split_once('/')
                .map(|(cluster, service)| ReleaseTarget::Ecs {
                    cluster: cluster.to_owned(),
                    service: service.to_owned(),
                })
        } else {
            None
        };
        let complete = |t: &ReleaseTarget| match t {
            ReleaseTarget::Lambda { function, alias } => !function.is_empty() && !alias.is_empty(),
            ReleaseTarget::Ecs { cluster, service } => !cluster.is_empty() && !service.is_empty(),
        };
        parsed
            .filter(complete)
            .ok_or_else(|| {
                format!("`{s}` is not a deploy target: write `lambda:FUNCTION:ALIAS` or `ecs:CLUSTER/SERVICE`")
            })
    }
}

impl Serialize for ReleaseTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReleaseTarget {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ReleaseTarget, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for ReleaseTarget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ReleaseTarget".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "What a deploy changes: `lambda:FUNCTION:ALIAS` or `ecs:CLUSTER/SERVICE`.",
            "pattern": "^(lambda:[^:]+:[^:]+|ecs:[^/]+/.+)$"
        })
    }
}

impl EcsDeploy {
    pub fn release_target(&self) -> ReleaseTarget {
        ReleaseTarget::Ecs {
            cluster: self.cluster.clone(),
            service: self.service.clone(),
        }
    }
}

impl LambdaDeploy {
    pub fn release_target(&self) -> ReleaseTarget {
        ReleaseTarget::Lambda {
            function: self.function.clone(),
            alias: self.alias.clone(),
        }
    }
}

impl ActionKind {
    /// What a deploy action changes; `None` for builds and approvals.
    pub fn release_target(&self) -> Option<ReleaseTarget> {
        match self {
            ActionKind::Ecs(e) => Some(e.release_target()),
            ActionKind::Lambda(l) => Some(l.release_target()),
            ActionKind::Build(_) | ActionKind::Approval(_) => None,
        }
    }
}

fn as_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::values::format_duration(*d))
}

impl Manifest {
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn secret(&self, name: &str) -> Option<&SecretBinding> {
        self.secrets.iter().find(|s| s.name == name)
    }

    /// The pipeline role; `None` for a pipeline without a shared account.
    pub fn pipeline_role_arn(&self) -> Option<String> {
        self.shared
            .as_ref()
            .map(|s| format!("arn:aws:iam::{}:role/{}", s.id, s.pipeline_role))
    }

    /// Every deploy action with the stage and account it runs in.
    pub fn deployments(&self) -> impl Iterator<Item = (&Stage, &Account, &Action)> {
        self.stages.iter().flat_map(move |stage| {
            let account = stage.account.as_deref().and_then(|a| self.account(a));
            stage
                .actions
                .iter()
                .filter_map(move |action| match action.kind {
                    ActionKind::Ecs(_) | ActionKind::Lambda(_) => {
                        account.map(|acc| (stage, acc, action))
                    }
                    _ => None,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{EcsShift, EcsStrategy, Globs, Push, ReleaseTarget, Source, Trigger};

    #[test]
    fn an_ecs_strategy_plans_its_shifting_and_its_bake_unless_done_once_shifted() {
        let linear = |until_shifted| EcsStrategy::Shifted {
            shift: EcsShift::Linear {
                percent: 30,
                minutes: 2,
            },
            bake_minutes: 10,
            until_shifted,
        };
        // 30% steps: four of them (30, 60, 90, 100), two minutes each; then the bake.
        assert_eq!(linear(false).planned(), Duration::from_secs((8 + 10) * 60));
        assert_eq!(linear(true).planned(), Duration::from_secs(8 * 60));
        assert_eq!(EcsStrategy::Rolling.planned(), Duration::ZERO);
    }

    fn globs(include: &[&str], exclude: &[&str]) -> Option<Globs> {
        Some(Globs {
            include: include.iter().map(|s| (*s).to_owned()).collect(),
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn source(triggers: Vec<Trigger>) -> Source {
        Source {
            repo: ".".into(),
            branch: "main".into(),
            triggers,
        }
    }

    fn branch<'a>(name: &'a str, changed: Option<&'a [String]>) -> Push<'a> {
        Push::Branch { name, changed }
    }

    #[test]
    fn without_triggers_every_push_to_the_branch_starts_it() {
        let s = source(vec![]);
        assert!(s.triggered_by(&branch("main", None)).is_ok());
        assert!(s.triggered_by(&branch("feature/x", None)).is_err());
        assert!(s.triggered_by(&Push::Tag { name: "v1" }).is_err());
    }

    #[test]
    fn branch_and_file_filters_both_must_match_and_exclude_wins() {
        let s = source(vec![Trigger {
            branches: globs(&["main", "release/*"], &["release/old-*"]),
            tags: None,
            file_paths: globs(&["src/**"], &["**/*.md"]),
        }]);
        let code = vec!["src/app/main.rs".to_owned()];
        let docs = vec!["src/README.md".to_owned(), "docs/guide.md".to_owned()];
        assert!(s.triggered_by(&branch("release/2", Some(&code))).is_ok());
        assert!(
            s.triggered_by(&branch("release/old-1", Some(&code)))
                .is_err()
        );
        // `*` stays within one part of a branch name.
        assert!(
            s.triggered_by(&branch("release/2/hotfix", Some(&code)))
                .is_err()
        );
        let why = s.triggered_by(&branch("main", Some(&docs))).unwrap_err();
        assert!(why.contains("changed file"), "{why}");
        // Unknown changes (a first push) do not hold a branch back.
        assert!(s.triggered_by(&branch("main", None)).is_ok());
    }

    #[test]
    fn a_tag_trigger_matches_tag_pushes_only() {
        let s = source(vec![Trigger {
            branches: None,
            tags: globs(&["v*"], &[]),
            file_paths: None,
        }]);
        assert!(s.triggered_by(&Push::Tag { name: "v1.2.0" }).is_ok());
        assert!(s.triggered_by(&Push::Tag { name: "nightly" }).is_err());
        assert!(s.triggered_by(&branch("main", None)).is_err());
    }

    #[test]
    fn release_targets_read_back_as_they_are_written() {
        for text in ["lambda:orders-fn:live", "ecs:orders-prod/orders-api"] {
            let t: ReleaseTarget = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        for bad in [
            "lambda:orders-fn",
            "ecs:orders",
            "orders-fn",
            "lambda::live",
            "ecs:/x",
        ] {
            assert!(bad.parse::<ReleaseTarget>().is_err(), "{bad}");
        }
    }
}
