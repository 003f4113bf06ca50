use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde::Serialize;
use serde_json::json;

use crate::{SourceFile, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a file: what, where, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable kebab-case identifier (`unknown-key`, `bad-account-id`, …) for scripts and tests.
    pub code: &'static str,
    pub message: String,
    /// Where in the file; `None` for problems with the file as a whole.
    pub span: Option<Span>,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            hint: None,
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    #[must_use]
    pub fn at(mut self, span: Span) -> Self {
        self.span = Some(span);
        self
    }

    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders diagnostics the way compilers do, so editors can jump to them:
///
/// ```text
/// ferry.yaml:12:5: error: unknown key `stags`
///    |
/// 12 |     stags:
///    |     ^^^^^
///    = hint: did you mean `stages`?
/// ```
///
/// With `color` the severity, the underline and the hint are styled with ANSI codes.
pub fn render_text(file: &SourceFile, diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics {
        render_one(&mut out, file, d, color);
    }
    out
}

fn render_one(out: &mut String, file: &SourceFile, d: &Diagnostic, color: bool) {
    let paint = |style: Style, text: &str| {
        if color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    };
    let (label, style) = match d.severity {
        Severity::Error => ("error", AnsiColor::Red.on_default().bold()),
        Severity::Warning => ("warning", AnsiColor::Yellow.on_default().bold()),
    };
    let bold = Style::new().bold();
    let blue = AnsiColor::Blue.on_default().bold();
    match d.span {
        None => {
            let _ = writeln!(
                out,
                "{}: {}: {}",
                file.name(),
                paint(style, label),
                paint(bold, &d.message)
            );
        }
        Some(span) => {
            let start = file.location(span.start);
            let _ = writeln!(
                out,
                "{}:{}:{}: {}: {}",
                file.name(),
                start.line,
                start.column,
                paint(style, label),
                paint(bold, &d.message)
            );
            let line = file.line(start.line);
            let gutter = start.line.to_string().len();
            let pad = " ".repeat(gutter);
            // Underline to the end of the span, or of the line if the span runs past it.
            let end = file.location(span.end.max(span.start));
            let line_chars = line.chars().count();
            let end_col = if end.line == start.line {
                end.column
            } else {
                line_chars + 1
            };
            let width = end_col.saturating_sub(start.column).max(1);
            let visible: String = line
                .chars()
                .map(|c| if c == '\t' { ' ' } else { c })
                .collect();
            let _ = writeln!(out, "{pad} {}", paint(blue, "|"));
            let _ = writeln!(
                out,
                "{} {} {visible}",
                paint(blue, &start.line.to_string()),
                paint(blue, "|")
            );
            let _ = writeln!(
                out,
                "{pad} {} {}{}",
                paint(blue, "|"),
                " ".repeat(start.column - 1),
                paint(style, &"^".repeat(width))
            );
            if let Some(hint) = &d.hint {
                let _ = writeln!(out, "{pad} {} {hint}", paint(blue, "= hint:"));
            }
            return;
        }
    }
    if let Some(hint) = &d.hint {
        let _ = writeln!(out, "  {} {hint}", paint(blue, "= hint:"));
    }
}

/// The diagnostics as JSON objects with 1-based `line`/`column` (null when the problem
/// concerns the whole file), for `--format json`.
pub fn diagnostics_json(file: &SourceFile, diagnostics: &[Diagnostic]) -> Vec<serde_json::Value> {
    diagnostics
        .iter()
        .map(|d| {
            let (start, end) = match d.span {
                Some(span) => (
                    Some(file.location(span.start)),
                    Some(file.location(span.end.max(span.start))),
                ),
                None => (None, None),
            };
            json!({
                "file": file.name(),
                "line": start.map(|l| l.line),
                "column": start.map(|l| l.column),
                "end_line": end.map(|l| l.line),
                "end_column": end.map(|l| l.column),
                "severity": d.severity,
                "code": d.code,
                "message": d.message,
                "hint": d.hint,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_source_line_underline_and_hint() {
        let file = SourceFile::new("ferry.yaml", "version: 1\nstags:\n  - x\n");
        let d = Diagnostic::error("unknown-key", "unknown key `stags`")
            .at(Span::new(11, 16))
            .with_hint("did you mean `stages`?");
        let text = render_text(&file, &[d], false);
        assert_eq!(
            text,
            "ferry.yaml:2:1: error: unknown key `stags`\n  |\n2 | stags:\n  | ^^^^^\n  = hint: did you mean `stages`?\n"
        );
    }

    #[test]
    fn json_carries_one_based_positions() {
        let file = SourceFile::new("f.yaml", "a: 1\nb: 2\n");
        let d = Diagnostic::warning("w", "m").at(Span::new(8, 9));
        let v = diagnostics_json(&file, &[d]);
        assert_eq!(v[0]["line"], 2);
        assert_eq!(v[0]["column"], 4);
        assert_eq!(v[0]["severity"], "warning");
    }
}
