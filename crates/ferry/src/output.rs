//! Exit codes, output format and styled messages. Styles go through `anstream`, which drops
//! them when the output is not a terminal or `NO_COLOR` is set.

use std::process::ExitCode;

use anstyle::{AnsiColor, Style};

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

/// Prints a JSON value on standard output.
pub fn json(value: &serde_json::Value) {
    anstream::println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}
