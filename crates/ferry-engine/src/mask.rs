//! Secret masking for every log line and stored output.
//!
//! Each registered value, its base64 and its URL-encoded form become `***`. Output arrives
//! in arbitrary chunks, so a secret can be split across two writes: [`LineMasker`] holds
//! bytes until a line is complete and, when it must flush a long unfinished line, keeps back
//! enough of its end that no partial secret leaves.

use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use secrecy::{ExposeSecret, SecretString};

use crate::encoding::{base64, url_encode};

/// Values shorter than this are not masked: masking "a" would garble every line.
pub const MIN_SECRET_LEN: usize = 4;
const MASK: &str = "***";

/// The set of secret values to hide, shared by every log of an execution.
#[derive(Clone, Default)]
pub struct Masker {
    inner: Arc<RwLock<Patterns>>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Masker")
            .field("patterns", &self.read().values.len())
            .finish()
    }
}

#[derive(Default)]
struct Patterns {
    values: Vec<String>,
    automaton: Option<AhoCorasick>,
    longest: usize,
}

impl Masker {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Patterns> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a secret. Returns false (and masks nothing) for a value too short to mask.
    pub fn register(&self, secret: &SecretString) -> bool {
        let value = secret.expose_secret();
        if value.chars().count() < MIN_SECRET_LEN {
            return false;
        }
        let mut forms = vec![
            value.to_owned(),
            base64(value.as_bytes()),
            url_encode(value),
        ];
        // A multi-line value (a PEM key) shows up one line at a time.
        forms.extend(
            value
                .lines()
                .filter(|l| l.trim().chars().count() >= MIN_SECRET_LEN)
                .map(str::to_owned),
        );
        let mut p = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for form in forms {
            if !p.values.contains(&form) {
                p.values.push(form);
            }
        }
        p.longest = p.values.iter().map(String::len).max().unwrap_or(0);
        p.automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&p.values)
            .ok();
        true
    }

    /// Length in bytes of the longest form: how much of an unfinished line must be held back.
    pub fn longest(&self) -> usize {
        self.read().longest
    }

    pub fn mask(&self, text: &str) -> String {
        match &self.read().automaton {
            Some(ac) => ac.replace_all(text, &vec![MASK; ac.patterns_len()]),
            None => text.to_owned(),
        }
    }

    /// Masks every string inside a JSON value.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.mask(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (self.mask(k), self.mask_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Where masking must not cut: the start of a match that crosses `cut`, if any.
    fn safe_cut(&self, text: &str, cut: usize) -> usize {
        let p = self.read();
        let Some(ac) = &p.automaton else { return cut };
        ac.find_iter(text)
            .find(|m| m.start() < cut && m.end() > cut)
            .map_or(cut, |m| m.start())
    }
}

/// Turns a stream of output chunks into masked lines.
#[derive(Debug)]
pub struct LineMasker {
    masker: Masker,
    pending: Vec<u8>,
}

/// An unfinished line longer than this is flushed in part.
const FLUSH_AT: usize = 64 * 1024;

impl LineMasker {
    pub fn new(masker: Masker) -> Self {
        LineMasker {
            masker,
            pending: Vec::new(),
        }
    }

    /// Adds a chunk; returns the complete lines it finished, masked, without line breaks.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(pos) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            lines.push(self.masker.mask(text.trim_end_matches('\r')));
        }
        if self.pending.len() > FLUSH_AT {
            // Keep back what could be the start of a secret; never cut inside one.
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            let keep = self.masker.longest().saturating_sub(1);
            let mut cut = text.len().saturating_sub(keep);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let cut = self.masker.safe_cut(&text, cut);
            lines.push(self.masker.mask(&text[..cut]));
            self.pending = text.as_bytes()[cut..].to_vec();
        }
        lines
    }

    /// What is left at the end of the stream, masked.
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.pending);
        Some(self.masker.mask(&String::from_utf8_lossy(&rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(secret: &str) -> Masker {
        let m = Masker::default();
        assert!(m.register(&SecretString::from(secret.to_owned())));
        m
    }

    #[test]
    fn masks_the_value_its_base64_and_its_url_encoding() {
        let m = masker("s3cr3t/value");
        assert_eq!(m.mask("token=s3cr3t/value;"), "token=***;");
        assert_eq!(
            m.mask(&format!("b64 {}", base64(b"s3cr3t/value"))),
            "b64 ***"
        );
        assert_eq!(m.mask("url s3cr3t%2Fvalue"), "url ***");
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn a_secret_split_across_two_writes_is_masked() {
        let m = masker("hunter2-password");
        let mut lines = LineMasker::new(m);
        let mut out = lines.push(b"login with hunter2-pa");
        assert!(
            out.is_empty(),
            "nothing leaves before the line ends: {out:?}"
        );
        out.extend(lines.push(b"ssword done\nnext"));
        out.extend(lines.finish());
        assert_eq!(out, vec!["login with *** done", "next"]);
    }

    #[test]
    fn a_long_unfinished_line_is_flushed_without_leaking_a_split_secret() {
        let m = masker("split-secret-value");
        let mut lines = LineMasker::new(m);
        let mut filler = vec![b'x'; FLUSH_AT];
        filler.extend_from_slice(b"split-sec");
        let first = lines.push(&filler);
        let second = lines.push(b"ret-value tail\n");
        let all = [first, second].concat().join("");
        assert!(!all.contains("split-sec"), "a part of the secret leaked");
        assert!(all.ends_with("*** tail"));
    }

    #[test]
    fn short_values_are_refused_and_debug_never_prints_values() {
        let m = Masker::default();
        assert!(!m.register(&SecretString::from("abc".to_owned())));
        assert!(m.register(&SecretString::from("long-enough".to_owned())));
        assert!(!format!("{m:?}").contains("long-enough"));
    }

    #[test]
    fn multi_line_secrets_are_masked_line_by_line_and_in_json() {
        let m = masker("-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----");
        assert_eq!(m.mask("MIIEvQIBADANBg"), "***");
        let v = serde_json::json!({"out": ["x MIIEvQIBADANBg"]});
        assert_eq!(m.mask_json(&v), serde_json::json!({"out": ["x ***"]}));
    }
}
