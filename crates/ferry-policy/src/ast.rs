//! A parsed IAM policy document. Patterns are compiled once here, so that evaluation does
//! no parsing and no allocation per wildcard match.

use ferry_yaml::Span;

use crate::pattern::{ActionPattern, ResourcePattern, ValueMatcher};

/// One policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The `Id` element, if any.
    pub id: Option<String>,
    pub version: Version,
    pub statements: Vec<Statement>,
}

/// The `Version` element. Policy variables exist only in `2012-10-17`; in older or
/// unversioned documents `${…}` is literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2012_10_17,
    V2008_10_17,
    Missing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub struct Statement {
    pub sid: Option<String>,
    /// Position in the policy's statement list.
    pub index: usize,
    pub effect: Effect,
    /// `Principal` or `NotPrincipal`; `None` in identity policies.
    pub principal: Option<PrincipalClause>,
    /// `Action` or `NotAction`.
    pub action: ActionClause,
    /// `Resource` or `NotResource`; `None` in trust and repository policies, where the
    /// resource is the one the policy is attached to.
    pub resource: Option<ResourceClause>,
    /// Every condition must hold.
    pub conditions: Vec<Condition>,
    /// Where the statement is in its file (empty for policies read from JSON values).
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct PrincipalClause {
    /// `NotPrincipal`.
    pub negated: bool,
    pub values: Vec<PrincipalValue>,
    pub span: Span,
}

/// One entry of a `Principal` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalValue {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Everyone,
    Aws(AwsPrincipal),
    /// `{"Service": "lambda.amazonaws.com"}`.
    Service(String),
    /// `{"Federated": …}`: identity providers, for web-identity and SAML trust policies.
    Federated(String),
    /// `{"CanonicalUser": …}`: S3 only.
    CanonicalUser(String),
}

/// An `AWS` principal as written in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// `"111122223333"` or `arn:aws:iam::111122223333:root`: a delegation to the account.
    Account(String),
    User {
        account: String,
        name: String,
    },
    /// Matches every session of the role. Role names are unique in an account whatever
    /// their path, so the path is not needed to match.
    Role {
        account: String,
        name: String,
    },
    /// `arn:aws:sts::A:assumed-role/R/S`: exactly that session.
    Session {
        account: String,
        role: String,
        session: String,
    },
    FederatedUser {
        account: String,
        name: String,
    },
    /// Anything else (a partial wildcard, a unique id such as `AROA…`): matches nobody.
    Invalid(String),
}

#[derive(Debug, Clone)]
pub struct ActionClause {
    /// `NotAction`.
    pub negated: bool,
    pub patterns: Vec<ActionPattern>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ResourceClause {
    /// `NotResource`.
    pub negated: bool,
    pub patterns: Vec<ResourcePattern>,
    pub span: Span,
}

/// One key under one operator: `"StringEquals": {"aws:username": ["a", "b"]}`.
#[derive(Debug, Clone)]
pub struct Condition {
    pub operator: Operator,
    /// The key as written.
    pub key: String,
    /// The key lowercased: condition keys are case-insensitive.
    pub key_lower: String,
    pub values: Vec<ConditionValue>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ConditionValue {
    pub text: String,
    /// Compiled for `StringLike`/`ArnLike` and friends; `None` when the text holds a policy
    /// variable (compiled at evaluation, after substitution).
    pub glob: Option<ValueMatcher>,
    pub has_variables: bool,
}

/// A condition operator with its modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub kind: OperatorKind,
    pub set: SetQualifier,
    /// `…IfExists`: true when the key is absent.
    pub if_exists: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl OperatorKind {
    const ALL: [(&'static str, OperatorKind); 27] = [
        ("StringEquals", OperatorKind::StringEquals),
        ("StringNotEquals", OperatorKind::StringNotEquals),
        (
            "StringEqualsIgnoreCase",
            OperatorKind::StringEqualsIgnoreCase,
        ),
        (
            "StringNotEqualsIgnoreCase",
            OperatorKind::StringNotEqualsIgnoreCase,
        ),
        ("StringLike", OperatorKind::StringLike),
        ("StringNotLike", OperatorKind::StringNotLike),
        ("NumericEquals", OperatorKind::NumericEquals),
        ("NumericNotEquals", OperatorKind::NumericNotEquals),
        ("NumericLessThan", OperatorKind::NumericLessThan),
        ("NumericLessThanEquals", OperatorKind::NumericLessThanEquals),
        ("NumericGreaterThan", OperatorKind::NumericGreaterThan),
        (
            "NumericGreaterThanEquals",
            OperatorKind::NumericGreaterThanEquals,
        ),
        ("DateEquals", OperatorKind::DateEquals),
        ("DateNotEquals", OperatorKind::DateNotEquals),
        ("DateLessThan", OperatorKind::DateLessThan),
        ("DateLessThanEquals", OperatorKind::DateLessThanEquals),
        ("DateGreaterThan", OperatorKind::DateGreaterThan),
        ("DateGreaterThanEquals", OperatorKind::DateGreaterThanEquals),
        ("Bool", OperatorKind::Bool),
        ("BinaryEquals", OperatorKind::BinaryEquals),
        ("IpAddress", OperatorKind::IpAddress),
        ("NotIpAddress", OperatorKind::NotIpAddress),
        ("ArnEquals", OperatorKind::ArnEquals),
        ("ArnLike", OperatorKind::ArnLike),
        ("ArnNotEquals", OperatorKind::ArnNotEquals),
        ("ArnNotLike", OperatorKind::ArnNotLike),
        ("Null", OperatorKind::Null),
    ];

    /// Operator names are case-sensitive, as AWS reads them.
    pub fn from_name(name: &str) -> Option<OperatorKind> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        Self::ALL.iter().map(|(n, _)| *n)
    }

    /// "None of the values" operators: several values are ANDed, and an absent key makes
    /// the condition true.
    pub fn is_negated(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Whether policy variables are substituted in this operator's values.
    pub fn takes_variables(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            StringEquals
                | StringNotEquals
                | StringEqualsIgnoreCase
                | StringNotEqualsIgnoreCase
                | StringLike
                | StringNotLike
                | ArnEquals
                | ArnLike
                | ArnNotEquals
                | ArnNotLike
        )
    }
}

impl Policy {
    /// Whether any statement names a principal: resource policies do, identity policies do not.
    pub fn names_principals(&self) -> bool {
        self.statements.iter().any(|s| s.principal.is_some())
    }
}
