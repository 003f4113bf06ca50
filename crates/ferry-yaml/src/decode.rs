use crate::{Diagnostic, Entry, Node, ScalarStyle, Span, Spanned, Value};

/// Decodes a [`Node`] tree into typed values, collecting every problem instead of stopping
/// at the first. Each helper returns `None` after recording why; callers carry on with the
/// next field so that one run reports all mistakes.
#[derive(Debug, Default)]
pub struct Decoder {
    pub diagnostics: Vec<Diagnostic>,
}

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    fn wrong_type(&mut self, node: &Node, what: &str, expected: &str) {
        let hint = match expected {
            "a list" => "write one `- item` per line under the key, or `[a, b]` on one line",
            "a mapping" => {
                "write `key: value` entries indented under the key, or `{key: value}` on one line"
            }
            "a whole number" => "write digits only, e.g. `3`",
            _ if matches!(node.value, Value::Map(_)) => {
                "a `key: value` here makes a mapping; quote the text if it holds `: `"
            }
            _ => "write the value as plain text; quote it if it holds `:`, `#`, `[` or `{`",
        };
        self.push(
            Diagnostic::error(
                "wrong-type",
                format!("{what} must be {expected}, not {}", node.kind_name()),
            )
            .at(node.span)
            .with_hint(hint),
        );
    }

    /// A string. Plain scalars count with their literal text, so `id: 012345678901` keeps
    /// its leading zero and `version: 0.2` stays `"0.2"`.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match &node.value {
            Value::Scalar(s) => Some(Spanned::new(s.text.clone(), node.span)),
            _ => {
                self.wrong_type(node, what, "a string");
                None
            }
        }
    }

    /// A non-empty string without surrounding whitespace.
    pub fn name(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        let s = self.string(node, what)?;
        if s.value.trim().is_empty() {
            self.push(
                Diagnostic::error("empty-value", format!("{what} must not be empty"))
                    .at(node.span)
                    .with_hint("give it a value, or remove the key"),
            );
            return None;
        }
        if s.value.trim() != s.value {
            self.push(
                Diagnostic::error(
                    "whitespace",
                    format!("{what} has leading or trailing spaces"),
                )
                .at(node.span)
                .with_hint("remove the spaces inside the quotes"),
            );
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<Spanned<bool>> {
        match &node.value {
            Value::Scalar(s) if s.style == ScalarStyle::Plain && s.text == "true" => {
                Some(Spanned::new(true, node.span))
            }
            Value::Scalar(s) if s.style == ScalarStyle::Plain && s.text == "false" => {
                Some(Spanned::new(false, node.span))
            }
            _ => {
                self.push(
                    Diagnostic::error(
                        "wrong-type",
                        format!("{what} must be `true` or `false`, not {}", node.kind_name()),
                    )
                    .at(node.span)
                    .with_hint("YAML 1.2 reads only `true` and `false` as booleans; `yes`, `no`, `on` and `off` are text"),
                );
                None
            }
        }
    }

    /// An unsigned integer within `min..=max`.
    pub fn uint(&mut self, node: &Node, what: &str, min: u64, max: u64) -> Option<Spanned<u64>> {
        let parsed = match &node.value {
            Value::Scalar(s) if s.style == ScalarStyle::Plain => s.text.parse::<u64>().ok(),
            _ => None,
        };
        match parsed {
            Some(n) if (min..=max).contains(&n) => Some(Spanned::new(n, node.span)),
            Some(n) => {
                self.push(
                    Diagnostic::error(
                        "out-of-range",
                        format!("{what} is {n}; it must be between {min} and {max}"),
                    )
                    .at(node.span)
                    .with_hint(format!("use a number from {min} to {max}")),
                );
                None
            }
            None => {
                self.wrong_type(node, what, "a whole number");
                None
            }
        }
    }

    /// The items of a list.
    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(items) => Some(items),
            _ => {
                self.wrong_type(node, what, "a list");
                None
            }
        }
    }

    /// A list of strings; bad items are reported and skipped.
    pub fn string_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        self.list(node, what)
            .unwrap_or_default()
            .iter()
            .filter_map(|item| self.name(item, &format!("each entry of {what}")))
            .collect()
    }

    /// A list of any text (commands, multi-line blocks); bad items are reported and skipped.
    pub fn text_list(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        self.list(node, what)
            .unwrap_or_default()
            .iter()
            .filter_map(|item| self.string(item, &format!("each entry of {what}")))
            .collect()
    }

    /// The entries of a mapping whose keys are data (names of things), in file order.
    pub fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
    ) -> Option<Vec<(Spanned<String>, &'n Node)>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, what, "a mapping");
            return None;
        };
        Some(
            entries
                .iter()
                .filter_map(|e| {
                    self.name(&e.key, &format!("a key of {what}"))
                        .map(|k| (k, &e.value))
                })
                .collect(),
        )
    }

    /// The fields of a mapping with a fixed set of keys. Unknown keys are reported here,
    /// each with the closest known key as a hint.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_type(node, what, "a mapping");
            return None;
        };
        for entry in entries {
            let Some(key) = entry.key.as_str() else {
                self.wrong_type(&entry.key, &format!("a key of {what}"), "a string");
                continue;
            };
            if !known.contains(&key) {
                let hint = match did_you_mean(key, known) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("{what} takes: {}", known.join(", ")),
                };
                self.push(
                    Diagnostic::error("unknown-key", format!("unknown key `{key}` in {what}"))
                        .at(entry.key.span)
                        .with_hint(hint),
                );
            }
        }
        Some(Fields {
            span: node.span,
            entries,
        })
    }
}

/// The known fields of one mapping (see [`Decoder::fields`]).
#[derive(Debug, Clone, Copy)]
pub struct Fields<'n> {
    span: Span,
    entries: &'n [Entry],
}

impl<'n> Fields<'n> {
    /// The value of `key`; an explicit null (`key:` with nothing after it) counts as absent.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|e| e.key.as_str() == Some(key))
            .map(|e| &e.value)
            .filter(|n| n.value != Value::Null)
    }

    /// The value of `key`, or an error at the mapping saying it is missing.
    pub fn required(&self, d: &mut Decoder, key: &str, what: &str, hint: &str) -> Option<&'n Node> {
        let found = self.get(key);
        if found.is_none() {
            let span = self.key_span(key).unwrap_or(self.span);
            d.push(
                Diagnostic::error("missing-key", format!("{what} needs `{key}`"))
                    .at(span)
                    .with_hint(hint.to_owned()),
            );
        }
        found
    }

    /// The span of the whole mapping.
    pub fn span(&self) -> Span {
        self.span
    }

    /// The span of a key, if present.
    pub fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|e| e.key.as_str() == Some(key))
            .map(|e| e.key.span)
    }

    /// Whether the mapping sets `key` (to anything, null included).
    pub fn has(&self, key: &str) -> bool {
        self.key_span(key).is_some()
    }
}

/// The option closest to `input`, if any is close enough to be the intended one.
pub fn did_you_mean<'a>(input: &str, options: &[&'a str]) -> Option<&'a str> {
    let normalized = input.to_ascii_lowercase().replace('-', "_");
    options
        .iter()
        .map(|&o| {
            let score = if o == normalized {
                1.0
            } else {
                strsim::normalized_damerau_levenshtein(&normalized, o)
                    .max(strsim::jaro_winkler(&normalized, o) - 0.15)
            };
            (score, o)
        })
        .filter(|&(score, _)| score >= 0.66)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, o)| o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, SourceFile, parse};

    fn node(text: &str) -> Node {
        let mut d = Vec::new();
        parse(&SourceFile::new("t", text), &Limits::default(), &mut d).unwrap()
    }

    #[test]
    fn unknown_keys_get_a_suggestion_and_every_one_is_reported() {
        let n = node("stags: 1\nverison: 1\nzzz: 2\n");
        let mut d = Decoder::new();
        d.fields(&n, "the manifest", &["stages", "version", "accounts"])
            .unwrap();
        let hints: Vec<_> = d
            .diagnostics
            .iter()
            .map(|d| d.hint.clone().unwrap())
            .collect();
        assert_eq!(hints[0], "did you mean `stages`?");
        assert_eq!(hints[1], "did you mean `version`?");
        assert_eq!(hints[2], "the manifest takes: stages, version, accounts");
    }

    #[test]
    fn suggestions_tolerate_dashes_and_case() {
        assert_eq!(
            did_you_mean("run-order", &["run_order", "name"]),
            Some("run_order")
        );
        assert_eq!(did_you_mean("Name", &["run_order", "name"]), Some("name"));
        assert_eq!(did_you_mean("qqqq", &["run_order", "name"]), None);
    }

    #[test]
    fn type_errors_name_what_was_found() {
        let n = node("a: [1]\nb: yes\nc: -3\n");
        let mut d = Decoder::new();
        let f = d.fields(&n, "x", &["a", "b", "c"]).unwrap();
        assert!(d.string(f.get("a").unwrap(), "`a`").is_none());
        assert!(d.bool(f.get("b").unwrap(), "`b`").is_none());
        assert!(d.uint(f.get("c").unwrap(), "`c`", 0, 10).is_none());
        let messages: Vec<_> = d.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "`a` must be a string, not a list",
                "`b` must be `true` or `false`, not a string",
                "`c` must be a whole number, not a number"
            ]
        );
    }

    #[test]
    fn missing_required_key_points_at_the_mapping() {
        let n = node("name: x\n");
        let mut d = Decoder::new();
        let f = d.fields(&n, "a stage", &["name", "actions"]).unwrap();
        assert!(
            f.required(&mut d, "actions", "a stage", "list its actions")
                .is_none()
        );
        assert_eq!(d.diagnostics[0].span.map(|s| s.start), Some(0));
    }
}
