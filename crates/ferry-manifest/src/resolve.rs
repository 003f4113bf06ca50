//! [`Document`] → [`Manifest`]: value formats and ranges, references between parts of the
//! file, the artifact flow, environment expansion, and warnings.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ferry_yaml::{Decoder, Diagnostic, SourceFile, Span, Spanned, did_you_mean};

use crate::document::*;
use crate::model::*;
use crate::values::{Traffic, exported_refs, format_duration, names, parse_duration};

const DEFAULT_DEPLOY_ROLE: &str = "ferry-deploy";
const DEFAULT_ADMIN_ROLE: &str = "OrganizationAccountAccessRole";
const SOURCE_ARTIFACT: &str = "source";
const APPROVAL_ACTION: &str = "approve";
/// The name of the action that checks an environment's gates.
pub const GATES_ACTION: &str = "gates";
const DAY: u64 = 86_400;

pub(crate) fn resolve(file: &SourceFile, doc: &Document, d: &mut Decoder) -> Option<Manifest> {
    let mut r = Resolver {
        file,
        doc,
        d,
        missing_vars: BTreeMap::new(),
        export_spans: HashMap::new(),
    };
    // Every part is checked even when an earlier one is invalid, so that one run reports all.
    // The artifact flow is the exception: after a structural error (a misspelt `outputs`, an
    // action that could not be read) it would only report consequences of that error.
    let structural_errors = r.d.has_errors();
    let manifest = r.manifest();
    r.report_missing_vars();
    if !structural_errors {
        r.artifact_flow(&manifest.stages);
        r.export_flow(&manifest.stages);
    }
    r.warnings(&manifest.stages);
    Some(Manifest {
        pipeline: manifest.pipeline?,
        mode: manifest.mode,
        shared: manifest.shared,
        accounts: manifest.accounts,
        source: manifest.source,
        secrets: manifest.secrets,
        environments: manifest.environments,
        stages: manifest.stages,
    })
}

/// The parts of a [`Manifest`]; `None` where a part is invalid (already reported).
struct Parts {
    pipeline: Option<String>,
    mode: ExecutionMode,
    /// `None` for a pipeline of local builds only.
    shared: Option<SharedAccount>,
    accounts: Vec<Account>,
    source: Source,
    secrets: Vec<SecretBinding>,
    environments: Vec<Environment>,
    stages: Vec<Stage>,
}

struct Resolver<'a> {
    file: &'a SourceFile,
    doc: &'a Document,
    d: &'a mut Decoder,
    /// `${name}` uses that some environments cannot resolve: (span, name) → environments.
    missing_vars: BTreeMap<(usize, usize, String), Vec<String>>,
    /// Where each `#{stage.action.NAME}` is first written, for the flow check.
    export_spans: HashMap<String, Span>,
}

/// Variables of one environment for `${…}` in deploy actions.
struct Vars {
    env: String,
    values: Vec<(String, String)>,
}

impl Resolver<'_> {
    fn error(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.d
            .push(Diagnostic::error(code, message).at(span).with_hint(hint));
    }

    fn warning(
        &mut self,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.d
            .push(Diagnostic::warning(code, message).at(span).with_hint(hint));
    }

    /// A text checked with one of [`names`]. An invalid value is reported and kept, so that
    /// checks that depend on it still run; any error discards the final model anyway.
    fn checked(&mut self, text: &Text, what: &str, check: fn(&str) -> Option<String>) -> String {
        if let Some(why) = check(&text.value) {
            self.error(
                "invalid-value",
                text.span,
                format!("{what} `{}` is not valid", text.value),
                why,
            );
        }
        text.value.clone()
    }

    /// A duration within 1s..=max; the default when absent, or (reported) when invalid.
    fn duration(
        &mut self,
        text: Option<&Text>,
        what: &str,
        default: Duration,
        max: Duration,
    ) -> Duration {
        let Some(text) = text else { return default };
        match parse_duration(&text.value) {
            Err(why) => self.error(
                "invalid-duration",
                text.span,
                format!("{what} is not a duration"),
                why,
            ),
            Ok(v) if v.is_zero() || v > max => self.error(
                "out-of-range",
                text.span,
                format!(
                    "{what} is {}; it must be between 1s and {}",
                    text.value,
                    format_duration(max)
                ),
                format!("the default is {}", format_duration(default)),
            ),
            Ok(v) => return v,
        }
        default
    }

    fn manifest(&mut self) -> Parts {
        let doc = self.doc;
        if let Some(v) = &doc.version
            && v.value != 1
        {
            self.error(
                "unsupported-version",
                v.span,
                format!("version {} is not supported", v.value),
                "this ferry reads `version: 1`",
            );
        }
        let pipeline = self.checked(&doc.pipeline, "pipeline name", names::pipeline);
        let shared = doc.shared.as_ref().map(|s| self.shared(s, &pipeline));
        if shared.is_none() {
            self.require_shared();
        }
        let accounts = self.accounts(shared.as_ref().map_or("us-east-1", |s| s.region.as_str()));
        let source = Source {
            repo: doc
                .source
                .as_ref()
                .and_then(|s| s.repo.as_ref())
                .map_or(".".into(), |r| r.value.clone()),
            branch: doc
                .source
                .as_ref()
                .and_then(|s| s.branch.as_ref())
                .map_or("main".into(), |b| b.value.clone()),
            triggers: doc
                .source
                .as_ref()
                .map(|s| s.triggers.iter().map(|t| self.trigger(t)).collect())
                .unwrap_or_default(),
        };
        if let Some(server) = doc.shared.as_ref().and_then(|s| s.server.as_ref()) {
            self.remote_source("shared.server", server.image.span, &source);
        }
        if let Some(native) = doc.shared.as_ref().and_then(|s| s.codepipeline.as_ref()) {
            self.remote_source("shared.codepipeline", native.connection.span, &source);
        }
        let secrets = self.secrets(shared.as_ref());
        let environments = self.environments();
        let mut stages = self.stages(&environments);
        stages.extend(self.environment_stages(&environments, &accounts));
        Parts {
            pipeline: Some(pipeline),
            mode: doc
                .mode
                .as_ref()
                .map_or_else(ExecutionMode::default, |m| m.value),
            shared,
            accounts,
            source,
            secrets,
            environments,
            stages,
        }
    }

    /// A pipeline that touches AWS needs its shared-services account.
    fn require_shared(&mut self) {
        let doc = self.doc;
        let first_use = doc
            .accounts
            .iter()
            .next()
            .map(|(k, _)| (k.span, "deploys to AWS accounts"))
            .or_else(|| {
                doc.environments
                    .first()
                    .map(|e| (e.name.span, "has environments"))
            })
            .or_else(|| doc.deploy.first().map(|a| (a.name.span, "deploys")))
            .or_else(|| {
                doc.secrets
                    .iter()
                    .next()
                    .map(|(k, _)| (k.span, "reads secrets from Secrets Manager"))
            });
        if let Some((span, why)) = first_use {
            self.error(
                "missing-key",
                span,
                format!("this pipeline {why}, so the manifest needs `shared`"),
                "add the shared-services account that runs it: `shared: {id: \"111111111111\", region: eu-west-1}`",
            );
        }
    }

    fn shared(&mut self, s: &SharedDoc, pipeline: &str) -> SharedAccount {
        let id = self.checked(&s.id, "account id", names::account_id);
        let region = self.checked(&s.region, "region", names::region);
        let pipeline_role = match &s.pipeline_role {
            Some(role) => self.checked(role, "role name", names::iam_role),
            None => format!("ferry-{pipeline}"),
        };
        let artifacts = s.artifacts.as_ref();
        let artifact_bucket = match artifacts.and_then(|a| a.bucket.as_ref()) {
            Some(b) => self.checked(b, "bucket name", names::bucket),
            None => format!("ferry-{pipeline}-artifacts-{id}"),
        };
        let kms_alias = match artifacts.and_then(|a| a.kms_alias.as_ref()) {
            Some(a) => self.checked(a, "KMS alias", names::kms_alias),
            None => format!("alias/ferry-{pipeline}"),
        };
        let mut repositories: Vec<String> = Vec::new();
        for repo in &s.repositories {
            if repositories.contains(&repo.value) {
                self.error(
                    "duplicate-name",
                    repo.span,
                    format!("repository `{}` is listed twice", repo.value),
                    "list each repository once",
                );
            } else {
                repositories.push(self.checked(repo, "ECR repository name", names::ecr_repository));
            }
        }
        let server = s.server.as_ref().map(|srv| self.server(srv));
        let builds = s.builds.as_ref();
        let codebuild = CodebuildMachine {
            image: builds
                .and_then(|b| b.image.as_ref())
                .map_or(CodebuildMachine::DEFAULT_IMAGE.into(), |i| i.value.clone()),
            compute_type: match builds.and_then(|b| b.compute_type.as_ref()) {
                Some(c) => self.checked(c, "CodeBuild compute type", names::compute_type),
                None => CodebuildMachine::DEFAULT_COMPUTE_TYPE.into(),
            },
            vpc: builds
                .and_then(|b| b.vpc.as_ref())
                .map(|v| self.codebuild_vpc(v)),
        };
        let codepipeline = s.codepipeline.as_ref().map(|c| self.codepipeline(c, s));
        let github_actions = s.github_actions.as_ref().map(|g| GithubActions {
            repository: self.checked(&g.repository, "GitHub repository", names::github_repository),
            branch: g.branch.as_ref().map_or_else(
                || "main".to_owned(),
                |b| self.checked(b, "branch name", names::git_branch),
            ),
        });
        SharedAccount {
            id,
            region,
            pipeline_role,
            artifact_bucket,
            kms_alias,
            repositories,
            server,
            codebuild,
            codepipeline,
            github_actions,
        }
    }

    /// The native pipeline: its connection, and an image with ferry when a Lambda function is
    /// deployed (those deploys run `ferry deploy lambda` in CodeBuild).
    fn codepipeline(&mut self, c: &CodepipelineDoc, s: &SharedDoc) -> Codepipeline {
        let connection = self.checked(&c.connection, "connection ARN", names::connection_arn);
        let ferry_image = match (&c.ferry_image, &s.server) {
            (Some(image), _) => Some(self.checked(image, "image", names::image)),
            (None, Some(server)) => Some(server.image.value.clone()),
            (None, None) => None,
        };
        let deploys_lambda = self
            .doc
            .deploy
            .iter()
            .chain(self.doc.stages.iter().flat_map(|s| &s.actions))
            .any(|a| matches!(a.kind, ActionKindDoc::Lambda(_)));
        if deploys_lambda && ferry_image.is_none() {
            self.error(
                "missing-key",
                c.connection.span,
                "the native pipeline deploys Lambda functions with `ferry deploy lambda` in CodeBuild, and names no image with ferry in it",
                "add `ferry_image:` with the image built from deploy/Containerfile, e.g. `ferry_image: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ferry:0.1.0`",
            );
        }
        let state_url_secret = c
            .state_url_secret
            .as_ref()
            .map(|s| self.checked(s, "secret id", names::secret_id));
        Codepipeline {
            connection,
            ferry_image,
            state_url_secret,
        }
    }

    /// The server clones the repository: `source.repo` must be a URL it can reach.
    /// `who` (`shared.server`, `shared.codepipeline`) reaches the repository by its URL: one
    /// on this machine will not do. `at` is where `who` is written.
    fn remote_source(&mut self, who: &str, at: Span, source: &Source) {
        let url = ["https://", "ssh://", "git@"]
            .iter()
            .any(|p| source.repo.starts_with(p));
        if !url {
            let span = self
                .doc
                .source
                .as_ref()
                .and_then(|s| s.repo.as_ref())
                .map_or(at, |r| r.span);
            self.error(
                "invalid-value",
                span,
                format!(
                    "`{who}` takes the source from the repository's URL, and `source.repo` is `{}`",
                    source.repo
                ),
                "give the repository's https or ssh URL: `source: {repo: https://github.com/acme/orders.git}`",
            );
        }
    }

    fn codebuild_vpc(&mut self, v: &BuildsVpcDoc) -> CodebuildVpc {
        let id = self.checked(&v.id, "VPC id", names::vpc);
        let mut ids = |list: &[Text],
                       what: &str,
                       noun: &str,
                       max: usize,
                       example: &str,
                       valid: fn(&str) -> Option<String>| {
            if list.is_empty() || list.len() > max {
                self.error(
                    "invalid-value",
                    list.get(max).map_or(v.id.span, |n| n.span),
                    format!(
                        "`builds.vpc.{what}` lists {} (CodeBuild takes 1 to {max})",
                        list.len()
                    ),
                    format!("list between 1 and {max}: `{what}: [{example}]`"),
                );
            }
            let mut out: Vec<String> = Vec::new();
            for n in list {
                if out.contains(&n.value) {
                    self.error(
                        "duplicate-name",
                        n.span,
                        format!("`{}` is listed twice in `builds.vpc.{what}`", n.value),
                        "list each once",
                    );
                } else {
                    out.push(self.checked(n, noun, valid));
                }
            }
            // CodeBuild keeps no order: sorted, what is read back compares equal.
            out.sort();
            out
        };
        let subnets = ids(
            &v.subnets,
            "subnets",
            "subnet id",
            CodebuildVpc::MAX_SUBNETS,
            "subnet-0abc1234",
            names::subnet,
        );
        let security_groups = ids(
            &v.security_groups,
            "security_groups",
            "security group id",
            CodebuildVpc::MAX_SECURITY_GROUPS,
            "sg-0abc1234",
            names::security_group,
        );
        CodebuildVpc {
            id,
            subnets,
            security_groups,
        }
    }

    fn server(&mut self, s: &ServerDoc) -> Server {
        let image = self.checked(&s.image, "image", names::image);
        let vpc = self.checked(&s.vpc, "VPC id", names::vpc);
        if s.subnets.is_empty() {
            self.error(
                "missing-value",
                s.vpc.span,
                "`server.subnets` is empty",
                "list its private subnets, one per availability zone: `subnets: [subnet-0abc1234]`",
            );
        }
        let subnets = s
            .subnets
            .iter()
            .map(|n| self.checked(n, "subnet id", names::subnet))
            .collect();
        let allowed_cidrs = s
            .allowed_cidrs
            .iter()
            .map(|c| self.checked(c, "CIDR block", names::ipv4_cidr))
            .collect();
        let port = s
            .port
            .as_ref()
            .map_or(8080, |p| u16::try_from(p.value).unwrap_or(8080));
        let cpu = s.cpu.as_ref().map_or(512, |c| c.value);
        let memory = s.memory.as_ref().map_or(1024, |m| m.value);
        if let Some(why) = fargate_size(cpu, memory) {
            let span = s
                .memory
                .as_ref()
                .or(s.cpu.as_ref())
                .map_or(s.image.span, |n| n.span);
            self.error(
                "invalid-value",
                span,
                format!("Fargate has no task of {cpu} CPU units and {memory} MiB"),
                why,
            );
        }
        let poll = s.poll.as_ref().map(|p| {
            self.duration(
                Some(p),
                "`server.poll`",
                Duration::from_secs(300),
                Duration::from_secs(86_400),
            )
        });
        Server {
            image,
            vpc,
            subnets,
            allowed_cidrs,
            port,
            cpu: u32::try_from(cpu).unwrap_or(512),
            memory: u32::try_from(memory).unwrap_or(1024),
            poll,
        }
    }

    fn accounts(&mut self, shared_region: &str) -> Vec<Account> {
        let mut accounts: Vec<Account> = Vec::new();
        let mut ids: HashMap<String, String> = HashMap::new();
        for (name, a) in self.doc.accounts.iter() {
            let label = self.checked(name, "account name", names::label);
            let id = self.checked(&a.id, "account id", names::account_id);
            if let Some(other) = ids.get(&id) {
                self.warning(
                    "shared-account-id",
                    a.id.span,
                    format!("accounts `{other}` and `{label}` have the same id {id}"),
                    "environments in one account share its deploy role; give each environment its own account for isolation",
                );
            }
            ids.insert(id.clone(), label.clone());
            let region = match &a.region {
                Some(r) => self.checked(r, "region", names::region),
                None => shared_region.to_owned(),
            };
            let mut role = |t: &Option<Text>, default: &str| match t {
                Some(t) => self.checked(t, "role name", names::iam_role),
                None => default.to_owned(),
            };
            let deploy_role = role(&a.deploy_role, DEFAULT_DEPLOY_ROLE);
            let admin_role = role(&a.admin_role, DEFAULT_ADMIN_ROLE);
            let external_id = a
                .external_id
                .as_ref()
                .map(|e| self.checked(e, "ExternalId", names::external_id));
            accounts.push(Account {
                name: label,
                id,
                region,
                deploy_role,
                external_id,
                admin_role,
            });
        }
        accounts
    }

    fn secrets(&mut self, shared: Option<&SharedAccount>) -> Vec<SecretBinding> {
        let mut out = Vec::new();
        for (name, id) in self.doc.secrets.iter() {
            let var = self.checked(name, "secret name", names::env_var);
            let secret_id = self.checked(id, "secret id", names::secret_id);
            if let Some(shared) = shared
                && let Some(account) = secret_id
                    .strip_prefix("arn:")
                    .and_then(|a| a.split(':').nth(3))
                && names::secret_id(&secret_id).is_none()
                && account != shared.id
            {
                self.warning(
                    "cross-account-secret",
                    id.span,
                    format!("secret `{var}` lives in account {account}, not in the shared account {}", shared.id),
                    "a cross-account secret needs a resource policy and a customer-managed KMS key that admit the pipeline role",
                );
            }
            out.push(SecretBinding {
                name: var,
                secret_id,
            });
        }
        out
    }

    fn environments(&mut self) -> Vec<Environment> {
        let mut out: Vec<Environment> = Vec::new();
        for env in &self.doc.environments {
            let name = self.checked(&env.name, "environment name", names::label);
            if out.iter().any(|e| e.name == name) {
                self.error(
                    "duplicate-name",
                    env.name.span,
                    format!("environment `{name}` is declared twice"),
                    "give each environment its own name",
                );
                continue;
            }
            self.account_ref(&env.account);
            let approval = env.approval.as_ref().map(|a| self.approval(a));
            for (var, _) in env.vars.iter() {
                if ["env", "account_id", "region"].contains(&var.value.as_str()) {
                    self.error("reserved-variable", var.span, format!("`{}` is a built-in variable", var.value), "pick another name; `${env}`, `${account_id}` and `${region}` are always set");
                }
            }
            let gates = env
                .gates
                .as_ref()
                .map(|g| self.gates(g, out.last().map(|e| e.name.as_str())))
                .unwrap_or_default();
            out.push(Environment {
                name,
                account: env.account.value.clone(),
                approval,
                gates,
            });
        }
        out
    }

    /// An environment's gates; `previous` is the environment before it, where `soak` is
    /// measured.
    fn gates(&mut self, g: &GatesDoc, previous: Option<&str>) -> Gates {
        let week = Duration::from_secs(7 * DAY);
        let soak = g.soak.as_ref().and_then(|t| {
            let duration = self.duration(Some(t), "`soak`", Duration::from_secs(3600), week);
            let Some(environment) = previous else {
                self.error(
                    "soak-without-previous",
                    t.span,
                    "`soak` is measured in the previous environment, and this is the first",
                    "move `soak` to a later environment, or remove it",
                );
                return None;
            };
            Some(Soak {
                environment: environment.to_owned(),
                duration,
            })
        });
        let mut windows = Vec::new();
        for w in &g.windows {
            let (rule, cron) = match (&w.allow, &w.deny) {
                (Some(c), _) => (crate::schedule::Rule::Allow, c),
                (_, Some(c)) => (crate::schedule::Rule::Deny, c),
                (None, None) => continue,
            };
            let zone = w.time_zone.as_ref().map_or("UTC", |z| z.value.as_str());
            if let Some(z) = &w.time_zone
                && let Err(why) = crate::schedule::time_zone(&z.value)
            {
                self.error(
                    "unknown-time-zone",
                    z.span,
                    format!("no time zone is named `{}`", z.value),
                    why,
                );
                continue;
            }
            match crate::schedule::Window::new(rule, &cron.value, zone) {
                Ok(window) => windows.push(window),
                Err(why) => self.error(
                    "invalid-cron",
                    cron.span,
                    format!("`{}` is not a cron expression", cron.value),
                    why,
                ),
            }
        }
        let after = g.after.as_ref().map(|a| {
            if a.alarms.is_empty() {
                self.error(
                    "after-without-alarms",
                    a.watch.span,
                    "a watch after the deploy with no alarms watches nothing",
                    "name the alarms to watch: `alarms: [orders-api-5xx-prod]`",
                );
            }
            AfterWatch {
                watch: self.duration(
                    Some(&a.watch),
                    "the `after` watch",
                    Duration::from_secs(15 * 60),
                    Duration::from_secs(DAY),
                ),
                alarms: a.alarms.iter().map(|t| t.value.clone()).collect(),
            }
        });
        Gates {
            alarms: g.alarms.iter().map(|t| t.value.clone()).collect(),
            windows,
            soak,
            after,
        }
    }

    /// Reports a reference to an account that is not declared.
    fn account_ref(&mut self, name: &Text) {
        if self.doc.accounts.get(&name.value).is_some() {
            return;
        }
        let known = self.doc.accounts.names();
        let hint = match did_you_mean(&name.value, &known) {
            Some(best) => format!("did you mean `{best}`?"),
            None if known.is_empty() => {
                "declare it under `accounts:` with its 12-digit id".to_owned()
            }
            None => format!("declared accounts: {}", known.join(", ")),
        };
        self.error(
            "unknown-account",
            name.span,
            format!("no account is named `{}`", name.value),
            hint,
        );
    }

    fn approval(&mut self, a: &ApprovalDoc) -> Approval {
        let week = Duration::from_secs(7 * DAY);
        Approval {
            approvers: a.approvers.iter().map(|t| t.value.clone()).collect(),
            timeout: self.duration(a.timeout.as_ref(), "the approval `timeout`", week, week),
            comment_required: a.comment_required.as_ref().is_some_and(|c| c.value),
            required: a
                .required
                .as_ref()
                .map_or(1, |r| u32::try_from(r.value).unwrap_or(1)),
            forbid_self: a.forbid_self.as_ref().is_some_and(|f| f.value),
        }
    }

    fn trigger(&mut self, t: &TriggerDoc) -> Trigger {
        if let (Some(_), Some(tags)) = (&t.branches, &t.tags)
            && let Some(first) = tags.include.first().or(tags.exclude.first())
        {
            self.error(
                "trigger-branches-and-tags",
                first.span,
                "a trigger matches branch pushes or tag pushes, not both",
                "split it into two triggers: one with `branches`, one with `tags`",
            );
        }
        Trigger {
            branches: t.branches.as_ref().map(|f| self.globs(f)),
            tags: t.tags.as_ref().map(|f| self.globs(f)),
            file_paths: t.file_paths.as_ref().map(|f| self.globs(f)),
        }
    }

    fn globs(&mut self, f: &FilterDoc) -> Globs {
        let mut check = |patterns: &[Text]| -> Vec<String> {
            for p in patterns {
                if let Err(why) = Globs::compile(&p.value) {
                    self.error(
                        "bad-glob",
                        p.span,
                        format!("`{}` is not a glob pattern: {why}", p.value),
                        "use `*` for any characters within a name, `**` across `/`, `?` for one character, `[abc]` for a set",
                    );
                }
            }
            patterns.iter().map(|p| p.value.clone()).collect()
        };
        Globs {
            include: check(&f.include),
            exclude: check(&f.exclude),
        }
    }

    fn stages(&mut self, environments: &[Environment]) -> Vec<Stage> {
        let mut out: Vec<Stage> = Vec::new();
        for stage in &self.doc.stages {
            let name = self.checked(&stage.name, "stage name", names::label);
            // A clashing stage is reported and kept, so that what it produces is still known.
            if out.iter().any(|s| s.name == name) {
                self.error(
                    "duplicate-name",
                    stage.name.span,
                    format!("stage `{name}` is declared twice"),
                    "give each stage its own name",
                );
            } else if environments.iter().any(|e| e.name == name) {
                self.error(
                    "duplicate-name",
                    stage.name.span,
                    format!("stage `{name}` has the name of an environment"),
                    "each environment becomes a stage of that name; rename the stage",
                );
            }
            let environment = stage
                .environment
                .as_ref()
                .and_then(|e| self.environment_ref(e, environments));
            let account = environment
                .as_ref()
                .and_then(|e| environments.iter().find(|env| &env.name == e))
                .map(|e| e.account.clone());
            let actions = self.actions(&stage.actions, None);
            if stage.environment.is_none() {
                for (doc, action) in stage.actions.iter().zip(&actions) {
                    if let Some(action) = action
                        && matches!(action.kind, ActionKind::Ecs(_) | ActionKind::Lambda(_))
                    {
                        self.error(
                            "deploy-without-account",
                            doc.name.span,
                            format!("`{}` deploys, but stage `{name}` has no account", doc.name.value),
                            "add `environment: <name>` to the stage, or move the action to `deploy:` to run it in every environment",
                        );
                    }
                }
            }
            out.push(Stage {
                name,
                environment,
                account,
                actions: actions.into_iter().flatten().collect(),
            });
        }
        out
    }

    fn environment_ref(&mut self, name: &Text, environments: &[Environment]) -> Option<String> {
        if environments.iter().any(|e| e.name == name.value) {
            return Some(name.value.clone());
        }
        let known: Vec<&str> = environments.iter().map(|e| e.name.as_str()).collect();
        let hint = match did_you_mean(&name.value, &known) {
            Some(best) => format!("did you mean `{best}`?"),
            None if known.is_empty() => "declare it under `environments:`".to_owned(),
            None => format!("declared environments: {}", known.join(", ")),
        };
        self.error(
            "unknown-environment",
            name.span,
            format!("no environment is named `{}`", name.value),
            hint,
        );
        None
    }

    fn environment_stages(
        &mut self,
        environments: &[Environment],
        accounts: &[Account],
    ) -> Vec<Stage> {
        let doc = self.doc;
        if !doc.deploy.is_empty() && doc.environments.is_empty() {
            let span = doc.deploy[0].name.span;
            self.warning(
                "deploy-nowhere",
                span,
                "`deploy` actions run in no environment",
                "add `environments:` to say where they deploy, in order",
            );
        }
        for action in &doc.deploy {
            if action.name.value == GATES_ACTION
                && environments.iter().any(|e| e.gates.hold_entry())
            {
                self.error(
                    "duplicate-name",
                    action.name.span,
                    format!("`{GATES_ACTION}` is the name of the action that checks an environment's gates"),
                    "rename this action",
                );
            }
            if action.name.value == APPROVAL_ACTION
                && environments.iter().any(|e| e.approval.is_some())
            {
                self.error(
                    "duplicate-name",
                    action.name.span,
                    format!("`{APPROVAL_ACTION}` is the name of an environment's approval action"),
                    "rename this action",
                );
            }
        }
        let mut out = Vec::new();
        for env in environments {
            // An unknown account is reported already; deploy actions are still checked.
            let account = accounts.iter().find(|a| a.name == env.account);
            let mut values = vec![
                ("env".to_owned(), env.name.clone()),
                (
                    "account_id".to_owned(),
                    account.map_or("000000000000".into(), |a| a.id.clone()),
                ),
                (
                    "region".to_owned(),
                    account.map_or("us-east-1".into(), |a| a.region.clone()),
                ),
            ];
            if let Some(e) = doc.environments.iter().find(|e| e.name.value == env.name) {
                values.extend(
                    e.vars
                        .iter()
                        .map(|(k, v)| (k.value.clone(), v.value.clone())),
                );
            }
            let vars = Vars {
                env: env.name.clone(),
                values,
            };
            let mut actions: Vec<Action> = env
                .approval
                .iter()
                .map(|a| Action {
                    name: APPROVAL_ACTION.to_owned(),
                    run_order: 0,
                    kind: ActionKind::Approval(a.clone()),
                })
                .collect();
            actions.extend(self.actions(&doc.deploy, Some(&vars)).into_iter().flatten());
            out.push(Stage {
                name: env.name.clone(),
                environment: Some(env.name.clone()),
                account: Some(env.account.clone()),
                actions,
            });
        }
        out
    }

    /// Resolves a stage's actions; `None` in the result for an action that cannot be built.
    fn actions(&mut self, docs: &[ActionDoc], vars: Option<&Vars>) -> Vec<Option<Action>> {
        let mut seen: Vec<&str> = Vec::new();
        let mut out = Vec::new();
        for a in docs {
            let name = self.checked(&a.name, "action name", names::label);
            if seen.contains(&a.name.value.as_str()) {
                self.error(
                    "duplicate-name",
                    a.name.span,
                    format!("action `{name}` appears twice in this stage"),
                    "give each action in a stage its own name",
                );
                out.push(None);
                continue;
            }
            seen.push(&a.name.value);
            let kind = match &a.kind {
                ActionKindDoc::Build(b) => Some(ActionKind::Build(self.build(b))),
                ActionKindDoc::Approval(b) => Some(ActionKind::Approval(self.approval(b))),
                ActionKindDoc::Ecs(e) => Some(ActionKind::Ecs(self.ecs(e, vars))),
                ActionKindDoc::Lambda(l) => self.lambda(l, vars).map(ActionKind::Lambda),
            };
            let run_order = a.run_order.as_ref().map_or(1, |r| r.value as u32);
            out.push(kind.map(|kind| Action {
                name,
                run_order,
                kind,
            }));
        }
        out
    }

    /// Substitutes `${…}` for the environment; records names it cannot resolve and keeps
    /// them as written.
    fn text(&mut self, t: &Text, vars: Option<&Vars>) -> Text {
        let Some(vars) = vars else { return t.clone() };
        let mut out = String::new();
        let mut rest = t.value.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                self.error(
                    "bad-variable",
                    t.span,
                    "`${` is not closed",
                    "write variables as `${name}`",
                );
                return t.clone();
            };
            let name = &after[..end];
            match vars.values.iter().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    self.missing_vars
                        .entry((t.span.start, t.span.end, name.to_owned()))
                        .or_default()
                        .push(vars.env.clone());
                    out.push_str(&rest[start..start + end + 3]);
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Text::new(out, t.span)
    }

    /// `text`, then `checked` — except that a value still holding an unresolved `${…}` is
    /// not checked again (the variable is the problem, and it is reported once).
    fn value(
        &mut self,
        t: &Text,
        vars: Option<&Vars>,
        what: &str,
        check: fn(&str) -> Option<String>,
    ) -> String {
        let t = self.text(t, vars);
        if vars.is_some() && t.value.contains("${") {
            return t.value;
        }
        self.checked(&t, what, check)
    }

    fn report_missing_vars(&mut self) {
        let all: Vec<&str> = self
            .doc
            .environments
            .iter()
            .map(|e| e.name.value.as_str())
            .collect();
        let missing = std::mem::take(&mut self.missing_vars);
        for ((start, end, name), envs) in missing {
            let message = if envs.len() == all.len() {
                format!("unknown variable `${{{name}}}`")
            } else {
                let plural = if envs.len() > 1 { "s" } else { "" };
                format!(
                    "variable `${{{name}}}` is not set in environment{plural} {}",
                    envs.join(", ")
                )
            };
            let mut known: Vec<&str> = vec!["env", "account_id", "region"];
            let vars: Vec<String> = self
                .doc
                .environments
                .iter()
                .flat_map(|e| e.vars.names())
                .map(str::to_owned)
                .collect();
            known.extend(vars.iter().map(String::as_str));
            let hint = match did_you_mean(&name, &known) {
                Some(best) if best != name => format!("did you mean `${{{best}}}`?"),
                _ => "set it in the `vars` of each environment; `${env}`, `${account_id}` and `${region}` are built in".to_owned(),
            };
            self.error("unknown-variable", Span::new(start, end), message, hint);
        }
    }

    fn values(
        &mut self,
        list: &[Text],
        vars: Option<&Vars>,
        what: &str,
        check: fn(&str) -> Option<String>,
    ) -> Vec<String> {
        list.iter()
            .map(|item| self.value(item, vars, what, check))
            .collect()
    }

    /// The build's own `runner`, else `shared.builds.runner`, else local. CodeBuild runs in
    /// the shared account, so it needs one.
    fn runner(&mut self, b: &BuildDoc) -> Runner {
        let shared = self.doc.shared.as_ref();
        let Some(chosen) = b
            .runner
            .as_ref()
            .or_else(|| shared.and_then(|s| s.builds.as_ref()?.runner.as_ref()))
        else {
            return Runner::Local;
        };
        if chosen.value == Runner::Codebuild && shared.is_none() {
            self.error(
                "missing-key",
                chosen.span,
                "a build on CodeBuild runs in the shared-services account, and the manifest has no `shared`",
                "add the account that runs the pipeline: `shared: {id: \"111111111111\", region: eu-west-1}`, or set `runner: local`",
            );
        }
        chosen.value
    }

    fn build(&mut self, b: &BuildDoc) -> Build {
        let buildspec = if b.buildspec.value.contains('\n') {
            Buildspec::Inline {
                text: b.buildspec.value.clone(),
                line: {
                    // The span starts at the `|` indicator or at the first line of the block.
                    let at = self.file.location(b.buildspec.span.start).line;
                    let indicator = self.file.slice(b.buildspec.span).starts_with(['|', '>']);
                    at + usize::from(indicator)
                },
            }
        } else {
            Buildspec::File(self.checked(&b.buildspec, "buildspec path", names::artifact_path))
        };
        let inputs = match &b.inputs {
            None => vec![SOURCE_ARTIFACT.to_owned()],
            Some(list) => self.values(list, None, "artifact name", names::label),
        };
        let outputs = self.values(&b.outputs, None, "artifact name", names::label);
        for out in &b.outputs {
            if out.value == SOURCE_ARTIFACT {
                self.error(
                    "reserved-name",
                    out.span,
                    "`source` is the name of the source artifact",
                    "name the build's output after what it holds, e.g. `app`",
                );
            }
        }
        for s in &b.secrets {
            if self.doc.secrets.get(&s.value).is_some() {
                continue;
            }
            let known = self.doc.secrets.names();
            let hint = match did_you_mean(&s.value, &known) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "declare it under the top-level `secrets:` as `{}: <secret name or ARN>`",
                    s.value
                ),
            };
            self.error(
                "unknown-secret",
                s.span,
                format!("no secret is named `{}`", s.value),
                hint,
            );
        }
        let mut env = Vec::new();
        let mut imports = Vec::new();
        for (k, v) in b.env.iter() {
            let name = self.checked(k, "environment variable name", names::env_var);
            if b.secrets.iter().any(|s| s.value == name) {
                self.error(
                    "duplicate-name",
                    k.span,
                    format!("`{name}` is both a plain variable and a secret"),
                    "keep one of the two",
                );
            }
            match exported_refs(&v.value) {
                Ok(refs) => {
                    for (_, r) in refs {
                        self.export_spans.entry(r.text()).or_insert(v.span);
                        if !imports.contains(&r) {
                            imports.push(r);
                        }
                    }
                }
                Err(why) => self.error(
                    "bad-exported-ref",
                    v.span,
                    why,
                    "name a build that runs before this one and a variable its buildspec lists under `env.exported-variables`",
                ),
            }
            env.push((name, v.value.clone()));
        }
        Build {
            imports,
            reads: BuildspecReads::default(),
            runner: self.runner(b),
            buildspec,
            inputs,
            outputs,
            secrets: b.secrets.iter().map(|s| s.value.clone()).collect(),
            env,
            timeout: self.duration(
                b.timeout.as_ref(),
                "the build `timeout`",
                Duration::from_secs(3600),
                Duration::from_secs(36 * 3600),
            ),
        }
    }

    fn ecs(&mut self, e: &EcsDoc, vars: Option<&Vars>) -> EcsDeploy {
        EcsDeploy {
            cluster: self.value(&e.cluster, vars, "cluster name", names::ecs_name),
            service: self.value(&e.service, vars, "service name", names::ecs_name),
            artifact: self.value(&e.artifact, vars, "artifact name", names::label),
            image_definitions: match &e.image_definitions {
                Some(p) => self.value(p, vars, "image definitions path", names::artifact_path),
                None => "imagedefinitions.json".to_owned(),
            },
            timeout: self.duration(
                e.timeout.as_ref(),
                "the ECS `timeout`",
                Duration::from_secs(30 * 60),
                Duration::from_secs(DAY),
            ),
            alarms: self.values(&e.alarms, vars, "alarm name", names::alarm),
            task_role: e
                .task_role
                .as_ref()
                .map(|r| self.value(r, vars, "role name", names::iam_role)),
            execution_role: e
                .execution_role
                .as_ref()
                .map(|r| self.value(r, vars, "role name", names::iam_role)),
            strategy: self.ecs_strategy(e, vars),
            hooks: self.ecs_hooks(e, vars),
        }
    }

    /// An `ecs` deploy's `hooks`: each a pause at its own lifecycle stage, only where ECS
    /// shifts the traffic, with a local test build that produces nothing or an approval.
    fn ecs_hooks(&mut self, e: &EcsDoc, vars: Option<&Vars>) -> Vec<EcsHook> {
        let shifted = e.strategy.as_ref().is_some_and(|s| s.value != "rolling");
        let mut hooks: Vec<EcsHook> = Vec::new();
        for Spanned { value: h, span } in &e.hooks {
            let at = match &h.at {
                None => "post_test_traffic_shift".to_owned(),
                Some(t) if EcsHook::STAGES.contains(&t.value.as_str()) => t.value.clone(),
                Some(t) => {
                    let hint = match did_you_mean(&t.value, &EcsHook::STAGES) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("write one of {}", EcsHook::STAGES.join(", ")),
                    };
                    self.error(
                        "invalid-hook-stage",
                        t.span,
                        format!("`{}` is not a lifecycle stage ECS pauses at", t.value),
                        hint,
                    );
                    continue;
                }
            };
            let span = h.at.as_ref().map_or(*span, |t| t.span);
            if !shifted {
                self.error(
                    "needs-traffic-shifting",
                    span,
                    "lifecycle hooks apply only when ECS shifts the traffic",
                    "add `strategy: blue_green` (or `canary …`, `linear …`), or remove the hook",
                );
            }
            let at = at.to_ascii_uppercase();
            if hooks.iter().any(|other| other.at == at) {
                self.error(
                    "duplicate-hook",
                    span,
                    format!("two hooks pause at `{}`", at.to_ascii_lowercase()),
                    "give each hook its own `at`, or make one hook of them",
                );
                continue;
            }
            let check = match (&h.test, &h.approval) {
                (Some(b), _) => {
                    if let Some(out) = b.outputs.first() {
                        self.error(
                            "hook-outputs",
                            out.span,
                            "a hook's test produces no artifacts",
                            "remove `outputs`; a build stage before the deploys can produce them",
                        );
                    }
                    if let Some(r) = b.runner.as_ref().filter(|r| r.value != Runner::Local) {
                        self.error(
                            "hook-runner",
                            r.span,
                            "a hook's test runs on the machine that runs ferry, as the deploy role",
                            "remove `runner`",
                        );
                    }
                    // The environment's `${variables}` apply to the test's `env` values
                    // (not to its buildspec, whose shell has its own `${…}`).
                    let mut b = b.clone();
                    for (_, v) in &mut b.env.0 {
                        *v = self.text(v, vars);
                    }
                    let mut build = self.build(&b);
                    build.runner = Runner::Local;
                    EcsHookCheck::Test(build)
                }
                (None, Some(a)) => EcsHookCheck::Approval(self.approval(a)),
                (None, None) => continue,
            };
            hooks.push(EcsHook { at, check });
        }
        hooks
    }

    /// `strategy`, `bake` and `until` of an `ecs` deploy. ECS counts its times in whole
    /// minutes, up to a day.
    fn ecs_strategy(&mut self, e: &EcsDoc, vars: Option<&Vars>) -> EcsStrategy {
        const MAX_MINUTES: u64 = 1440;
        let minutes = |this: &mut Self, d: Duration, span, what: &str| -> u32 {
            let secs = d.as_secs();
            if !secs.is_multiple_of(60) || secs / 60 > MAX_MINUTES {
                this.error(
                    "ecs-minutes",
                    span,
                    format!(
                        "ECS counts {what} in whole minutes, up to 1440; this is {}",
                        format_duration(d)
                    ),
                    "write it in minutes, e.g. `5m` or `1h`",
                );
            }
            u32::try_from((secs / 60).min(MAX_MINUTES)).unwrap_or(0)
        };
        let shift = match &e.strategy {
            None => None,
            Some(t) => {
                let text = self.text(t, vars).value;
                match text.as_str() {
                    "rolling" => None,
                    "blue_green" => Some(EcsShift::BlueGreen),
                    other => {
                        match Traffic::parse(other) {
                            Ok(Traffic::Canary { percent, bake }) => Some(EcsShift::Canary {
                                percent,
                                minutes: minutes(self, bake, t.span, "a canary's bake"),
                            }),
                            Ok(Traffic::Linear { percent, interval }) => {
                                if percent < 3 {
                                    self.error(
                                    "ecs-linear-step",
                                    t.span,
                                    format!("ECS shifts at least 3% per linear step; this is {percent}%"),
                                    "write e.g. `linear 10% every 1m`",
                                );
                                }
                                Some(EcsShift::Linear {
                                    percent,
                                    minutes: minutes(self, interval, t.span, "a linear step"),
                                })
                            }
                            Ok(Traffic::AllAtOnce) | Err(_) => {
                                self.error(
                                "invalid-strategy",
                                t.span,
                                format!("`{other}` is not an ECS strategy"),
                                "write `rolling`, `blue_green`, `canary 10% 5m` or `linear 10% every 1m`",
                            );
                                None
                            }
                        }
                    }
                }
            }
        };
        let Some(shift) = shift else {
            for t in [&e.bake, &e.until].into_iter().flatten() {
                self.error(
                    "needs-traffic-shifting",
                    t.span,
                    "`bake` and `until` apply only when ECS shifts the traffic",
                    "add `strategy: blue_green` (or `canary …`, `linear …`), or remove it",
                );
            }
            return EcsStrategy::Rolling;
        };
        let bake_minutes = match &e.bake {
            None => 0,
            Some(t) => match parse_duration(&t.value) {
                Ok(d) => minutes(self, d, t.span, "the bake"),
                Err(why) => {
                    self.error("invalid-duration", t.span, "`bake` is not a duration", why);
                    0
                }
            },
        };
        let until_shifted = match e.until.as_ref().map(|t| (t, t.value.as_str())) {
            None | Some((_, "baked")) => false,
            Some((_, "shifted")) => true,
            Some((t, other)) => {
                self.error(
                    "invalid-until",
                    t.span,
                    format!("`until: {other}` is not a point of an ECS deployment"),
                    "write `until: baked` (the default) or `until: shifted`",
                );
                false
            }
        };
        EcsStrategy::Shifted {
            shift,
            bake_minutes,
            until_shifted,
        }
    }

    fn lambda(&mut self, l: &LambdaDoc, vars: Option<&Vars>) -> Option<LambdaDeploy> {
        let function = self.value(&l.function, vars, "function name", names::lambda_function);
        let alias = match &l.alias {
            Some(a) => self.value(a, vars, "alias name", names::lambda_alias),
            None => "live".to_owned(),
        };
        let package = match (&l.artifact, &l.zip, &l.image_uri) {
            (Some(artifact), Some(zip), None) => Some(LambdaPackage::Zip {
                artifact: self.value(artifact, vars, "artifact name", names::label),
                path: self.value(zip, vars, "zip path", names::artifact_path),
            }),
            (None, None, Some(uri)) => Some(LambdaPackage::Image {
                uri: self.text(uri, vars).value,
            }),
            (_, _, Some(uri)) => {
                self.error("conflicting-keys", uri.span, "`image_uri` and `artifact`/`zip` both give the function's code", "keep `image_uri` for an image function, or `artifact` and `zip` for a zip package");
                None
            }
            (Some(a), None, None) => {
                self.error(
                    "missing-key",
                    a.span,
                    "`artifact` needs `zip`: the path of the zip package inside it",
                    "add e.g. `zip: function.zip`",
                );
                None
            }
            (None, Some(z), None) => {
                self.error(
                    "missing-key",
                    z.span,
                    "`zip` needs `artifact`: the build output that holds it",
                    "add e.g. `artifact: app`",
                );
                None
            }
            (None, None, None) => {
                self.error(
                    "missing-key",
                    l.function.span,
                    "the function's code is not given",
                    "add `artifact` and `zip` (a zip package from a build) or `image_uri`",
                );
                None
            }
        };
        let traffic = match &l.traffic {
            None => Traffic::AllAtOnce,
            Some(t) => match Traffic::parse(&self.text(t, vars).value) {
                Ok(traffic) => traffic,
                Err(why) => {
                    self.error("invalid-traffic", t.span, "`traffic` is not valid", why);
                    Traffic::AllAtOnce
                }
            },
        };
        let alarms = self.values(&l.alarms, vars, "alarm name", names::alarm);
        if traffic != Traffic::AllAtOnce
            && alarms.is_empty()
            && let Some(t) = &l.traffic
        {
            self.warning(
                "unwatched-canary",
                t.span,
                "a gradual traffic shift with no `alarms` watches nothing",
                "list the CloudWatch alarms that should roll the deploy back, e.g. `alarms: [orders-fn-errors]`",
            );
        }
        Some(LambdaDeploy {
            function,
            alias,
            package: package?,
            traffic,
            alarms,
        })
    }

    /// Every artifact an action reads was produced by an action that finished before it.
    fn artifact_flow(&mut self, stages: &[Stage]) {
        // name → (stage index, run order, stage name, action name)
        let mut produced: HashMap<&str, (usize, u32, &str, &str)> = HashMap::new();
        for (si, stage) in stages.iter().enumerate() {
            for action in &stage.actions {
                if let ActionKind::Build(b) = &action.kind {
                    for out in &b.outputs {
                        if let Some((_, _, s, a)) = produced.get(out.as_str()) {
                            let span = self.action_span(&stage.name, &action.name);
                            self.error(
                                "duplicate-artifact",
                                span,
                                format!("artifact `{out}` is already produced by `{s}.{a}`"),
                                "give each build output its own name",
                            );
                        } else {
                            produced.insert(out, (si, action.run_order, &stage.name, &action.name));
                        }
                    }
                }
            }
        }
        let mut reported: Vec<(String, String)> = Vec::new();
        for (si, stage) in stages.iter().enumerate() {
            for action in &stage.actions {
                for input in action.kind.inputs() {
                    if input == SOURCE_ARTIFACT {
                        continue;
                    }
                    let earlier = |&(psi, pro, _, _): &(usize, u32, &str, &str)| {
                        psi < si || (psi == si && pro < action.run_order)
                    };
                    match produced.get(input) {
                        Some(p) if earlier(p) => {}
                        found => {
                            // Deploy actions repeat in every environment: report each input once.
                            let key = (input.to_owned(), action.name.clone());
                            if stage.environment.is_some() && reported.contains(&key) {
                                continue;
                            }
                            reported.push(key);
                            let span = self.input_span(&stage.name, &action.name, input);
                            let hint = match found {
                                Some((_, _, s, a)) => format!(
                                    "it is produced by `{s}.{a}`, which does not finish before this action; move one of them"
                                ),
                                None => {
                                    let mut known: Vec<&str> = produced.keys().copied().collect();
                                    known.push(SOURCE_ARTIFACT);
                                    known.sort_unstable();
                                    match did_you_mean(input, &known) {
                                        Some(best) => format!("did you mean `{best}`?"),
                                        None => format!(
                                            "add `{input}` to the `outputs` of a build that runs before; available: {}",
                                            known.join(", ")
                                        ),
                                    }
                                }
                            };
                            self.error(
                                "unknown-artifact",
                                span,
                                format!("no earlier action produces artifact `{input}`"),
                                hint,
                            );
                        }
                    }
                }
            }
        }
    }

    /// Every `#{stage.action.NAME}` names a build that finishes before the build that reads it.
    fn export_flow(&mut self, stages: &[Stage]) {
        for (si, stage) in stages.iter().enumerate() {
            for action in &stage.actions {
                let ActionKind::Build(b) = &action.kind else {
                    continue;
                };
                for r in &b.imports {
                    let found = stages.iter().enumerate().find_map(|(psi, s)| {
                        let a = s
                            .actions
                            .iter()
                            .find(|a| s.name == r.stage && a.name == r.action)?;
                        Some((psi, a))
                    });
                    let span = self
                        .export_spans
                        .get(&r.text())
                        .copied()
                        .unwrap_or(self.doc.pipeline.span);
                    let problem = match found {
                        None => Some((format!("no action is named `{}.{}`", r.stage, r.action), "write `#{stage.action.NAME}` with the stage and action of an earlier build".to_owned())),
                        Some((_, a)) if !matches!(a.kind, ActionKind::Build(_)) => Some((format!("`{}.{}` is not a build; only builds export variables", r.stage, r.action), "name a build action".to_owned())),
                        Some((psi, a)) if !(psi < si || (psi == si && a.run_order < action.run_order)) => Some((format!("`{}.{}` does not finish before `{}.{}`, which reads its `{}`", r.stage, r.action, stage.name, action.name, r.variable), "move the exporting build to an earlier stage, or give it a lower `run_order`".to_owned())),
                        Some(_) => None,
                    };
                    if let Some((message, hint)) = problem {
                        self.error("unknown-exported-ref", span, message, hint);
                    }
                }
            }
        }
    }

    /// The span of an action's name, looked up by stage and action name.
    fn action_span(&self, stage: &str, action: &str) -> Span {
        self.action_doc(stage, action)
            .map_or(self.doc.pipeline.span, |a| a.name.span)
    }

    fn action_doc(&self, stage: &str, action: &str) -> Option<&ActionDoc> {
        let actions = match self.doc.stages.iter().find(|s| s.name.value == stage) {
            Some(s) => &s.actions,
            None => &self.doc.deploy,
        };
        actions.iter().find(|a| a.name.value == action)
    }

    fn input_span(&self, stage: &str, action: &str, input: &str) -> Span {
        let Some(a) = self.action_doc(stage, action) else {
            return self.doc.pipeline.span;
        };
        let texts: Vec<&Text> = match &a.kind {
            ActionKindDoc::Build(b) => b.inputs.iter().flatten().collect(),
            ActionKindDoc::Ecs(e) => std::iter::once(&e.artifact)
                .chain(
                    e.hooks
                        .iter()
                        .flat_map(|h| h.value.test.iter().flat_map(|b| b.inputs.iter().flatten())),
                )
                .collect(),
            ActionKindDoc::Lambda(l) => l.artifact.iter().collect(),
            ActionKindDoc::Approval(_) => Vec::new(),
        };
        texts
            .iter()
            .find(|t| t.value == input)
            .map_or(a.name.span, |t| t.span)
    }

    fn warnings(&mut self, stages: &[Stage]) {
        let doc = self.doc;
        // A production-like environment must not be reachable without someone saying yes.
        let mut approved_since_last_deploy = false;
        for stage in stages {
            let deploys = stage
                .actions
                .iter()
                .any(|a| matches!(a.kind, ActionKind::Ecs(_) | ActionKind::Lambda(_)));
            let approval_first = stage
                .actions
                .iter()
                .filter(|a| matches!(a.kind, ActionKind::Approval(_)))
                .map(|a| a.run_order)
                .min();
            let first_deploy = stage
                .actions
                .iter()
                .filter(|a| matches!(a.kind, ActionKind::Ecs(_) | ActionKind::Lambda(_)))
                .map(|a| a.run_order)
                .min();
            let approved_here =
                matches!((approval_first, first_deploy), (Some(a), Some(d)) if a < d);
            if deploys {
                if let Some(env) = &stage.environment
                    && is_production_like(env)
                    && !approved_since_last_deploy
                    && !approved_here
                {
                    let span = doc
                        .environments
                        .iter()
                        .find(|e| &e.name.value == env)
                        .map(|e| e.name.span)
                        .or_else(|| {
                            doc.stages
                                .iter()
                                .find(|s| s.name.value == stage.name)
                                .map(|s| s.name.span)
                        })
                        .unwrap_or(doc.pipeline.span);
                    self.warning(
                        "unapproved-production",
                        span,
                        format!("`{env}` looks like production but is deployed with no approval before it"),
                        "add `approval: {}` to the environment (or an approval action before its deploy)",
                    );
                }
                approved_since_last_deploy = false;
            } else if approval_first.is_some() {
                approved_since_last_deploy = true;
            }
        }
        // Secrets nobody uses are access nobody needs.
        for (name, id) in doc.secrets.iter() {
            let used = stages
                .iter()
                .flat_map(|s| &s.actions)
                .any(|a| match &a.kind {
                    ActionKind::Build(b) => b.secrets.contains(&name.value),
                    _ => false,
                });
            if !used {
                self.warning(
                    "unused-secret",
                    id.span,
                    format!("no build uses secret `{}`", name.value),
                    "list it under a build's `secrets:`, or remove it",
                );
            }
        }
        for env in &doc.environments {
            let deploys = !doc.deploy.is_empty()
                || stages.iter().any(|s| {
                    s.environment.as_deref() == Some(&env.name.value) && !s.actions.is_empty()
                });
            if !deploys {
                self.warning(
                    "idle-environment",
                    env.name.span,
                    format!("environment `{}` deploys nothing", env.name.value),
                    "add actions under the top-level `deploy:`",
                );
            }
        }
        for (name, _) in doc.accounts.iter() {
            if !doc
                .environments
                .iter()
                .any(|e| e.account.value == name.value)
            {
                self.warning("unused-account", name.span, format!("no environment uses account `{}`", name.value), "add an environment for it, or remove it: bootstrap would create a deploy role nobody uses");
            }
        }
    }
}

/// Whether an environment name says "production": a `-`/`_`-separated part is
/// prod, production, prd or live.
/// Why Fargate offers no task of `cpu` units and `memory` MiB, when it offers none
/// (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size>).
fn fargate_size(cpu: u64, memory: u64) -> Option<String> {
    let (low, high) = match cpu {
        256 => {
            return (![512, 1024, 2048].contains(&memory))
                .then(|| "with 256 CPU units, memory is 512, 1024 or 2048".into());
        }
        512 => (1024, 4096),
        1024 => (2048, 8192),
        2048 => (4096, 16384),
        4096 => (8192, 30720),
        _ => return Some("cpu is 256, 512, 1024, 2048 or 4096".into()),
    };
    (memory < low || memory > high || !memory.is_multiple_of(1024))
        .then(|| format!("with {cpu} CPU units, memory is {low} to {high} in steps of 1024"))
}

pub fn is_production_like(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(['-', '_'])
        .any(|part| matches!(part, "prod" | "production" | "prd" | "live"))
}
