//! Policy JSON → [`Policy`]. JSON is read with the YAML parser of `ferry-yaml` (JSON is
//! YAML), so every error has a JSON path *and* a line and column, and duplicate keys — which
//! most JSON parsers silently collapse (reference T14) — are caught.

use ferry_yaml::{Diagnostic, Limits, Node, ScalarStyle, SourceFile, Span, Value};

use crate::ast::*;
use crate::pattern::{ActionPattern, ArnGlob, Glob, ResourcePattern, ValueMatcher};

/// A problem in a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PolicyError {
    /// Where in the document, e.g. `Statement[0].Condition.StringEquals`.
    pub path: String,
    pub message: String,
    pub span: Option<Span>,
}

impl PolicyError {
    pub fn to_diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::error("policy-syntax", format!("{}: {}", self.path, self.message))
            .with_hint("see the IAM JSON policy grammar: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html");
        match self.span {
            Some(s) => d.at(s),
            None => d,
        }
    }
}

/// Parses policy text (a file). Errors carry spans into `file`.
pub fn parse_file(file: &SourceFile) -> Result<Policy, Vec<PolicyError>> {
    let mut diagnostics = Vec::new();
    let limits = Limits {
        max_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let Some(root) = ferry_yaml::parse(file, &limits, &mut diagnostics) else {
        return Err(diagnostics
            .into_iter()
            .map(|d| PolicyError {
                path: "$".into(),
                message: d.message,
                span: d.span,
            })
            .collect());
    };
    let mut errors: Vec<PolicyError> = diagnostics
        .into_iter()
        .map(|d| PolicyError {
            path: "$".into(),
            message: d.message,
            span: d.span,
        })
        .collect();
    let policy = Parser {
        errors: &mut errors,
    }
    .policy(&root);
    if errors.is_empty() {
        policy.ok_or_default()
    } else {
        Err(errors)
    }
}

/// Parses a policy already read as JSON (for example from a JSON-lines case file).
pub fn parse_json(value: &serde_json::Value) -> Result<Policy, Vec<PolicyError>> {
    let root = node_from_json(value);
    let mut errors = Vec::new();
    let policy = Parser {
        errors: &mut errors,
    }
    .policy(&root);
    if errors.is_empty() {
        policy.ok_or_default()
    } else {
        Err(errors)
    }
}

/// Parses policy text given as a string (`name` is used for nothing but errors).
pub fn parse_str(text: &str) -> Result<Policy, Vec<PolicyError>> {
    parse_file(&SourceFile::new("policy.json", text))
}

trait OkOrDefault {
    fn ok_or_default(self) -> Result<Policy, Vec<PolicyError>>;
}

impl OkOrDefault for Option<Policy> {
    fn ok_or_default(self) -> Result<Policy, Vec<PolicyError>> {
        self.ok_or_else(|| {
            vec![PolicyError {
                path: "$".into(),
                message: "not a policy".into(),
                span: None,
            }]
        })
    }
}

fn node_from_json(value: &serde_json::Value) -> Node {
    let span = Span::default();
    let scalar = |text: String, style| Node {
        value: Value::Scalar(ferry_yaml::Scalar { text, style }),
        span,
    };
    match value {
        serde_json::Value::Null => Node {
            value: Value::Null,
            span,
        },
        serde_json::Value::Bool(b) => scalar(b.to_string(), ScalarStyle::Plain),
        serde_json::Value::Number(n) => scalar(n.to_string(), ScalarStyle::Plain),
        serde_json::Value::String(s) => scalar(s.clone(), ScalarStyle::Quoted),
        serde_json::Value::Array(items) => Node {
            value: Value::Seq(items.iter().map(node_from_json).collect()),
            span,
        },
        serde_json::Value::Object(map) => Node {
            value: Value::Map(
                map.iter()
                    .map(|(k, v)| ferry_yaml::Entry {
                        key: scalar(k.clone(), ScalarStyle::Quoted),
                        value: node_from_json(v),
                    })
                    .collect(),
            ),
            span,
        },
    }
}

struct Parser<'e> {
    errors: &'e mut Vec<PolicyError>,
}

fn spanned(span: Span) -> Option<Span> {
    (span != Span::default()).then_some(span)
}

impl Parser<'_> {
    fn error(&mut self, path: &str, node: &Node, message: impl Into<String>) {
        self.errors.push(PolicyError {
            path: path.to_owned(),
            message: message.into(),
            span: spanned(node.span),
        });
    }

    fn entries<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [ferry_yaml::Entry]> {
        match &node.value {
            Value::Map(entries) => Some(entries),
            _ => {
                self.error(
                    path,
                    node,
                    format!("must be an object, not {}", node.kind_name()),
                );
                None
            }
        }
    }

    /// A string, or a list of strings (IAM accepts either almost everywhere).
    fn strings(&mut self, node: &Node, path: &str) -> Vec<(String, Span)> {
        match &node.value {
            Value::Scalar(s) => vec![(s.text.clone(), node.span)],
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match &item.value {
                        Value::Scalar(s) => out.push((s.text.clone(), item.span)),
                        _ => self.error(
                            &format!("{path}[{i}]"),
                            item,
                            format!("must be a string, not {}", item.kind_name()),
                        ),
                    }
                }
                if out.is_empty() && items.is_empty() {
                    self.error(path, node, "must not be an empty list");
                }
                out
            }
            _ => {
                self.error(
                    path,
                    node,
                    format!(
                        "must be a string or a list of strings, not {}",
                        node.kind_name()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn policy(&mut self, root: &Node) -> Option<Policy> {
        let entries = self.entries(root, "$")?;
        let mut version = Version::Missing;
        let mut id = None;
        let mut statements = Vec::new();
        let mut saw_statement = false;
        for e in entries {
            let key = e.key.as_str().unwrap_or_default();
            match key {
                "Version" => match e.value.as_str() {
                    Some("2012-10-17") => version = Version::V2012_10_17,
                    Some("2008-10-17") => version = Version::V2008_10_17,
                    _ => self.error(
                        "Version",
                        &e.value,
                        "must be \"2012-10-17\" (or the old \"2008-10-17\")",
                    ),
                },
                "Id" => id = e.value.as_str().map(str::to_owned),
                "Statement" => saw_statement = true,
                other => self.error(
                    other,
                    &e.key,
                    format!("unknown element `{other}`: a policy has Version, Id and Statement"),
                ),
            }
        }
        // Statements after Version, whatever the order in the file: variables depend on it.
        for e in entries {
            if e.key.as_str() == Some("Statement") {
                match &e.value.value {
                    Value::Map(_) => {
                        statements.extend(self.statement(&e.value, 0, "Statement", version))
                    }
                    Value::Seq(items) => {
                        for (i, item) in items.iter().enumerate() {
                            statements.extend(self.statement(
                                item,
                                i,
                                &format!("Statement[{i}]"),
                                version,
                            ));
                        }
                    }
                    _ => self.error(
                        "Statement",
                        &e.value,
                        "must be an object or a list of objects",
                    ),
                }
            }
        }
        if !saw_statement {
            self.error("$", root, "a policy needs a `Statement`");
        }
        Some(Policy {
            id,
            version,
            statements,
        })
    }

    fn statement(
        &mut self,
        node: &Node,
        index: usize,
        path: &str,
        version: Version,
    ) -> Option<Statement> {
        let entries = self.entries(node, path)?;
        let variables = version == Version::V2012_10_17;
        let mut sid = None;
        let mut effect = None;
        let mut principal = None;
        let mut action = None;
        let mut resource = None;
        let mut conditions = Vec::new();
        for e in entries {
            let key = e.key.as_str().unwrap_or_default();
            let here = format!("{path}.{key}");
            match key {
                "Sid" => sid = e.value.as_str().map(str::to_owned),
                "Effect" => match e.value.as_str() {
                    Some("Allow") => effect = Some(Effect::Allow),
                    Some("Deny") => effect = Some(Effect::Deny),
                    _ => self.error(
                        &here,
                        &e.value,
                        "must be \"Allow\" or \"Deny\" (case matters)",
                    ),
                },
                "Principal" | "NotPrincipal" => {
                    if principal.is_some() {
                        self.error(
                            &here,
                            &e.key,
                            "a statement has either Principal or NotPrincipal, not both",
                        );
                    }
                    principal = self.principal(&e.value, &here, key == "NotPrincipal");
                }
                "Action" | "NotAction" => {
                    if action.is_some() {
                        self.error(
                            &here,
                            &e.key,
                            "a statement has either Action or NotAction, not both",
                        );
                    }
                    let patterns = self
                        .strings(&e.value, &here)
                        .iter()
                        .map(|(t, span)| ActionPattern::new(t).at(*span))
                        .collect();
                    action = Some(ActionClause {
                        negated: key == "NotAction",
                        patterns,
                        span: e.value.span,
                    });
                }
                "Resource" | "NotResource" => {
                    if resource.is_some() {
                        self.error(
                            &here,
                            &e.key,
                            "a statement has either Resource or NotResource, not both",
                        );
                    }
                    let patterns = self
                        .strings(&e.value, &here)
                        .iter()
                        .map(|(t, span)| ResourcePattern::new(t, variables).at(*span))
                        .collect();
                    resource = Some(ResourceClause {
                        negated: key == "NotResource",
                        patterns,
                        span: e.value.span,
                    });
                }
                "Condition" => conditions = self.conditions(&e.value, &here, variables),
                other => self.error(
                    &here,
                    &e.key,
                    format!("unknown element `{other}` in a statement"),
                ),
            }
        }
        let Some(effect) = effect else {
            self.error(
                path,
                node,
                "a statement needs \"Effect\": \"Allow\" or \"Deny\"",
            );
            return None;
        };
        let Some(action) = action else {
            self.error(path, node, "a statement needs Action or NotAction");
            return None;
        };
        Some(Statement {
            sid,
            index,
            effect,
            principal,
            action,
            resource,
            conditions,
            span: node.span,
        })
    }

    fn principal(&mut self, node: &Node, path: &str, negated: bool) -> Option<PrincipalClause> {
        let mut values = Vec::new();
        match &node.value {
            Value::Scalar(s) if s.text == "*" => values.push(PrincipalValue::Everyone),
            Value::Scalar(s) => {
                self.error(
                    path,
                    node,
                    format!(
                        "a principal string can only be \"*\"; write {{\"AWS\": \"{}\"}}",
                        s.text
                    ),
                );
                return None;
            }
            Value::Map(entries) => {
                for e in entries {
                    let kind = e.key.as_str().unwrap_or_default();
                    let here = format!("{path}.{kind}");
                    for (text, _) in self.strings(&e.value, &here) {
                        values.push(match kind {
                            "AWS" if text == "*" => PrincipalValue::Everyone,
                            "AWS" => PrincipalValue::Aws(aws_principal(&text)),
                            "Service" => PrincipalValue::Service(text),
                            "Federated" => PrincipalValue::Federated(text),
                            "CanonicalUser" => PrincipalValue::CanonicalUser(text),
                            other => {
                                self.error(&here, &e.key, format!("unknown principal type `{other}`: use AWS, Service, Federated or CanonicalUser"));
                                continue;
                            }
                        });
                    }
                }
            }
            _ => {
                self.error(
                    path,
                    node,
                    format!(
                        "must be \"*\" or an object such as {{\"AWS\": [...]}}, not {}",
                        node.kind_name()
                    ),
                );
                return None;
            }
        }
        Some(PrincipalClause {
            negated,
            values,
            span: node.span,
        })
    }

    fn conditions(&mut self, node: &Node, path: &str, variables: bool) -> Vec<Condition> {
        let Some(blocks) = self.entries(node, path) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for block in blocks {
            let name = block.key.as_str().unwrap_or_default();
            let here = format!("{path}.{name}");
            let Some(operator) = operator(name) else {
                self.error(
                    &here,
                    &block.key,
                    format!("unknown condition operator `{name}`"),
                );
                continue;
            };
            let Some(keys) = self.entries(&block.value, &here) else {
                continue;
            };
            if keys.is_empty() {
                self.error(
                    &here,
                    &block.value,
                    "an operator needs at least one condition key",
                );
            }
            for k in keys {
                let key = k.key.as_str().unwrap_or_default().to_owned();
                let key_path = format!("{here}.{key}");
                let values = self.strings(&k.value, &key_path);
                let glob_like = matches!(
                    operator.kind,
                    OperatorKind::StringLike | OperatorKind::StringNotLike
                );
                let arn_like = matches!(
                    operator.kind,
                    OperatorKind::ArnLike
                        | OperatorKind::ArnNotLike
                        | OperatorKind::ArnEquals
                        | OperatorKind::ArnNotEquals
                );
                let values = values
                    .into_iter()
                    .map(|(text, _)| {
                        let has_variables =
                            variables && operator.kind.takes_variables() && text.contains("${");
                        let glob = (!has_variables && (glob_like || arn_like)).then(|| {
                            if arn_like {
                                ValueMatcher::Arn(ArnGlob::new(&text))
                            } else {
                                ValueMatcher::Glob(Glob::new(&text, false))
                            }
                        });
                        ConditionValue {
                            text,
                            glob,
                            has_variables,
                        }
                    })
                    .collect();
                out.push(Condition {
                    operator,
                    key_lower: key.to_ascii_lowercase(),
                    key,
                    values,
                    span: k.key.span,
                });
            }
        }
        out
    }
}

/// Parses a condition operator name with its `ForAnyValue:`/`ForAllValues:` prefix and
/// `IfExists` suffix.
pub fn operator(name: &str) -> Option<Operator> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (SetQualifier::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (SetQualifier::ForAllValues, r)
    } else {
        (SetQualifier::None, name)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(b) => (true, b),
        None => (false, rest),
    };
    let kind = OperatorKind::from_name(base)?;
    if kind == OperatorKind::Null && if_exists {
        return None;
    }
    Some(Operator {
        kind,
        set,
        if_exists,
    })
}

/// Reads an `AWS` principal value.
pub fn aws_principal(text: &str) -> AwsPrincipal {
    if text.len() == 12 && text.chars().all(|c| c.is_ascii_digit()) {
        return AwsPrincipal::Account(text.to_owned());
    }
    let invalid = || AwsPrincipal::Invalid(text.to_owned());
    // Partial wildcards are not allowed in principals (only the bare "*").
    if text.contains(['*', '?']) {
        return invalid();
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [_, _, service, _, account, resource] = parts.as_slice() else {
        return invalid();
    };
    let account = (*account).to_owned();
    let last = |r: &str| r.rsplit('/').next().unwrap_or(r).to_owned();
    match *service {
        "iam" if *resource == "root" => AwsPrincipal::Account(account),
        "iam" if resource.starts_with("user/") => AwsPrincipal::User {
            account,
            name: last(resource),
        },
        "iam" if resource.starts_with("role/") => AwsPrincipal::Role {
            account,
            name: last(resource),
        },
        "sts" => match resource.split('/').collect::<Vec<_>>().as_slice() {
            ["assumed-role", role, session] => AwsPrincipal::Session {
                account,
                role: (*role).to_owned(),
                session: (*session).to_owned(),
            },
            ["federated-user", name] => AwsPrincipal::FederatedUser {
                account,
                name: (*name).to_owned(),
            },
            _ => invalid(),
        },
        _ => invalid(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse_str(text)
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn statement_list_or_single_and_every_element() {
        let p = parse_str(r#"{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","NotPrincipal":{"AWS":["111122223333","arn:aws:iam::111122223333:role/r"]},"NotAction":"s3:*","NotResource":["arn:aws:s3:::b"],"Condition":{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*"]}}}}"#).unwrap();
        let s = &p.statements[0];
        assert_eq!(s.sid.as_deref(), Some("A"));
        assert!(s.principal.as_ref().unwrap().negated);
        assert!(s.action.negated && s.resource.as_ref().unwrap().negated);
        let c = &s.conditions[0];
        assert_eq!(
            c.operator,
            Operator {
                kind: OperatorKind::StringLike,
                set: SetQualifier::ForAnyValue,
                if_exists: true
            }
        );
        assert_eq!(c.key_lower, "aws:tagkeys");
    }

    #[test]
    fn errors_name_the_json_path_and_position() {
        let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"allow\", \"Action\": \"s3:*\", \"Condition\": {\"StringEqual\": {\"a\": \"b\"}}}]\n}";
        let errs = parse_str(text).unwrap_err();
        assert_eq!(errs[0].path, "Statement[0].Effect");
        assert!(errs[0].span.is_some());
        assert_eq!(errs[1].path, "Statement[0].Condition.StringEqual");
        assert!(errs[1].message.contains("unknown condition operator"));
    }

    #[test]
    fn duplicate_keys_and_bad_principals_are_errors() {
        assert!(
            errors(r#"{"Statement":[{"Effect":"Allow","Effect":"Deny","Action":"*"}]}"#)[0]
                .contains("duplicate key")
        );
        assert!(errors(r#"{"Statement":[{"Effect":"Allow","Principal":"arn:aws:iam::111122223333:root","Action":"*"}]}"#)[0].contains("can only be"));
        assert!(
            errors(
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"StringEquals":{}}}]}"#
            )[0]
            .contains("at least one")
        );
        assert!(errors(r#"{"Statement":[{"Effect":"Allow","Action":"*","Condition":{"NullIfExists":{"a":"true"}}}]}"#)[0].contains("unknown condition operator"));
    }

    #[test]
    fn principal_forms() {
        assert_eq!(
            aws_principal("arn:aws:iam::111122223333:root"),
            AwsPrincipal::Account("111122223333".into())
        );
        assert_eq!(
            aws_principal("arn:aws:iam::111122223333:role/p/deploy"),
            AwsPrincipal::Role {
                account: "111122223333".into(),
                name: "deploy".into()
            }
        );
        assert!(matches!(
            aws_principal("arn:aws:sts::111122223333:assumed-role/r/*"),
            AwsPrincipal::Invalid(_)
        ));
        assert!(matches!(
            aws_principal("AROAEXAMPLEID"),
            AwsPrincipal::Invalid(_)
        ));
    }
}
