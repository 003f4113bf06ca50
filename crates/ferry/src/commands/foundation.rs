//! `ferry plan`, `bootstrap`, `destroy`, `verify`, `doctor` and `synth`: the cross-account
//! foundation. What it is comes from ferry-plan; reading and changing the accounts is
//! ferry-aws's.

use std::io::Read;
use std::path::Path;

use ferry_aws::error::AwsError;
use ferry_aws::foundation::{self as live, Live, Sessions};
use ferry_aws::session::Aws;
use ferry_manifest::Manifest;
use ferry_plan::diff::{Change, ChangeKind, LiveState, diff};
use ferry_plan::verify::{PolicyStore, Report, verify as decide};
use ferry_plan::{Foundation, Names, plan as lay_out};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cli::{
    BootstrapArgs, DestroyArgs, DoctorArgs, PlanArgs, SynthCodepipelineArgs, SynthTerraformArgs,
    VerifyArgs,
};
use crate::live::Steps;
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, WARNING, paint};
use crate::state;

/// The manifest, which must have a shared account: the foundation lives there.
fn manifest(path: &Path) -> Result<Manifest, Exit> {
    let m = state::load_manifest(path)?;
    if m.shared.is_none() {
        output::error(&format!(
            "{} has no `shared` account: a pipeline of local builds needs no foundation",
            path.display()
        ));
        return Err(Exit::Usage);
    }
    Ok(m)
}

fn aws_failed(e: &AwsError) -> Exit {
    output::error(&e.to_string());
    Exit::Failed
}

/// The last policies read from the accounts (by bootstrap or `verify --live`), kept so that
/// `ferry run` can check a changed manifest against them before it deploys.
#[derive(Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub pipeline: String,
    pub key_arn: Option<String>,
    pub read_ms: i64,
    pub policies: PolicyStore,
}

fn snapshot_path(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join("foundation.json")
}

fn save_snapshot(state_dir: &Path, snapshot: &Snapshot) {
    let path = snapshot_path(state_dir);
    let written = std::fs::create_dir_all(state_dir).and_then(|()| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(snapshot).unwrap_or_default(),
        )
    });
    if let Err(e) = written {
        output::error(&format!(
            "cannot keep the live policies in {}: {e}",
            path.display()
        ));
    }
}

fn load_snapshot(state_dir: &Path, pipeline: &str) -> Option<Snapshot> {
    let text = std::fs::read(snapshot_path(state_dir)).ok()?;
    serde_json::from_slice::<Snapshot>(&text)
        .ok()
        .filter(|s| s.pipeline == pipeline)
}

/// The plan, and what is live (nothing, offline).
struct Planned {
    key_arn: Option<String>,
    live: Live,
    changes: Vec<Change>,
}

async fn read_plan(aws: &Aws, m: &Manifest, sessions: &Sessions) -> Result<Planned, AwsError> {
    let shared = m.shared.as_ref().expect("checked by manifest()");
    let key_arn = live::key_arn(&sessions.shared, &aws.calls, &shared.kms_alias).await?;
    let names = Names::new(m, key_arn.as_deref()).expect("a shared account");
    let foundation = lay_out(&names);
    let live = live::read_live(&foundation, sessions, &aws.calls).await?;
    let changes = diff(&foundation, &live.state);
    Ok(Planned {
        key_arn,
        live,
        changes,
    })
}

fn print_changes(changes: &[Change], live: &Live, accounts: &Foundation) {
    for account in &accounts.accounts {
        let mine: Vec<&Change> = changes
            .iter()
            .filter(|c| c.account == account.name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        anstream::println!(
            "{} {}",
            paint(BOLD, &account.name),
            paint(DIM, &format!("({})", account.id))
        );
        for c in mine {
            if live
                .foreign
                .contains(&(c.account.clone(), c.address.clone()))
            {
                anstream::println!(
                    "  {} {} {}",
                    paint(ERROR, "!"),
                    c.address,
                    paint(
                        DIM,
                        "— exists, but is not ferry's (no ferry tags for this pipeline): bootstrap will not touch it"
                    )
                );
                continue;
            }
            let mark = match c.kind {
                ChangeKind::Create => paint(OK, "+"),
                ChangeKind::Update => paint(WARNING, "~"),
                ChangeKind::Unchanged => paint(DIM, "="),
            };
            anstream::println!("  {mark} {}", c.address);
            for (field, why) in &c.unreadable {
                anstream::println!(
                    "      {} {field}: could not be read back, left as it is ({why})",
                    paint(DIM, "?")
                );
            }
            for f in &c.fields {
                anstream::println!("      {}:", f.field);
                for line in f
                    .diff
                    .lines()
                    .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
                {
                    let styled = if line.starts_with('+') {
                        paint(OK, line)
                    } else if line.starts_with('-') {
                        paint(ERROR, line)
                    } else {
                        paint(DIM, line)
                    };
                    anstream::println!("        {styled}");
                }
            }
        }
    }
    let count = |k: ChangeKind| changes.iter().filter(|c| c.kind == k).count();
    anstream::println!(
        "Plan: {} to create, {} to change, {} unchanged{}.",
        count(ChangeKind::Create),
        count(ChangeKind::Update),
        count(ChangeKind::Unchanged),
        if live.foreign.is_empty() {
            String::new()
        } else {
            format!(", {} not ferry's", live.foreign.len())
        }
    );
}

fn changes_json(changes: &[Change], live: &Live) -> serde_json::Value {
    json!(
        changes
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["foreign"] = json!(
                    live.foreign
                        .contains(&(c.account.clone(), c.address.clone()))
                );
                v
            })
            .collect::<Vec<_>>()
    )
}

pub fn plan(args: &PlanArgs) -> Exit {
    let m = match manifest(&args.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let result = state::runtime().block_on(async {
        if args.offline {
            let names = Names::new(&m, None).expect("a shared account");
            let foundation = lay_out(&names);
            let changes = diff(&foundation, &LiveState::default());
            return Ok((
                foundation,
                Planned {
                    key_arn: None,
                    live: Live::default(),
                    changes,
                },
            ));
        }
        let aws = Aws::from_env(&format!("ferry-{}-plan", m.pipeline)).await?;
        let names0 = Names::new(&m, None).expect("a shared account");
        // Dozens of reads across the accounts: say what is happening meanwhile.
        let steps = Steps::new(&format!("plan {}: reading the accounts", m.pipeline));
        let sessions = Sessions::open(&aws, &lay_out(&names0), None).await;
        let planned = match sessions {
            Ok(sessions) => read_plan(&aws, &m, &sessions).await,
            Err(e) => Err(e),
        };
        steps.finish();
        let planned = planned?;
        let names = Names::new(&m, planned.key_arn.as_deref()).expect("a shared account");
        Ok((lay_out(&names), planned))
    });
    let (foundation, planned) = match result {
        Ok(r) => r,
        Err(e) => return aws_failed(&e),
    };
    match args.format {
        Format::Json => output::json(
            &json!({"pipeline": foundation.pipeline, "offline": args.offline, "changes": changes_json(&planned.changes, &planned.live), "foundation": foundation}),
        ),
        Format::Text => print_changes(&planned.changes, &planned.live, &foundation),
    }
    Exit::Ok
}

pub fn bootstrap(args: &BootstrapArgs) -> Exit {
    let m = match manifest(&args.state.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let shared = m.shared.clone().expect("checked");
    if let Some(only) = &args.account
        && m.account(only).is_none()
    {
        let known: Vec<&str> = m.accounts.iter().map(|a| a.name.as_str()).collect();
        output::error(&format!(
            "no account `{only}`; ferry.yaml has: {}",
            known.join(", ")
        ));
        return Exit::Usage;
    }
    let state_dir = state::state_dir(&args.state.manifest.file, args.state.state_dir.as_deref());
    let steps = Steps::new(&format!("bootstrap {}", m.pipeline));
    let result: Result<(Foundation, Planned, bool, Option<PolicyStore>), AwsError> = state::runtime().block_on(async {
        let aws = Aws::from_env(&format!("ferry-{}-bootstrap", m.pipeline)).await?;
        let names0 = Names::new(&m, None).expect("a shared account");
        let sessions = Sessions::open(&aws, &lay_out(&names0), args.account.as_deref()).await?;
        if args.dry_run {
            let planned = read_plan(&aws, &m, &sessions).await?;
            let names = Names::new(&m, planned.key_arn.as_deref()).expect("a shared account");
            return Ok((lay_out(&names), planned, false, None));
        }
        // The key first: every policy names its ARN, which KMS chooses.
        let (key, created) = live::ensure_key(&sessions.shared, &aws.calls, &m.pipeline, &shared.kms_alias, &format!("ferry: artifacts of pipeline {}", m.pipeline)).await?;
        if created {
            steps.step(&format!("+ kms key {} ({key})", shared.kms_alias));
        }
        let mut planned = read_plan(&aws, &m, &sessions).await?;
        if created {
            // Made just now (its policy and settings follow): a creation, for the summary.
            let address = format!("kms key {}", shared.kms_alias);
            planned.changes.iter_mut().filter(|c| c.address == address).for_each(|c| c.kind = ChangeKind::Create);
        }
        let names = Names::new(&m, Some(&key)).expect("a shared account");
        let foundation = lay_out(&names);
        if let Some((account, address)) = planned.live.foreign.iter().next() {
            return Err(sessions.shared.site.fail("ferry:bootstrap", address, "NotFerrys", format!("{address} in account {account} exists but is not ferry's (no ferry:managed-by/ferry:pipeline tags for {}): tag it to adopt it, or rename it in ferry.yaml", m.pipeline)));
        }
        let scope: Vec<Change> = planned.changes.iter().filter(|c| args.account.as_ref().is_none_or(|a| &c.account == a || c.account == "shared")).cloned().collect();
        live::apply(&foundation, &sessions, &aws.calls, &scope, &|s| steps.step(s)).await?;
        // Read back: what a second run would change (nothing), and the policies for `ferry run`.
        let after = read_plan(&aws, &m, &sessions).await?;
        let policies = live::live_policies(&foundation, &sessions, &aws.calls, &names).await;
        let settled = after.changes.iter().all(|c| c.kind == ChangeKind::Unchanged || args.account.as_ref().is_some_and(|a| &c.account != a && c.account != "shared"));
        Ok((foundation, Planned { key_arn: Some(key), ..planned }, settled, Some(policies)))
    });
    steps.finish();
    let (foundation, planned, settled, policies) = match result {
        Ok(r) => r,
        Err(e) => return aws_failed(&e),
    };
    if let Some(policies) = policies {
        save_snapshot(
            &state_dir,
            &Snapshot {
                pipeline: m.pipeline.clone(),
                key_arn: planned.key_arn.clone(),
                read_ms: ferry_engine::model::now_ms(),
                policies,
            },
        );
    }
    let count = |k: ChangeKind| planned.changes.iter().filter(|c| c.kind == k).count();
    let (created, changed) = (count(ChangeKind::Create), count(ChangeKind::Update));
    match args.format {
        Format::Json => output::json(
            &json!({"pipeline": m.pipeline, "dry_run": args.dry_run, "key_arn": planned.key_arn, "changes": changes_json(&planned.changes, &planned.live), "settled": settled}),
        ),
        Format::Text if args.dry_run => print_changes(&planned.changes, &planned.live, &foundation),
        Format::Text if created + changed == 0 => anstream::println!(
            "{} the foundation of {} is as planned: nothing to change",
            paint(OK, "="),
            m.pipeline
        ),
        Format::Text => {
            anstream::println!(
                "{} {created} created, {changed} changed, {} unchanged",
                paint(OK, "✓"),
                count(ChangeKind::Unchanged)
            );
            if !settled {
                output::error(
                    "read back afterwards, the accounts still differ from the plan (`ferry plan` shows how)",
                );
            }
        }
    }
    if settled || args.dry_run {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

pub fn destroy(args: &DestroyArgs) -> Exit {
    if !args.yes {
        output::error(
            "destroy removes the pipeline's key (after 7 days), bucket, repositories and roles, and cannot be undone: run it with --yes",
        );
        return Exit::Usage;
    }
    let m = match manifest(&args.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let steps = Steps::new(&format!("destroy {}", m.pipeline));
    let result = state::runtime().block_on(async {
        let aws = Aws::from_env(&format!("ferry-{}-destroy", m.pipeline)).await?;
        let names = Names::new(&m, None).expect("a shared account");
        let foundation = lay_out(&names);
        let sessions = Sessions::open(&aws, &foundation, None).await?;
        live::destroy(&foundation, &sessions, &aws.calls, args.force, &|s| {
            steps.step(s)
        })
        .await
    });
    steps.finish();
    match result {
        Ok(removed) => {
            match args.format {
                Format::Json => output::json(&json!({"removed": removed})),
                Format::Text => {
                    for r in &removed {
                        let mark = if r.outcome.starts_with("kept") {
                            paint(WARNING, "!")
                        } else if r.outcome == "absent" {
                            paint(DIM, "=")
                        } else {
                            paint(OK, "-")
                        };
                        anstream::println!("{mark} {} in {}: {}", r.address, r.account, r.outcome);
                    }
                }
            }
            Exit::Ok
        }
        Err(e) => aws_failed(&e),
    }
}

pub fn verify(args: &VerifyArgs) -> Exit {
    let m = match manifest(&args.state.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    if let Some(env) = &args.env
        && m.environment(env).is_none()
    {
        let known: Vec<&str> = m.environments.iter().map(|e| e.name.as_str()).collect();
        output::error(&format!(
            "no environment `{env}`; ferry.yaml has: {}",
            known.join(", ")
        ));
        return Exit::Usage;
    }
    let state_dir = state::state_dir(&args.state.manifest.file, args.state.state_dir.as_deref());
    let result = if args.live {
        let steps = Steps::new(&format!(
            "verify {}: reading the policies in the accounts",
            m.pipeline
        ));
        let read = state::runtime().block_on(async {
            let aws = Aws::from_env(&format!("ferry-{}-verify", m.pipeline)).await?;
            let names0 = Names::new(&m, None).expect("a shared account");
            let sessions = Sessions::open(&aws, &lay_out(&names0), None).await?;
            let shared = m.shared.as_ref().expect("checked");
            let key_arn = live::key_arn(&sessions.shared, &aws.calls, &shared.kms_alias).await?;
            let names = Names::new(&m, key_arn.as_deref()).expect("a shared account");
            let foundation = lay_out(&names);
            let policies = live::live_policies(&foundation, &sessions, &aws.calls, &names).await;
            Ok((key_arn, policies))
        });
        steps.finish();
        read
    } else {
        let names = Names::new(&m, None).expect("a shared account");
        Ok((None, lay_out(&names).policies(&names)))
    };
    let (key_arn, policies) = match result {
        Ok(r) => r,
        Err(e) => return aws_failed(&e),
    };
    let names = Names::new(&m, key_arn.as_deref()).expect("a shared account");
    let foundation = lay_out(&names);
    // Every edge is decided, so that a grant another environment uses is not called wider
    // than needed; `--env` then shows that environment's edges and the pipeline's own.
    let mut report = decide(&policies, &foundation.edges, &names);
    if let Some(env) = &args.env {
        report
            .results
            .retain(|r| r.edge.environment.is_none() || r.edge.environment.as_ref() == Some(env));
    }
    if args.live {
        save_snapshot(
            &state_dir,
            &Snapshot {
                pipeline: m.pipeline.clone(),
                key_arn,
                read_ms: ferry_engine::model::now_ms(),
                policies,
            },
        );
    }
    match args.format {
        Format::Json => output::json(
            &json!({"live": args.live, "ok": report.ok(), "results": report.results, "wider": report.wider, "unreadable": report.unreadable}),
        ),
        Format::Text => print_report(
            &report,
            &m,
            if args.live {
                "the policies in the accounts"
            } else {
                "the plan"
            },
        ),
    }
    if report.ok() { Exit::Ok } else { Exit::Failed }
}

/// One line per edge, grouped by environment; the fixes under each denied one.
pub fn print_report(report: &Report, m: &Manifest, against: &str) {
    for (env, results) in report.by_environment() {
        let heading = match env {
            None => format!(
                "pipeline {}",
                paint(
                    DIM,
                    &format!(
                        "(its own calls, in the shared account {})",
                        m.shared.as_ref().map_or("", |s| s.id.as_str())
                    )
                )
            ),
            Some(e) => {
                let account = m.environment(e).and_then(|env| m.account(&env.account));
                format!(
                    "{e} {}",
                    paint(
                        DIM,
                        &account
                            .map(|a| format!("({} {})", a.name, a.id))
                            .unwrap_or_default()
                    )
                )
            }
        };
        anstream::println!("{} {heading}", paint(BOLD, "▸"));
        for r in results {
            let role = r.edge.principal.rsplit('/').next().unwrap_or_default();
            if r.allowed {
                anstream::println!(
                    "  {} {role} {} {}",
                    paint(OK, "✓"),
                    r.edge.action,
                    paint(DIM, &r.edge.resource)
                );
            } else {
                anstream::println!(
                    "  {} {role} {} {}",
                    paint(ERROR, "✗"),
                    r.edge.action,
                    r.edge.resource
                );
                anstream::println!(
                    "      {}: {}",
                    r.layer.as_deref().unwrap_or("denied"),
                    r.reason
                );
                for fix in &r.fixes {
                    anstream::println!("      add to {}:", fix.place);
                    for line in serde_json::to_string_pretty(&fix.statement)
                        .unwrap_or_default()
                        .lines()
                    {
                        anstream::println!("        {line}");
                    }
                }
            }
        }
    }
    if !report.wider.is_empty() {
        anstream::println!("{} grants wider than any edge needs", paint(WARNING, "▸"));
        for w in &report.wider {
            anstream::println!(
                "  {} {} {}: {}",
                paint(WARNING, "!"),
                w.place,
                w.statement.as_deref().unwrap_or(""),
                w.detail
            );
        }
    }
    for u in &report.unreadable {
        anstream::println!("{} {u}", paint(DIM, "not read:"));
    }
    let denied = report.results.iter().filter(|r| !r.allowed).count();
    let mark = if denied == 0 {
        paint(OK, "✓")
    } else {
        paint(ERROR, "✗")
    };
    anstream::println!(
        "{mark} {} edges against {against}: {} allowed, {denied} denied",
        report.results.len(),
        report.results.len() - denied
    );
}

/// Before `ferry run` deploys: the current manifest's edges against the policies last read
/// from the accounts. `Err` when one is denied (the run would fail mid-way).
pub fn check_before_run(m: &Manifest, state_dir: &Path) -> Result<(), Exit> {
    if m.shared.is_none() || m.deployments().next().is_none() {
        return Ok(());
    }
    let Some(snapshot) = load_snapshot(state_dir, &m.pipeline) else {
        anstream::eprintln!(
            "{} the foundation was not verified from here yet: `ferry verify --live` proves every access before a deploy",
            paint(WARNING, "!")
        );
        return Ok(());
    };
    let names = Names::new(m, snapshot.key_arn.as_deref()).expect("a shared account");
    let foundation = lay_out(&names);
    let report = decide(&snapshot.policies, &foundation.edges, &names);
    if report.ok() {
        return Ok(());
    }
    print_report(&report, m, "the policies bootstrap last read");
    output::error(
        "ferry.yaml needs access the foundation does not grant: `ferry bootstrap` adds it (`ferry plan` shows what changes)",
    );
    Err(Exit::Failed)
}

pub fn doctor(args: &DoctorArgs) -> Exit {
    let m = match manifest(&args.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let message = if args.message == "-" {
        let mut text = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut text) {
            output::error(&format!("cannot read standard input: {e}"));
            return Exit::Usage;
        }
        text
    } else {
        args.message.clone()
    };
    let denial = match ferry_plan::doctor::parse(&message) {
        Ok(d) => d,
        Err(why) => {
            output::error(&why);
            return Exit::Usage;
        }
    };
    // The message names the real key; the plan then uses it.
    let shared = m.shared.as_ref().expect("checked");
    let key = denial
        .resource
        .clone()
        .filter(|r| r.starts_with(&format!("arn:aws:kms:{}:{}:key/", shared.region, shared.id)));
    let names = Names::new(&m, key.as_deref()).expect("a shared account");
    let foundation = lay_out(&names);
    let diagnosis = ferry_plan::doctor::diagnose(denial, &foundation, &names);
    match args.format {
        Format::Json => output::json(&serde_json::to_value(&diagnosis).unwrap_or_default()),
        Format::Text => {
            let d = &diagnosis.denial;
            anstream::println!(
                "{} {} was denied {} on {}{}",
                paint(BOLD, "▸"),
                d.role.as_deref().unwrap_or(&d.caller),
                d.action,
                d.resource.as_deref().unwrap_or("(no resource named)"),
                d.policy_type
                    .as_ref()
                    .map(|t| format!(
                        " — the {t} {}",
                        if d.explicit {
                            "denies it"
                        } else {
                            "lacks an allow"
                        }
                    ))
                    .unwrap_or_default()
            );
            if let Some(why) = &diagnosis.unmatched {
                anstream::println!("  {why}");
            }
            for f in &diagnosis.findings {
                anstream::println!("  in account {}: {}", f.account, f.place);
                for line in serde_json::to_string_pretty(&f.statement)
                    .unwrap_or_default()
                    .lines()
                {
                    anstream::println!("    {line}");
                }
                anstream::println!("  {}", f.advice);
            }
        }
    }
    if diagnosis.findings.is_empty() {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

pub fn synth_terraform(args: &SynthTerraformArgs) -> Exit {
    let m = match manifest(&args.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let names = Names::new(&m, None).expect("a shared account");
    let foundation = lay_out(&names);
    for file in ferry_plan::synth::terraform::terraform(&foundation, &names) {
        let path = args.out.join(&file.path);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, file.text));
        if let Err(e) = written {
            output::error(&format!("cannot write {}: {e}", path.display()));
            return Exit::Failed;
        }
        anstream::println!("{} {}", paint(OK, "wrote"), path.display());
    }
    anstream::println!(
        "{}",
        paint(
            DIM,
            "checkov checks skipped in the modules, each with its reason:"
        )
    );
    for (id, why) in ferry_plan::synth::terraform::SKIPPED {
        anstream::println!("  {id}: {why}");
    }
    Exit::Ok
}

pub fn synth_codepipeline(args: &SynthCodepipelineArgs) -> Exit {
    let m = match manifest(&args.manifest.file) {
        Ok(m) => m,
        Err(exit) => return exit,
    };
    let names = Names::new(&m, None).expect("a shared account");
    let (definition, notes) = ferry_plan::synth::codepipeline::codepipeline(&names);
    let text = serde_json::to_string_pretty(&definition).unwrap_or_default();
    match &args.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, text + "\n") {
                output::error(&format!("cannot write {}: {e}", path.display()));
                return Exit::Failed;
            }
            anstream::eprintln!("{} {}", paint(OK, "wrote"), path.display());
        }
        None => anstream::println!("{text}"),
    }
    for note in notes {
        anstream::eprintln!("{} {note}", paint(WARNING, "note:"));
    }
    Exit::Ok
}
