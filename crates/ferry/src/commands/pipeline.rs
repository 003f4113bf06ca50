//! `ferry run`, `status`, `history`, `logs`, `approve`, `reject`, `retry`, `stop`.

use std::sync::Arc;

use ferry_engine::model::{GateOverride, Status, StopMode};
use ferry_workflows::control::{self, DecideInput, OverrideInput, RetryInput, StopInput};
use ferry_workflows::logs::{self, LogText, LogsInput};
use ferry_workflows::run::{self, RunInput, Stops};
use ferry_workflows::view::ExecutionView;
use ferry_workflows::{history, local_identity};

use super::{project, remote};
use crate::cli::{
    DecideArgs, HistoryArgs, LogsArgs, OverrideArgs, RetryArgs, RunArgs, StatusArgs, StopArgs,
};
use crate::live::Console;
use crate::output::{
    self, BOLD, DIM, ERROR, Exit, Format, OK, WARNING, fail, paint, runtime, short_revision,
};

fn duration(ms: i64) -> String {
    let secs = ms as f64 / 1000.0;
    if secs < 1.0 {
        format!("{}ms", ms)
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", secs as u64 / 60, secs as u64 % 60)
    }
}

/// Ctrl-C stops the execution after its running actions finish; a second one stops them too.
/// Spawned on the runtime that drives the workflow.
fn interrupts() -> Stops {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut mode = StopMode::Graceful;
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(mode).is_err() {
                return;
            }
            mode = StopMode::Forced;
        }
    });
    rx
}

/// Runs a workflow that may drive an execution here: with the console, and Ctrl-C as stop
/// requests.
fn driving<T>(
    workflow: impl AsyncFnOnce(Option<Stops>, Arc<dyn ferry_workflows::Reporter>) -> T,
) -> T {
    runtime().block_on(async { workflow(Some(interrupts()), Arc::new(Console::new())).await })
}

/// The end of an execution: a line (and where to look when it failed), or the JSON document.
fn summary(view: &ExecutionView, format: Format) -> Exit {
    match format {
        Format::Json => output::json(view),
        Format::Text => {
            let took = duration(view.duration_ms());
            if view.status == Status::Succeeded {
                anstream::println!("{} {} succeeded in {took}", paint(OK, "✓"), view.id);
            } else {
                let why = view.reason.clone().unwrap_or_default();
                anstream::println!(
                    "{} {} {} after {took}: {why}",
                    paint(ERROR, "✗"),
                    view.id,
                    view.status.as_str().to_lowercase()
                );
                if let Some((stage, action)) = view.last_failed() {
                    anstream::println!("  log: ferry logs {} {stage}.{action}", view.id);
                    anstream::println!("  retry: ferry retry {} {stage}", view.id);
                }
            }
        }
    }
    if view.status == Status::Succeeded {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

pub fn run(args: &RunArgs) -> Exit {
    if args.remote.server.is_some() {
        return run_remote(args);
    }
    let input = RunInput {
        revision: args.revision.clone(),
        until: args.until.clone(),
        auto_approve: args.auto_approve,
        resume: args.resume.clone(),
        identity: local_identity(),
        trigger: None,
        slots: None,
    };
    let project = project(&args.state);
    match driving(async |stops, console| run::run(&project, &input, stops, console).await) {
        Ok(view) => summary(&view, args.format),
        Err(e) => fail(&e),
    }
}

/// `ferry run --server`: the server starts the execution and runs it; this says where.
fn run_remote(args: &RunArgs) -> Exit {
    let started = remote::client(&args.remote).and_then(|c| {
        let pipeline = remote::pipeline(&args.state)?;
        runtime()
            .block_on(c.start(&pipeline, args.revision.as_deref()))
            .map_err(|e| remote::failed(&e))
    });
    match started {
        Ok(view) => {
            if args.format == Format::Json {
                output::json(&view);
            } else {
                anstream::println!(
                    "{} {} started on {}: {} at revision {}",
                    paint(BOLD, "▸"),
                    view.id,
                    args.remote.server.as_deref().unwrap_or_default(),
                    view.pipeline,
                    short_revision(&view.revision)
                );
                anstream::println!("  follow it: ferry status --server URL {}", view.id);
            }
            Exit::Ok
        }
        Err(exit) => exit,
    }
}

fn mark(status: Status) -> String {
    match status {
        Status::Succeeded => paint(OK, "✓"),
        Status::Failed => paint(ERROR, "✗"),
        Status::InProgress => paint(BOLD, "▸"),
        Status::AwaitingApproval => paint(WARNING, "⏸"),
        Status::Stopped | Status::Superseded | Status::RolledBack => paint(WARNING, "■"),
        Status::Pending => paint(DIM, "·"),
    }
}

pub fn status(args: &StatusArgs) -> Exit {
    let view = if args.remote.server.is_some() {
        let result = remote::client(&args.remote).and_then(|c| {
            let found = match &args.execution {
                Some(key) => {
                    let id = remote::execution_id(&args.state, key)?;
                    runtime().block_on(c.execution(&id))
                }
                None => {
                    let pipeline = remote::pipeline(&args.state)?;
                    runtime().block_on(async {
                        match c.executions(&pipeline, 1).await?.pop() {
                            Some(e) => c.execution(&e.id).await,
                            None => Err(ferry_server::client::ClientError::Refused {
                                status: 404,
                                code: "not_found".into(),
                                message: format!("{pipeline} has no executions yet"),
                            }),
                        }
                    })
                }
            };
            found.map_err(|e| remote::failed(&e))
        });
        match result {
            Ok(v) => v,
            Err(exit) => return exit,
        }
    } else {
        match history::status(&project(&args.state), args.execution.as_deref()) {
            Ok(v) => v,
            Err(e) => return fail(&e),
        }
    };
    if args.format == Format::Json {
        output::json(&view);
        return Exit::Ok;
    }
    print_status(&view);
    Exit::Ok
}

fn print_status(view: &ExecutionView) {
    let reason = view
        .reason
        .as_ref()
        .map(|r| format!(" — {r}"))
        .unwrap_or_default();
    anstream::println!(
        "{} {} {}{reason}",
        mark(view.status),
        paint(BOLD, &view.id),
        view.status.as_str()
    );
    anstream::println!(
        "  revision {}, {}, {}",
        short_revision(&view.revision),
        view.trigger,
        duration(view.duration_ms())
    );
    if let Some(block) = &view.blocked {
        anstream::println!(
            "  {} release blocked by {}: {} (`ferry release unblock {}`)",
            paint(ERROR, "⛔"),
            block.identity,
            block.reason,
            view.id
        );
    }
    for stage in &view.stages {
        anstream::println!("  {} {}", mark(stage.status), stage.name);
        for action in &stage.actions {
            let took = match (action.started_ms, action.ended_ms) {
                (Some(s), Some(e)) => format!(" {:.1}s", (e - s) as f64 / 1000.0),
                _ => String::new(),
            };
            let error = action
                .error
                .as_ref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default();
            anstream::println!(
                "      {} {} {}{took}{error}",
                mark(action.status),
                action.name,
                paint(DIM, action.status.as_str())
            );
        }
    }
    for gate in &view.gates {
        if let Some(o) = &gate.overridden {
            anstream::println!("  {}", overridden(&gate.stage, o));
            continue;
        }
        for hold in &gate.holds {
            anstream::println!("  {} {} held: {hold}", paint(WARNING, "⏸"), gate.stage);
        }
        if !gate.holds.is_empty() && !view.status.is_final() {
            anstream::println!(
                "    to let it in anyway: ferry override {} {} --reason \"…\"",
                view.id,
                gate.stage
            );
        }
    }
    for a in &view.pending_approvals {
        anstream::println!(
            "  {} waiting for {}: {}",
            paint(WARNING, "→"),
            a.action,
            a.approve
        );
    }
}

pub fn history(args: &HistoryArgs) -> Exit {
    let all = match history::history(&project(&args.state), args.limit) {
        Ok(all) => all,
        Err(e) => return fail(&e),
    };
    if args.format == Format::Json {
        output::json(&all);
        return Exit::Ok;
    }
    if all.is_empty() {
        anstream::println!("no executions yet; start one with `ferry run`");
    }
    for e in &all {
        let reason = e
            .reason
            .as_ref()
            .map(|r| format!(" — {r}"))
            .unwrap_or_default();
        let end = if e.status.is_final() {
            e.updated_ms
        } else {
            ferry_engine::model::now_ms()
        };
        anstream::println!(
            "{} {:<16} {:<11} {:<12} {:>8}  {}{reason}",
            mark(e.status),
            e.id,
            e.status.as_str(),
            short_revision(&e.revision),
            duration((end - e.created_ms).max(0)),
            paint(DIM, &e.trigger)
        );
    }
    Exit::Ok
}

pub fn logs(args: &LogsArgs) -> Exit {
    if args.remote.server.is_some() {
        return logs_remote(args);
    }
    let input = LogsInput {
        execution: args.execution.clone(),
        action: args.action.clone(),
        follow: args.follow,
    };
    let mut print = |text: LogText| match text {
        LogText::Heading {
            stage,
            action,
            attempt,
        } => anstream::println!(
            "{}",
            paint(BOLD, &format!("── {stage}.{action} (attempt {attempt}) ──"))
        ),
        LogText::Text(text) => anstream::print!("{text}"),
    };
    match runtime().block_on(logs::logs(&project(&args.state), &input, &mut print)) {
        Ok(()) => Exit::Ok,
        Err(e) => fail(&e),
    }
}

fn logs_remote(args: &LogsArgs) -> Exit {
    let result = remote::client(&args.remote).and_then(|c| {
        let id = remote::execution_id(&args.state, &args.execution)?;
        let mut print = |text: &str| anstream::print!("{text}");
        runtime()
            .block_on(async {
                if let Some(action) = &args.action {
                    return c.log(&id, action, args.follow, &mut print).await;
                }
                let view = c.execution(&id).await?;
                for stage in &view.stages {
                    for action in stage.actions.iter().filter(|a| a.attempt.is_some()) {
                        anstream::println!(
                            "{}",
                            paint(
                                BOLD,
                                &format!(
                                    "── {}.{} (attempt {}) ──",
                                    stage.name,
                                    action.name,
                                    action.attempt.unwrap_or(1)
                                )
                            )
                        );
                        c.log(
                            &id,
                            &format!("{}.{}", stage.name, action.name),
                            false,
                            &mut print,
                        )
                        .await?;
                    }
                }
                Ok(())
            })
            .map_err(|e| remote::failed(&e))
    });
    match result {
        Ok(()) => Exit::Ok,
        Err(exit) => exit,
    }
}

/// The execution as a decision or retry left it: its end when it was continued here and
/// ended; nothing more when another process drives it.
fn after(view: &ExecutionView, format: Format) -> Exit {
    if view.status.is_final() {
        summary(view, format)
    } else {
        Exit::Ok
    }
}

pub fn decide(args: &DecideArgs, approve: bool) -> Exit {
    if args.remote.server.is_some() {
        return decide_remote(args, approve);
    }
    let input = DecideInput {
        execution: args.execution.clone(),
        stage: args.stage.clone(),
        action: args.action.clone(),
        approve,
        identity: local_identity(),
        groups: Vec::new(),
        comment: args.comment.clone(),
        continue_here: !args.no_continue,
    };
    let project = project(&args.state);
    match driving(async |stops, console| control::decide(&project, &input, stops, console).await) {
        Ok(report) => report
            .execution
            .map_or(Exit::Ok, |view| after(&view, args.format)),
        Err(e) => fail(&e),
    }
}

/// `ferry approve|reject --server`: the decision is the server's to record, as the token's
/// identity; the server continues the execution.
fn decide_remote(args: &DecideArgs, approve: bool) -> Exit {
    let decided = remote::client(&args.remote).and_then(|c| {
        let id = remote::execution_id(&args.state, &args.execution)?;
        runtime()
            .block_on(c.decide(
                &id,
                &args.stage,
                approve,
                args.comment.as_deref(),
                args.action.as_deref(),
            ))
            .map_err(|e| remote::failed(&e))
    });
    let report = match decided {
        Ok(r) => r,
        Err(exit) => return exit,
    };
    if args.format == Format::Json {
        output::json(&report);
        return Exit::Ok;
    }
    let a = &report.approval;
    let verb = if approve { "approved" } else { "rejected" };
    let who = a.votes.last().map_or("?", |v| v.identity.as_str());
    anstream::eprintln!(
        "{} {verb} stage {} of {} as {who}",
        paint(OK, "✓"),
        a.stage,
        a.execution_id
    );
    let approvals = a.votes.iter().filter(|v| v.approve).count();
    if approve && a.status == ferry_engine::model::ApprovalStatus::Pending {
        anstream::eprintln!(
            "  {approvals} of {} approvals; it waits for {} more",
            a.required,
            (a.required as usize).saturating_sub(approvals)
        );
    }
    for (name, sha) in &a.digests {
        anstream::eprintln!("  {} sha256:{}", name, &sha[..sha.len().min(16)]);
    }
    Exit::Ok
}

pub fn retry(args: &RetryArgs) -> Exit {
    let input = RetryInput {
        execution: args.execution.clone(),
        stage: args.stage.clone(),
        identity: local_identity(),
        continue_here: true,
    };
    let project = project(&args.state);
    match driving(async |stops, console| control::retry(&project, &input, stops, console).await) {
        Ok(view) => after(&view, args.format),
        Err(e) => fail(&e),
    }
}

pub fn override_gates(args: &OverrideArgs) -> Exit {
    if args.remote.server.is_some() {
        return override_remote(args);
    }
    let input = OverrideInput {
        execution: args.execution.clone(),
        stage: args.stage.clone(),
        identity: local_identity(),
        reason: args.reason.clone(),
        continue_here: true,
    };
    let project = project(&args.state);
    let report = match driving(async |stops, console| {
        control::override_gates(&project, &input, stops, console).await
    }) {
        Ok(report) => report,
        Err(e) => return fail(&e),
    };
    if args.format == Format::Json {
        output::json(&report);
        return Exit::Ok;
    }
    print_override(&report);
    match &report.execution {
        Some(view) => after(view, args.format),
        None => Exit::Ok,
    }
}

/// `ferry override --server`: the server records it as the token's identity and continues
/// the execution.
fn override_remote(args: &OverrideArgs) -> Exit {
    let done = remote::client(&args.remote).and_then(|c| {
        let id = remote::execution_id(&args.state, &args.execution)?;
        runtime()
            .block_on(c.override_gates(&id, &args.stage, &args.reason))
            .map_err(|e| remote::failed(&e))
    });
    let report = match done {
        Ok(r) => r,
        Err(exit) => return exit,
    };
    if args.format == Format::Json {
        output::json(&report);
    } else {
        print_override(&report);
    }
    Exit::Ok
}

fn print_override(report: &control::OverrideReport) {
    if let Some(o) = &report.gates.overridden {
        anstream::println!("{}", overridden(&report.gates.stage, o));
    }
}

/// `! gates of STAGE overridden by WHO: WHY`, as status and override say it.
fn overridden(stage: &str, o: &GateOverride) -> String {
    format!(
        "{} gates of {stage} overridden by {}: {}",
        paint(WARNING, "!"),
        o.identity,
        o.reason
    )
}

pub fn stop(args: &StopArgs) -> Exit {
    let input = StopInput {
        execution: args.execution.clone(),
        force: args.force,
    };
    let after = match runtime().block_on(control::stop(&project(&args.state), &input)) {
        Ok(v) => v,
        Err(e) => return fail(&e),
    };
    if args.format == Format::Json {
        output::json(&after);
    } else if after.status == Status::Stopped {
        anstream::println!("{} {} stopped", paint(WARNING, "■"), after.id);
    } else {
        let how = if args.force {
            "its running actions are being cancelled"
        } else {
            "it stops once its running actions finish"
        };
        anstream::println!(
            "{} asked the ferry process driving {} to stop: {how}",
            paint(WARNING, "■"),
            after.id
        );
    }
    Exit::Ok
}
