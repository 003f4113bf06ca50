//! The smallest policy documents that grant exactly a set of needs.
//!
//! Needs are grouped by resource, then resources with the same actions share a statement,
//! then principals with the same grant share one. Every statement is a product of actions
//! and resources in which each pair is a need, so nothing beyond the needs is granted. An
//! action that acts on no resource type (`ecr:GetAuthorizationToken`) gets `"Resource": "*"`
//! in a statement of its own that says why.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::catalog::catalog;

/// A principal in a resource policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum PrincipalRef {
    /// An account id or an IAM/STS ARN.
    Aws(String),
    /// A service principal such as `ecs-tasks.amazonaws.com`.
    Service(String),
    /// An identity provider's ARN (`…:oidc-provider/token.actions.githubusercontent.com`), for
    /// web-identity and SAML trust.
    Federated(String),
}

/// A condition attached to a need: `operator: {key: values}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct NeedCondition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// One permission to grant.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Need {
    /// A name for the statement (its Sid); needs with different labels never share one.
    pub label: String,
    /// Who, in a resource policy; `None` in an identity policy.
    pub principal: Option<PrincipalRef>,
    pub action: String,
    /// `None` where the policy's own resource is meant (trust and repository policies).
    pub resource: Option<String>,
    /// All must hold (IAM ANDs a statement's conditions).
    pub conditions: Vec<NeedCondition>,
}

impl Need {
    pub fn new(label: &str, action: &str, resource: &str) -> Need {
        Need {
            label: label.to_owned(),
            principal: None,
            action: action.to_owned(),
            resource: Some(resource.to_owned()),
            conditions: Vec::new(),
        }
    }

    #[must_use]
    pub fn for_principal(mut self, principal: PrincipalRef) -> Need {
        self.principal = Some(principal);
        self
    }

    #[must_use]
    pub fn when(mut self, operator: &str, key: &str, values: &[&str]) -> Need {
        self.conditions.push(NeedCondition {
            operator: operator.to_owned(),
            key: key.to_owned(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        });
        self
    }

    #[must_use]
    pub fn on_own_resource(mut self) -> Need {
        self.resource = None;
        self
    }
}

/// A statement the builder wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltStatement {
    pub sid: String,
    pub principals: Vec<PrincipalRef>,
    pub actions: Vec<String>,
    /// Empty where the policy's own resource is meant.
    pub resources: Vec<String>,
    pub conditions: Vec<NeedCondition>,
    /// Why the statement uses `"Resource": "*"`, when it does.
    pub why_star: Option<String>,
}

impl BuiltStatement {
    pub fn to_json(&self) -> Value {
        let mut s = Map::new();
        s.insert("Sid".into(), json!(self.sid));
        s.insert("Effect".into(), json!("Allow"));
        if !self.principals.is_empty() {
            let mut p = Map::new();
            for (kind, values) in [
                ("AWS", aws(&self.principals)),
                ("Service", services(&self.principals)),
                ("Federated", federated(&self.principals)),
            ] {
                if !values.is_empty() {
                    p.insert(kind.into(), one_or_many(&values));
                }
            }
            s.insert("Principal".into(), Value::Object(p));
        }
        s.insert("Action".into(), one_or_many(&self.actions));
        if !self.resources.is_empty() {
            s.insert("Resource".into(), one_or_many(&self.resources));
        }
        if !self.conditions.is_empty() {
            let mut by_operator = Map::new();
            for c in &self.conditions {
                let keys = by_operator
                    .entry(c.operator.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(keys) = keys {
                    keys.insert(c.key.clone(), one_or_many(&c.values));
                }
            }
            s.insert("Condition".into(), Value::Object(by_operator));
        }
        Value::Object(s)
    }
}

fn aws(p: &[PrincipalRef]) -> Vec<String> {
    p.iter()
        .filter_map(|p| {
            if let PrincipalRef::Aws(a) = p {
                Some(a.clone())
            } else {
                None
            }
        })
        .collect()
}

fn services(p: &[PrincipalRef]) -> Vec<String> {
    p.iter()
        .filter_map(|p| {
            if let PrincipalRef::Service(a) = p {
                Some(a.clone())
            } else {
                None
            }
        })
        .collect()
}

fn federated(p: &[PrincipalRef]) -> Vec<String> {
    p.iter()
        .filter_map(|p| {
            if let PrincipalRef::Federated(a) = p {
                Some(a.clone())
            } else {
                None
            }
        })
        .collect()
}

fn one_or_many(values: &[String]) -> Value {
    match values {
        [one] => json!(one),
        many => json!(many),
    }
}

/// A policy document the builder wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuiltPolicy {
    pub statements: Vec<BuiltStatement>,
}

impl BuiltPolicy {
    pub fn to_json(&self) -> Value {
        json!({"Version": "2012-10-17", "Statement": self.statements.iter().map(BuiltStatement::to_json).collect::<Vec<_>>()})
    }
}

/// Builds the smallest policy that grants exactly `needs`.
pub fn build(needs: impl IntoIterator<Item = Need>) -> BuiltPolicy {
    let cat = catalog();
    type Key = (
        String,
        Option<PrincipalRef>,
        Option<String>,
        Vec<NeedCondition>,
    );
    // 1. By (label, principal, resource, conditions): the actions.
    let mut by_resource: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    for need in needs {
        let action = cat
            .action(&need.action)
            .map_or(need.action.clone(), |(name, _)| name);
        let resource = match need.resource {
            Some(_) if cat.is_wildcard_only(&action) => Some("*".to_owned()),
            r => r,
        };
        let mut conditions = need.conditions;
        conditions.sort();
        by_resource
            .entry((need.label, need.principal, resource, conditions))
            .or_default()
            .insert(action);
    }
    // 2. Resources with the same actions share a statement.
    type Key2 = (
        String,
        Option<PrincipalRef>,
        BTreeSet<String>,
        Vec<NeedCondition>,
    );
    let mut by_actions: BTreeMap<Key2, BTreeSet<Option<String>>> = BTreeMap::new();
    for ((label, principal, resource, conditions), actions) in by_resource {
        by_actions
            .entry((label, principal, actions, conditions))
            .or_default()
            .insert(resource);
    }
    // 3. Principals with the same grant share a statement.
    type Key3 = (
        String,
        BTreeSet<String>,
        BTreeSet<Option<String>>,
        Vec<NeedCondition>,
    );
    let mut by_grant: BTreeMap<Key3, BTreeSet<PrincipalRef>> = BTreeMap::new();
    for ((label, principal, actions, conditions), resources) in by_actions {
        let entry = by_grant
            .entry((label, actions, resources, conditions))
            .or_default();
        entry.extend(principal);
    }
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    let statements = by_grant
        .into_iter()
        .map(|((label, actions, resources, conditions), principals)| {
            let resources: Vec<String> = resources.into_iter().flatten().collect();
            let why_star = resources.iter().any(|r| r == "*").then(|| {
                let only: Vec<&str> = actions
                    .iter()
                    .filter(|a| cat.is_wildcard_only(a))
                    .map(String::as_str)
                    .collect();
                if only.is_empty() {
                    "the need names \"*\" as its resource".to_owned()
                } else {
                    format!(
                        "{} act on no resource type; AWS accepts only \"Resource\": \"*\" for them",
                        only.join(", ")
                    )
                }
            });
            let base = sid(&label);
            let n = used.entry(base.clone()).or_insert(0);
            *n += 1;
            let sid = if *n == 1 { base } else { format!("{base}{n}") };
            BuiltStatement {
                sid,
                principals: principals.into_iter().collect(),
                actions: actions.into_iter().collect(),
                resources,
                conditions,
                why_star,
            }
        })
        .collect();
    BuiltPolicy { statements }
}

/// A Sid from a label: letters and digits only, in PascalCase.
fn sid(label: &str) -> String {
    let s: String = label
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if s.is_empty() { "Grant".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_resource_then_merges_equal_grants() {
        let repo = "arn:aws:ecr:us-east-1:111111111111:repository/orders-api";
        let repo2 = "arn:aws:ecr:us-east-1:111111111111:repository/orders-worker";
        let policy = build([
            Need::new("pull images", "ecr:BatchGetImage", repo),
            Need::new("pull images", "ecr:GetDownloadUrlForLayer", repo),
            Need::new("pull images", "ecr:BatchGetImage", repo2),
            Need::new("pull images", "ecr:GetDownloadUrlForLayer", repo2),
            Need::new("pull images", "ecr:getauthorizationtoken", repo),
        ]);
        let json = policy.to_json();
        assert_eq!(json["Statement"].as_array().unwrap().len(), 2, "{json:#}");
        let star = policy
            .statements
            .iter()
            .find(|s| s.resources == ["*"])
            .unwrap();
        assert_eq!(star.actions, ["ecr:GetAuthorizationToken"]);
        assert!(star.why_star.as_ref().unwrap().contains("no resource type"));
        let pull = policy
            .statements
            .iter()
            .find(|s| s.resources.len() == 2)
            .unwrap();
        assert_eq!(
            pull.actions,
            ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
        );
        assert_eq!(pull.sid, "PullImages");
        assert_eq!(star.sid, "PullImages2");
    }

    #[test]
    fn resource_policies_name_principals_and_conditions() {
        let policy = build([
            Need::new("targets pull", "ecr:BatchGetImage", "x")
                .on_own_resource()
                .for_principal(PrincipalRef::Aws(
                    "arn:aws:iam::222222222222:role/ferry-deploy".into(),
                )),
            Need::new("targets pull", "ecr:BatchGetImage", "x")
                .on_own_resource()
                .for_principal(PrincipalRef::Aws(
                    "arn:aws:iam::333333333333:role/ferry-deploy".into(),
                )),
            Need::new(
                "pass task role",
                "iam:PassRole",
                "arn:aws:iam::222222222222:role/task",
            )
            .when(
                "StringEquals",
                "iam:PassedToService",
                &["ecs-tasks.amazonaws.com"],
            ),
        ]);
        let json = policy.to_json();
        let st = json["Statement"].as_array().unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[1]["Principal"]["AWS"].as_array().unwrap().len(), 2);
        assert!(st[1].get("Resource").is_none());
        assert_eq!(
            st[0]["Condition"]["StringEquals"]["iam:PassedToService"],
            "ecs-tasks.amazonaws.com"
        );
    }
}
