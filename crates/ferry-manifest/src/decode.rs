//! YAML tree → [`Document`]: types, unknown keys, missing keys. Every problem is recorded
//! and decoding goes on, so one run reports them all.

use ferry_yaml::{Decoder, Diagnostic, Fields, Node, Spanned, did_you_mean};

use crate::document::*;

pub(crate) fn document(d: &mut Decoder, root: &Node) -> Option<Document> {
    if root.value == ferry_yaml::Value::Null {
        d.push(
            Diagnostic::error("empty-manifest", "the manifest is empty")
                .with_hint("run `ferry init` to write a commented starter ferry.yaml"),
        );
        return None;
    }
    let f = d.fields(root, "the manifest", Document::KEYS)?;
    let what = "the manifest";
    let version = f
        .get("version")
        .and_then(|n| d.uint(n, "`version`", 0, u64::MAX));
    let pipeline = f
        .required(
            d,
            "pipeline",
            what,
            "name the pipeline, e.g. `pipeline: orders`",
        )
        .and_then(|n| d.name(n, "`pipeline`"));
    let mode = f.get("mode").and_then(|n| mode(d, n));
    // Required only once the pipeline touches AWS: resolve checks that.
    let shared = f.get("shared").and_then(|n| shared(d, n));
    let accounts = f
        .get("accounts")
        .map(|n| named_map(d, n, "`accounts`", account))
        .unwrap_or_default();
    let source = f.get("source").and_then(|n| source(d, n));
    let secrets = f
        .get("secrets")
        .map(|n| named_map(d, n, "`secrets`", |d, n| d.name(n, "a secret id")))
        .unwrap_or_default();
    let stages = list(d, f.get("stages"), "`stages`", stage);
    let environments = list(d, f.get("environments"), "`environments`", environment);
    let deploy = list(d, f.get("deploy"), "`deploy`", action);
    Some(Document {
        version,
        pipeline: pipeline?,
        mode,
        shared,
        accounts,
        source,
        secrets,
        stages,
        environments,
        deploy,
    })
}

fn mode(d: &mut Decoder, n: &Node) -> Option<Spanned<ExecutionMode>> {
    let s = d.string(n, "`mode`")?;
    let mode = match s.value.as_str() {
        "superseded" => ExecutionMode::Superseded,
        "queued" => ExecutionMode::Queued,
        "parallel" => ExecutionMode::Parallel,
        other => {
            d.push(unknown_choice("`mode`", other, ExecutionMode::NAMES).at(s.span));
            return None;
        }
    };
    Some(Spanned::new(mode, s.span))
}

fn runner(d: &mut Decoder, n: &Node, what: &str) -> Option<Spanned<Runner>> {
    let s = d.name(n, what)?;
    let runner = match s.value.as_str() {
        "local" => Runner::Local,
        "codebuild" => Runner::Codebuild,
        other => {
            d.push(unknown_choice(what, other, Runner::NAMES).at(s.span));
            return None;
        }
    };
    Some(Spanned::new(runner, s.span))
}

fn builds(d: &mut Decoder, n: &Node) -> Option<BuildsDoc> {
    let f = d.fields(n, "`shared.builds`", BuildsDoc::KEYS)?;
    Some(BuildsDoc {
        runner: f
            .get("runner")
            .and_then(|n| runner(d, n, "`builds.runner`")),
        image: f.get("image").and_then(|n| d.string(n, "`builds.image`")),
        compute_type: opt_name(d, &f, "compute_type", "`builds.compute_type`"),
        vpc: f.get("vpc").and_then(|n| builds_vpc(d, n)),
    })
}

fn builds_vpc(d: &mut Decoder, n: &Node) -> Option<BuildsVpcDoc> {
    let what = "`builds.vpc`";
    let f = d.fields(n, what, BuildsVpcDoc::KEYS)?;
    let id = f
        .required(d, "id", what, "name the VPC: `id: vpc-0abc1234`")
        .and_then(|n| d.name(n, "`builds.vpc.id`"));
    let subnets = f
        .required(
            d,
            "subnets",
            what,
            "list private subnets with a route out: `subnets: [subnet-0abc1234]`",
        )
        .map(|n| d.string_list(n, "`builds.vpc.subnets`"));
    let security_groups = f
        .required(
            d,
            "security_groups",
            what,
            "list the builds' security groups: `security_groups: [sg-0abc1234]`",
        )
        .map(|n| d.string_list(n, "`builds.vpc.security_groups`"));
    Some(BuildsVpcDoc {
        id: id?,
        subnets: subnets?,
        security_groups: security_groups?,
    })
}

fn shared(d: &mut Decoder, n: &Node) -> Option<SharedDoc> {
    let what = "`shared`";
    let f = d.fields(n, what, SharedDoc::KEYS)?;
    let id = f
        .required(
            d,
            "id",
            what,
            "add the 12-digit account id: `id: \"111111111111\"`",
        )
        .and_then(|n| d.string(n, "`shared.id`"));
    let region = f
        .required(d, "region", what, "add the region: `region: eu-west-1`")
        .and_then(|n| d.name(n, "`shared.region`"));
    let pipeline_role = opt_name(d, &f, "pipeline_role", "`shared.pipeline_role`");
    let artifacts = f.get("artifacts").and_then(|n| {
        let f = d.fields(n, "`shared.artifacts`", ArtifactsDoc::KEYS)?;
        Some(ArtifactsDoc {
            bucket: opt_name(d, &f, "bucket", "`artifacts.bucket`"),
            kms_alias: opt_name(d, &f, "kms_alias", "`artifacts.kms_alias`"),
        })
    });
    let repositories = opt_list(d, &f, "repositories", "`shared.repositories`");
    let server = f.get("server").and_then(|n| server(d, n));
    let builds = f.get("builds").and_then(|n| builds(d, n));
    let codepipeline = f.get("codepipeline").and_then(|n| {
        let f = d.fields(n, "`shared.codepipeline`", CodepipelineDoc::KEYS)?;
        let connection = f
            .required(
                d,
                "connection",
                "`shared.codepipeline`",
                "name the connection to the repository: `connection: arn:aws:codeconnections:eu-west-1:111111111111:connection/…`",
            )
            .and_then(|n| d.string(n, "`codepipeline.connection`"));
        Some(CodepipelineDoc {
            connection: connection?,
            ferry_image: f
                .get("ferry_image")
                .and_then(|n| d.string(n, "`codepipeline.ferry_image`")),
            state_url_secret: f
                .get("state_url_secret")
                .and_then(|n| d.string(n, "`codepipeline.state_url_secret`")),
        })
    });
    let github_actions = f.get("github_actions").and_then(|n| {
        let what = "`shared.github_actions`";
        let f = d.fields(n, what, GithubActionsDoc::KEYS)?;
        let repository = f
            .required(
                d,
                "repository",
                what,
                "name the repository whose workflows run the pipeline: `repository: acme/orders`",
            )
            .and_then(|n| d.string(n, "`github_actions.repository`"));
        Some(GithubActionsDoc {
            repository: repository?,
            branch: f
                .get("branch")
                .and_then(|n| d.string(n, "`github_actions.branch`")),
        })
    });
    Some(SharedDoc {
        id: id?,
        region: region?,
        pipeline_role,
        artifacts,
        repositories,
        server,
        builds,
        codepipeline,
        github_actions,
    })
}

fn server(d: &mut Decoder, n: &Node) -> Option<ServerDoc> {
    let what = "`shared.server`";
    let f = d.fields(n, what, ServerDoc::KEYS)?;
    let image = f
        .required(
            d,
            "image",
            what,
            "name the image built from deploy/Containerfile: `image: 111111111111.dkr.ecr.eu-west-1.amazonaws.com/ferry:0.1.0`",
        )
        .and_then(|n| d.string(n, "`server.image`"));
    let vpc = f
        .required(
            d,
            "vpc",
            what,
            "add the VPC of its subnets: `vpc: vpc-0abc1234`",
        )
        .and_then(|n| d.name(n, "`server.vpc`"));
    let subnets = f
        .required(
            d,
            "subnets",
            what,
            "list its private subnets, one per availability zone: `subnets: [subnet-0abc1234]`",
        )
        .map(|n| d.string_list(n, "`server.subnets`"));
    let number = |d: &mut Decoder, key: &str, max: u64| {
        f.get(key)
            .and_then(|n| d.uint(n, &format!("`server.{key}`"), 1, max))
    };
    let port = number(d, "port", 65535);
    let cpu = number(d, "cpu", 16384);
    let memory = number(d, "memory", 122_880);
    Some(ServerDoc {
        image: image?,
        vpc: vpc?,
        subnets: subnets?,
        allowed_cidrs: opt_list(d, &f, "allowed_cidrs", "`server.allowed_cidrs`"),
        port,
        cpu,
        memory,
        poll: opt_name(d, &f, "poll", "`server.poll`"),
    })
}

fn account(d: &mut Decoder, n: &Node) -> Option<AccountDoc> {
    let what = "an account";
    let f = d.fields(n, what, AccountDoc::KEYS)?;
    let id = f
        .required(
            d,
            "id",
            what,
            "add the 12-digit account id: `id: \"222222222222\"`",
        )
        .and_then(|n| d.string(n, "the account `id`"));
    Some(AccountDoc {
        id: id?,
        region: opt_name(d, &f, "region", "`region`"),
        deploy_role: opt_name(d, &f, "deploy_role", "`deploy_role`"),
        external_id: opt_name(d, &f, "external_id", "`external_id`"),
        admin_role: opt_name(d, &f, "admin_role", "`admin_role`"),
    })
}

fn source(d: &mut Decoder, n: &Node) -> Option<SourceDoc> {
    let f = d.fields(n, "`source`", SourceDoc::KEYS)?;
    Some(SourceDoc {
        repo: opt_name(d, &f, "repo", "`source.repo`"),
        branch: opt_name(d, &f, "branch", "`source.branch`"),
        triggers: list(d, f.get("triggers"), "`source.triggers`", trigger),
    })
}

fn stage(d: &mut Decoder, n: &Node) -> Option<StageDoc> {
    let what = "a stage";
    let f = d.fields(n, what, StageDoc::KEYS)?;
    let name = f
        .required(d, "name", what, "give the stage a name: `name: build`")
        .and_then(|n| d.name(n, "the stage `name`"));
    let environment = opt_name(d, &f, "environment", "the stage `environment`");
    let actions = f
        .required(
            d,
            "actions",
            what,
            "list the stage's actions under `actions:`",
        )
        .map(|n| {
            if matches!(&n.value, ferry_yaml::Value::Seq(items) if items.is_empty()) {
                d.push(
                    Diagnostic::error("empty-stage", "a stage needs at least one action")
                        .at(n.span)
                        .with_hint("add an action under `actions:` or remove the stage"),
                );
            }
            list(d, Some(n), "`actions`", action)
        });
    Some(StageDoc {
        name: name?,
        environment,
        actions: actions?,
    })
}

const ACTION_KINDS: &[&str] = &["build", "approval", "ecs", "lambda"];

pub(crate) fn action(d: &mut Decoder, n: &Node) -> Option<ActionDoc> {
    let what = "an action";
    let f = d.fields(n, what, ActionDoc::KEYS)?;
    let name = f
        .required(d, "name", what, "give the action a name: `name: compile`")
        .and_then(|n| d.name(n, "the action `name`"));
    let run_order = f
        .get("run_order")
        .and_then(|n| d.uint(n, "`run_order`", 1, 999));
    let kinds: Vec<&str> = ACTION_KINDS.iter().copied().filter(|k| f.has(k)).collect();
    let kind = match kinds.as_slice() {
        [] => {
            d.push(
                Diagnostic::error("missing-action-kind", "an action needs one of `build`, `approval`, `ecs` or `lambda`")
                    .at(f.span())
                    .with_hint("add the key for what this action does, e.g. `build: {buildspec: buildspec.yml}`"),
            );
            None
        }
        [kind] => {
            let node = f.get(kind);
            match (*kind, node) {
                ("approval", None) => Some(ActionKindDoc::Approval(ApprovalDoc::default())),
                (_, None) => {
                    d.push(
                        Diagnostic::error("empty-value", format!("`{kind}` needs its settings"))
                            .at(f.key_span(kind).unwrap_or(f.span())),
                    );
                    None
                }
                ("build", Some(n)) => build(d, n).map(ActionKindDoc::Build),
                ("approval", Some(n)) => approval(d, n, "`approval`").map(ActionKindDoc::Approval),
                ("ecs", Some(n)) => ecs(d, n).map(ActionKindDoc::Ecs),
                (_, Some(n)) => lambda(d, n).map(ActionKindDoc::Lambda),
            }
        }
        [first, second, ..] => {
            d.push(
                Diagnostic::error(
                    "several-action-kinds",
                    format!(
                        "an action does one thing, but this one has both `{first}` and `{second}`"
                    ),
                )
                .at(f.key_span(second).unwrap_or(f.span()))
                .with_hint("split it into two actions"),
            );
            None
        }
    };
    Some(ActionDoc {
        name: name?,
        run_order,
        kind: kind?,
    })
}

fn build(d: &mut Decoder, n: &Node) -> Option<BuildDoc> {
    let what = "`build`";
    let f = d.fields(n, what, BuildDoc::KEYS)?;
    let buildspec = f
        .required(
            d,
            "buildspec",
            what,
            "name a buildspec file, e.g. `buildspec: buildspec.yml`",
        )
        .and_then(|n| d.string(n, "`buildspec`"))
        .filter(|b| !b.value.trim().is_empty());
    let inputs = f.get("inputs").map(|n| d.string_list(n, "`inputs`"));
    Some(BuildDoc {
        buildspec: buildspec?,
        inputs,
        outputs: opt_list(d, &f, "outputs", "`outputs`"),
        secrets: opt_list(d, &f, "secrets", "`secrets`"),
        env: f
            .get("env")
            .map(|n| {
                named_map(d, n, "`env`", |d, n| {
                    d.string(n, "an environment variable value")
                })
            })
            .unwrap_or_default(),
        timeout: opt_name(d, &f, "timeout", "`timeout`"),
        runner: f.get("runner").and_then(|n| runner(d, n, "`runner`")),
    })
}

pub(crate) fn approval(d: &mut Decoder, n: &Node, what: &str) -> Option<ApprovalDoc> {
    let f = d.fields(n, what, ApprovalDoc::KEYS)?;
    Some(ApprovalDoc {
        approvers: opt_list(d, &f, "approvers", "`approvers`"),
        timeout: opt_name(d, &f, "timeout", "`timeout`"),
        comment_required: f
            .get("comment_required")
            .and_then(|n| d.bool(n, "`comment_required`")),
        required: f
            .get("required")
            .and_then(|n| d.uint(n, "`required`", 1, 10)),
        forbid_self: f
            .get("forbid_self")
            .and_then(|n| d.bool(n, "`forbid_self`")),
    })
}

fn trigger(d: &mut Decoder, n: &Node) -> Option<TriggerDoc> {
    let f = d.fields(n, "a trigger", TriggerDoc::KEYS)?;
    Some(TriggerDoc {
        branches: f.get("branches").and_then(|n| filter(d, n, "`branches`")),
        tags: f.get("tags").and_then(|n| filter(d, n, "`tags`")),
        file_paths: f
            .get("file_paths")
            .and_then(|n| filter(d, n, "`file_paths`")),
    })
}

fn filter(d: &mut Decoder, n: &Node, what: &str) -> Option<FilterDoc> {
    let f = d.fields(n, what, FilterDoc::KEYS)?;
    Some(FilterDoc {
        include: opt_list(d, &f, "include", "`include`"),
        exclude: opt_list(d, &f, "exclude", "`exclude`"),
    })
}

fn ecs(d: &mut Decoder, n: &Node) -> Option<EcsDoc> {
    let what = "`ecs`";
    let f = d.fields(n, what, EcsDoc::KEYS)?;
    let cluster = f
        .required(
            d,
            "cluster",
            what,
            "name the ECS cluster: `cluster: orders`",
        )
        .and_then(|n| d.name(n, "`cluster`"));
    let service = f
        .required(
            d,
            "service",
            what,
            "name the ECS service: `service: orders-api`",
        )
        .and_then(|n| d.name(n, "`service`"));
    let artifact = f
        .required(
            d,
            "artifact",
            what,
            "name the build output that holds imagedefinitions.json: `artifact: app`",
        )
        .and_then(|n| d.name(n, "`artifact`"));
    Some(EcsDoc {
        cluster: cluster?,
        service: service?,
        artifact: artifact?,
        image_definitions: opt_name(d, &f, "image_definitions", "`image_definitions`"),
        timeout: opt_name(d, &f, "timeout", "`timeout`"),
        alarms: opt_list(d, &f, "alarms", "`alarms`"),
        task_role: opt_name(d, &f, "task_role", "`task_role`"),
        execution_role: opt_name(d, &f, "execution_role", "`execution_role`"),
        strategy: opt_name(d, &f, "strategy", "`strategy`"),
        bake: opt_name(d, &f, "bake", "`bake`"),
        until: opt_name(d, &f, "until", "`until`"),
        hooks: list(d, f.get("hooks"), "`hooks`", ecs_hook),
    })
}

fn ecs_hook(d: &mut Decoder, n: &Node) -> Option<Spanned<EcsHookDoc>> {
    let f = d.fields(n, "a hook", EcsHookDoc::KEYS)?;
    if f.has("test") == f.has("approval") {
        d.push(
            Diagnostic::error(
                "hook-check",
                "a hook needs exactly one of `test` (a build) or `approval`",
            )
            .at(f.span())
            .with_hint("write `- test: {buildspec: smoke.yml}` or `- approval: {approvers: [alice]}`; list two hooks for both"),
        );
        return None;
    }
    let span = f.span();
    Some(Spanned::new(
        EcsHookDoc {
            at: opt_name(d, &f, "at", "`at`"),
            test: f.get("test").and_then(|n| build(d, n)),
            approval: match f.get("approval") {
                Some(n) if n.value == ferry_yaml::Value::Null => Some(ApprovalDoc::default()),
                Some(n) => approval(d, n, "`approval`"),
                None => None,
            },
        },
        span,
    ))
}

fn lambda(d: &mut Decoder, n: &Node) -> Option<LambdaDoc> {
    let what = "`lambda`";
    let f = d.fields(n, what, LambdaDoc::KEYS)?;
    let function = f
        .required(
            d,
            "function",
            what,
            "name the function: `function: orders-fn`",
        )
        .and_then(|n| d.name(n, "`function`"));
    Some(LambdaDoc {
        function: function?,
        alias: opt_name(d, &f, "alias", "`alias`"),
        artifact: opt_name(d, &f, "artifact", "`artifact`"),
        zip: opt_name(d, &f, "zip", "`zip`"),
        image_uri: opt_name(d, &f, "image_uri", "`image_uri`"),
        traffic: opt_name(d, &f, "traffic", "`traffic`"),
        alarms: opt_list(d, &f, "alarms", "`alarms`"),
    })
}

fn environment(d: &mut Decoder, n: &Node) -> Option<EnvironmentDoc> {
    let what = "an environment";
    let f = d.fields(n, what, EnvironmentDoc::KEYS)?;
    let name = f
        .required(d, "name", what, "name the environment: `name: dev`")
        .and_then(|n| d.name(n, "the environment `name`"));
    let account = f
        .required(
            d,
            "account",
            what,
            "say which account it deploys to: `account: dev` (a key of `accounts`)",
        )
        .and_then(|n| d.name(n, "the environment `account`"));
    let approval = f.get("approval").and_then(|n| approval(d, n, "`approval`"));
    // `approval:` with nothing after it asks for an approval with the defaults.
    let approval = approval.or_else(|| f.has("approval").then(ApprovalDoc::default));
    let vars = f
        .get("vars")
        .map(|n| named_map(d, n, "`vars`", |d, n| d.string(n, "a variable value")))
        .unwrap_or_default();
    let gates = f.get("gates").and_then(|n| gates(d, n));
    Some(EnvironmentDoc {
        name: name?,
        account: account?,
        approval,
        vars,
        gates,
    })
}

fn gates(d: &mut Decoder, n: &Node) -> Option<GatesDoc> {
    let f = d.fields(n, "`gates`", GatesDoc::KEYS)?;
    Some(GatesDoc {
        alarms: opt_list(d, &f, "alarms", "`alarms`"),
        windows: list(d, f.get("windows"), "`windows`", window),
        soak: opt_name(d, &f, "soak", "`soak`"),
        after: f.get("after").and_then(|n| after(d, n)),
    })
}

fn after(d: &mut Decoder, n: &Node) -> Option<AfterDoc> {
    let f = d.fields(n, "`after`", AfterDoc::KEYS)?;
    let what = "`after`";
    let watch = f
        .required(d, "watch", what, "say how long to watch, e.g. `watch: 15m`")
        .and_then(|n| d.name(n, "`watch`"));
    let alarms = f
        .required(
            d,
            "alarms",
            what,
            "name the alarms to watch, e.g. `alarms: [orders-api-5xx-prod]`",
        )
        .map(|n| d.string_list(n, "`alarms`"));
    Some(AfterDoc {
        watch: watch?,
        alarms: alarms?,
    })
}

fn window(d: &mut Decoder, n: &Node) -> Option<WindowDoc> {
    let f = d.fields(n, "a window", WindowDoc::KEYS)?;
    if f.has("allow") == f.has("deny") {
        d.push(
            Diagnostic::error(
                "window-rule",
                "a window needs exactly one of `allow` (a deployment window) or `deny` (a freeze)",
            )
            .at(f.span())
            .with_hint("write `- allow: \"* 9-16 * * MON-FRI\"` or `- deny: \"* * 24-26 12 *\"`; list two windows for both"),
        );
        return None;
    }
    Some(WindowDoc {
        allow: f.get("allow").and_then(|n| d.string(n, "`allow`")),
        deny: f.get("deny").and_then(|n| d.string(n, "`deny`")),
        time_zone: opt_name(d, &f, "time_zone", "`time_zone`"),
    })
}

fn opt_name(d: &mut Decoder, f: &Fields<'_>, key: &str, what: &str) -> Option<Text> {
    f.get(key).and_then(|n| d.name(n, what))
}

fn opt_list(d: &mut Decoder, f: &Fields<'_>, key: &str, what: &str) -> Vec<Text> {
    f.get(key)
        .map(|n| d.string_list(n, what))
        .unwrap_or_default()
}

fn list<T>(
    d: &mut Decoder,
    n: Option<&Node>,
    what: &str,
    item: fn(&mut Decoder, &Node) -> Option<T>,
) -> Vec<T> {
    let Some(n) = n else { return Vec::new() };
    d.list(n, what)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| item(d, n))
        .collect()
}

fn named_map<T>(
    d: &mut Decoder,
    n: &Node,
    what: &str,
    item: impl Fn(&mut Decoder, &Node) -> Option<T>,
) -> NamedMap<T> {
    let entries = d.entries(n, what).unwrap_or_default();
    NamedMap(
        entries
            .into_iter()
            .filter_map(|(k, v)| item(d, v).map(|v| (k, v)))
            .collect(),
    )
}

pub(crate) fn unknown_choice(what: &str, got: &str, choices: &[&str]) -> Diagnostic {
    let hint = match did_you_mean(got, choices) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("use one of: {}", choices.join(", ")),
    };
    Diagnostic::error("unknown-value", format!("{what} cannot be `{got}`")).with_hint(hint)
}
