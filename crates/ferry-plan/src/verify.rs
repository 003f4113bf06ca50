//! Every edge decided by `ferry-policy`, against the plan's policies (offline) or the ones
//! really in the accounts (`--live`, fetched by ferry-aws). For each denied edge: the deciding
//! layer and the statement to add, with the policy it belongs in. Then the grants no edge
//! needs.

use std::collections::{BTreeMap, BTreeSet};

use ferry_policy::authorize::ResourceKind;
use ferry_policy::lint::{LintOptions, Severity, lint};
use ferry_policy::{Layer, OrgLevel, Policy, PolicySet, Principal, Request, authorize, parse_json};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access::Edge;
use crate::names::{Names, account_of};
use crate::spec::ScpLevel;

/// The policies that bear on the edges, keyed by who or what holds them. Serializable: the
/// last live read is kept (`.ferry/foundation.json`) so `ferry run` can check a changed
/// manifest against it before deploying.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyStore {
    /// Role ARN → its inline and attached policies, by name.
    identity: BTreeMap<String, Vec<(String, Value)>>,
    /// Role ARN → its permissions boundary.
    boundaries: BTreeMap<String, Value>,
    /// Resource ARN (key, bucket, repository, role for its trust policy, secret) → its policy.
    resources: BTreeMap<String, Value>,
    /// Account → its SCPs, root first.
    scps: BTreeMap<String, Vec<ScpLevel>>,
    /// What could not be read, and why; shown with the report.
    pub unreadable: Vec<String>,
    /// Teams' own roles whose policies this store does not hold (the plan's store): their
    /// side of each edge is taken as granted and said so; a live store reads them instead.
    #[serde(default)]
    teams_roles_assumed: BTreeSet<String>,
    /// Resources whose policy could not be read: their edges are not decided.
    #[serde(default)]
    not_read: BTreeSet<String>,
}

impl PolicyStore {
    pub fn identity(&mut self, role_arn: &str, name: &str, document: impl Into<Value>) {
        self.identity
            .entry(role_arn.to_owned())
            .or_default()
            .push((name.to_owned(), document.into()));
    }

    pub fn boundary(&mut self, role_arn: &str, document: impl Into<Value>) {
        self.boundaries.insert(role_arn.to_owned(), document.into());
    }

    pub fn resource(&mut self, arn: &str, document: impl Into<Value>) {
        self.resources.insert(arn.to_owned(), document.into());
    }

    /// The policy of `arn` could not be read (the reason goes in `unreadable`).
    pub fn mark_not_read(&mut self, arn: &str) {
        self.not_read.insert(arn.to_owned());
    }

    /// `role_arn` is a team's role whose policies are not in this store.
    pub fn assume_teams_role(&mut self, role_arn: &str) {
        self.teams_roles_assumed.insert(role_arn.to_owned());
    }

    pub fn scp_level(&mut self, account: &str, level: ScpLevel) {
        self.scps.entry(account.to_owned()).or_default().push(level);
    }

    pub fn resource_policy(&self, arn: &str) -> Option<&Value> {
        self.resources.get(arn)
    }

    pub fn identity_policies(&self, role_arn: &str) -> &[(String, Value)] {
        self.identity.get(role_arn).map_or(&[], Vec::as_slice)
    }
}

/// A statement to add, and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fix {
    /// The policy, in words: "the key policy of arn:aws:kms:…", "an identity policy of arn:aws:iam::…:role/…".
    pub place: String,
    pub statement: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeResult {
    #[serde(flatten)]
    pub edge: Edge,
    pub allowed: bool,
    /// The layer that decided: for a denial, the one that lacks a grant or denies.
    pub layer: Option<String>,
    pub reason: String,
    pub fixes: Vec<Fix>,
}

/// A grant wider than any edge needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wider {
    pub place: String,
    pub statement: Option<String>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub results: Vec<EdgeResult>,
    pub wider: Vec<Wider>,
    pub unreadable: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.results.iter().all(|r| r.allowed)
    }

    /// Results by environment (`None`: the pipeline's own calls), in edge order.
    pub fn by_environment(&self) -> Vec<(Option<&str>, Vec<&EdgeResult>)> {
        let mut out: Vec<(Option<&str>, Vec<&EdgeResult>)> = Vec::new();
        for r in &self.results {
            let env = r.edge.environment.as_deref();
            match out.iter_mut().find(|(e, _)| *e == env) {
                Some((_, list)) => list.push(r),
                None => out.push((env, vec![r])),
            }
        }
        out
    }
}

/// Which policy a decision's statement came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Identity { role: String, name: String },
    Resource { arn: String },
}

fn parsed(doc: &Value, what: &str, errors: &mut Vec<String>) -> Option<Policy> {
    match parse_json(doc) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.push(format!(
                "{what} is not a valid policy: {}",
                e.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            None
        }
    }
}

/// Decides every edge against `store`.
pub fn verify(store: &PolicyStore, edges: &[Edge], names: &Names<'_>) -> Report {
    let mut errors = Vec::new();
    let mut used: BTreeSet<(Source, usize)> = BTreeSet::new();
    let mut results = Vec::new();
    for edge in edges {
        let caller = if edge.by_role() {
            Names::session(&edge.principal)
        } else {
            edge.principal.clone()
        };
        let principal = match Principal::parse(&caller) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut request = Request::new(principal, &edge.action, &edge.resource)
            .with_resource_account(edge.resource_account(names));
        for (k, v) in &edge.context {
            request
                .context
                .insert(k, ferry_policy::ContextValue::Single(v.clone()));
        }
        request.derive_context();
        let holder = edge.holder();
        let kind = ResourceKind::of(&request);
        if kind != ResourceKind::Other && store.not_read.contains(&holder) {
            // Without the resource's policy nothing can be decided, and no statement is known
            // to be missing: say so rather than prescribe a fix.
            results.push(EdgeResult {
                edge: edge.clone(),
                allowed: false,
                layer: None,
                reason: format!(
                    "the policy of {holder} could not be read, so this call is not decided (see what was not read)"
                ),
                fixes: Vec::new(),
            });
            continue;
        }
        let assumed = edge.teams_role && store.teams_roles_assumed.contains(&edge.principal);
        let identity_docs = if assumed {
            // Offline, a team's role is taken to allow exactly this call: what is checked is
            // ferry's side (the resource's policy, the SCPs).
            vec![(
                "(the team's own policies, read by `ferry verify --live`)".to_owned(),
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": edge.action, "Resource": edge.resource}]}),
            )]
        } else {
            store
                .identity
                .get(&edge.principal)
                .cloned()
                .unwrap_or_default()
        };
        let identity: Vec<(String, Policy)> = identity_docs
            .iter()
            .filter_map(|(n, d)| {
                parsed(d, &format!("policy {n} of {}", edge.principal), &mut errors)
                    .map(|p| (n.clone(), p))
            })
            .collect();
        let resource = if kind == ResourceKind::Other {
            None
        } else {
            store
                .resources
                .get(&holder)
                .and_then(|d| parsed(d, &format!("the policy of {holder}"), &mut errors))
        };
        let account = account_of(&edge.principal).unwrap_or_default();
        let set = PolicySet {
            identity: identity.iter().map(|(_, p)| p.clone()).collect(),
            resource,
            boundaries: store
                .boundaries
                .get(&edge.principal)
                .and_then(|d| {
                    parsed(
                        d,
                        &format!("the boundary of {}", edge.principal),
                        &mut errors,
                    )
                })
                .into_iter()
                .collect(),
            scps: store
                .scps
                .get(account)
                .map(|levels| {
                    levels
                        .iter()
                        .map(|level| {
                            let name = level.name();
                            OrgLevel {
                                policies: level
                                    .policies
                                    .iter()
                                    .filter_map(|d| {
                                        parsed(d, &format!("an SCP at {name}"), &mut errors)
                                    })
                                    .collect(),
                                name,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default(),
            ..PolicySet::default()
        };
        let decision = authorize(&set, &request);
        for s in &decision.statements {
            let source = match s.layer {
                Layer::Identity => identity.get(s.policy).map(|(n, _)| Source::Identity {
                    role: edge.principal.clone(),
                    name: n.clone(),
                }),
                Layer::ResourcePolicy => Some(Source::Resource {
                    arn: holder.clone(),
                }),
                _ => None,
            };
            if let Some(source) = source {
                used.insert((source, s.statement));
            }
        }
        let mut reason = decision.reason.clone();
        if assumed {
            reason.push_str(
                "; the role is the team's own: its policies are taken to allow this offline, and `ferry verify --live` reads them",
            );
        }
        results.push(EdgeResult {
            edge: edge.clone(),
            allowed: decision.is_allowed(),
            layer: decision.layer.map(|l| l.name().to_owned()),
            reason,
            fixes: if decision.is_allowed() {
                Vec::new()
            } else {
                decision
                    .missing
                    .iter()
                    .map(|m| Fix {
                        place: m.place.clone(),
                        statement: m.statement.clone(),
                    })
                    .collect()
            },
        });
    }
    let wider = wider_grants(store, edges, &used, &mut errors);
    let mut unreadable = store.unreadable.clone();
    unreadable.extend(errors);
    Report {
        results,
        wider,
        unreadable,
    }
}

/// Statements that allow what no edge needs, and wildcard grants, in the policies of the
/// edges' principals and resources. Trust policies and the key's administration statement
/// are not grants to the pipeline, and are left out.
fn wider_grants(
    store: &PolicyStore,
    edges: &[Edge],
    used: &BTreeSet<(Source, usize)>,
    errors: &mut Vec<String>,
) -> Vec<Wider> {
    let mut out = Vec::new();
    // A team's own role may hold grants for its own work: not ferry's to judge.
    let principals: BTreeSet<&str> = edges
        .iter()
        .filter(|e| !e.teams_role)
        .map(|e| e.principal.as_str())
        .collect();
    let mut check = |source: Source, place: String, doc: &Value, account: Option<String>| {
        let Some(policy) = parsed(doc, &place, errors) else {
            return;
        };
        for statement in &policy.statements {
            let sid = statement.sid.clone();
            if statement.effect != ferry_policy::Effect::Allow
                || sid.as_deref() == Some("AccountAdministersKey")
            {
                continue;
            }
            if !used.contains(&(source.clone(), statement.index)) {
                out.push(Wider {
                    place: place.clone(),
                    statement: sid
                        .clone()
                        .or_else(|| Some(format!("Statement[{}]", statement.index))),
                    detail: "allows nothing the pipeline does: remove it".into(),
                });
            }
        }
        for finding in lint(&policy, &LintOptions { account }) {
            if finding.severity == Severity::Error
                || finding.code.starts_with("wildcard")
                || finding.code.starts_with("allow-not")
            {
                out.push(Wider {
                    place: place.clone(),
                    statement: Some(finding.path.clone()),
                    detail: format!("{} — {}", finding.message, finding.fix),
                });
            }
        }
    };
    for (role, docs) in &store.identity {
        if !principals.contains(role.as_str()) {
            continue;
        }
        for (name, doc) in docs {
            check(
                Source::Identity {
                    role: role.clone(),
                    name: name.clone(),
                },
                format!("policy {name} of {role}"),
                doc,
                account_of(role).map(str::to_owned),
            );
        }
    }
    let holders: BTreeSet<String> = edges
        .iter()
        .filter(|e| e.action != "sts:AssumeRole")
        .map(Edge::holder)
        .collect();
    for (arn, doc) in &store.resources {
        if holders.contains(arn) && !arn.starts_with("arn:aws:iam:") {
            let account = account_of(arn).map(str::to_owned);
            check(
                Source::Resource { arn: arn.clone() },
                format!("the policy of {arn}"),
                doc,
                account,
            );
        }
    }
    out
}
