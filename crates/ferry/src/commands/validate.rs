//! `ferry validate`: every problem of the manifest and its buildspecs, rendered.

use ferry_workflows::validate;

use super::project_of;
use crate::cli::ValidateArgs;
use crate::output::{self, BOLD, DIM, Exit, Format, OK, paint};

pub fn run(args: &ValidateArgs) -> Exit {
    let report = validate::validate(&project_of(&args.manifest), args.strict);
    let (errors, warnings) = (report.errors(), report.warnings());
    match args.format {
        Format::Json => output::json(&report.to_json()),
        Format::Text => {
            anstream::eprint!("{}", report.loaded.render(true));
            for (file, diagnostics) in &report.buildspecs {
                anstream::eprint!("{}", ferry_yaml::render_text(file, diagnostics, true));
            }
            let name = report.loaded.file.name();
            if let Some(m) = report.loaded.manifest.as_ref().filter(|_| report.valid()) {
                let stages: Vec<&str> = m.stages.iter().map(|s| s.name.as_str()).collect();
                let suffix = if warnings > 0 {
                    format!(" ({})", count(warnings, "warning"))
                } else {
                    String::new()
                };
                anstream::println!("{} {name} is valid{suffix}", paint(OK, "✓"));
                anstream::println!(
                    "  {} {}: {}",
                    paint(BOLD, "pipeline"),
                    m.pipeline,
                    paint(DIM, &stages.join(" → "))
                );
                if let Some(shared) = &m.shared {
                    let mut accounts = vec![format!("shared ({})", shared.id)];
                    accounts.extend(m.accounts.iter().map(|a| format!("{} ({})", a.name, a.id)));
                    anstream::println!("  {} {}", paint(BOLD, "accounts"), accounts.join(", "));
                }
            } else {
                let mut parts = vec![count(errors, "error")];
                if warnings > 0 {
                    parts.push(count(warnings, "warning"));
                }
                let why = if errors == 0 {
                    " (--strict fails on warnings)"
                } else {
                    ""
                };
                anstream::eprintln!(
                    "{} {name}: {}{why}",
                    paint(output::ERROR, "✗"),
                    parts.join(", ")
                );
            }
        }
    }
    if report.valid() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
