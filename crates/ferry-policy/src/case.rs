//! A request with its policies as one JSON document — the input of
//! `ferry policy simulate` and the format of the conformance cases
//! (`../shared/conformance/iam/README.md`).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Policy;
use crate::authorize::{OrgLevel, PolicySet};
use crate::parse::parse_json;
use crate::request::{ContextValue, Principal, Request};

/// The document. Unknown fields (`expected`, `features`, …) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    #[serde(default)]
    pub id: Value,
    #[serde(default)]
    pub identity_policies: Vec<Value>,
    #[serde(default)]
    pub resource_policy: Option<Value>,
    #[serde(default)]
    pub permission_boundaries: Vec<Value>,
    #[serde(default)]
    pub session_policy: Option<Value>,
    #[serde(default)]
    pub scps: Vec<LevelDoc>,
    #[serde(default)]
    pub rcps: Vec<LevelDoc>,
    #[serde(default)]
    pub vpc_endpoint_policies: Vec<Value>,
    pub principal: String,
    #[serde(default)]
    pub principal_account: Option<String>,
    pub action: String,
    pub resource: String,
    #[serde(default)]
    pub resource_account: Option<String>,
    #[serde(default)]
    pub context: Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LevelDoc {
    pub level: String,
    #[serde(default)]
    pub policies: Vec<Value>,
}

/// What is wrong with a case, with the path of the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CaseError(pub String);

impl Case {
    /// Reads a case from JSON text.
    pub fn from_json(text: &str) -> Result<Case, CaseError> {
        serde_json::from_str(text).map_err(|e| CaseError(format!("not a simulation case: {e}")))
    }

    /// The policies and the request. `derive`: fill in the context keys AWS derives from the
    /// principal (`aws:PrincipalArn`, …) where the case does not give them.
    pub fn build(&self, derive: bool) -> Result<(PolicySet, Request), CaseError> {
        let policy = |v: &Value, path: String| -> Result<Policy, CaseError> {
            parse_json(v).map_err(|errs| {
                CaseError(
                    errs.iter()
                        .map(|e| format!("{path}.{e}"))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })
        };
        let list = |vs: &[Value], name: &str| -> Result<Vec<Policy>, CaseError> {
            vs.iter()
                .enumerate()
                .map(|(i, v)| policy(v, format!("{name}[{i}]")))
                .collect()
        };
        let levels = |ls: &[LevelDoc], name: &str| -> Result<Vec<OrgLevel>, CaseError> {
            ls.iter()
                .enumerate()
                .map(|(i, l)| {
                    Ok(OrgLevel {
                        name: l.level.clone(),
                        policies: list(&l.policies, &format!("{name}[{i}].policies"))?,
                    })
                })
                .collect()
        };
        let set = PolicySet {
            identity: list(&self.identity_policies, "identity_policies")?,
            resource: self
                .resource_policy
                .as_ref()
                .filter(|v| !v.is_null())
                .map(|v| policy(v, "resource_policy".into()))
                .transpose()?,
            boundaries: list(&self.permission_boundaries, "permission_boundaries")?,
            session: self
                .session_policy
                .as_ref()
                .filter(|v| !v.is_null())
                .map(|v| policy(v, "session_policy".into()))
                .transpose()?,
            scps: levels(&self.scps, "scps")?,
            rcps: levels(&self.rcps, "rcps")?,
            endpoints: list(&self.vpc_endpoint_policies, "vpc_endpoint_policies")?,
        };
        let principal =
            Principal::parse(&self.principal).map_err(|e| CaseError(format!("principal: {e}")))?;
        if !self.action.contains(':') {
            return Err(CaseError(format!(
                "action: `{}` is not `service:Action`",
                self.action
            )));
        }
        let mut request = Request::new(principal, &self.action, &self.resource);
        request.resource_account = self.resource_account.clone();
        for (key, value) in &self.context {
            let value = match value {
                Value::Array(items) => ContextValue::Multi(items.iter().map(scalar).collect()),
                other => ContextValue::Single(scalar(other)),
            };
            request.context.insert(key, value);
        }
        if derive {
            request.derive_context();
        }
        Ok((set, request))
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
