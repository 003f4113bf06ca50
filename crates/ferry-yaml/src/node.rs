use std::collections::HashMap;

use granit_parser::{Event, Marker, Parser, ScalarStyle as GranitStyle};

use crate::{Diagnostic, SourceFile, Span};

/// Bounds on what a document may cost to read. The defaults fit any hand-written pipeline
/// file many times over and stop hostile input (huge files, alias bombs, deep nesting)
/// in milliseconds.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest file accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Most nodes in the tree, counting every node an alias expands to.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_nodes: 100_000,
        }
    }
}

/// How a scalar was written; quoted and block scalars are always strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarStyle {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    pub style: ScalarStyle,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Node,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null`, or nothing at all.
    Null,
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A YAML node and the bytes it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

impl Node {
    /// What this node is, for messages: "a string", "a list", …
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Scalar(s) if s.style != ScalarStyle::Plain => "a string",
            Value::Scalar(s) => match s.text.as_str() {
                "true" | "false" | "True" | "False" | "TRUE" | "FALSE" => "a boolean",
                t if t.parse::<f64>().is_ok() => "a number",
                _ => "a string",
            },
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The value of key `key` if this is a mapping holding it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|e| e.key.as_str() == Some(key))
                .map(|e| &e.value),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    fn count(&self) -> usize {
        1 + match &self.value {
            Value::Null | Value::Scalar(_) => 0,
            Value::Seq(items) => items.iter().map(Node::count).sum(),
            Value::Map(entries) => entries
                .iter()
                .map(|e| e.key.count() + e.value.count())
                .sum(),
        }
    }
}

/// Parses one YAML document into a [`Node`] tree.
///
/// Returns `None` when the document cannot be read at all (syntax error, a limit
/// exceeded, several documents); the reason is pushed onto `diagnostics`. Problems that
/// still leave a usable tree (a duplicate key: the first one wins) are pushed as well.
/// An empty document is `Some` node with [`Value::Null`].
pub fn parse(
    file: &SourceFile,
    limits: &Limits,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Node> {
    if file.text().len() > limits.max_bytes {
        diagnostics.push(Diagnostic::error(
            "file-too-large",
            format!(
                "{} is {} bytes; ferry reads files of at most {} bytes",
                file.name(),
                file.text().len(),
                limits.max_bytes
            ),
        ));
        return None;
    }
    let mut builder = Builder {
        file,
        limits,
        diagnostics,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        documents: 0,
    };
    match builder.run() {
        Ok(()) => Some(builder.root.unwrap_or(Node {
            value: Value::Null,
            span: Span::new(0, 0),
        })),
        Err(d) => {
            builder.diagnostics.push(d);
            None
        }
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    file: &'a SourceFile,
    limits: &'a Limits,
    diagnostics: &'a mut Vec<Diagnostic>,
    stack: Vec<Frame>,
    /// Anchored nodes and their sizes, for alias expansion under the node budget.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

impl Builder<'_> {
    fn run(&mut self) -> Result<(), Diagnostic> {
        let parser = Parser::new_from_str(self.file.text());
        for item in parser {
            let (event, span) = item.map_err(|e| {
                let at = self.byte(e.marker());
                Diagnostic::error("yaml-syntax", format!("YAML syntax error: {}", e.info()))
                    .at(Span::new(at, at + 1))
                    .with_hint(syntax_hint(&e.info(), self.file.line(e.marker().line())))
            })?;
            let start = self.byte(&span.start);
            let end = self.byte(&span.end);
            match event {
                Event::DocumentStart(..) => {
                    self.documents += 1;
                    if self.documents > 1 {
                        return Err(Diagnostic::error(
                            "several-documents",
                            "this file holds more than one YAML document",
                        )
                        .at(Span::new(start, end.max(start + 1)))
                        .with_hint(
                            "remove the `---` line and everything after it, or merge the documents",
                        ));
                    }
                }
                Event::Scalar(text, style, anchor, tag) => {
                    if let Some(tag) = tag {
                        self.check_tag(&tag, start, end)?;
                    }
                    self.count(start, end)?;
                    let value = match style {
                        GranitStyle::Plain if is_null(&text) => Value::Null,
                        GranitStyle::Plain => Value::Scalar(Scalar {
                            text: text.into_owned(),
                            style: ScalarStyle::Plain,
                        }),
                        GranitStyle::SingleQuoted | GranitStyle::DoubleQuoted => {
                            Value::Scalar(Scalar {
                                text: text.into_owned(),
                                style: ScalarStyle::Quoted,
                            })
                        }
                        _ => Value::Scalar(Scalar {
                            text: text.into_owned(),
                            style: ScalarStyle::Block,
                        }),
                    };
                    self.complete(
                        Node {
                            value,
                            span: Span::new(start, end),
                        },
                        anchor,
                    )?;
                }
                Event::SequenceStart(_, anchor, ref tag)
                | Event::MappingStart(_, anchor, ref tag) => {
                    if let Some(tag) = tag {
                        self.check_tag(tag, start, end)?;
                    }
                    self.count(start, end)?;
                    if self.stack.len() >= self.limits.max_depth {
                        return Err(Diagnostic::error(
                            "too-deep",
                            format!("nesting deeper than {} levels", self.limits.max_depth),
                        )
                        .at(Span::new(start, start + 1))
                        .with_hint("no ferry file needs this depth; is this the right file?"));
                    }
                    let is_seq = matches!(event, Event::SequenceStart(..));
                    self.stack.push(if is_seq {
                        Frame::Seq {
                            start,
                            anchor,
                            items: Vec::new(),
                        }
                    } else {
                        Frame::Map {
                            start,
                            anchor,
                            entries: Vec::new(),
                            key: None,
                        }
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let node = match self.stack.pop() {
                        Some(Frame::Seq {
                            start,
                            anchor,
                            items,
                        }) => (
                            Node {
                                value: Value::Seq(items),
                                span: Span::new(start, end),
                            },
                            anchor,
                        ),
                        Some(Frame::Map {
                            start,
                            anchor,
                            entries,
                            ..
                        }) => {
                            let entries = merge_keys(entries);
                            (
                                Node {
                                    value: Value::Map(entries),
                                    span: Span::new(start, end),
                                },
                                anchor,
                            )
                        }
                        None => continue,
                    };
                    self.complete(node.0, node.1)?;
                }
                Event::Alias(id) => {
                    let Some((node, size)) = self.anchors.get(&id) else {
                        return Err(
                            Diagnostic::error("yaml-syntax", "alias to an unknown anchor")
                                .at(Span::new(start, end)),
                        );
                    };
                    if self.nodes + size > self.limits.max_nodes {
                        return Err(self.too_many_nodes(start, end));
                    }
                    self.nodes += size;
                    let mut node = node.clone();
                    node.span = Span::new(start, end);
                    self.complete(node, 0)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn byte(&self, marker: &Marker) -> usize {
        marker
            .byte_offset()
            .unwrap_or_else(|| self.file.byte_of_char(marker.index()))
    }

    fn count(&mut self, start: usize, end: usize) -> Result<(), Diagnostic> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(self.too_many_nodes(start, end));
        }
        Ok(())
    }

    fn too_many_nodes(&self, start: usize, end: usize) -> Diagnostic {
        Diagnostic::error(
            "too-many-nodes",
            format!(
                "this document expands to more than {} nodes",
                self.limits.max_nodes
            ),
        )
        .at(Span::new(start, end.max(start + 1)))
        .with_hint("aliases (`*name`) that repeat anchors of anchors grow exponentially (a \"billion laughs\" document); write the values out")
    }

    fn check_tag(
        &self,
        tag: &granit_parser::Tag,
        start: usize,
        end: usize,
    ) -> Result<(), Diagnostic> {
        // Core-schema tags (`!!str`, `!!int`, …) are harmless; application tags mean the
        // file was written for another tool (CloudFormation's `!Ref`, `!Sub`, …).
        if tag.to_string().starts_with("tag:yaml.org,2002:") {
            return Ok(());
        }
        Err(Diagnostic::error(
            "yaml-tag",
            format!("YAML tag `{tag}` is not supported here"),
        )
        .at(Span::new(start, end.max(start + 1)))
        .with_hint("ferry files use plain YAML; CloudFormation tags such as `!Ref` do not apply"))
    }

    fn complete(&mut self, node: Node, anchor: usize) -> Result<(), Diagnostic> {
        if anchor != 0 {
            let size = node.count();
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Some(first) = duplicate_of(entries, &k) {
                        let line = self.file.location(first.start).line;
                        self.diagnostics.push(
                            Diagnostic::error(
                                "duplicate-key",
                                format!("duplicate key `{}`", k.as_str().unwrap_or_default()),
                            )
                            .at(k.span)
                            .with_hint(format!(
                                "the key is already set on line {line}; keep one of the two"
                            )),
                        );
                    } else {
                        entries.push(Entry {
                            key: k,
                            value: node,
                        });
                    }
                }
            },
        }
        Ok(())
    }
}

/// The likeliest fix for a syntax error on `line`.
fn syntax_hint(message: &str, line: &str) -> &'static str {
    let flow_before_variable = line
        .find("${")
        .is_some_and(|v| line[..v].contains(['[', '{']));
    let indent = &line[..line.len() - line.trim_start().len()];
    if flow_before_variable {
        "inside `[...]` or `{...}` a `{` starts a mapping: quote values that hold `${...}`, e.g. [\"orders-${env}\"]"
    } else if indent.contains('\t') || message.contains("tab") {
        "YAML does not allow tabs for indentation; use spaces"
    } else if message.contains("flow mapping") {
        "a `{` opened here or on an earlier line is not closed, or two entries lack a `,` between them"
    } else if message.contains("flow sequence") {
        "a `[` opened here or on an earlier line is not closed, or two items lack a `,` between them"
    } else {
        "check the indentation and the quoting on this line and the one before it"
    }
}

fn duplicate_of(entries: &[Entry], key: &Node) -> Option<Span> {
    let text = key.as_str()?;
    entries
        .iter()
        .find(|e| e.key.as_str() == Some(text))
        .map(|e| e.key.span)
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Applies YAML merge keys (`<<: *defaults`): merged entries fill in keys the mapping
/// does not set itself; earlier merge sources win over later ones.
fn merge_keys(entries: Vec<Entry>) -> Vec<Entry> {
    let is_merge = |e: &Entry| matches!(&e.key.value, Value::Scalar(s) if s.style == ScalarStyle::Plain && s.text == "<<");
    if !entries.iter().any(is_merge) {
        return entries;
    }
    let (merges, mut own): (Vec<Entry>, Vec<Entry>) = entries.into_iter().partition(is_merge);
    for merge in merges {
        let sources = match merge.value.value {
            Value::Map(m) => vec![m],
            Value::Seq(items) => items
                .into_iter()
                .filter_map(|n| match n.value {
                    Value::Map(m) => Some(m),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        for source in sources {
            for entry in source {
                if duplicate_of(&own, &entry.key).is_none() {
                    own.push(entry);
                }
            }
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> (Option<Node>, Vec<Diagnostic>) {
        let file = SourceFile::new("t.yaml", text);
        let mut d = Vec::new();
        let n = parse(&file, &Limits::default(), &mut d);
        (n, d)
    }

    #[test]
    fn spans_cover_keys_and_values() {
        let (n, d) = parse_str("a: hello\nb:\n  - 1\n");
        assert!(d.is_empty(), "{d:?}");
        let n = n.unwrap();
        let Value::Map(entries) = &n.value else {
            panic!()
        };
        assert_eq!(entries[0].key.span, Span::new(0, 1));
        assert_eq!(entries[0].value.span, Span::new(3, 8));
        assert_eq!(n.get("b").unwrap().kind_name(), "a list");
    }

    #[test]
    fn plain_scalars_keep_their_literal_text() {
        // YAML 1.2 would read this as the integer 12345678901; an account id needs the zero.
        let (n, _) = parse_str("id: 012345678901\n");
        assert_eq!(n.unwrap().get("id").unwrap().as_str(), Some("012345678901"));
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_first_wins() {
        let (n, d) = parse_str("a: 1\nb: 2\na: 3\n");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, "duplicate-key");
        assert_eq!(n.unwrap().get("a").unwrap().as_str(), Some("1"));
    }

    #[test]
    fn billion_laughs_is_stopped_by_the_node_budget() {
        let mut doc = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["b", "c", "d", "e", "f", "g", "h", "i"];
        let mut prev = "a";
        for name in names {
            doc.push_str(&format!("{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = name;
        }
        let started = std::time::Instant::now();
        let (n, d) = parse_str(&doc);
        assert!(n.is_none());
        assert_eq!(d[0].code, "too-many-nodes");
        // Generous bound: the budget trips long before the 10^9 nodes get built.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "[".repeat(200) + &"]".repeat(200);
        let (n, d) = parse_str(&doc);
        assert!(n.is_none());
        assert!(matches!(d[0].code, "too-deep" | "yaml-syntax"), "{d:?}");
    }

    #[test]
    fn merge_keys_fill_in_missing_entries() {
        let (n, d) = parse_str("base: &b {x: 1, y: 2}\nitem:\n  <<: *b\n  y: 3\n");
        assert!(d.is_empty(), "{d:?}");
        let item = n.unwrap().get("item").unwrap().clone();
        assert_eq!(item.get("x").unwrap().as_str(), Some("1"));
        assert_eq!(item.get("y").unwrap().as_str(), Some("3"));
    }

    #[test]
    fn second_document_and_tags_are_errors() {
        assert_eq!(
            parse_str("a: 1\n---\nb: 2\n").1[0].code,
            "several-documents"
        );
        assert_eq!(parse_str("a: !Ref x\n").1[0].code, "yaml-tag");
    }

    #[test]
    fn syntax_errors_point_into_the_file() {
        let (n, d) = parse_str("a: [1, 2\nb: 3\n");
        assert!(n.is_none());
        assert_eq!(d[0].code, "yaml-syntax");
        assert!(d[0].span.is_some());
    }
}
