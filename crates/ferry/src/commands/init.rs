use ferry_manifest::templates::Starter;

use crate::cli::InitArgs;
use crate::output::{self, Exit, OK, paint};

pub fn run(args: &InitArgs) -> Exit {
    let starter = Starter {
        ecs: args.ecs,
        lambda: args.lambda,
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| pipeline_name(&args.dir));
    if let Some(why) = ferry_manifest::values::names::pipeline(&name) {
        output::error(&format!(
            "`{name}` cannot be a pipeline name: {why}; pass --name"
        ));
        return Exit::Usage;
    }
    let files = [
        ("ferry.yaml", starter.manifest(&name)),
        ("buildspec.yml", starter.buildspec()),
    ];
    if !args.force
        && let Some((existing, _)) = files.iter().find(|(f, _)| args.dir.join(f).exists())
    {
        output::error(&format!(
            "{} already exists; pass --force to overwrite it",
            args.dir.join(existing).display()
        ));
        return Exit::Failed;
    }
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        output::error(&format!("cannot create {}: {e}", args.dir.display()));
        return Exit::Failed;
    }
    for (file, text) in &files {
        let path = args.dir.join(file);
        if let Err(e) = std::fs::write(&path, text) {
            output::error(&format!("cannot write {}: {e}", path.display()));
            return Exit::Failed;
        }
        anstream::println!("{} wrote {}", paint(OK, "✓"), path.display());
    }
    anstream::println!("next: edit the account ids, then `ferry validate`");
    Exit::Ok
}

/// The directory's name, made into a valid pipeline name.
fn pipeline_name(dir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let raw = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("app")
        .to_ascii_lowercase();
    let cleaned: String = raw
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let trimmed = cleaned
        .trim_matches('-')
        .chars()
        .take(32)
        .collect::<String>();
    if trimmed.starts_with(|c: char| c.is_ascii_lowercase()) {
        trimmed
    } else {
        format!("app-{trimmed}").chars().take(32).collect()
    }
}
