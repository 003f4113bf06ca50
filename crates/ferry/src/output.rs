//! Exit codes, output format, styled messages, and the rendering of a workflow's error.
//! Styles go through `anstream`, which drops them when the output is not a terminal or
//! `NO_COLOR` is set.

use std::process::ExitCode;
use std::sync::OnceLock;

use anstyle::{AnsiColor, Style};
use ferry_workflows::Error;

/// What ferry's exit status means; scripts rely on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command did what it was asked.
    Ok = 0,
    /// The command ran and the answer is "no": invalid manifest, failed deploy (rolled back),
    /// denied access.
    Failed = 1,
    /// The command was called wrongly, or is not available.
    Usage = 2,
    /// A deploy failed and putting the old version back failed too: someone must look.
    RollbackFailed = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people.
    #[default]
    Text,
    /// One JSON document on standard output, for scripts.
    Json,
}

pub const ERROR: Style = AnsiColor::Red.on_default().bold();
pub const OK: Style = AnsiColor::Green.on_default().bold();
pub const WARNING: Style = AnsiColor::Yellow.on_default().bold();
pub const BOLD: Style = Style::new().bold();
pub const DIM: Style = Style::new().dimmed();

pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// `error: message` on standard error.
pub fn error(message: &str) {
    anstream::eprintln!("{}: {message}", paint(ERROR, "error"));
}

/// Prints a document as JSON on standard output.
pub fn json(value: &impl serde::Serialize) {
    anstream::println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// Renders a workflow's error and says which exit status it means.
pub fn fail(e: &Error) -> Exit {
    match e {
        Error::InvalidManifest(loaded) => {
            anstream::eprint!("{}", loaded.render(true));
            error(&e.to_string());
            Exit::Failed
        }
        Error::AccessNotGranted(report) => {
            crate::commands::foundation::print_report(report);
            error(&e.to_string());
            Exit::Failed
        }
        Error::Usage(_) => {
            error(&e.to_string());
            Exit::Usage
        }
        _ => {
            error(&e.to_string());
            Exit::Failed
        }
    }
}

/// The process's one runtime, on one thread: the engine waits on processes, timers, AWS and
/// a local database, and handing work between threads costs more than it saves (measured:
/// scripts/bench-engine).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// A commit id shortened to 12 characters (with its `+worktree` mark, if any).
pub fn short_revision(revision: &str) -> String {
    let (sha, mark) = revision
        .split_once('+')
        .map_or((revision, String::new()), |(s, m)| (s, format!("+{m}")));
    if sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit()) {
        format!("{}{mark}", &sha[..12])
    } else {
        revision.to_owned()
    }
}
