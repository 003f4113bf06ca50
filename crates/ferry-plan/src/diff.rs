//! The plan against what is live, Terraform-plan style: `+` create, `~` change (with a
//! diff of each changed field), `=` unchanged.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::foundation::Foundation;
use crate::spec::{Field, Resource, ResourceId};

/// One resource as ferry-aws read it from its account.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveResource {
    /// Its settings, in the plan's own types; a setting not configured reads as `None`.
    pub resource: Resource,
    /// It carries ferry's tags for this pipeline ([`crate::foundation::is_ferrys`]).
    pub managed: bool,
    /// Settings that could not be read (a response the SDK could not parse, say), with why:
    /// the plan neither changes them nor calls them unchanged, and says so.
    pub unreadable: Vec<(Field, String)>,
}

/// What is live: per (account name, resource) what ferry-aws read; a missing entry is a
/// resource that does not exist.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    pub resources: BTreeMap<(String, ResourceId), LiveResource>,
}

impl LiveState {
    pub fn insert(&mut self, account: &str, live: LiveResource) {
        self.resources
            .insert((account.to_owned(), live.resource.id()), live);
    }

    pub fn get(&self, account: &str, id: &ResourceId) -> Option<&LiveResource> {
        self.resources.get(&(account.to_owned(), id.clone()))
    }

    /// Resources that exist but are not ferry's (no ferry tags for this pipeline): bootstrap
    /// refuses to touch them, destroy keeps them.
    pub fn foreign(&self) -> impl Iterator<Item = &(String, ResourceId)> {
        self.resources
            .iter()
            .filter(|(_, live)| !live.managed)
            .map(|(key, _)| key)
    }

    pub fn is_foreign(&self, account: &str, id: &ResourceId) -> bool {
        self.get(account, id).is_some_and(|l| !l.managed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Create,
    Update,
    Unchanged,
}

impl ChangeKind {
    pub fn mark(self) -> char {
        match self {
            ChangeKind::Create => '+',
            ChangeKind::Update => '~',
            ChangeKind::Unchanged => '=',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    pub field: Field,
    pub before: Value,
    pub after: Value,
    /// A line diff of the two, as JSON (policies read best this way).
    pub diff: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub account: String,
    pub account_id: String,
    #[serde(rename = "address")]
    pub resource: ResourceId,
    pub kind: ChangeKind,
    pub fields: Vec<FieldChange>,
    /// Fields that could not be read back, with why: left as they are, reported.
    pub unreadable: Vec<(Field, String)>,
}

impl Change {
    /// Whether applying the change sets `field`: on a creation every field, on an update the
    /// ones that differ.
    pub fn touches(&self, field: Field) -> bool {
        self.kind == ChangeKind::Create || self.fields.iter().any(|f| f.field == field)
    }
}

/// Each resource of `foundation` against `live`.
pub fn diff(foundation: &Foundation, live: &LiveState) -> Vec<Change> {
    let mut out = Vec::new();
    for account in &foundation.accounts {
        for resource in &account.resources {
            let id = resource.id();
            let compared = live
                .get(&account.name, &id)
                .and_then(|l| resource.compare(&l.resource).map(|c| (l, c)));
            let change = match compared {
                None => Change {
                    account: account.name.clone(),
                    account_id: account.id.clone(),
                    resource: id,
                    kind: ChangeKind::Create,
                    fields: Vec::new(),
                    unreadable: Vec::new(),
                },
                Some((current, compared)) => {
                    let fields: Vec<FieldChange> = compared
                        .into_iter()
                        .filter(|c| !current.unreadable.iter().any(|(f, _)| *f == c.field))
                        .map(|c| change(c.field, &c.live, &c.desired))
                        .collect();
                    let kind = if fields.is_empty() {
                        ChangeKind::Unchanged
                    } else {
                        ChangeKind::Update
                    };
                    Change {
                        account: account.name.clone(),
                        account_id: account.id.clone(),
                        resource: id,
                        kind,
                        fields,
                        unreadable: current.unreadable.clone(),
                    }
                }
            };
            out.push(change);
        }
    }
    out
}

fn change(field: Field, before: &Value, after: &Value) -> FieldChange {
    let (before, after) = (canonical(before), canonical(after));
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    let (b, a) = (pretty(&before), pretty(&after));
    let diff = similar::TextDiff::from_lines(&b, &a)
        .unified_diff()
        .context_radius(2)
        .to_string();
    FieldChange {
        field,
        before,
        after,
        diff,
    }
}

/// A document with the forms AWS treats as equal made equal: a policy's single values and
/// lists of one, the order of actions, resources and principals, a lone statement object.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let v = match k.as_str() {
                    "Statement" => match v {
                        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
                        one => Value::Array(vec![canonical(one)]),
                    },
                    "Action" | "NotAction" | "Resource" | "NotResource" => set(v),
                    "Principal" | "NotPrincipal" => match v {
                        Value::Object(p) => {
                            Value::Object(p.iter().map(|(k, v)| (k.clone(), set(v))).collect())
                        }
                        other => other.clone(),
                    },
                    "Condition" => match v {
                        Value::Object(ops) => Value::Object(
                            ops.iter()
                                .map(|(op, keys)| {
                                    let keys = match keys {
                                        Value::Object(ks) => Value::Object(
                                            ks.iter().map(|(k, v)| (k.clone(), set(v))).collect(),
                                        ),
                                        other => other.clone(),
                                    };
                                    (op.clone(), keys)
                                })
                                .collect(),
                        ),
                        other => other.clone(),
                    },
                    _ => canonical(v),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A string or a list of strings as a sorted list.
fn set(v: &Value) -> Value {
    let mut items: Vec<Value> = match v {
        Value::Array(items) => items.clone(),
        one => vec![one.clone()],
    };
    items.sort_by_key(ToString::to_string);
    items.dedup();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn equal_policies_in_other_forms_are_unchanged() {
        let a = json!({"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}});
        let b = json!({"Statement": [{"Resource": ["arn:aws:s3:::b/*"], "Action": ["s3:PutObject", "s3:GetObject"], "Effect": "Allow"}], "Version": "2012-10-17"});
        assert_eq!(canonical(&a), canonical(&b));
    }

    #[test]
    fn a_changed_policy_shows_a_line_diff() {
        let before = json!({"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Principal": {"AWS": "arn:aws:iam::2:role/a"}}]});
        let after = json!({"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Principal": {"AWS": ["arn:aws:iam::2:role/a", "arn:aws:iam::3:role/a"]}}]});
        let c = change(Field::Policy, &before, &after);
        assert!(
            c.diff.contains("+          \"arn:aws:iam::3:role/a\""),
            "{}",
            c.diff
        );
    }
}
