//! Does a statement apply to a request? Principal, action, resource and conditions.

use crate::ast::*;
use crate::condition;
use crate::request::{Principal, Request};

/// Which policy layer a statement sits in; decides how `Principal` and a missing `Resource`
/// are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    Scp,
    Rcp,
    VpcEndpoint,
    ResourcePolicy,
    Identity,
    PermissionBoundary,
    SessionPolicy,
}

impl Layer {
    pub fn name(self) -> &'static str {
        match self {
            Layer::Scp => "service control policy",
            Layer::Rcp => "resource control policy",
            Layer::VpcEndpoint => "VPC endpoint policy",
            Layer::ResourcePolicy => "resource policy",
            Layer::Identity => "identity policy",
            Layer::PermissionBoundary => "permissions boundary",
            Layer::SessionPolicy => "session policy",
        }
    }

    /// Layers whose statements name principals.
    fn names_principals(self) -> bool {
        matches!(
            self,
            Layer::ResourcePolicy | Layer::Rcp | Layer::VpcEndpoint
        )
    }
}

/// How a resource-policy statement named the requester: this decides what else must allow
/// (IAM evaluation logic, same-account table; reference §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Grant {
    /// The account (`"A"` or `arn:aws:iam::A:root`): a delegation to its administrators.
    Account,
    /// The role of a session: limited by the session's boundary and session policy.
    Role,
    /// The requester itself (user, session, federated user, service) or everyone.
    Direct,
}

/// Whether `statement` (in `layer`) applies to `request`; for resource policies, how it named
/// the requester. `has_boundary`: the requester has a permissions boundary (T2).
pub fn applies(
    statement: &Statement,
    layer: Layer,
    request: &Request,
    has_boundary: bool,
) -> Option<Grant> {
    let grant = match (&statement.principal, layer.names_principals()) {
        // IAM refuses a Principal in identity-side policies (T24). Should one appear anyway,
        // take the reading that denies: its Deny applies to the holder, its Allow grants nothing.
        (Some(_), false) if statement.effect == Effect::Allow => return None,
        (Some(_), false) => Grant::Direct,
        (None, false) => Grant::Direct,
        // A resource-policy statement without Principal matches nobody (T24); RCP and
        // endpoint policies apply to every principal when they leave it out.
        (None, true) if layer == Layer::ResourcePolicy => return None,
        (None, true) => Grant::Direct,
        (Some(clause), true) => {
            principal(clause, statement.effect, &request.principal, has_boundary)?
        }
    };
    if !action(&statement.action, &request.action) {
        return None;
    }
    if !resource(statement.resource.as_ref(), layer, request) {
        return None;
    }
    statement
        .conditions
        .iter()
        .all(|c| condition::holds(c, &request.context))
        .then_some(grant)
}

fn action(clause: &ActionClause, action: &str) -> bool {
    let any = clause.patterns.iter().any(|p| p.matches(action));
    any != clause.negated
}

fn resource(clause: Option<&ResourceClause>, layer: Layer, request: &Request) -> bool {
    match clause {
        // Trust and repository policies leave the resource out: it is the one they are on.
        // Identity policies must name one, and so must key policies: KMS reads a key-policy
        // statement without `Resource` as granting nothing.
        None => match layer {
            Layer::Identity | Layer::PermissionBoundary | Layer::SessionPolicy => false,
            Layer::ResourcePolicy => {
                crate::authorize::ResourceKind::of(request)
                    != crate::authorize::ResourceKind::KeyPolicy
            }
            _ => true,
        },
        Some(clause) => {
            let any = clause
                .patterns
                .iter()
                .any(|p| p.matches(&request.resource, &request.context));
            any != clause.negated
        }
    }
}

fn principal(
    clause: &PrincipalClause,
    effect: Effect,
    requester: &Principal,
    has_boundary: bool,
) -> Option<Grant> {
    if !clause.negated {
        return clause
            .values
            .iter()
            .filter_map(|v| named(v, requester))
            .max();
    }
    // NotPrincipal.
    let excluded = match effect {
        // With Deny, AWS may check the account, then the role, then the session: a requester
        // escapes only when every level of it is listed (T1). Principals with a permissions
        // boundary never escape (T2).
        Effect::Deny => !has_boundary && escapes_not_principal_deny(&clause.values, requester),
        Effect::Allow => clause.values.iter().any(|v| named(v, requester).is_some()),
    };
    (!excluded).then_some(Grant::Direct)
}

/// How a `Principal` value names the requester, if it does.
fn named(value: &PrincipalValue, requester: &Principal) -> Option<Grant> {
    use AwsPrincipal as A;
    use Principal as P;
    match (value, requester) {
        (PrincipalValue::Everyone, _) => Some(Grant::Direct),
        (PrincipalValue::Service(s), P::Service(r)) if s == r => Some(Grant::Direct),
        (PrincipalValue::Federated(f), P::Federated { provider }) if f == provider => {
            Some(Grant::Direct)
        }
        (PrincipalValue::Aws(a), p) => match (a, p) {
            (A::Account(acct), p) if p.account() == Some(acct.as_str()) => Some(Grant::Account),
            (
                A::User { account, name },
                P::User {
                    account: a2,
                    name: n2,
                },
            ) if account == a2 && name == n2 => Some(Grant::Direct),
            (
                A::Role { account, name },
                P::Session {
                    account: a2, role, ..
                }
                | P::Role {
                    account: a2,
                    name: role,
                },
            ) if account == a2 && name == role => Some(Grant::Role),
            (
                A::Session {
                    account,
                    role,
                    session,
                },
                P::Session {
                    account: a2,
                    role: r2,
                    session: s2,
                },
            ) if account == a2 && role == r2 && session == s2 => Some(Grant::Direct),
            (
                A::FederatedUser { account, name },
                P::FederatedUser {
                    account: a2,
                    name: n2,
                },
            ) if account == a2 && name == n2 => Some(Grant::Direct),
            _ => None,
        },
        _ => None,
    }
}

/// Whether a requester escapes a `Deny` with `NotPrincipal`: AWS may check the account,
/// then the role, then the session, so every level must be listed (reference T1; the
/// NotPrincipal page lists session ARN, role ARN and account ARN for a role session).
fn escapes_not_principal_deny(values: &[PrincipalValue], requester: &Principal) -> bool {
    use AwsPrincipal as A;
    use Principal as P;
    if values.contains(&PrincipalValue::Everyone) {
        return true;
    }
    let listed = |want: &A| {
        values
            .iter()
            .any(|v| matches!(v, PrincipalValue::Aws(a) if a == want))
    };
    let account = |a: &str| listed(&A::Account(a.to_owned()));
    match requester {
        P::Anonymous => false,
        P::Service(s) => values.contains(&PrincipalValue::Service(s.clone())),
        P::Federated { provider } => values.contains(&PrincipalValue::Federated(provider.clone())),
        P::Root { account: a } => account(a),
        P::User { account: a, name } => {
            account(a)
                && listed(&A::User {
                    account: a.clone(),
                    name: name.clone(),
                })
        }
        P::Role { account: a, name } => {
            account(a)
                && listed(&A::Role {
                    account: a.clone(),
                    name: name.clone(),
                })
        }
        P::Session {
            account: a,
            role,
            session,
        } => {
            account(a)
                && listed(&A::Role {
                    account: a.clone(),
                    name: role.clone(),
                })
                && listed(&A::Session {
                    account: a.clone(),
                    role: role.clone(),
                    session: session.clone(),
                })
        }
        P::FederatedUser { account: a, name } => {
            account(a)
                && listed(&A::FederatedUser {
                    account: a.clone(),
                    name: name.clone(),
                })
        }
    }
}
