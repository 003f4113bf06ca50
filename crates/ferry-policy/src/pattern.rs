//! Wildcard patterns of IAM: `*` (any run of characters) and `?` (one character), nothing
//! else special. Compiled once; matching neither parses nor allocates.
//!
//! Action names compare case-insensitively, resource ARNs case-sensitively. A resource
//! pattern is matched the way the IAM Resource element documentation describes (reference
//! T12): the five colon-separated components before the resource part are matched one by one;
//! the resource part (after the fifth colon) is one component in which `*` crosses `:` and
//! `/`; and a pattern with fewer components whose last component ends in `*` lets that `*`
//! run to the end of the ARN (`arn:aws:s3:*`).

use wildmatch::WildMatch;

use crate::request::Context;

/// Stands for a literal `*` or `?` produced by the escapes `${*}` and `${?}`: private-use
/// characters that no wildcard means.
const LITERAL_STAR: char = '\u{E000}';
const LITERAL_QUESTION: char = '\u{E001}';

/// A compiled `*`/`?` pattern.
#[derive(Debug, Clone)]
pub struct Glob {
    matcher: WildMatch,
    /// No wildcard at all: compare directly.
    literal: Option<String>,
    case_insensitive: bool,
    /// Holds `${*}`/`${?}` placeholders: the input is translated before matching.
    escapes: bool,
}

impl Glob {
    pub fn new(pattern: &str, case_insensitive: bool) -> Glob {
        let literal = (!pattern.contains(['*', '?'])).then(|| {
            if case_insensitive {
                pattern.to_ascii_lowercase()
            } else {
                pattern.to_owned()
            }
        });
        Glob {
            matcher: if case_insensitive {
                WildMatch::new_case_insensitive(pattern)
            } else {
                WildMatch::new(pattern)
            },
            literal,
            case_insensitive,
            escapes: pattern.contains([LITERAL_STAR, LITERAL_QUESTION]),
        }
    }

    pub fn matches(&self, input: &str) -> bool {
        if self.escapes {
            let translated: String = input
                .chars()
                .map(|c| match c {
                    '*' => LITERAL_STAR,
                    '?' => LITERAL_QUESTION,
                    c => c,
                })
                .collect();
            return self.matcher.matches(&translated);
        }
        match &self.literal {
            Some(lit) if self.case_insensitive => lit.eq_ignore_ascii_case(input),
            Some(lit) => lit == input,
            None => self.matcher.matches(input),
        }
    }
}

/// An entry of `Action`/`NotAction`.
#[derive(Debug, Clone)]
pub struct ActionPattern {
    pub text: String,
    /// Where it is written (empty for policies read from JSON values).
    pub span: ferry_yaml::Span,
    glob: Glob,
    /// Why the text cannot be an action (`"s3:Get,Put"`, spaces): it then matches nothing.
    pub malformed: Option<String>,
}

impl ActionPattern {
    pub fn new(text: &str) -> ActionPattern {
        let malformed = if text == "*" {
            None
        } else if text.contains(char::is_whitespace) {
            Some("an action name has no spaces".to_owned())
        } else if text.contains(',') {
            Some("one action per string: a comma does not separate actions".to_owned())
        } else if text.matches(':').count() != 1 || text.starts_with(':') || text.ends_with(':') {
            Some("an action is written `service:Action`".to_owned())
        } else {
            None
        };
        ActionPattern {
            text: text.to_owned(),
            span: ferry_yaml::Span::default(),
            glob: Glob::new(text, true),
            malformed,
        }
    }

    #[must_use]
    pub fn at(mut self, span: ferry_yaml::Span) -> Self {
        self.span = span;
        self
    }

    /// `action` is `service:Name`, in any case.
    pub fn matches(&self, action: &str) -> bool {
        self.malformed.is_none() && self.glob.matches(action)
    }

    /// The service prefix, lowercased (`*` for the global wildcard).
    pub fn service(&self) -> String {
        self.text
            .split(':')
            .next()
            .unwrap_or("*")
            .to_ascii_lowercase()
    }
}

/// An entry of `Resource`/`NotResource`, or an `Arn*` condition value.
#[derive(Debug, Clone)]
pub struct ResourcePattern {
    pub text: String,
    pub span: ferry_yaml::Span,
    /// `None` when the text holds policy variables: compiled per request after substitution.
    compiled: Option<ArnGlob>,
}

impl ResourcePattern {
    /// `variables`: whether `${…}` is a policy variable here (Version 2012-10-17).
    pub fn new(text: &str, variables: bool) -> ResourcePattern {
        let has_variables = variables && text.contains("${");
        ResourcePattern {
            text: text.to_owned(),
            span: ferry_yaml::Span::default(),
            compiled: (!has_variables).then(|| ArnGlob::new(text)),
        }
    }

    #[must_use]
    pub fn at(mut self, span: ferry_yaml::Span) -> Self {
        self.span = span;
        self
    }

    pub fn has_variables(&self) -> bool {
        self.compiled.is_none()
    }

    /// Whether the pattern matches `resource`; `None` when a variable cannot be resolved
    /// (the resource then does not match, per the IAM variables documentation).
    pub fn matches(&self, resource: &str, context: &Context) -> bool {
        match &self.compiled {
            Some(glob) => glob.matches(resource),
            None => substitute(&self.text, context)
                .is_some_and(|text| ArnGlob::new(&text).matches(resource)),
        }
    }
}

/// A resource pattern split into ARN components.
#[derive(Debug, Clone)]
pub struct ArnGlob {
    kind: ArnGlobKind,
}

#[derive(Debug, Clone)]
enum ArnGlobKind {
    /// Not an ARN (`*`, `bucket*`): one pattern over the whole string.
    Whole(Glob),
    /// `arn:…` with its components; `open_tail` when the last one ends in `*` and there
    /// are fewer than six, so it runs to the end of the ARN.
    Components { parts: Vec<Glob>, open_tail: bool },
}

impl ArnGlob {
    pub fn new(pattern: &str) -> ArnGlob {
        if !pattern.starts_with("arn:") {
            return ArnGlob {
                kind: ArnGlobKind::Whole(Glob::new(pattern, false)),
            };
        }
        let parts: Vec<&str> = pattern.splitn(6, ':').collect();
        let open_tail = parts.len() < 6 && parts.last().is_some_and(|p| p.ends_with('*'));
        ArnGlob {
            kind: ArnGlobKind::Components {
                parts: parts.iter().map(|p| Glob::new(p, false)).collect(),
                open_tail,
            },
        }
    }

    pub fn matches(&self, input: &str) -> bool {
        match &self.kind {
            ArnGlobKind::Whole(glob) => glob.matches(input),
            ArnGlobKind::Components { parts, open_tail } => {
                let mut rest = input;
                for (i, part) in parts.iter().enumerate() {
                    let last = i + 1 == parts.len();
                    if last && *open_tail {
                        return part.matches(rest);
                    }
                    // The sixth component is everything after the fifth colon.
                    let (component, after) = if i == 5 {
                        (rest, None)
                    } else {
                        match rest.split_once(':') {
                            Some((c, a)) => (c, Some(a)),
                            None => (rest, None),
                        }
                    };
                    if !part.matches(component) {
                        return false;
                    }
                    match after {
                        Some(a) if !last => rest = a,
                        Some(_) => return false,
                        None => return last,
                    }
                }
                false
            }
        }
    }
}

/// A compiled `StringLike` or `ArnLike` condition value.
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    Glob(Glob),
    Arn(ArnGlob),
}

impl ValueMatcher {
    pub fn matches(&self, input: &str) -> bool {
        match self {
            ValueMatcher::Glob(g) => g.matches(input),
            ValueMatcher::Arn(a) => a.matches(input),
        }
    }
}

/// Replaces policy variables in `text` with values from the request context:
/// `${aws:username}`, `${aws:PrincipalTag/team, 'default'}`, and the escapes `${*}`, `${?}`,
/// `${$}`. `None` when a variable has no value and no default.
pub fn substitute(text: &str, context: &Context) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let inner = after[..end].trim();
        match inner {
            "*" => out.push(LITERAL_STAR),
            "?" => out.push(LITERAL_QUESTION),
            "$" => out.push('$'),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\''))),
                    None => (inner, None),
                };
                match context.single(key).or(default) {
                    Some(v) => out.push_str(v),
                    None => return None,
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(p: &str, input: &str) -> bool {
        ArnGlob::new(p).matches(input)
    }

    #[test]
    fn actions_are_case_insensitive_and_malformed_ones_match_nothing() {
        assert!(ActionPattern::new("s3:Get*").matches("S3:getobject"));
        assert!(ActionPattern::new("*").matches("kms:Decrypt"));
        assert!(!ActionPattern::new("s3:Get*").matches("s3:PutObject"));
        assert!(!ActionPattern::new("s3:GetObject,PutObject").matches("s3:GetObject"));
        assert!(!ActionPattern::new("s3:GetObject ").matches("s3:GetObject"));
    }

    #[test]
    fn arn_components_match_separately_and_the_resource_part_crosses_separators() {
        assert!(arn("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c"));
        assert!(!arn("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket"));
        assert!(arn("arn:aws:s3:::bucket*", "arn:aws:s3:::bucket-logs/x"));
        assert!(arn(
            "arn:aws:lambda:*:111122223333:function:*",
            "arn:aws:lambda:eu-west-1:111122223333:function:f:live"
        ));
        assert!(!arn(
            "arn:aws:lambda:eu-west-1:111122223333:function:f",
            "arn:aws:lambda:eu-west-1:111122223333:function:f:live"
        ));
        // A `*` inside a component does not run into the next one.
        assert!(!arn(
            "arn:aws:ec2:us-*:111122223333:instance/i",
            "arn:aws:ec2:us-east-1:x:111122223333:instance/i"
        ));
        // A short pattern ending in `*` runs to the end.
        assert!(arn("arn:aws:s3:*", "arn:aws:s3:::bucket/key"));
        assert!(arn("arn:aws:iam::*", "arn:aws:iam::111122223333:role/x"));
        assert!(!arn(
            "arn:aws:iam::111122223333",
            "arn:aws:iam::111122223333:role/x"
        ));
        // Case matters in ARNs.
        assert!(!arn("arn:aws:s3:::Bucket/*", "arn:aws:s3:::bucket/x"));
        // Not an ARN pattern: one glob over the whole string.
        assert!(arn("*", "*"));
        assert!(!arn("arn:aws:s3:::*", "*"));
    }

    #[test]
    fn variables_are_substituted_and_unresolved_ones_do_not_match() {
        let ctx = Context::from_pairs([("aws:username", "alice")]);
        let p = ResourcePattern::new("arn:aws:s3:::home/${aws:username}/*", true);
        assert!(p.matches("arn:aws:s3:::home/alice/x", &ctx));
        assert!(!p.matches("arn:aws:s3:::home/bob/x", &ctx));
        assert!(!p.matches("arn:aws:s3:::home/alice/x", &Context::default()));
        let with_default =
            ResourcePattern::new("arn:aws:s3:::t/${aws:PrincipalTag/team, 'all'}/*", true);
        assert!(with_default.matches("arn:aws:s3:::t/all/x", &Context::default()));
        // Without Version 2012-10-17 the text is literal.
        let old = ResourcePattern::new("arn:aws:s3:::home/${aws:username}", false);
        assert!(old.matches("arn:aws:s3:::home/${aws:username}", &ctx));
    }

    #[test]
    fn escapes_are_literal_characters_not_wildcards() {
        let p = ResourcePattern::new("arn:aws:s3:::b/${*}", true);
        assert!(p.matches("arn:aws:s3:::b/*", &Context::default()));
        assert!(!p.matches("arn:aws:s3:::b/anything", &Context::default()));
        assert_eq!(substitute("a${$}b", &Context::default()).unwrap(), "a$b");
    }
}
