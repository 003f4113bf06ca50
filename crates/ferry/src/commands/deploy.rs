//! `ferry deploy lambda|ecs` (standalone, for any CI), `ferry rollback` and `ferry releases`.
//! The deploys are ferry-aws's, the same code the pipeline's `lambda` and `ecs` actions run.

use std::time::Duration;

use ferry_aws::ecs::{self, EcsDeploy};
use ferry_aws::error::AwsError;
use ferry_aws::lambda::{self, LambdaDeploy, Outcome, Package};
use ferry_aws::session::{AccountConfig, Aws, CallLog, RoleTarget};
use ferry_engine::model::{Release, rollback_target};
use ferry_manifest::{ActionKind, Manifest, Traffic};
use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::{DeployEcsArgs, DeployLambdaArgs, ReleasesArgs, RollbackArgs, TargetArgs};
use crate::live::Steps;
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, WARNING, paint};
use crate::state;

fn usage(message: &str) -> Exit {
    output::error(message);
    Exit::Usage
}

/// The account to act in: the assumed role, or the caller's own identity.
async fn account(aws: &Aws, target: &TargetArgs) -> Result<AccountConfig, AwsError> {
    let role = target.role_arn.as_ref().map(|arn| RoleTarget {
        role_arn: arn.clone(),
        external_id: target.external_id.clone(),
        region: target.region.clone(),
    });
    aws.account(role.as_ref(), target.region.as_deref()).await
}

/// Runs one deploy in the target's account with a step view; returns its result and the AWS
/// calls it made (for `--format json`).
fn run_deploy<R>(
    label: &str,
    session: &str,
    target: &TargetArgs,
    deploy: impl AsyncFnOnce(
        &AccountConfig,
        &CallLog,
        &(dyn Fn(&str) + Send + Sync),
    ) -> Result<R, AwsError>,
) -> (Result<R, AwsError>, CallLog) {
    let steps = Steps::new(label);
    let out = state::runtime().block_on(async {
        let aws = match Aws::from_env(session).await {
            Ok(aws) => aws,
            Err(e) => return (Err(e), CallLog::default()),
        };
        let result = match account(&aws, target).await {
            Ok(acct) => deploy(&acct, &aws.calls, &|s| steps.step(s)).await,
            Err(e) => Err(e),
        };
        (result, aws.calls)
    });
    steps.finish();
    out
}

fn exit_of(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Deployed | Outcome::AlreadyDeployed => Exit::Ok,
        Outcome::RolledBack => Exit::Failed,
        Outcome::RollbackFailed => Exit::RollbackFailed,
    }
}

/// Prints the result: the report with the API calls made, as JSON or as a summary.
fn finish<R: Serialize>(
    format: Format,
    report: Result<R, AwsError>,
    calls: &CallLog,
    summary: impl Fn(&R) -> (Outcome, String),
) -> Exit {
    let counts = calls.counts();
    let total: usize = counts.values().sum();
    match (format, report) {
        (Format::Json, Ok(r)) => {
            let mut doc = serde_json::to_value(&r).unwrap_or_default();
            doc["api_calls"] = json!(counts);
            doc["api_calls_total"] = json!(total);
            output::json(&doc);
            exit_of(summary(&r).0)
        }
        (Format::Json, Err(e)) => {
            output::json(
                &json!({"outcome": "Failed", "error": e.to_string(), "changed": false, "api_calls": counts, "api_calls_total": total}),
            );
            Exit::Failed
        }
        (Format::Text, Ok(r)) => {
            let (outcome, line) = summary(&r);
            let mark = match outcome {
                Outcome::Deployed | Outcome::AlreadyDeployed => paint(OK, "✓"),
                Outcome::RolledBack => paint(WARNING, "↩"),
                Outcome::RollbackFailed => paint(ERROR, "✗"),
            };
            anstream::println!(
                "{mark} {line} {}",
                paint(DIM, &format!("({total} AWS calls)"))
            );
            exit_of(outcome)
        }
        (Format::Text, Err(e)) => {
            output::error(&format!("{e}; nothing was changed"));
            Exit::Failed
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

pub fn lambda(args: &DeployLambdaArgs) -> Exit {
    let traffic = match Traffic::parse(&args.traffic) {
        Ok(t) => t,
        Err(e) => return usage(&format!("--traffic: {e}")),
    };
    let package = match (&args.zip, &args.image_uri) {
        (Some(path), _) => match std::fs::read(path) {
            Ok(bytes) => Package::Zip(bytes),
            Err(e) => return usage(&format!("cannot read {}: {e}", path.display())),
        },
        (None, Some(uri)) => Package::Image(uri.clone()),
        (None, None) => return usage("give --zip PATH or --image-uri URI"),
    };
    let req = LambdaDeploy {
        function: args.function.clone(),
        alias: args.alias.clone(),
        package,
        traffic,
        alarms: args.target.alarms.clone(),
        prune_keep: args.keep_versions,
        idempotency_key: None,
        referenced: Vec::new(),
        poll: Duration::from_secs(1),
    };
    let (report, calls) = run_deploy(
        &format!("deploy {}:{}", args.function, args.alias),
        &format!("ferry-deploy-{}", args.function),
        &args.target,
        async |acct, calls, step| lambda::deploy(acct, calls, &req, step).await,
    );
    finish(args.target.format, report, &calls, |r| {
        let line = match r.outcome {
            Outcome::Deployed => format!(
                "{}:{} serves version {} (was {}) in {}",
                r.function,
                r.alias,
                r.to_version.as_deref().unwrap_or("?"),
                r.from_version.as_deref().unwrap_or("none"),
                secs(r.duration_ms)
            ),
            Outcome::AlreadyDeployed => format!(
                "{}:{} already serves this code (version {}); nothing published",
                r.function,
                r.alias,
                r.to_version.as_deref().unwrap_or("?")
            ),
            Outcome::RolledBack => format!(
                "rolled back: {}; {}:{} serves version {} again",
                r.error.as_deref().unwrap_or(""),
                r.function,
                r.alias,
                r.from_version.as_deref().unwrap_or("?")
            ),
            Outcome::RollbackFailed => format!(
                "deploy failed and the rollback failed: {}",
                r.error.as_deref().unwrap_or("")
            ),
        };
        (r.outcome, line)
    })
}

pub fn ecs(args: &DeployEcsArgs) -> Exit {
    let timeout = match ferry_manifest::values::parse_duration(&args.timeout) {
        Ok(t) if !t.is_zero() => t,
        Ok(_) => return usage("--timeout must be longer than 0s"),
        Err(e) => return usage(&format!("--timeout: {e}")),
    };
    let images = match ecs::read_image_definitions(&args.image_definitions) {
        Ok(i) => i,
        Err(e) => return usage(&e),
    };
    let req = EcsDeploy {
        cluster: args.cluster.clone(),
        service: args.service.clone(),
        images,
        timeout,
        alarms: args.target.alarms.clone(),
        poll: Duration::from_secs(2),
        previous: None,
        idempotency_key: None,
    };
    let (report, calls) = run_deploy(
        &format!("deploy {}/{}", args.cluster, args.service),
        &format!("ferry-deploy-{}", args.service),
        &args.target,
        async |acct, calls, step| ecs::deploy(acct, calls, &req, step).await,
    );
    finish(args.target.format, report, &calls, |r| {
        let td = |t: &Option<String>| t.as_deref().map(ecs::short_td).unwrap_or("?").to_owned();
        let line = match r.outcome {
            Outcome::Deployed => format!(
                "{} runs {} (was {}), steady after {}",
                r.service,
                td(&r.to_task_definition),
                td(&r.from_task_definition),
                secs(r.duration_ms)
            ),
            Outcome::AlreadyDeployed => format!(
                "{} already runs these images on {}",
                r.service,
                td(&r.to_task_definition)
            ),
            Outcome::RolledBack => format!(
                "rolled back: {}; {} runs {} again",
                r.error.as_deref().unwrap_or(""),
                r.service,
                td(&r.from_task_definition)
            ),
            Outcome::RollbackFailed => format!(
                "deploy failed and the rollback failed: {}",
                r.error.as_deref().unwrap_or("")
            ),
        };
        (r.outcome, line)
    })
}

/// A deploy of the environment as the ledger names it, with what `ferry rollback` needs.
struct Deployment {
    action: String,
    target: String,
    kind: DeploymentKind,
}

enum DeploymentKind {
    Lambda {
        function: String,
        alias: String,
    },
    Ecs {
        cluster: String,
        service: String,
        timeout: Duration,
    },
}

fn deployments(manifest: &Manifest, environment: &str) -> Vec<Deployment> {
    manifest
        .deployments()
        .filter(|(stage, _, _)| stage.environment.as_deref() == Some(environment))
        .filter_map(|(_, _, action)| match &action.kind {
            ActionKind::Lambda(l) => Some(Deployment {
                action: action.name.clone(),
                target: format!("lambda:{}:{}", l.function, l.alias),
                kind: DeploymentKind::Lambda {
                    function: l.function.clone(),
                    alias: l.alias.clone(),
                },
            }),
            ActionKind::Ecs(e) => Some(Deployment {
                action: action.name.clone(),
                target: format!("ecs:{}/{}", e.cluster, e.service),
                kind: DeploymentKind::Ecs {
                    cluster: e.cluster.clone(),
                    service: e.service.clone(),
                    timeout: e.timeout,
                },
            }),
            _ => None,
        })
        .collect()
}

pub fn rollback(args: &RollbackArgs) -> Exit {
    let manifest = match state::load_manifest(&args.state.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let Some(env) = manifest.environment(&args.environment) else {
        let known: Vec<&str> = manifest
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        return usage(&format!(
            "no environment `{}`; the manifest has: {}",
            args.environment,
            known.join(", ")
        ));
    };
    let Some(account) = manifest.account(&env.account) else {
        return usage(&format!(
            "environment `{}` names no known account",
            env.name
        ));
    };
    let mut chosen = deployments(&manifest, &env.name);
    if let Some(t) = &args.target {
        chosen.retain(|d| &d.action == t || &d.target == t);
        if chosen.is_empty() {
            let known: Vec<String> = deployments(&manifest, &env.name)
                .into_iter()
                .map(|d| format!("{} ({})", d.action, d.target))
                .collect();
            return usage(&format!(
                "`{t}` is not a deploy of {}; its deploys are: {}",
                env.name,
                known.join(", ")
            ));
        }
    }
    if chosen.is_empty() {
        return usage(&format!("environment `{}` has no deploys", env.name));
    }
    let store = match state::open_store(&state::state_dir(
        &args.state.manifest.file,
        args.state.state_dir.as_deref(),
    )) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let role = RoleTarget {
        role_arn: account.deploy_role_arn(),
        external_id: account.external_id.clone(),
        region: Some(account.region.clone()),
    };
    let identity = state::identity();
    let mut results = Vec::new();
    let mut exit = Exit::Ok;
    state::runtime().block_on(async {
        let aws = match Aws::from_env(&format!("ferry-{}-rollback", manifest.pipeline)).await {
            Ok(aws) => aws,
            Err(e) => {
                results.push(json!({"error": e.to_string()}));
                exit = Exit::Failed;
                return;
            }
        };
        let acct = match aws.assume(&role).await {
            Ok(a) => a,
            Err(e) => {
                results.push(json!({"error": e.to_string()}));
                exit = Exit::Failed;
                return;
            }
        };
        for d in &chosen {
            let ledger = match store.releases(&manifest.pipeline, Some(&env.name), Some(&d.target), 200) {
                Ok(l) => l,
                Err(e) => {
                    results.push(json!({"target": d.target, "error": e.to_string()}));
                    exit = Exit::Failed;
                    continue;
                }
            };
            match roll_back_one(&aws, &acct, d, &ledger, args.to).await {
                Ok((release, live)) => {
                    if let Err(e) = store.restore_release(&release, &identity, live.as_deref()) {
                        output::error(&format!("{}: rolled back, but the ledger could not record it: {e}", d.target));
                    }
                    results.push(json!({"target": d.target, "restored_release": release.id, "version": release.record.version, "replaced": live, "revision": release.revision}));
                }
                Err(why) => {
                    results.push(json!({"target": d.target, "error": why}));
                    exit = Exit::Failed;
                }
            }
        }
    });
    match args.format {
        Format::Json => output::json(&json!({"environment": env.name, "results": results})),
        Format::Text => {
            for r in &results {
                match (r.get("error"), r.get("target")) {
                    (Some(e), target) => output::error(&format!(
                        "{}{}",
                        target
                            .and_then(Value::as_str)
                            .map(|t| format!("{t}: "))
                            .unwrap_or_default(),
                        e.as_str().unwrap_or("")
                    )),
                    (None, _) => anstream::println!(
                        "{} {} back on {} (release {}, revision {}) — was {}",
                        paint(OK, "↩"),
                        r["target"].as_str().unwrap_or(""),
                        r["version"].as_str().unwrap_or(""),
                        r["restored_release"],
                        r["revision"].as_str().unwrap_or(""),
                        r["replaced"].as_str().unwrap_or("unknown")
                    ),
                }
            }
        }
    }
    exit
}

/// Puts one deploy back on its last verified-good release (or `to`); returns the release and
/// the version it replaced.
async fn roll_back_one(
    aws: &Aws,
    acct: &AccountConfig,
    d: &Deployment,
    ledger: &[Release],
    to: Option<i64>,
) -> Result<(Release, Option<String>), String> {
    let steps = Steps::new(&format!("rollback {}", d.target));
    let result = async {
        let live = match &d.kind {
            DeploymentKind::Lambda { function, alias } => {
                lambda::alias_code(acct, &aws.calls, function, alias)
                    .await
                    .map_err(|e| e.to_string())?
                    .map(|(v, _, _)| v)
            }
            DeploymentKind::Ecs {
                cluster, service, ..
            } => Some(
                ecs::current_task_definition(acct, &aws.calls, cluster, service)
                    .await
                    .map_err(|e| e.to_string())?,
            ),
        };
        let release = match to {
            Some(id) => ledger.iter().find(|r| r.id == id).ok_or_else(|| {
                format!(
                    "release {id} is not a release of {}; `ferry releases` lists them",
                    d.target
                )
            })?,
            None => rollback_target(ledger, live.as_deref()).ok_or_else(|| {
                format!(
                    "the ledger has no verified-good release of {} other than the one running ({})",
                    d.target,
                    live.as_deref().unwrap_or("none")
                )
            })?,
        };
        steps.step(&format!(
            "returning to release {} ({})",
            release.id, release.record.version
        ));
        match &d.kind {
            DeploymentKind::Lambda { function, alias } => {
                lambda::point_alias(acct, &aws.calls, function, alias, &release.record.version)
                    .await
                    .map_err(|e| e.to_string())?
            }
            DeploymentKind::Ecs {
                cluster,
                service,
                timeout,
            } => {
                let req = EcsDeploy {
                    cluster: cluster.clone(),
                    service: service.clone(),
                    images: Vec::new(),
                    timeout: *timeout,
                    alarms: Vec::new(),
                    poll: Duration::from_secs(2),
                    previous: None,
                    idempotency_key: None,
                };
                if let Some(why) =
                    ecs::update_to(acct, &aws.calls, &req, &release.record.version, &|s| {
                        steps.step(s)
                    })
                    .await
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!(
                        "the service was set to {} but {why}",
                        ecs::short_td(&release.record.version)
                    ));
                }
            }
        }
        Ok((release.clone(), live))
    }
    .await;
    steps.finish();
    result
}

pub fn releases(args: &ReleasesArgs) -> Exit {
    let manifest = match state::load_manifest(&args.state.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    if manifest.environment(&args.environment).is_none() {
        let known: Vec<&str> = manifest
            .environments
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        return usage(&format!(
            "no environment `{}`; the manifest has: {}",
            args.environment,
            known.join(", ")
        ));
    }
    let store = match state::open_store(&state::state_dir(
        &args.state.manifest.file,
        args.state.state_dir.as_deref(),
    )) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let releases = match store.releases(
        &manifest.pipeline,
        Some(&args.environment),
        None,
        args.limit,
    ) {
        Ok(r) => r,
        Err(e) => {
            output::error(&e.to_string());
            return Exit::Failed;
        }
    };
    match args.format {
        Format::Json => {
            output::json(&json!({"environment": args.environment, "releases": releases}))
        }
        Format::Text => {
            if releases.is_empty() {
                anstream::println!("no releases in {} yet", args.environment);
            }
            let live: Vec<&Release> = releases.iter().fold(Vec::new(), |mut seen, r| {
                if !seen
                    .iter()
                    .any(|s: &&Release| s.record.target == r.record.target)
                {
                    seen.push(r);
                }
                seen
            });
            for r in &releases {
                let mark = match r.record.outcome.as_str() {
                    "Deployed" | "Restored" if r.record.verified => paint(OK, "✓"),
                    "Deployed" => paint(DIM, "·"),
                    "RolledBack" => paint(WARNING, "↩"),
                    _ => paint(ERROR, "✗"),
                };
                let newest = if live.iter().any(|l| l.id == r.id) {
                    paint(BOLD, " (newest)")
                } else {
                    String::new()
                };
                anstream::println!(
                    "{mark} {:>4}  {:<28} {:<12} {:<10} {} {}  {}{newest}",
                    r.id,
                    r.record.target,
                    short_version(&r.record.version),
                    r.record.outcome,
                    r.execution_id,
                    paint(
                        DIM,
                        &format!("rev {}", &r.revision[..r.revision.len().min(12)])
                    ),
                    r.approved_by
                        .as_deref()
                        .map(|a| format!("by {a}"))
                        .unwrap_or_default(),
                );
            }
        }
    }
    Exit::Ok
}

fn short_version(version: &str) -> &str {
    if version.contains(":task-definition/") {
        ecs::short_td(version)
    } else {
        version
    }
}
