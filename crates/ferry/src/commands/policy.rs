use std::io::Read;
use std::path::Path;

use ferry_policy::{Case, Decision, Outcome, authorize};
use serde_json::{Value, json};

use crate::cli::{LintArgs, SimulateArgs};
use crate::output::{self, BOLD, DIM, ERROR, Exit, Format, OK, paint};

fn read(path: &Path) -> Result<String, String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn simulate(args: &SimulateArgs) -> Exit {
    if let Some(cases) = &args.cases {
        return simulate_cases(cases, !args.no_derive);
    }
    let path = args.file.clone().unwrap_or_else(|| "-".into());
    let text = match read(&path) {
        Ok(t) => t,
        Err(e) => {
            output::error(&e);
            return Exit::Usage;
        }
    };
    let built = Case::from_json(&text).and_then(|c| c.build(!args.no_derive));
    let (set, request) = match built {
        Ok(b) => b,
        Err(e) => {
            output::error(&format!("{}: {e}", path.display()));
            return Exit::Usage;
        }
    };
    let decision = authorize(&set, &request);
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

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Allow => "Allow",
        Outcome::ExplicitDeny => "ExplicitDeny",
        Outcome::ImplicitDeny => "ImplicitDeny",
    }
}

fn explanation(d: &Decision) -> Value {
    json!({
        "decision": outcome_name(d.outcome),
        "layer": d.layer,
        "reason": d.reason,
        "statements": d.statements,
        "missing": d.missing,
    })
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

fn simulate_cases(path: &Path, derive: bool) -> Exit {
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            output::error(&e);
            return Exit::Usage;
        }
    };
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let id = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v.get("id").cloned())
            .unwrap_or(json!(n + 1));
        let out = match Case::from_json(line).and_then(|c| c.build(derive)) {
            Ok((set, request)) => {
                let d = authorize(&set, &request);
                json!({"id": id, "decision": outcome_name(d.outcome), "explanation": explanation(&d)})
            }
            Err(e) => json!({"id": id, "error": format!("line {}: {e}", n + 1)}),
        };
        anstream::println!("{out}");
    }
    Exit::Ok
}

pub fn lint(args: &LintArgs) -> Exit {
    let limits = ferry_yaml::Limits::default();
    let mut errors = 0;
    let mut warnings = 0;
    let mut unreadable = false;
    let mut files = Vec::new();
    let options = ferry_policy::lint::LintOptions {
        account: args.account.clone(),
    };
    for path in &args.files {
        let file = match ferry_yaml::SourceFile::read(path, &limits) {
            Ok(f) => f,
            Err(d) => {
                output::error(&d.message);
                unreadable = true;
                continue;
            }
        };
        let diagnostics: Vec<ferry_yaml::Diagnostic> = match ferry_policy::parse_file(&file) {
            Ok(policy) => ferry_policy::lint::lint(&policy, &options)
                .iter()
                .map(ferry_policy::lint::Finding::to_diagnostic)
                .collect(),
            Err(errs) => errs
                .iter()
                .map(ferry_policy::PolicyError::to_diagnostic)
                .collect(),
        };
        errors += diagnostics.iter().filter(|d| d.is_error()).count();
        warnings += diagnostics.iter().filter(|d| !d.is_error()).count();
        match args.format {
            Format::Text => anstream::print!("{}", ferry_yaml::render_text(&file, &diagnostics, true)),
            Format::Json => files.push(json!({"file": file.name(), "findings": ferry_yaml::diagnostics_json(&file, &diagnostics)})),
        }
    }
    match args.format {
        Format::Json => {
            output::json(&json!({"errors": errors, "warnings": warnings, "files": files}))
        }
        Format::Text if errors + warnings == 0 && !unreadable => {
            anstream::println!(
                "{} no findings in {} file{}",
                paint(OK, "✓"),
                args.files.len(),
                if args.files.len() == 1 { "" } else { "s" }
            );
        }
        Format::Text => anstream::println!(
            "{} error{}, {} warning{}",
            errors,
            if errors == 1 { "" } else { "s" },
            warnings,
            if warnings == 1 { "" } else { "s" }
        ),
    }
    if unreadable {
        Exit::Usage
    } else if errors > 0 || (args.strict && warnings > 0) {
        Exit::Failed
    } else {
        Exit::Ok
    }
}
