//! `ferry plan`, `bootstrap`, `destroy`, `verify`, `doctor` and `synth`: the cross-account
//! foundation, rendered.

use ferry_aws::foundation::Removal;
use ferry_plan::Foundation;
use ferry_plan::diff::ChangeKind;
use ferry_workflows::verify::{Against, VerifyReport};
use ferry_workflows::{PlannedChange, bootstrap, destroy, doctor, plan, synth, verify};

use super::{project, project_of};
use crate::cli::{
    BootstrapArgs, DestroyArgs, DoctorArgs, PlanArgs, SynthCodepipelineArgs, SynthTerraformArgs,
    VerifyArgs,
};
use crate::live::Console;
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, WARNING, fail, paint, runtime};

fn print_changes(changes: &[PlannedChange], foundation: &Foundation) {
    for account in &foundation.accounts {
        let mine: Vec<&PlannedChange> = changes
            .iter()
            .filter(|c| c.change.account == account.name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        anstream::println!(
            "{} {}",
            paint(BOLD, &account.name),
            paint(DIM, &format!("({})", account.id))
        );
        for planned in mine {
            let c = &planned.change;
            if planned.foreign {
                let (mark, note) = if planned.used_as_it_is() {
                    (
                        paint(DIM, "="),
                        "— not ferry's, and has what the plan needs: used as it is",
                    )
                } else {
                    (
                        paint(ERROR, "!"),
                        "— exists, but is not ferry's (no ferry tags for this pipeline): bootstrap will not touch it",
                    )
                };
                anstream::println!("  {mark} {} {}", c.resource, paint(DIM, note));
                continue;
            }
            let mark = match c.kind {
                ChangeKind::Create => paint(OK, "+"),
                ChangeKind::Update => paint(WARNING, "~"),
                ChangeKind::Unchanged => paint(DIM, "="),
            };
            anstream::println!("  {mark} {}", c.resource);
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
    let count = |k: ChangeKind| changes.iter().filter(|c| c.change.kind == k).count();
    let foreign = changes.iter().filter(|c| c.foreign).count();
    anstream::println!(
        "Plan: {} to create, {} to change, {} unchanged{}.",
        count(ChangeKind::Create),
        count(ChangeKind::Update),
        count(ChangeKind::Unchanged),
        if foreign == 0 {
            String::new()
        } else {
            format!(", {foreign} not ferry's")
        }
    );
}

pub fn plan(args: &PlanArgs) -> Exit {
    let input = plan::PlanInput {
        offline: args.offline,
    };
    let console = Console::new();
    match runtime().block_on(plan::plan(&project_of(&args.manifest), &input, &console)) {
        Ok(report) => {
            match args.format {
                Format::Json => output::json(&report),
                Format::Text => print_changes(&report.changes, &report.foundation),
            }
            Exit::Ok
        }
        Err(e) => fail(&e),
    }
}

pub fn bootstrap(args: &BootstrapArgs) -> Exit {
    let input = bootstrap::BootstrapInput {
        dry_run: args.dry_run,
        account: args.account.clone(),
    };
    let console = Console::new();
    let report = match runtime().block_on(bootstrap::bootstrap(
        &project(&args.state),
        &input,
        &console,
    )) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    applied(&report, args.format)
}

/// What bootstrap (or `synth codepipeline --apply`) did, rendered; failed when the accounts
/// still differ from the plan afterwards.
fn applied(report: &bootstrap::BootstrapReport, format: Format) -> Exit {
    let (created, changed) = (
        report.count(ChangeKind::Create),
        report.count(ChangeKind::Update),
    );
    match format {
        Format::Json => output::json(report),
        Format::Text if report.dry_run => print_changes(&report.changes, &report.foundation),
        Format::Text if created + changed == 0 => anstream::println!(
            "{} the foundation of {} is as planned: nothing to change",
            paint(OK, "="),
            report.pipeline
        ),
        Format::Text => {
            anstream::println!(
                "{} {created} created, {changed} changed, {} unchanged",
                paint(OK, "✓"),
                report.count(ChangeKind::Unchanged)
            );
            if !report.settled {
                output::error(
                    "read back afterwards, the accounts still differ from the plan (`ferry plan` shows how)",
                );
            }
        }
    }
    if report.settled {
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
    let input = destroy::DestroyInput { force: args.force };
    let console = Console::new();
    let report = match runtime().block_on(destroy::destroy(
        &project_of(&args.manifest),
        &input,
        &console,
    )) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match args.format {
        Format::Json => output::json(&report),
        Format::Text => {
            for r in &report.removed {
                let mark = match r.removal {
                    _ if r.removal.kept() => paint(WARNING, "!"),
                    Removal::Absent => paint(DIM, "="),
                    _ => paint(OK, "-"),
                };
                anstream::println!("{mark} {} in {}: {}", r.address, r.account, r.removal);
            }
        }
    }
    Exit::Ok
}

pub fn verify(args: &VerifyArgs) -> Exit {
    let input = verify::VerifyInput {
        live: args.live,
        env: args.env.clone(),
    };
    let console = Console::new();
    let report = match runtime().block_on(verify::verify(&project(&args.state), &input, &console)) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match args.format {
        Format::Json => output::json(&report),
        Format::Text => print_report(&report),
    }
    if report.ok { Exit::Ok } else { Exit::Failed }
}

/// One line per edge, grouped by environment; the fixes under each denied one.
pub fn print_report(verified: &VerifyReport) {
    let report = &verified.report;
    for (env, results) in report.by_environment() {
        let heading = match env {
            None => format!(
                "pipeline {}",
                paint(
                    DIM,
                    &format!(
                        "(its own calls, in the shared account {})",
                        verified.shared_account
                    )
                )
            ),
            Some(e) => format!(
                "{e} {}",
                paint(
                    DIM,
                    &verified
                        .environments
                        .get(e)
                        .map(|a| format!("({} {})", a.name, a.id))
                        .unwrap_or_default()
                )
            ),
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
                continue;
            }
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
    let against = match verified.against {
        Against::Plan => "the plan",
        Against::Accounts => "the policies in the accounts",
        Against::LastRead => "the policies bootstrap last read",
    };
    anstream::println!(
        "{mark} {} edges against {against}: {} allowed, {denied} denied",
        report.results.len(),
        report.results.len() - denied
    );
}

pub fn doctor(args: &DoctorArgs) -> Exit {
    let message = if args.message == "-" {
        match std::io::read_to_string(std::io::stdin()) {
            Ok(text) => text,
            Err(e) => {
                output::error(&format!("cannot read standard input: {e}"));
                return Exit::Usage;
            }
        }
    } else {
        args.message.clone()
    };
    let diagnosis = match doctor::doctor(&project_of(&args.manifest), &message) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    match args.format {
        Format::Json => output::json(&diagnosis),
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
    let report = match synth::terraform(&project_of(&args.manifest), &args.out) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    for path in &report.written {
        anstream::println!("{} {}", paint(OK, "wrote"), path.display());
    }
    anstream::println!(
        "{}",
        paint(
            DIM,
            "checkov checks skipped in the modules, each with its reason:"
        )
    );
    for (id, why) in &report.skipped {
        anstream::println!("  {id}: {why}");
    }
    Exit::Ok
}

pub fn synth_codepipeline(args: &SynthCodepipelineArgs) -> Exit {
    if args.apply {
        let console = Console::new();
        return match runtime().block_on(synth::apply_codepipeline(
            &project_of(&args.manifest),
            &console,
        )) {
            Ok(report) => applied(&report, args.format),
            Err(e) => fail(&e),
        };
    }
    let report = match synth::codepipeline(&project_of(&args.manifest), args.out.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    match &report.written {
        Some(path) => anstream::eprintln!("{} {}", paint(OK, "wrote"), path.display()),
        None => output::json(&report.definition),
    }
    for note in &report.notes {
        anstream::eprintln!("{} {note}", paint(WARNING, "note:"));
    }
    Exit::Ok
}
