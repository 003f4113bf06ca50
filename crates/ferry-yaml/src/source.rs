use std::path::Path;

use serde::Serialize;

use crate::{Diagnostic, Limits};

/// A byte range in a [`SourceFile`]; `end` is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A value with the span it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// A 1-based line and 1-based column (counted in characters, as editors count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// The text of one file and the name it is reported under.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// A source from text already in memory; `name` is what diagnostics print.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceFile {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// Reads a file, refusing what cannot be a hand-written YAML file: one over
    /// `limits.max_bytes`, one holding NUL bytes, or one that is not UTF-8. The size is
    /// checked before reading, so a 50 MB file costs nothing.
    pub fn read(path: &Path, limits: &Limits) -> Result<SourceFile, Diagnostic> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| {
            Diagnostic::error("unreadable-file", format!("cannot read {name}: {e}"))
        })?;
        if meta.is_dir() {
            return Err(Diagnostic::error(
                "unreadable-file",
                format!("{name} is a directory, not a file"),
            ));
        }
        if meta.len() > limits.max_bytes as u64 {
            return Err(too_large(&name, meta.len(), limits.max_bytes));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Diagnostic::error("unreadable-file", format!("cannot read {name}: {e}"))
        })?;
        Self::from_bytes(name, bytes, limits)
    }

    /// Like [`SourceFile::read`] for bytes already in memory (standard input, tests).
    pub fn from_bytes(
        name: impl Into<String>,
        bytes: Vec<u8>,
        limits: &Limits,
    ) -> Result<SourceFile, Diagnostic> {
        let name = name.into();
        if bytes.len() > limits.max_bytes {
            return Err(too_large(&name, bytes.len() as u64, limits.max_bytes));
        }
        if let Some(nul) = bytes.iter().position(|&b| b == 0) {
            let (line, column) = line_col_of_byte(&bytes, nul);
            return Err(Diagnostic::error(
                "binary-file",
                format!(
                    "{name} is not a text file: it holds a NUL byte at line {line}, column {column}"
                ),
            )
            .with_hint("point ferry at the YAML file itself"));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(name, text)),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                let (line, column) = line_col_of_byte(&bytes, at);
                Err(Diagnostic::error(
                    "not-utf8",
                    format!(
                        "{name} is not UTF-8 text: byte 0x{:02x} at line {line}, column {column} is invalid",
                        bytes[at]
                    ),
                )
                .with_hint("save the file as UTF-8"))
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The 1-based line and column of a byte offset (clamped to the text).
    pub fn location(&self, offset: usize) -> Location {
        let offset = self.floor_char_boundary(offset.min(self.text.len()));
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = self.line_starts[line_index];
        Location {
            line: line_index + 1,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        self.text[start..end].trim_end_matches('\r')
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        let start = self.floor_char_boundary(span.start.min(self.text.len()));
        let end = self.floor_char_boundary(span.end.clamp(start, self.text.len()));
        &self.text[start..end]
    }

    /// Byte offset of the `index`-th character (the parser counts characters).
    pub(crate) fn byte_of_char(&self, index: usize) -> usize {
        self.text
            .char_indices()
            .nth(index)
            .map_or(self.text.len(), |(b, _)| b)
    }

    fn floor_char_boundary(&self, mut offset: usize) -> usize {
        while offset > 0 && !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }
}

fn too_large(name: &str, size: u64, limit: usize) -> Diagnostic {
    Diagnostic::error(
        "file-too-large",
        format!(
            "{name} is {size} bytes; ferry reads files of at most {limit} bytes ({} KiB)",
            limit / 1024
        ),
    )
    .with_hint("a pipeline file this large is almost certainly the wrong file")
}

fn line_col_of_byte(bytes: &[u8], at: usize) -> (usize, usize) {
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// A spanned value has the schema of the value: spans exist only while reading the file.
#[cfg(feature = "schemars")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_characters_from_one() {
        let f = SourceFile::new("f", "ab\ncé: x\n");
        assert_eq!(f.location(0), Location { line: 1, column: 1 });
        assert_eq!(f.location(3), Location { line: 2, column: 1 });
        // 'é' is two bytes; ':' is the third character of line 2.
        assert_eq!(f.location(6), Location { line: 2, column: 3 });
        assert_eq!(f.line(2), "cé: x");
        assert_eq!(f.line(9), "");
    }

    #[test]
    fn nul_bytes_and_bad_utf8_are_refused_with_a_position() {
        let limits = Limits::default();
        let e = SourceFile::from_bytes("x", b"a: 1\nb\0".to_vec(), &limits).unwrap_err();
        assert!(e.message.contains("line 2, column 2"), "{}", e.message);
        let e = SourceFile::from_bytes("x", b"a: \xff".to_vec(), &limits).unwrap_err();
        assert!(
            e.message.contains("0xff at line 1, column 4"),
            "{}",
            e.message
        );
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let limits = Limits {
            max_bytes: 10,
            ..Limits::default()
        };
        let e = SourceFile::from_bytes("x", vec![b'a'; 11], &limits).unwrap_err();
        assert_eq!(e.code, "file-too-large");
    }
}
