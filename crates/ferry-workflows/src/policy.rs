//! `ferry policy simulate|lint`: one request decided against its policies, a file of them,
//! and policy documents linted.

use std::path::PathBuf;

use ferry_policy::{Case, Decision, Outcome, Request, authorize};
use ferry_yaml::{Diagnostic, Limits, SourceFile};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A decision's outcome as the JSON documents name it.
pub fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Allow => "Allow",
        Outcome::ExplicitDeny => "ExplicitDeny",
        Outcome::ImplicitDeny => "ImplicitDeny",
    }
}

/// A decision, with its explanation, as JSON.
pub fn explanation(d: &Decision) -> Value {
    json!({
        "decision": outcome_name(d.outcome),
        "layer": d.layer,
        "reason": d.reason,
        "statements": d.statements,
        "missing": d.missing,
    })
}

/// Decides the request document `text` (from `origin`); `derive` adds the principal keys.
pub fn simulate(origin: &str, text: &str, derive: bool) -> Result<(Request, Decision)> {
    let (set, request) = Case::from_json(text)
        .and_then(|c| c.build(derive))
        .map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
    let decision = authorize(&set, &request);
    Ok((request, decision))
}

/// Decides each line of a JSON-lines file: one answer per case, in order.
pub fn simulate_cases(text: &str, derive: bool) -> Vec<Value> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let id = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(json!(n + 1));
            match Case::from_json(line).and_then(|c| c.build(derive)) {
                Ok((set, request)) => {
                    let d = authorize(&set, &request);
                    json!({"id": id, "decision": outcome_name(d.outcome), "explanation": explanation(&d)})
                }
                Err(e) => json!({"id": id, "error": format!("line {}: {e}", n + 1)}),
            }
        })
        .collect()
}

/// The findings of one linted file.
#[derive(Debug)]
pub struct LintedFile {
    pub file: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Debug)]
pub struct LintReport {
    pub files: Vec<LintedFile>,
    /// Files that could not be read, with why.
    pub unreadable: Vec<String>,
}

impl LintReport {
    pub fn errors(&self) -> usize {
        self.files
            .iter()
            .flat_map(|f| &f.diagnostics)
            .filter(|d| d.is_error())
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.files
            .iter()
            .flat_map(|f| &f.diagnostics)
            .filter(|d| !d.is_error())
            .count()
    }
}

/// Lints each policy document; `account` lets a key policy delegate `kms:*` to its own root.
pub fn lint(paths: &[PathBuf], account: Option<String>) -> LintReport {
    let limits = Limits::default();
    let options = ferry_policy::lint::LintOptions { account };
    let mut report = LintReport {
        files: Vec::new(),
        unreadable: Vec::new(),
    };
    for path in paths {
        let file = match SourceFile::read(path, &limits) {
            Ok(f) => f,
            Err(d) => {
                report.unreadable.push(d.message);
                continue;
            }
        };
        let diagnostics = match ferry_policy::parse_file(&file) {
            Ok(policy) => ferry_policy::lint::lint(&policy, &options)
                .iter()
                .map(ferry_policy::lint::Finding::to_diagnostic)
                .collect(),
            Err(errs) => errs
                .iter()
                .map(ferry_policy::PolicyError::to_diagnostic)
                .collect(),
        };
        report.files.push(LintedFile { file, diagnostics });
    }
    report
}
