//! The decision: which layers allow, which deny, and what that means across accounts.
//!
//! Follows `../shared/reference/iam-semantics.md` §1 (AWS IAM evaluation logic):
//!
//! 1. `sts:GetCallerIdentity` is always allowed.
//! 2. A matching `Deny` in any layer that applies is an explicit deny.
//! 3. Every SCP level (principal's account; not for anonymous callers or services), every RCP
//!    level (resource's account, for the services RCPs cover) and every VPC endpoint policy
//!    must allow.
//! 4. Anonymous callers and services are allowed only by the resource policy.
//! 5. Across accounts, the resource policy (naming the principal in any form) **and** the
//!    principal's identity side (identity policy ∩ boundary ∩ session policy) must allow.
//! 6. In one account, a resource-policy grant to the user, session or everyone is enough; one
//!    to the role is limited by the boundary and session policy; one to the account is only a
//!    delegation. KMS key policies and role trust policies must allow by themselves.

use serde::Serialize;
use serde_json::{Value, json};

use crate::ast::{Effect, Policy};
use crate::eval::{Grant, Layer, applies};
use crate::request::{Principal, Request};

/// The policies that bear on one request.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    /// Policies attached to the principal (user and its groups, or the role).
    pub identity: Vec<Policy>,
    /// The resource's policy: bucket, key, trust, repository, secret … policy.
    pub resource: Option<Policy>,
    /// Permissions boundaries: each must allow.
    pub boundaries: Vec<Policy>,
    /// The session policy passed when the role was assumed.
    pub session: Option<Policy>,
    /// SCPs of the principal's account, root first; each level must allow.
    pub scps: Vec<OrgLevel>,
    /// RCPs of the resource's account, root first; each level must allow.
    pub rcps: Vec<OrgLevel>,
    /// VPC endpoint policies the request passes through; each must allow.
    pub endpoints: Vec<Policy>,
}

/// One level of an organization (root, an OU, the account) and its policies.
#[derive(Debug, Clone)]
pub struct OrgLevel {
    pub name: String,
    pub policies: Vec<Policy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    Allow,
    ExplicitDeny,
    ImplicitDeny,
}

/// A statement that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    pub layer: Layer,
    /// The organization level, for SCPs and RCPs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Index of the policy in its layer.
    pub policy: usize,
    /// Index of the statement in its policy.
    pub statement: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
}

/// A statement that is missing, and where it belongs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissingGrant {
    pub layer: Layer,
    /// Which policy, in words: "the key policy of arn:aws:kms:…".
    pub place: String,
    pub statement: Value,
}

/// The answer, with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// The layer that decided (`None` for rules outside the policies).
    pub layer: Option<Layer>,
    pub reason: String,
    /// The statements that decided: the denies, or the allows that granted.
    pub statements: Vec<StatementRef>,
    /// For an implicit deny: the statements that would allow the request, all needed.
    pub missing: Vec<MissingGrant>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }
}

/// Services whose resources RCPs govern (AWS Organizations documentation, 2025).
const RCP_SERVICES: &[&str] = &[
    "s3",
    "sts",
    "kms",
    "sqs",
    "secretsmanager",
    "ecr",
    "es",
    "aoss",
    "cognito-identity",
    "logs",
    "dynamodb",
];

/// KMS actions that work across accounts; any other fails however the policies read.
const KMS_CROSS_ACCOUNT: &[&str] = &[
    "decrypt",
    "encrypt",
    "generatedatakey",
    "generatedatakeypair",
    "generatedatakeypairwithoutplaintext",
    "generatedatakeywithoutplaintext",
    "generatemac",
    "reencryptfrom",
    "reencryptto",
    "sign",
    "verify",
    "verifymac",
    "derivesharedsecret",
    "creategrant",
    "describekey",
    "getkeyrotationstatus",
    "getpublickey",
    "listgrants",
    "retiregrant",
    "revokegrant",
];

/// What the resource policy is, which changes how it combines with identity policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    KeyPolicy,
    TrustPolicy,
    BucketPolicy,
    RepositoryPolicy,
    SecretPolicy,
    Other,
}

impl ResourceKind {
    /// The policy that governs the request: the resource's own service's policy for that
    /// service's actions (a key policy governs `kms:` actions on the key; a trust policy
    /// governs `sts:` actions on the role).
    pub fn of(request: &Request) -> ResourceKind {
        let resource_service = service_of(&request.resource);
        let action_service = request.action.split(':').next().unwrap_or("");
        let acts_on = |service: &str| action_service.eq_ignore_ascii_case(service);
        match resource_service {
            "kms" if acts_on("kms") => ResourceKind::KeyPolicy,
            "iam" if acts_on("sts") && request.resource.contains(":role/") => {
                ResourceKind::TrustPolicy
            }
            "s3" if acts_on("s3") => ResourceKind::BucketPolicy,
            "ecr" if acts_on("ecr") => ResourceKind::RepositoryPolicy,
            "secretsmanager" if acts_on("secretsmanager") => ResourceKind::SecretPolicy,
            _ => ResourceKind::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ResourceKind::KeyPolicy => "key policy",
            ResourceKind::TrustPolicy => "trust policy",
            ResourceKind::BucketPolicy => "bucket policy",
            ResourceKind::RepositoryPolicy => "repository policy",
            ResourceKind::SecretPolicy => "resource policy",
            ResourceKind::Other => "resource policy",
        }
    }

    /// KMS key policies and role trust policies must allow by themselves, even in one account.
    fn must_allow(self) -> bool {
        matches!(self, ResourceKind::KeyPolicy | ResourceKind::TrustPolicy)
    }
}

fn service_of(arn: &str) -> &str {
    arn.split(':').nth(2).unwrap_or("")
}

/// The first allow (with the strongest grant) and the first deny of some policies.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    allow: Option<(usize, usize, Grant)>,
    deny: Option<(usize, usize)>,
}

fn scan<'a>(
    policies: impl Iterator<Item = &'a Policy>,
    layer: Layer,
    request: &Request,
    has_boundary: bool,
) -> Scan {
    let mut out = Scan::default();
    for (pi, policy) in policies.enumerate() {
        for statement in &policy.statements {
            let Some(grant) = applies(statement, layer, request, has_boundary) else {
                continue;
            };
            match statement.effect {
                Effect::Deny => {
                    if out.deny.is_none() {
                        out.deny = Some((pi, statement.index));
                    }
                }
                Effect::Allow => {
                    if out.allow.is_none_or(|(_, _, g)| grant > g) {
                        out.allow = Some((pi, statement.index, grant));
                    }
                }
            }
        }
    }
    out
}

/// Decides `request` against `policies`, with the explanation.
pub fn authorize(policies: &PolicySet, request: &Request) -> Decision {
    let verdict = verdict(policies, request);
    Explainer {
        set: policies,
        req: request,
    }
    .explain(verdict)
}

/// Decides `request` against `policies` without building an explanation: no allocation
/// beyond policy variables. `authorize(..).outcome` is always the same.
pub fn evaluate(policies: &PolicySet, request: &Request) -> Outcome {
    verdict(policies, request).outcome()
}

/// The identity side of a request: identity policies ∩ boundaries ∩ session policy.
#[derive(Debug, Clone, Copy)]
struct Side {
    /// `None`: no identity policy needed (the root user at home); `Some(None)`: none allows.
    identity: Option<Option<(usize, usize)>>,
    /// The first boundary that does not allow.
    boundary_missing: Option<usize>,
    session: Session,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    NotRequired,
    Allowed(usize),
    Missing,
}

impl Side {
    fn limits_ok(&self) -> bool {
        self.boundary_missing.is_none() && self.session != Session::Missing
    }

    fn ok(&self) -> bool {
        self.identity != Some(None) && self.limits_ok()
    }
}

/// What decided, in few bytes; [`Explainer`] turns it into words.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    CallerIdentity,
    ExplicitDeny,
    /// SCP, RCP or endpoint level without an allow: (layer, index of the level).
    Guardrail(Layer, usize),
    OnlyResourcePolicy {
        resource: Option<(usize, usize)>,
    },
    KmsNotCrossAccount,
    CrossAccount {
        resource: Option<(usize, usize)>,
        side: Side,
    },
    ResourceDirect((usize, usize)),
    ResourceRole((usize, usize), Side),
    MustAllow,
    Identity {
        resource: Option<(usize, usize)>,
        delegated: bool,
        side: Side,
    },
}

impl Verdict {
    fn outcome(self) -> Outcome {
        match self {
            Verdict::CallerIdentity | Verdict::ResourceDirect(_) => Outcome::Allow,
            Verdict::ExplicitDeny => Outcome::ExplicitDeny,
            Verdict::Guardrail(..) | Verdict::KmsNotCrossAccount | Verdict::MustAllow => {
                Outcome::ImplicitDeny
            }
            Verdict::OnlyResourcePolicy { resource } => {
                if resource.is_some() {
                    Outcome::Allow
                } else {
                    Outcome::ImplicitDeny
                }
            }
            Verdict::CrossAccount { resource, side } => {
                if resource.is_some() && side.ok() {
                    Outcome::Allow
                } else {
                    Outcome::ImplicitDeny
                }
            }
            Verdict::ResourceRole(_, side) => {
                if side.limits_ok() {
                    Outcome::Allow
                } else {
                    Outcome::ImplicitDeny
                }
            }
            Verdict::Identity { side, .. } => {
                if side.ok() {
                    Outcome::Allow
                } else {
                    Outcome::ImplicitDeny
                }
            }
        }
    }
}

/// SCPs restrict the organization's own principals, but not service-linked roles (T20).
fn scps_apply(req: &Request) -> bool {
    req.principal.account().is_some() && !req.principal.is_service_linked_role()
}

fn rcps_apply(req: &Request) -> bool {
    let service = req.action.split(':').next().unwrap_or("");
    RCP_SERVICES.iter().any(|s| s.eq_ignore_ascii_case(service))
}

/// Calls `f` with every layer that applies and its policies, until `f` returns true.
fn any_layer(
    set: &PolicySet,
    req: &Request,
    mut f: impl FnMut(Layer, Option<usize>, &[Policy]) -> bool,
) -> bool {
    f(Layer::Identity, None, &set.identity)
        || f(Layer::ResourcePolicy, None, set.resource.as_slice())
        || f(Layer::PermissionBoundary, None, &set.boundaries)
        || f(Layer::SessionPolicy, None, set.session.as_slice())
        || f(Layer::VpcEndpoint, None, &set.endpoints)
        || (scps_apply(req)
            && set
                .scps
                .iter()
                .enumerate()
                .any(|(i, l)| f(Layer::Scp, Some(i), &l.policies)))
        || (rcps_apply(req)
            && set
                .rcps
                .iter()
                .enumerate()
                .any(|(i, l)| f(Layer::Rcp, Some(i), &l.policies)))
}

fn verdict(set: &PolicySet, req: &Request) -> Verdict {
    if req.action.eq_ignore_ascii_case("sts:GetCallerIdentity") {
        return Verdict::CallerIdentity;
    }
    let has_boundary = !set.boundaries.is_empty();
    if any_layer(set, req, |layer, _, policies| {
        scan(policies.iter(), layer, req, has_boundary)
            .deny
            .is_some()
    }) {
        return Verdict::ExplicitDeny;
    }
    // Guardrails: every SCP level, RCP level and endpoint policy must allow.
    if scps_apply(req)
        && let Some(i) = set.scps.iter().position(|l| {
            scan(l.policies.iter(), Layer::Scp, req, has_boundary)
                .allow
                .is_none()
        })
    {
        return Verdict::Guardrail(Layer::Scp, i);
    }
    if rcps_apply(req)
        && let Some(i) = set.rcps.iter().position(|l| {
            scan(l.policies.iter(), Layer::Rcp, req, has_boundary)
                .allow
                .is_none()
        })
    {
        return Verdict::Guardrail(Layer::Rcp, i);
    }
    if let Some(i) = set.endpoints.iter().position(|p| {
        scan(std::iter::once(p), Layer::VpcEndpoint, req, has_boundary)
            .allow
            .is_none()
    }) {
        return Verdict::Guardrail(Layer::VpcEndpoint, i);
    }
    let kind = ResourceKind::of(req);
    let resource = scan(
        set.resource.iter(),
        Layer::ResourcePolicy,
        req,
        has_boundary,
    )
    .allow;
    let at = resource.map(|(pi, si, _)| (pi, si));
    let grant = resource.map(|(_, _, g)| g);
    if req.principal.account().is_none() {
        return Verdict::OnlyResourcePolicy {
            resource: at.filter(|_| grant == Some(Grant::Direct)),
        };
    }
    if req.is_cross_account() {
        if kind == ResourceKind::KeyPolicy {
            let action = req.action.split(':').nth(1).unwrap_or("");
            if !KMS_CROSS_ACCOUNT
                .iter()
                .any(|a| a.eq_ignore_ascii_case(action))
            {
                return Verdict::KmsNotCrossAccount;
            }
        }
        return Verdict::CrossAccount {
            resource: at,
            side: side(set, req, true),
        };
    }
    match (grant, at) {
        (Some(Grant::Direct), Some(at)) => return Verdict::ResourceDirect(at),
        (Some(Grant::Role), Some(at)) => return Verdict::ResourceRole(at, side(set, req, false)),
        _ => {}
    }
    if kind.must_allow() && grant.is_none() {
        return Verdict::MustAllow;
    }
    Verdict::Identity {
        resource: at,
        delegated: grant == Some(Grant::Account),
        side: side(set, req, true),
    }
}

/// The identity side; `with_identity`: whether identity policies must allow (not when the
/// resource policy granted the role).
fn side(set: &PolicySet, req: &Request, with_identity: bool) -> Side {
    let has_boundary = !set.boundaries.is_empty();
    let root_at_home = matches!(req.principal, Principal::Root { .. }) && !req.is_cross_account();
    let identity = (with_identity && !root_at_home).then(|| {
        scan(set.identity.iter(), Layer::Identity, req, has_boundary)
            .allow
            .map(|(pi, si, _)| (pi, si))
    });
    let boundary_missing = set.boundaries.iter().position(|b| {
        scan(std::iter::once(b), Layer::PermissionBoundary, req, true)
            .allow
            .is_none()
    });
    let session_needed = match &req.principal {
        Principal::Role { .. } | Principal::Session { .. } => set.session.is_some(),
        // GetFederationToken without a session policy grants nothing.
        Principal::FederatedUser { .. } => true,
        _ => false,
    };
    let session =
        if !session_needed {
            Session::NotRequired
        } else {
            match set.session.as_ref().and_then(|p| {
                scan(std::iter::once(p), Layer::SessionPolicy, req, has_boundary).allow
            }) {
                Some((_, si, _)) => Session::Allowed(si),
                None => Session::Missing,
            }
        };
    Side {
        identity,
        boundary_missing,
        session,
    }
}

/// Turns a [`Verdict`] into a [`Decision`]: reasons, statements and missing grants.
struct Explainer<'a> {
    set: &'a PolicySet,
    req: &'a Request,
}

impl Explainer<'_> {
    fn explain(&self, verdict: Verdict) -> Decision {
        let req = self.req;
        let kind = ResourceKind::of(req);
        let outcome = verdict.outcome();
        let decision = |layer: Option<Layer>,
                        reason: String,
                        statements: Vec<StatementRef>,
                        missing: Vec<MissingGrant>| Decision {
            outcome,
            layer,
            reason,
            statements,
            missing,
        };
        match verdict {
            Verdict::CallerIdentity => decision(
                None,
                "sts:GetCallerIdentity is always allowed; no policy can deny it".into(),
                Vec::new(),
                Vec::new(),
            ),
            Verdict::ExplicitDeny => self.explicit_deny(),
            Verdict::Guardrail(layer, i) => self.guardrail(layer, i),
            Verdict::OnlyResourcePolicy { resource: Some(at) } => decision(
                Some(Layer::ResourcePolicy),
                format!("the {} allows {}", kind.name(), req.principal),
                vec![self.resource_ref(at)],
                Vec::new(),
            ),
            Verdict::OnlyResourcePolicy { resource: None } => decision(
                Some(Layer::ResourcePolicy),
                format!(
                    "only a resource policy can allow {}, and the {} does not",
                    req.principal,
                    kind.name()
                ),
                Vec::new(),
                vec![self.missing_resource(kind)],
            ),
            Verdict::KmsNotCrossAccount => decision(
                Some(Layer::ResourcePolicy),
                format!(
                    "KMS does not allow {} across accounts, whatever the policies say",
                    req.action
                ),
                Vec::new(),
                Vec::new(),
            ),
            Verdict::CrossAccount { resource, side } => {
                let (allows, missing, why) = self.side(side);
                if outcome == Outcome::Allow {
                    let mut statements: Vec<StatementRef> = resource
                        .map(|at| self.resource_ref(at))
                        .into_iter()
                        .collect();
                    statements.extend(allows);
                    return decision(
                        Some(Layer::ResourcePolicy),
                        format!(
                            "cross-account: the {} and the principal's identity side both allow",
                            kind.name()
                        ),
                        statements,
                        Vec::new(),
                    );
                }
                let mut all_missing = Vec::new();
                if resource.is_none() {
                    all_missing.push(self.missing_resource(kind));
                }
                all_missing.extend(missing);
                let (layer, reason) = match (resource.is_none(), why) {
                    (true, None) => (
                        Layer::ResourcePolicy,
                        format!(
                            "cross-account: the {} of {} does not allow {}",
                            kind.name(),
                            self.resource_owner(kind),
                            self.identity_owner()
                        ),
                    ),
                    (true, Some((_, w))) => (
                        Layer::ResourcePolicy,
                        format!(
                            "cross-account: the {} of {} does not allow {}, and {w}",
                            kind.name(),
                            self.resource_owner(kind),
                            self.identity_owner()
                        ),
                    ),
                    (false, Some((l, w))) => (l, format!("cross-account: {w}")),
                    (false, None) => (Layer::Identity, "cross-account: denied".into()),
                };
                decision(Some(layer), reason, Vec::new(), all_missing)
            }
            Verdict::ResourceDirect(at) => decision(
                Some(Layer::ResourcePolicy),
                format!("the {} allows the principal directly", kind.name()),
                vec![self.resource_ref(at)],
                Vec::new(),
            ),
            Verdict::ResourceRole(at, side) => {
                let (allows, missing, why) = self.side(side);
                if outcome == Outcome::Allow {
                    let mut statements = vec![self.resource_ref(at)];
                    statements.extend(allows);
                    decision(
                        Some(Layer::ResourcePolicy),
                        format!("the {} allows the principal's role", kind.name()),
                        statements,
                        Vec::new(),
                    )
                } else {
                    let (layer, reason) =
                        why.unwrap_or((Layer::PermissionBoundary, "denied".into()));
                    decision(Some(layer), reason, Vec::new(), missing)
                }
            }
            Verdict::MustAllow => decision(
                Some(Layer::ResourcePolicy),
                format!(
                    "a {} must allow the request itself, and the {} of {} does not",
                    kind.name(),
                    kind.name(),
                    self.resource_owner(kind)
                ),
                Vec::new(),
                vec![self.missing_resource(kind)],
            ),
            Verdict::Identity {
                resource,
                delegated,
                side,
            } => {
                let (mut allows, missing, why) = self.side(side);
                if outcome == Outcome::Allow {
                    allows.extend(resource.map(|at| self.resource_ref(at)));
                    let reason = if delegated {
                        format!(
                            "the {} delegates to the account and its identity policies allow",
                            kind.name()
                        )
                    } else {
                        "the principal's identity policies allow".to_owned()
                    };
                    decision(Some(Layer::Identity), reason, allows, Vec::new())
                } else {
                    let (layer, reason) = why.unwrap_or((Layer::Identity, "denied".into()));
                    decision(Some(layer), reason, Vec::new(), missing)
                }
            }
        }
    }

    fn statement_ref(
        &self,
        layer: Layer,
        level: Option<&str>,
        policy: &Policy,
        pi: usize,
        si: usize,
    ) -> StatementRef {
        let statement = policy.statements.iter().find(|s| s.index == si);
        StatementRef {
            layer,
            level: level.map(str::to_owned),
            policy: pi,
            statement: si,
            sid: statement.and_then(|s| s.sid.clone()),
            effect: statement.map_or(Effect::Allow, |s| s.effect),
        }
    }

    fn resource_ref(&self, (pi, si): (usize, usize)) -> StatementRef {
        match &self.set.resource {
            Some(p) => self.statement_ref(Layer::ResourcePolicy, None, p, pi, si),
            None => StatementRef {
                layer: Layer::ResourcePolicy,
                level: None,
                policy: pi,
                statement: si,
                sid: None,
                effect: Effect::Allow,
            },
        }
    }

    fn explicit_deny(&self) -> Decision {
        let has_boundary = !self.set.boundaries.is_empty();
        let mut denies = Vec::new();
        any_layer(self.set, self.req, |layer, level, policies| {
            let level_name = level.and_then(|i| match layer {
                Layer::Scp => self.set.scps.get(i).map(|l| l.name.as_str()),
                _ => self.set.rcps.get(i).map(|l| l.name.as_str()),
            });
            for (pi, policy) in policies.iter().enumerate() {
                for statement in &policy.statements {
                    if statement.effect == Effect::Deny
                        && applies(statement, layer, self.req, has_boundary).is_some()
                    {
                        denies.push(self.statement_ref(
                            layer,
                            level_name,
                            policy,
                            pi,
                            statement.index,
                        ));
                    }
                }
            }
            false
        });
        let (layer, which, level) = match denies.first() {
            Some(first) => (
                first.layer,
                match &first.sid {
                    Some(sid) => format!("statement `{sid}`"),
                    None => format!("statement {}", first.statement),
                },
                // An SCP or RCP is found by where it is attached.
                first
                    .level
                    .as_ref()
                    .map(|l| format!(" attached at `{l}`"))
                    .unwrap_or_default(),
            ),
            None => (Layer::Identity, "a statement".into(), String::new()),
        };
        Decision {
            outcome: Outcome::ExplicitDeny,
            layer: Some(layer),
            reason: format!(
                "{which} of a {}{level} denies it; an explicit deny wins over every allow",
                layer.name()
            ),
            statements: denies,
            missing: Vec::new(),
        }
    }

    fn guardrail(&self, layer: Layer, i: usize) -> Decision {
        let req = self.req;
        let level = match layer {
            Layer::Scp => self.set.scps.get(i).map(|l| l.name.clone()),
            Layer::Rcp => self.set.rcps.get(i).map(|l| l.name.clone()),
            _ => Some(format!("endpoint policy {i}")),
        }
        .unwrap_or_default();
        let place = match layer {
            Layer::Scp => format!("an SCP attached at `{level}` of the principal's organization"),
            Layer::Rcp => format!("an RCP attached at `{level}` of the resource's organization"),
            _ => "the VPC endpoint policy".to_owned(),
        };
        let statement = if layer == Layer::Scp {
            json!({"Effect": "Allow", "Action": req.action, "Resource": req.resource})
        } else {
            json!({"Effect": "Allow", "Principal": "*", "Action": req.action, "Resource": req.resource})
        };
        Decision {
            outcome: Outcome::ImplicitDeny,
            layer: Some(layer),
            reason: format!("no {} at `{level}` allows {}", layer.name(), req.action),
            statements: Vec::new(),
            missing: vec![MissingGrant {
                layer,
                place,
                statement,
            }],
        }
    }

    /// The identity side in words: statements that allow, grants missing, and the first
    /// reason it does not allow (with its layer).
    fn side(
        &self,
        side: Side,
    ) -> (
        Vec<StatementRef>,
        Vec<MissingGrant>,
        Option<(Layer, String)>,
    ) {
        let req = self.req;
        let owner = self.identity_owner();
        let grant = |layer: Layer, place: String| MissingGrant {
            layer,
            place,
            statement: json!({"Effect": "Allow", "Action": req.action, "Resource": req.resource}),
        };
        let mut allows = Vec::new();
        let mut missing = Vec::new();
        let mut why: Option<(Layer, String)> = None;
        match side.identity {
            Some(Some((pi, si))) => allows.push(self.statement_ref(
                Layer::Identity,
                None,
                &self.set.identity[pi],
                pi,
                si,
            )),
            Some(None) => {
                missing.push(grant(
                    Layer::Identity,
                    format!("an identity policy of {owner}"),
                ));
                why = Some((
                    Layer::Identity,
                    format!(
                        "no identity policy of {owner} allows {} on {}",
                        req.action, req.resource
                    ),
                ));
            }
            None => {}
        }
        for (bi, boundary) in self.set.boundaries.iter().enumerate() {
            match scan(
                std::iter::once(boundary),
                Layer::PermissionBoundary,
                req,
                true,
            )
            .allow
            {
                Some((_, si, _)) => allows.push(self.statement_ref(
                    Layer::PermissionBoundary,
                    None,
                    boundary,
                    bi,
                    si,
                )),
                None => {
                    missing.push(grant(
                        Layer::PermissionBoundary,
                        format!("the permissions boundary of {owner}"),
                    ));
                    why.get_or_insert((
                        Layer::PermissionBoundary,
                        format!(
                            "the permissions boundary of {owner} does not allow {}",
                            req.action
                        ),
                    ));
                }
            }
        }
        match side.session {
            Session::Allowed(si) => {
                if let Some(p) = &self.set.session {
                    allows.push(self.statement_ref(Layer::SessionPolicy, None, p, 0, si));
                }
            }
            Session::Missing => {
                missing.push(grant(
                    Layer::SessionPolicy,
                    format!(
                        "the session policy passed when {} was created",
                        req.principal
                    ),
                ));
                why.get_or_insert((
                    Layer::SessionPolicy,
                    format!(
                        "the session policy of {} does not allow {}",
                        req.principal, req.action
                    ),
                ));
            }
            Session::NotRequired => {}
        }
        (allows, missing, why)
    }

    /// The identity that holds identity policies: the role for a session.
    fn identity_owner(&self) -> String {
        self.req
            .principal
            .principal_arn()
            .unwrap_or_else(|| self.req.principal.to_string())
    }

    /// The resource whose policy it is: the bucket for an object.
    fn resource_owner(&self, kind: ResourceKind) -> String {
        let r = &self.req.resource;
        match kind {
            ResourceKind::BucketPolicy => match r.strip_prefix("arn:aws:s3:::") {
                Some(rest) => format!("arn:aws:s3:::{}", rest.split('/').next().unwrap_or(rest)),
                None => r.clone(),
            },
            _ => r.clone(),
        }
    }

    fn principal_in_policy(&self) -> Value {
        match &self.req.principal {
            Principal::Anonymous => json!("*"),
            Principal::Service(s) => json!({"Service": s}),
            Principal::Federated { provider } => json!({"Federated": provider}),
            p => json!({"AWS": p.principal_arn().unwrap_or_else(|| p.to_string())}),
        }
    }

    fn missing_resource(&self, kind: ResourceKind) -> MissingGrant {
        let req = self.req;
        let mut statement = json!({"Effect": "Allow", "Principal": self.principal_in_policy(), "Action": req.action});
        match kind {
            // Trust and repository policies apply to the resource they are on.
            ResourceKind::TrustPolicy | ResourceKind::RepositoryPolicy => {}
            // In a key policy "*" means "this key".
            ResourceKind::KeyPolicy => statement["Resource"] = json!("*"),
            _ => statement["Resource"] = json!(req.resource),
        }
        MissingGrant {
            layer: Layer::ResourcePolicy,
            place: format!("the {} of {}", kind.name(), self.resource_owner(kind)),
            statement,
        }
    }
}
