use serde_json::json;

use crate::cli::ValidateArgs;
use crate::output::{self, BOLD, DIM, Exit, Format, OK, paint};

pub fn run(args: &ValidateArgs) -> Exit {
    let loaded = ferry_manifest::load(&args.manifest.file);
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() - errors;
    let valid = errors == 0 && !(args.strict && warnings > 0);
    match args.format {
        Format::Json => output::json(&json!({
            "file": loaded.file.name(),
            "valid": valid,
            "errors": errors,
            "warnings": warnings,
            "diagnostics": loaded.diagnostics_json(),
        })),
        Format::Text => {
            anstream::eprint!("{}", loaded.render(true));
            let name = loaded.file.name();
            if let Some(m) = loaded.manifest.as_ref().filter(|_| valid) {
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
    if valid { Exit::Ok } else { Exit::Failed }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
