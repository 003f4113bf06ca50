//! `ferry policy simulate|lint`, rendered.

use std::path::Path;

use ferry_policy::Decision;
use ferry_workflows::policy::{self as flow, explanation, outcome_name};
use serde_json::json;

use crate::cli::{LintArgs, SimulateArgs};
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, fail, paint};

/// A file's text; `-` is standard input.
fn read(path: &Path) -> Result<String, String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn simulate(args: &SimulateArgs) -> Exit {
    let path = args
        .cases
        .clone()
        .or_else(|| args.file.clone())
        .unwrap_or_else(|| "-".into());
    let text = match read(&path) {
        Ok(t) => t,
        Err(e) => {
            output::error(&e);
            return Exit::Usage;
        }
    };
    if args.cases.is_some() {
        for line in flow::simulate_cases(&text, !args.no_derive) {
            anstream::println!("{line}");
        }
        return Exit::Ok;
    }
    let (request, decision) =
        match flow::simulate(&path.display().to_string(), &text, !args.no_derive) {
            Ok(d) => d,
            Err(e) => return fail(&e),
        };
    match args.format {
        Format::Json => output::json(&explanation(&decision)),
        Format::Text => print_decision(&decision, &request),
    }
    if decision.is_allowed() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

fn print_decision(d: &Decision, request: &ferry_policy::Request) {
    let (mark, style) = if d.is_allowed() {
        ("✓", OK)
    } else {
        ("✗", ERROR)
    };
    anstream::println!(
        "{} {} {} {} on {}",
        paint(style, mark),
        paint(style, outcome_name(d.outcome)),
        request.principal,
        paint(BOLD, &request.action),
        request.resource
    );
    anstream::println!("  {}", d.reason);
    for s in &d.statements {
        let sid = s
            .sid
            .as_ref()
            .map(|x| format!(" `{x}`"))
            .unwrap_or_default();
        let level = s
            .level
            .as_ref()
            .map(|l| format!(" at `{l}`"))
            .unwrap_or_default();
        anstream::println!(
            "  {} {} {}{level}, statement {}{sid}: {:?}",
            paint(DIM, "·"),
            s.layer.name(),
            s.policy,
            s.statement,
            s.effect
        );
    }
    for m in &d.missing {
        anstream::println!("  {} add to {}:", paint(BOLD, "→"), m.place);
        anstream::println!(
            "    {}",
            serde_json::to_string(&m.statement).unwrap_or_default()
        );
    }
}

pub fn lint(args: &LintArgs) -> Exit {
    let report = flow::lint(&args.files, args.account.clone());
    for why in &report.unreadable {
        output::error(why);
    }
    let (errors, warnings) = (report.errors(), report.warnings());
    match args.format {
        Format::Json => {
            let files: Vec<_> = report
                .files
                .iter()
                .map(|f| json!({"file": f.file.name(), "findings": ferry_yaml::diagnostics_json(&f.file, &f.diagnostics)}))
                .collect();
            output::json(&json!({"errors": errors, "warnings": warnings, "files": files}));
        }
        Format::Text => {
            for f in &report.files {
                anstream::print!("{}", ferry_yaml::render_text(&f.file, &f.diagnostics, true));
            }
            if errors + warnings == 0 && report.unreadable.is_empty() {
                anstream::println!(
                    "{} no findings in {} file{}",
                    paint(OK, "✓"),
                    args.files.len(),
                    if args.files.len() == 1 { "" } else { "s" }
                );
            } else {
                anstream::println!(
                    "{} error{}, {} warning{}",
                    errors,
                    if errors == 1 { "" } else { "s" },
                    warnings,
                    if warnings == 1 { "" } else { "s" }
                );
            }
        }
    }
    if !report.unreadable.is_empty() {
        Exit::Usage
    } else if errors > 0 || (args.strict && warnings > 0) {
        Exit::Failed
    } else {
        Exit::Ok
    }
}
