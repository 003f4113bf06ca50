//! The plan against what is live, Terraform-plan style: `+` create, `~` change (with a
//! diff of each changed field), `=` unchanged.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::foundation::Foundation;

/// What is live, as ferry-aws read it: per (account name, resource address) the same
/// document as [`crate::Resource::desired`]; a missing entry is a resource that does not exist.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    pub resources: BTreeMap<(String, String), Value>,
}

impl LiveState {
    pub fn insert(&mut self, account: &str, address: &str, document: Value) {
        self.resources
            .insert((account.to_owned(), address.to_owned()), document);
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
    pub field: String,
    pub before: Value,
    pub after: Value,
    /// A line diff of the two, as JSON (policies read best this way).
    pub diff: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub account: String,
    pub account_id: String,
    pub address: String,
    pub kind: ChangeKind,
    pub fields: Vec<FieldChange>,
    /// Fields that could not be read back, with why: left as they are, reported.
    pub unreadable: Vec<(String, String)>,
}

/// The key under which a live document marks a field it could not read.
const UNREADABLE: &str = "ferry:unreadable";

/// A live field that could not be read (a response the SDK could not parse, say): the plan
/// neither changes it nor calls it unchanged, and says why.
pub fn unreadable(reason: &str) -> Value {
    serde_json::json!({ UNREADABLE: reason })
}

fn unreadable_reason(v: &Value) -> Option<&str> {
    v.get(UNREADABLE).and_then(Value::as_str)
}

/// Each resource of `foundation` against `live`.
pub fn diff(foundation: &Foundation, live: &LiveState) -> Vec<Change> {
    let mut out = Vec::new();
    for account in &foundation.accounts {
        for resource in &account.resources {
            let address = resource.address();
            let desired = canonical(&resource.desired());
            let change = match live.resources.get(&(account.name.clone(), address.clone())) {
                None => Change {
                    account: account.name.clone(),
                    account_id: account.id.clone(),
                    address,
                    kind: ChangeKind::Create,
                    fields: Vec::new(),
                    unreadable: Vec::new(),
                },
                Some(current) => {
                    let current = canonical(current);
                    let unreadable: Vec<(String, String)> = current
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter_map(|(k, v)| {
                            unreadable_reason(v).map(|r| (k.clone(), r.to_owned()))
                        })
                        .collect();
                    let fields: Vec<FieldChange> = field_changes(&desired, &current)
                        .into_iter()
                        .filter(|f| !unreadable.iter().any(|(k, _)| *k == f.field))
                        .collect();
                    let kind = if fields.is_empty() {
                        ChangeKind::Unchanged
                    } else {
                        ChangeKind::Update
                    };
                    Change {
                        account: account.name.clone(),
                        account_id: account.id.clone(),
                        address,
                        kind,
                        fields,
                        unreadable,
                    }
                }
            };
            out.push(change);
        }
    }
    out
}

fn field_changes(desired: &Value, current: &Value) -> Vec<FieldChange> {
    let (Value::Object(want), Value::Object(have)) = (desired, current) else {
        return vec![change("", current, desired)];
    };
    want.iter()
        .filter_map(|(field, after)| {
            let before = have.get(field).unwrap_or(&Value::Null);
            (before != after).then(|| change(field, before, after))
        })
        .collect()
}

fn change(field: &str, before: &Value, after: &Value) -> FieldChange {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    let (b, a) = (pretty(before), pretty(after));
    let diff = similar::TextDiff::from_lines(&b, &a)
        .unified_diff()
        .context_radius(2)
        .to_string();
    FieldChange {
        field: field.to_owned(),
        before: before.clone(),
        after: after.clone(),
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
        assert!(
            field_changes(
                &canonical(&json!({"policy": a})),
                &canonical(&json!({"policy": b}))
            )
            .is_empty()
        );
    }

    #[test]
    fn a_changed_policy_shows_a_line_diff() {
        let before = json!({"policy": {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Principal": {"AWS": "arn:aws:iam::2:role/a"}}]}});
        let after = json!({"policy": {"Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Principal": {"AWS": ["arn:aws:iam::2:role/a", "arn:aws:iam::3:role/a"]}}]}});
        let changes = field_changes(&canonical(&after), &canonical(&before));
        assert_eq!(changes.len(), 1);
        assert!(
            changes[0]
                .diff
                .contains("+          \"arn:aws:iam::3:role/a\""),
            "{}",
            changes[0].diff
        );
    }
}
