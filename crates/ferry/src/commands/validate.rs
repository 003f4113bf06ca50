use serde_json::json;

use crate::cli::ValidateArgs;
use crate::output::{self, BOLD, DIM, Exit, Format, OK, paint};

/// The buildspecs ferry can check before a run: inline ones, and files in a local source
/// directory read by builds whose first input is `source`.
fn buildspecs(
    manifest: &ferry_manifest::Manifest,
    path: &std::path::Path,
) -> Vec<(ferry_yaml::SourceFile, Vec<ferry_yaml::Diagnostic>)> {
    let repo = crate::state::source_repo(manifest, path);
    let mut out = Vec::new();
    for stage in &manifest.stages {
        for action in &stage.actions {
            let ferry_manifest::ActionKind::Build(build) = &action.kind else {
                continue;
            };
            let file = match &build.buildspec {
                ferry_manifest::Buildspec::Inline { text, line } => ferry_yaml::SourceFile::new(
                    format!(
                        "{} (inline buildspec of {}.{}, from line {line})",
                        path.display(),
                        stage.name,
                        action.name
                    ),
                    text.clone(),
                ),
                ferry_manifest::Buildspec::File(file)
                    if build.inputs.first().map(String::as_str) == Some("source")
                        && !ferry_engine::source::is_url(&repo) =>
                {
                    let full = std::path::Path::new(&repo).join(file);
                    match ferry_yaml::SourceFile::read(&full, &ferry_yaml::Limits::default()) {
                        Ok(f) => f,
                        Err(d) => {
                            let name =
                                format!("{} ({}.{})", full.display(), stage.name, action.name);
                            // A warning: the build reads the buildspec from its revision, which
                            // may hold a file the working tree does not (yet).
                            let d = ferry_yaml::Diagnostic::warning("missing-buildspec", d.message)
                                .with_hint(format!("`{file}` is read from the source repository ({repo}) when the build runs"));
                            out.push((ferry_yaml::SourceFile::new(name, ""), vec![d]));
                            continue;
                        }
                    }
                }
                // In an artifact produced at run time: checked when the build runs.
                ferry_manifest::Buildspec::File(_) => continue,
            };
            let (_, diagnostics) = ferry_engine::buildspec::parse(&file);
            if !diagnostics.is_empty() {
                out.push((file, diagnostics));
            }
        }
    }
    out
}

pub fn run(args: &ValidateArgs) -> Exit {
    let loaded = ferry_manifest::load(&args.manifest.file);
    let specs = loaded
        .manifest
        .as_ref()
        .map(|m| buildspecs(m, &args.manifest.file))
        .unwrap_or_default();
    let spec_diags = || specs.iter().flat_map(|(_, d)| d);
    let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count()
        + spec_diags().filter(|d| d.is_error()).count();
    let warnings = loaded.diagnostics.len() + spec_diags().count() - errors;
    let valid = errors == 0 && !(args.strict && warnings > 0);
    match args.format {
        Format::Json => output::json(&json!({
            "file": loaded.file.name(),
            "valid": valid,
            "errors": errors,
            "warnings": warnings,
            "diagnostics": loaded
                .diagnostics_json()
                .into_iter()
                .chain(specs.iter().flat_map(|(f, d)| ferry_yaml::diagnostics_json(f, d)))
                .collect::<Vec<_>>(),
        })),
        Format::Text => {
            anstream::eprint!("{}", loaded.render(true));
            for (file, diagnostics) in &specs {
                anstream::eprint!("{}", ferry_yaml::render_text(file, diagnostics, true));
            }
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
