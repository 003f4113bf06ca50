//! A request to authorize: who, what, on which resource, in which context.

use std::fmt;

/// The principal making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An unsigned request.
    Anonymous,
    /// An AWS service calling on its own behalf, e.g. `lambda.amazonaws.com`.
    Service(String),
    /// The root user of an account.
    Root {
        account: String,
    },
    User {
        account: String,
        name: String,
    },
    /// A role given as the requester: a session of that role whose session name is unknown.
    Role {
        account: String,
        name: String,
    },
    /// `arn:aws:sts::A:assumed-role/R/S`.
    Session {
        account: String,
        role: String,
        session: String,
    },
    /// A caller signed in by an identity provider, for `sts:AssumeRoleWithWebIdentity` (OIDC)
    /// or `sts:AssumeRoleWithSAML`: the provider's ARN, `arn:aws:iam::A:oidc-provider/HOST`,
    /// as a trust policy's `Federated` names it. Only the trust policy decides.
    Federated {
        provider: String,
    },
    /// `arn:aws:sts::A:federated-user/N` (GetFederationToken).
    FederatedUser {
        account: String,
        name: String,
    },
}

impl Principal {
    /// Reads an ARN, a service principal (`x.amazonaws.com`) or `anonymous`.
    pub fn parse(text: &str) -> Result<Principal, String> {
        if text == "anonymous" || text == "*" {
            return Ok(Principal::Anonymous);
        }
        if !text.starts_with("arn:") {
            if text.ends_with(".amazonaws.com") || text.ends_with(".amazonaws.com.cn") {
                return Ok(Principal::Service(text.to_owned()));
            }
            return Err(format!(
                "`{text}` is not a principal: give an IAM or STS ARN, a service principal such as `lambda.amazonaws.com`, or `anonymous`"
            ));
        }
        let parts: Vec<&str> = text.splitn(6, ':').collect();
        let bad = || {
            format!(
                "`{text}` is not a principal ARN (arn:aws:iam::ACCOUNT:user/NAME, …:role/NAME, …:root, or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION)"
            )
        };
        let [_, _, service, _, account, resource] = parts.as_slice() else {
            return Err(bad());
        };
        let account = (*account).to_owned();
        let last = |r: &str| r.rsplit('/').next().unwrap_or(r).to_owned();
        match *service {
            "iam" if *resource == "root" => Ok(Principal::Root { account }),
            "iam" if resource.starts_with("user/") => Ok(Principal::User {
                account,
                name: last(resource),
            }),
            "iam" if resource.starts_with("role/") => Ok(Principal::Role {
                account,
                name: last(resource),
            }),
            "iam"
                if resource.starts_with("oidc-provider/")
                    || resource.starts_with("saml-provider/") =>
            {
                Ok(Principal::Federated {
                    provider: text.to_owned(),
                })
            }
            "sts" => {
                let segs: Vec<&str> = resource.split('/').collect();
                match segs.as_slice() {
                    ["assumed-role", role, session] => Ok(Principal::Session {
                        account,
                        role: (*role).to_owned(),
                        session: (*session).to_owned(),
                    }),
                    ["federated-user", name] => Ok(Principal::FederatedUser {
                        account,
                        name: (*name).to_owned(),
                    }),
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }

    /// The principal's account; `None` for callers outside every account — anonymous callers,
    /// services and identity providers — which hold no identity policies (only a resource
    /// policy can allow them) and no SCP restricts.
    pub fn account(&self) -> Option<&str> {
        match self {
            Principal::Anonymous | Principal::Service(_) | Principal::Federated { .. } => None,
            Principal::Root { account }
            | Principal::User { account, .. }
            | Principal::Role { account, .. }
            | Principal::Session { account, .. }
            | Principal::FederatedUser { account, .. } => Some(account),
        }
    }

    /// `aws:PrincipalArn`: for a session, the ARN of its role (without path: a session ARN
    /// does not carry it).
    pub fn principal_arn(&self) -> Option<String> {
        match self {
            Principal::Session { account, role, .. }
            | Principal::Role {
                account,
                name: role,
            } => Some(format!("arn:aws:iam::{account}:role/{role}")),
            Principal::Anonymous | Principal::Service(_) | Principal::Federated { .. } => None,
            other => Some(other.to_string()),
        }
    }

    /// `aws:PrincipalType`.
    pub fn principal_type(&self) -> &'static str {
        match self {
            Principal::Anonymous => "Anonymous",
            Principal::Service(_) => "Service",
            Principal::Federated { .. } => "WebIdentityUser",
            Principal::Root { .. } => "Account",
            Principal::User { .. } => "User",
            Principal::Role { .. } | Principal::Session { .. } => "AssumedRole",
            Principal::FederatedUser { .. } => "FederatedUser",
        }
    }

    /// A service-linked role, or a session of one: AWS names them `AWSServiceRoleFor…` under
    /// the path `/aws-service-role/` (a session ARN drops the path, the name remains).
    pub fn is_service_linked_role(&self) -> bool {
        let role = match self {
            Principal::Role { name, .. } => name.as_str(),
            Principal::Session { role, .. } => role.as_str(),
            _ => return false,
        };
        role.starts_with("aws-service-role/")
            || role
                .rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("AWSServiceRoleFor"))
    }

    /// Whether the principal acts through temporary session credentials.
    pub fn is_role_session(&self) -> bool {
        matches!(self, Principal::Role { .. } | Principal::Session { .. })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Anonymous => f.write_str("anonymous"),
            Principal::Service(s) => f.write_str(s),
            Principal::Federated { provider } => f.write_str(provider),
            Principal::Root { account } => write!(f, "arn:aws:iam::{account}:root"),
            Principal::User { account, name } => write!(f, "arn:aws:iam::{account}:user/{name}"),
            Principal::Role { account, name } => write!(f, "arn:aws:iam::{account}:role/{name}"),
            Principal::Session {
                account,
                role,
                session,
            } => {
                write!(f, "arn:aws:sts::{account}:assumed-role/{role}/{session}")
            }
            Principal::FederatedUser { account, name } => {
                write!(f, "arn:aws:sts::{account}:federated-user/{name}")
            }
        }
    }
}

/// The value of a context key: one string, or several for a multivalued key
/// (`aws:TagKeys`, `aws:PrincipalOrgPaths`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Single(String),
    Multi(Vec<String>),
}

impl ContextValue {
    pub fn values(&self) -> &[String] {
        match self {
            ContextValue::Single(v) => std::slice::from_ref(v),
            ContextValue::Multi(v) => v,
        }
    }
}

/// Request context keys (case-insensitive) and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Keys lowercased. Few entries: a linear scan beats hashing.
    entries: Vec<(String, ContextValue)>,
}

impl Context {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Context {
        let mut c = Context::default();
        for (k, v) in pairs {
            c.insert(k, ContextValue::Single(v.to_owned()));
        }
        c
    }

    /// Sets a key, replacing any value it had.
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        let key = key.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// The value of a lowercased key.
    pub fn get_lower(&self, key_lower: &str) -> Option<&ContextValue> {
        self.entries
            .iter()
            .find(|(k, _)| k == key_lower)
            .map(|(_, v)| v)
    }

    /// The single value of a key, in any case; `None` if absent or multivalued.
    pub fn single(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| match v {
                ContextValue::Single(s) => Some(s.as_str()),
                ContextValue::Multi(_) => None,
            })
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(key))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// One request: principal, action, resource and context.
#[derive(Debug, Clone)]
pub struct Request {
    pub principal: Principal,
    /// `service:Action`, in any case.
    pub action: String,
    /// The resource ARN, or `*` for actions that have no resource type.
    pub resource: String,
    /// The account that owns the resource; defaults to the principal's.
    pub resource_account: Option<String>,
    pub context: Context,
}

impl Request {
    pub fn new(principal: Principal, action: &str, resource: &str) -> Request {
        Request {
            principal,
            action: action.to_owned(),
            resource: resource.to_owned(),
            resource_account: None,
            context: Context::default(),
        }
    }

    #[must_use]
    pub fn with_resource_account(mut self, account: &str) -> Request {
        self.resource_account = Some(account.to_owned());
        self
    }

    /// The account that owns the resource.
    pub fn resource_account(&self) -> Option<&str> {
        self.resource_account
            .as_deref()
            .or_else(|| self.principal.account())
    }

    /// Whether principal and resource are in different accounts (always for anonymous
    /// callers and services).
    pub fn is_cross_account(&self) -> bool {
        match (self.principal.account(), self.resource_account()) {
            (Some(p), Some(r)) => p != r,
            _ => true,
        }
    }

    /// Fills in the context keys AWS derives from the principal — `aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:username` for IAM users — where
    /// the request does not give them.
    pub fn derive_context(&mut self) {
        let mut derived: Vec<(&str, String)> = vec![(
            "aws:PrincipalType",
            self.principal.principal_type().to_owned(),
        )];
        if let Some(arn) = self.principal.principal_arn() {
            derived.push(("aws:PrincipalArn", arn));
        }
        if let Some(account) = self.principal.account() {
            derived.push(("aws:PrincipalAccount", account.to_owned()));
        }
        if let Principal::User { name, .. } = &self.principal {
            derived.push(("aws:username", name.clone()));
        }
        for (key, value) in derived {
            if !self.context.contains(key) {
                self.context.insert(key, ContextValue::Single(value));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_from_every_form() {
        assert_eq!(
            Principal::parse("arn:aws:sts::111122223333:assumed-role/deploy/s1").unwrap(),
            Principal::Session {
                account: "111122223333".into(),
                role: "deploy".into(),
                session: "s1".into()
            }
        );
        assert_eq!(
            Principal::parse("arn:aws:iam::111122223333:role/path/deploy").unwrap(),
            Principal::Role {
                account: "111122223333".into(),
                name: "deploy".into()
            }
        );
        assert_eq!(Principal::parse("anonymous").unwrap(), Principal::Anonymous);
        assert_eq!(
            Principal::parse("ecs-tasks.amazonaws.com").unwrap(),
            Principal::Service("ecs-tasks.amazonaws.com".into())
        );
        assert!(Principal::parse("bob").is_err());
    }

    #[test]
    fn derived_context_uses_the_role_arn_for_sessions_and_keeps_given_keys() {
        let p = Principal::parse("arn:aws:sts::111122223333:assumed-role/deploy/s1").unwrap();
        let mut r = Request::new(p, "s3:GetObject", "arn:aws:s3:::b/k");
        r.context
            .insert("aws:PrincipalAccount", ContextValue::Single("given".into()));
        r.derive_context();
        assert_eq!(
            r.context.single("aws:principalarn"),
            Some("arn:aws:iam::111122223333:role/deploy")
        );
        assert_eq!(r.context.single("AWS:PrincipalAccount"), Some("given"));
        assert_eq!(r.context.single("aws:username"), None);
    }
}
