//! `ferry run`, `status`, `history`, `logs`, `approve`, `reject`, `retry`, `stop`.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ferry_engine::Engine;
use ferry_engine::action::Silent;
use ferry_engine::model::{Execution, Status, StopMode, now_ms};
use ferry_engine::store::{Decision, Store};
use serde_json::{Value, json};

use crate::cli::{
    DecideArgs, HistoryArgs, LogsArgs, RetryArgs, RunArgs, StateArgs, StatusArgs, StopArgs,
};
use crate::live::LiveView;
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, WARNING, paint};
use crate::state;

fn state_of(args: &StateArgs) -> std::path::PathBuf {
    state::state_dir(&args.manifest.file, args.state_dir.as_deref())
}

/// The manifest, when it can be read: to find its executions, and to continue them with
/// its AWS settings.
fn manifest_of(args: &StateArgs) -> Option<ferry_manifest::Manifest> {
    ferry_manifest::load(&args.manifest.file).manifest
}

/// The pipeline name, when the manifest can be read (to find its executions).
fn pipeline_name(args: &StateArgs) -> Option<String> {
    manifest_of(args).map(|m| m.pipeline)
}

fn find(store: &Arc<dyn Store>, args: &StateArgs, key: &str) -> Result<Execution, Exit> {
    let pipeline = pipeline_name(args);
    match store.find_execution(pipeline.as_deref(), key) {
        Ok(Some(e)) => Ok(e),
        Ok(None) => {
            output::error(&format!(
                "no execution `{key}` in {}; `ferry history` lists them",
                state_of(args).display()
            ));
            Err(Exit::Failed)
        }
        Err(e) => {
            output::error(&e.to_string());
            Err(Exit::Failed)
        }
    }
}

fn duration(exec: &Execution) -> String {
    let end = if exec.status.is_final() {
        exec.updated_ms
    } else {
        now_ms()
    };
    let secs = (end - exec.created_ms).max(0) as f64 / 1000.0;
    if secs < 1.0 {
        format!("{}ms", (secs * 1000.0) as u64)
    } else if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", secs as u64 / 60, secs as u64 % 60)
    }
}

/// Drives an execution with the live view, stopping gracefully on Ctrl-C (forced on a second).
fn drive(engine: &Engine, id: &str, until: Option<&str>) -> Result<Execution, Exit> {
    let result = state::runtime().block_on(async {
        let store = engine.store().clone();
        let stop_id = id.to_owned();
        let interrupts = tokio::spawn(async move {
            let mut mode = StopMode::Graceful;
            while tokio::signal::ctrl_c().await.is_ok() {
                let _ = store.request_stop(&stop_id, mode);
                let msg = if mode == StopMode::Graceful {
                    "stopping after the running actions finish (Ctrl-C again to stop them too)"
                } else {
                    "stopping the running actions"
                };
                anstream::eprintln!("{} {msg}", paint(WARNING, "■"));
                mode = StopMode::Forced;
            }
        });
        let result = engine.drive(id, until).await;
        interrupts.abort();
        result
    });
    result.map_err(|e| {
        output::error(&e.to_string());
        Exit::Failed
    })
}

fn summary(engine: &Engine, exec: &Execution, format: Format) -> Exit {
    match format {
        Format::Json => output::json(&document(engine.store(), exec)),
        Format::Text => {
            let took = duration(exec);
            match exec.status {
                Status::Succeeded => {
                    anstream::println!("{} {} succeeded in {took}", paint(OK, "✓"), exec.id)
                }
                status => {
                    let why = exec.reason.clone().unwrap_or_default();
                    anstream::println!(
                        "{} {} {} after {took}: {why}",
                        paint(ERROR, "✗"),
                        exec.id,
                        status.as_str().to_lowercase()
                    );
                    if let Some(failed) = engine
                        .store()
                        .action_runs(&exec.id)
                        .ok()
                        .and_then(|r| r.into_iter().rev().find(|r| r.status == Status::Failed))
                    {
                        anstream::println!(
                            "  log: ferry logs {} {}.{}",
                            exec.id,
                            failed.stage,
                            failed.action
                        );
                        anstream::println!("  retry: ferry retry {} {}", exec.id, failed.stage);
                    }
                }
            }
        }
    }
    if exec.status == Status::Succeeded {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

pub fn run(args: &RunArgs) -> Exit {
    let path = &args.state.manifest.file;
    let manifest = match state::load_manifest(path) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let state_dir = state_of(&args.state);
    let live: Arc<LiveView> = Arc::new(LiveView::new());
    let engine = match state::open_engine(&state_dir, live, args.auto_approve, Some(&manifest)) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let exec = if let Some(key) = &args.resume {
        let found = if key.is_empty() {
            engine
                .store()
                .executions(Some(&manifest.pipeline), 50)
                .ok()
                .and_then(|all| all.into_iter().find(|e| !e.status.is_final()))
        } else {
            find(engine.store(), &args.state, key).ok()
        };
        match found {
            Some(e) => {
                anstream::eprintln!(
                    "{} resuming {} (revision {})",
                    paint(BOLD, "▸"),
                    e.id,
                    short(&e.revision)
                );
                e
            }
            None => {
                output::error("no unfinished execution to resume; `ferry history` lists them");
                return Exit::Failed;
            }
        }
    } else {
        // Before anything deploys: would every access the manifest needs be allowed?
        if let Err(exit) = super::foundation::check_before_run(&manifest, &state_dir) {
            return exit;
        }
        let def = state::pipeline_def(&manifest, path);
        let repo = state::source_repo(&manifest, path);
        let revision = match ferry_engine::source::resolve_revision(
            &repo,
            Some(&manifest.source.branch),
            args.revision.as_deref(),
        ) {
            Ok(r) => r,
            Err(e) => {
                output::error(&e);
                return Exit::Failed;
            }
        };
        let trigger = format!("ferry run by {}", state::identity());
        let exec = match engine.start(&def, &revision, &trigger) {
            Ok(e) => e,
            Err(e) => {
                output::error(&e.to_string());
                return Exit::Usage;
            }
        };
        anstream::eprintln!(
            "{} {} started: {} at revision {} {}",
            paint(BOLD, "▸"),
            exec.id,
            manifest.pipeline,
            short(&revision),
            paint(DIM, &format!("(state in {})", state_dir.display()))
        );
        exec
    };
    match drive(&engine, &exec.id, args.until.as_deref()) {
        Ok(done) => summary(&engine, &done, args.format),
        Err(exit) => exit,
    }
}

/// A commit id shortened to 12 characters (with its `+worktree` mark, if any).
fn short(revision: &str) -> String {
    let (sha, mark) = revision
        .split_once('+')
        .map_or((revision, String::new()), |(s, m)| (s, format!("+{m}")));
    if sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{}{mark}", &sha[..12])
    } else {
        revision.to_owned()
    }
}

/// An execution as one JSON document: stages, actions (latest attempt), approvals.
fn document(store: &Arc<dyn Store>, exec: &Execution) -> Value {
    let stages = store.stage_runs(&exec.id).unwrap_or_default();
    let actions = store.action_runs(&exec.id).unwrap_or_default();
    let approvals = store.pending_approvals(Some(&exec.id)).unwrap_or_default();
    json!({
        "id": exec.id,
        "pipeline": exec.pipeline,
        "revision": exec.revision,
        "trigger": exec.trigger,
        "status": exec.status,
        "reason": exec.reason,
        "created_ms": exec.created_ms,
        "updated_ms": exec.updated_ms,
        "stages": stages.iter().map(|s| json!({
            "name": s.stage,
            "status": s.status,
            "actions": exec.definition.stage(&s.stage).map(|d| d.actions.iter().map(|a| {
                let run = actions.iter().filter(|r| r.stage == s.stage && r.action == a.name).max_by_key(|r| r.attempt);
                json!({
                    "name": a.name,
                    "kind": a.kind,
                    "attempt": run.map(|r| r.attempt),
                    "status": run.map_or(Status::Pending, |r| r.status),
                    "error": run.and_then(|r| r.error.clone()),
                    "outputs": run.and_then(|r| r.outputs.clone()),
                    "log": run.and_then(|r| r.log_path.clone()),
                    "started_ms": run.map(|r| r.started_ms),
                    "ended_ms": run.and_then(|r| r.ended_ms),
                })
            }).collect::<Vec<_>>()).unwrap_or_default(),
        })).collect::<Vec<_>>(),
        "pending_approvals": approvals.iter().map(|a| json!({"stage": a.stage, "approvers": a.approvers, "deadline_ms": a.deadline_ms, "digests": a.digests, "approve": format!("ferry approve {} {}", exec.id, a.stage)})).collect::<Vec<_>>(),
    })
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
    let store = match state::open_store(&state_of(&args.state)) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let exec = match &args.execution {
        Some(key) => match find(&store, &args.state, key) {
            Ok(e) => e,
            Err(exit) => return exit,
        },
        None => match store
            .executions(pipeline_name(&args.state).as_deref(), 1)
            .ok()
            .and_then(|mut v| v.pop())
        {
            Some(e) => e,
            None => {
                output::error("no executions yet; start one with `ferry run`");
                return Exit::Failed;
            }
        },
    };
    let doc = document(&store, &exec);
    if args.format == Format::Json {
        output::json(&doc);
        return Exit::Ok;
    }
    let reason = exec
        .reason
        .as_ref()
        .map(|r| format!(" — {r}"))
        .unwrap_or_default();
    anstream::println!(
        "{} {} {}{reason}",
        mark(exec.status),
        paint(BOLD, &exec.id),
        exec.status.as_str()
    );
    anstream::println!(
        "  revision {}, {}, {}",
        short(&exec.revision),
        exec.trigger,
        duration(&exec)
    );
    for stage in doc["stages"].as_array().into_iter().flatten() {
        let st: Status = serde_json::from_value(stage["status"].clone()).unwrap_or(Status::Pending);
        anstream::println!("  {} {}", mark(st), stage["name"].as_str().unwrap_or(""));
        for action in stage["actions"].as_array().into_iter().flatten() {
            let st: Status =
                serde_json::from_value(action["status"].clone()).unwrap_or(Status::Pending);
            let took = match (action["started_ms"].as_i64(), action["ended_ms"].as_i64()) {
                (Some(s), Some(e)) => format!(" {:.1}s", (e - s) as f64 / 1000.0),
                _ => String::new(),
            };
            let error = action["error"]
                .as_str()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default();
            anstream::println!(
                "      {} {} {}{took}{error}",
                mark(st),
                action["name"].as_str().unwrap_or(""),
                paint(DIM, st.as_str())
            );
        }
    }
    for a in doc["pending_approvals"].as_array().into_iter().flatten() {
        anstream::println!(
            "  {} waiting: {}",
            paint(WARNING, "→"),
            a["approve"].as_str().unwrap_or("")
        );
    }
    Exit::Ok
}

pub fn history(args: &HistoryArgs) -> Exit {
    let store = match state::open_store(&state_of(&args.state)) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let all = store
        .executions(pipeline_name(&args.state).as_deref(), args.limit)
        .unwrap_or_default();
    if args.format == Format::Json {
        output::json(&json!(all.iter().map(|e| json!({"id": e.id, "status": e.status, "revision": e.revision, "trigger": e.trigger, "reason": e.reason, "created_ms": e.created_ms, "updated_ms": e.updated_ms})).collect::<Vec<_>>()));
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
        anstream::println!(
            "{} {:<16} {:<11} {:<12} {:>8}  {}{reason}",
            mark(e.status),
            e.id,
            e.status.as_str(),
            short(&e.revision),
            duration(e),
            paint(DIM, &e.trigger)
        );
    }
    Exit::Ok
}

pub fn logs(args: &LogsArgs) -> Exit {
    let store = match state::open_store(&state_of(&args.state)) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let exec = match find(&store, &args.state, &args.execution) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let runs = store.action_runs(&exec.id).unwrap_or_default();
    let selected: Vec<_> = match &args.action {
        None => runs.iter().collect(),
        Some(sel) => {
            let matching: Vec<_> = runs
                .iter()
                .filter(|r| {
                    &format!("{}.{}", r.stage, r.action) == sel
                        || (&r.action == sel && !sel.contains('.'))
                })
                .collect();
            let stages: std::collections::BTreeSet<&str> =
                matching.iter().map(|r| r.stage.as_str()).collect();
            if stages.len() > 1 {
                output::error(&format!(
                    "`{sel}` is an action of several stages; name one as stage.action"
                ));
                return Exit::Usage;
            }
            // The latest attempt.
            matching
                .into_iter()
                .max_by_key(|r| r.attempt)
                .into_iter()
                .collect()
        }
    };
    if selected.is_empty() {
        let known: Vec<String> = runs
            .iter()
            .map(|r| format!("{}.{}", r.stage, r.action))
            .collect();
        output::error(&format!(
            "no log of that action in {}; actions that ran: {}",
            exec.id,
            known.join(", ")
        ));
        return Exit::Failed;
    }
    for run in &selected {
        let Some(path) = &run.log_path else { continue };
        if args.action.is_none() {
            anstream::println!(
                "{}",
                paint(
                    BOLD,
                    &format!(
                        "── {}.{} (attempt {}) ──",
                        run.stage, run.action, run.attempt
                    )
                )
            );
        }
        let mut offset = 0;
        loop {
            offset = print_from(Path::new(path), offset);
            if !args.follow {
                break;
            }
            let current = store.action_runs(&exec.id).unwrap_or_default();
            let ended = current
                .iter()
                .find(|r| {
                    r.stage == run.stage && r.action == run.action && r.attempt == run.attempt
                })
                .is_none_or(|r| r.status.is_final());
            if ended {
                print_from(Path::new(path), offset);
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    Exit::Ok
}

/// Prints a file from `offset`; returns the new end.
fn print_from(path: &Path, offset: u64) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut text = String::new();
    let read = f.read_to_string(&mut text).unwrap_or(0);
    anstream::print!("{text}");
    offset + read as u64
}

/// Continues an execution nobody drives, after a decision or a retry.
fn continue_here(engine: &Engine, exec: &Execution, format: Format) -> Exit {
    let Ok(Some(current)) = engine.store().execution(&exec.id) else {
        return Exit::Failed;
    };
    if current.status.is_final() {
        return summary(engine, &current, format);
    }
    if let Some(driver) = engine.live_driver(&current) {
        anstream::eprintln!(
            "{} {} is driven by ferry process {driver}; it continues there",
            paint(DIM, "·"),
            exec.id
        );
        return Exit::Ok;
    }
    anstream::eprintln!(
        "{} no ferry process is driving {}; continuing it here",
        paint(BOLD, "▸"),
        exec.id
    );
    match drive(engine, &exec.id, None) {
        Ok(done) => summary(engine, &done, format),
        Err(exit) => exit,
    }
}

pub fn decide(args: &DecideArgs, approve: bool) -> Exit {
    let state_dir = state_of(&args.state);
    let manifest = manifest_of(&args.state);
    let engine = match state::open_engine(
        &state_dir,
        Arc::new(LiveView::new()),
        false,
        manifest.as_ref(),
    ) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let exec = match find(engine.store(), &args.state, &args.execution) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let decision = Decision {
        approve,
        identity: state::identity(),
        comment: args.comment.clone(),
    };
    match engine.decide(&exec.id, &args.stage, &decision) {
        Ok(a) => {
            let verb = if approve { "approved" } else { "rejected" };
            anstream::eprintln!(
                "{} {verb} stage {} of {} as {}",
                paint(OK, "✓"),
                a.stage,
                exec.id,
                decision.identity
            );
            for (name, sha) in &a.digests {
                anstream::eprintln!("  {} sha256:{}", name, &sha[..sha.len().min(16)]);
            }
        }
        Err(e) => {
            output::error(&e.to_string());
            return Exit::Failed;
        }
    }
    if args.no_continue {
        return Exit::Ok;
    }
    continue_here(&engine, &exec, args.format)
}

pub fn retry(args: &RetryArgs) -> Exit {
    let manifest = manifest_of(&args.state);
    let engine = match state::open_engine(
        &state_of(&args.state),
        Arc::new(LiveView::new()),
        false,
        manifest.as_ref(),
    ) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let exec = match find(engine.store(), &args.state, &args.execution) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    if let Err(e) = engine.retry(&exec.id, &args.stage) {
        output::error(&e.to_string());
        return Exit::Failed;
    }
    anstream::eprintln!(
        "{} retrying stage {} of {}",
        paint(BOLD, "▸"),
        args.stage,
        exec.id
    );
    continue_here(&engine, &exec, args.format)
}

pub fn stop(args: &StopArgs) -> Exit {
    // Stopping drives nothing: no AWS needed.
    let engine = match state::open_engine(&state_of(&args.state), Arc::new(Silent), false, None) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let exec = match find(engine.store(), &args.state, &args.execution) {
        Ok(e) => e,
        Err(exit) => return exit,
    };
    let mode = if args.force {
        StopMode::Forced
    } else {
        StopMode::Graceful
    };
    match engine.stop(&exec.id, mode) {
        Ok(after) => {
            if args.format == Format::Json {
                output::json(&document(engine.store(), &after));
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
        Err(e) => {
            output::error(&e.to_string());
            Exit::Failed
        }
    }
}
