//! `ferry deploy lambda|ecs` (standalone, for any CI), `ferry rollback` and `ferry releases`.

use ferry_aws::deploy::Outcome;
use ferry_aws::ecs;
use ferry_manifest::Traffic;
use ferry_workflows::deploy::{
    self, DeployTarget, Deployment, EcsInput, LambdaCode, LambdaInput, LedgerInput,
};
use ferry_workflows::local_identity;
use ferry_workflows::releases::{self, RollbackInput, RollbackResult};
use serde::Serialize;
use serde_json::json;

use super::{project, remote};
use crate::cli::{
    DeployEcsArgs, DeployLambdaArgs, LedgerArgs, ReleasesArgs, RollbackArgs, TargetArgs,
};
use crate::live::Console;
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, WARNING, fail, paint, runtime};

fn usage(message: &str) -> Exit {
    output::error(message);
    Exit::Usage
}

fn target(t: &TargetArgs) -> DeployTarget {
    DeployTarget {
        role_arn: t.role_arn.clone(),
        external_id: t.external_id.clone(),
        region: t.region.clone(),
        alarms: t.alarms.clone(),
        watch_after: t.watch.unwrap_or_default(),
    }
}

/// The ledger a deploy records into, when `--ledger` asks for one (clap requires the rest).
fn ledger(l: &LedgerArgs) -> Option<LedgerInput> {
    Some(LedgerInput {
        environment: l.ledger.clone()?,
        pipeline: l.pipeline.clone().unwrap_or_default(),
        run: l.run.clone().unwrap_or_default(),
        revision: l.revision.clone().unwrap_or_default(),
        state_dir: l.state_dir.clone(),
        state_url: l.state_url.clone(),
    })
}

fn exit_of(outcome: Outcome) -> Exit {
    match outcome {
        Outcome::Deployed | Outcome::AlreadyDeployed => Exit::Ok,
        Outcome::RolledBack => Exit::Failed,
        Outcome::RollbackFailed => Exit::RollbackFailed,
    }
}

/// Prints a deploy's result: the report with the API calls made, as JSON or as a summary.
fn finish<R: Serialize>(
    format: Format,
    deployment: &Deployment<R>,
    summary: impl Fn(&R) -> (Outcome, String),
) -> Exit {
    let total = deployment.api_calls_total();
    // A deploy that happened but could not be recorded fails: the ledger would lie.
    let unrecorded = matches!(deployment.recorded, Some(Err(_)));
    let exit = |outcome| match exit_of(outcome) {
        Exit::Ok if unrecorded => Exit::Failed,
        exit => exit,
    };
    match (format, &deployment.result) {
        (Format::Json, Ok(r)) => {
            let mut doc = serde_json::to_value(r).unwrap_or_default();
            doc["api_calls"] = json!(deployment.api_calls);
            doc["api_calls_total"] = json!(total);
            match &deployment.recorded {
                Some(Ok(recorded)) => doc["ledger"] = json!(recorded),
                Some(Err(e)) => doc["ledger"] = json!({"error": e.to_string()}),
                None => {}
            }
            output::json(&doc);
            exit(summary(r).0)
        }
        (Format::Json, Err(e)) => {
            output::json(
                &json!({"outcome": "Failed", "error": e.to_string(), "changed": false, "api_calls": deployment.api_calls, "api_calls_total": total}),
            );
            Exit::Failed
        }
        (Format::Text, Ok(r)) => {
            let (outcome, line) = summary(r);
            let mark = match outcome {
                Outcome::Deployed | Outcome::AlreadyDeployed => paint(OK, "✓"),
                Outcome::RolledBack => paint(WARNING, "↩"),
                Outcome::RollbackFailed => paint(ERROR, "✗"),
            };
            anstream::println!(
                "{mark} {line} {}",
                paint(DIM, &format!("({total} AWS calls)"))
            );
            match &deployment.recorded {
                Some(Ok(deploy::Recorded {
                    execution,
                    release: Some(id),
                })) => anstream::println!("  recorded as release {id} of execution {execution}"),
                Some(Ok(deploy::Recorded { execution, .. })) => {
                    anstream::println!("  no release to record (execution {execution})");
                }
                Some(Err(e)) => output::error(&format!(
                    "the deploy is done, but the ledger could not record it: {e}"
                )),
                None => {}
            }
            exit(outcome)
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
    let code = match (&args.zip, &args.image_uri) {
        (Some(path), _) => LambdaCode::Zip(path.clone()),
        (None, Some(uri)) => LambdaCode::Image(uri.clone()),
        (None, None) => return usage("give --zip PATH or --image-uri URI"),
    };
    let input = LambdaInput {
        function: args.function.clone(),
        alias: args.alias.clone(),
        code,
        traffic,
        keep_versions: args.keep_versions,
        target: target(&args.target),
        ledger: ledger(&args.ledger),
    };
    let deployment = match runtime().block_on(deploy::lambda(&input, &Console::new())) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    finish(args.target.format, &deployment, |r| {
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
    let input = EcsInput {
        cluster: args.cluster.clone(),
        service: args.service.clone(),
        image_definitions: args.image_definitions.clone(),
        timeout,
        target: target(&args.target),
        ledger: ledger(&args.ledger),
    };
    let deployment = match runtime().block_on(deploy::ecs(&input, &Console::new())) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    finish(args.target.format, &deployment, |r| {
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

pub fn rollback(args: &RollbackArgs) -> Exit {
    let report = if args.remote.server.is_some() {
        let result = remote::client(&args.remote).and_then(|c| {
            let pipeline = remote::pipeline(&args.state)?;
            runtime()
                .block_on(c.rollback(
                    &pipeline,
                    &args.environment,
                    args.target.as_deref(),
                    args.to,
                ))
                .map_err(|e| remote::failed(&e))
        });
        match result {
            Ok(r) => r,
            Err(exit) => return exit,
        }
    } else {
        let input = RollbackInput {
            environment: args.environment.clone(),
            target: args.target.clone(),
            to: args.to,
            identity: local_identity(),
            only_running: None,
        };
        match runtime().block_on(releases::rollback(
            &project(&args.state),
            &input,
            &Console::new(),
        )) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        }
    };
    match args.format {
        Format::Json => output::json(&report),
        Format::Text => render_rollback(&report),
    }
    if report.ok() { Exit::Ok } else { Exit::Failed }
}

/// One line per deploy of a rollback.
pub(crate) fn render_rollback(report: &releases::RollbackReport) {
    for r in &report.results {
        match r {
            RollbackResult::Failed { target, error } => output::error(&format!(
                "{}: {}{error}",
                report.environment,
                target
                    .as_ref()
                    .map(|t| format!("{t}: "))
                    .unwrap_or_default()
            )),
            RollbackResult::Restored {
                target,
                restored_release,
                version,
                replaced,
                revision,
            } => anstream::println!(
                "{} {}: {target} back on {version} (release {restored_release}, revision {revision}) — was {}",
                paint(OK, "↩"),
                report.environment,
                replaced.as_deref().unwrap_or("unknown")
            ),
            RollbackResult::Unaffected { target, version } => anstream::println!(
                "{} {}: {target} runs {} — not the blocked release, left as it is",
                paint(DIM, "="),
                report.environment,
                version.as_deref().map_or("nothing yet", short_version)
            ),
        }
    }
}

pub fn releases(args: &ReleasesArgs) -> Exit {
    let report = if args.remote.server.is_some() {
        let result = remote::client(&args.remote).and_then(|c| {
            let pipeline = remote::pipeline(&args.state)?;
            runtime()
                .block_on(c.releases(&pipeline, &args.environment, args.limit))
                .map_err(|e| remote::failed(&e))
        });
        match result {
            Ok(r) => r,
            Err(exit) => return exit,
        }
    } else {
        match releases::releases(&project(&args.state), &args.environment, args.limit) {
            Ok(r) => r,
            Err(e) => return fail(&e),
        }
    };
    if args.format == Format::Json {
        output::json(&report);
        return Exit::Ok;
    }
    let releases = &report.releases;
    if releases.is_empty() {
        anstream::println!("no releases in {} yet", report.environment);
    }
    // The newest release of each target.
    let mut newest: Vec<(&str, i64)> = Vec::new();
    for r in releases {
        if !newest.iter().any(|(t, _)| *t == r.record.target) {
            newest.push((&r.record.target, r.id));
        }
    }
    for r in releases {
        let mark = match r.record.outcome.as_str() {
            "Deployed" | "Restored" if r.record.verified => paint(OK, "✓"),
            "Deployed" => paint(DIM, "·"),
            "RolledBack" => paint(WARNING, "↩"),
            _ => paint(ERROR, "✗"),
        };
        let mut newest = if newest.iter().any(|(_, id)| *id == r.id) {
            paint(BOLD, " (newest)")
        } else {
            String::new()
        };
        if let Some(reason) = &r.blocked {
            newest.push_str(&paint(ERROR, &format!(" BLOCKED: {reason}")));
        }
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
    Exit::Ok
}

fn short_version(version: &str) -> &str {
    if version.contains(":task-definition/") {
        ecs::short_td(version)
    } else {
        version
    }
}
