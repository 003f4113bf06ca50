//! Who may do what. A caller presents an API token (`Authorization: Bearer …`); the server
//! keeps only the token's SHA-256 and compares hashes in constant time. Each token has a role
//! — viewer < operator (start, stop, retry, rollback) < approver < admin — and groups, which
//! a manifest's `approval.approvers` may name.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::store::{ServerStore, StoreError, TokenInfo};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads everything but secrets.
    Viewer,
    /// Also starts, stops and retries executions, and rolls environments back.
    Operator,
    /// Also approves and rejects (where the manifest lists it, or lists no approvers).
    Approver,
    /// Also reads the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Approver, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
    pub groups: Vec<String>,
    /// Signed in through the dashboard: the session's CSRF token, which each of its mutating
    /// requests must carry. `None` for a bearer token (no browser sends one by itself).
    pub csrf: Option<String>,
}

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "ferry_session";
/// How long a sign-in lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;

/// Tokens carry this prefix, so a leaked one is easy to recognise (and to scan for).
pub const PREFIX: &str = "ferry_";

fn hash(token: &str) -> String {
    ferry_engine::encoding::hex(digest::digest(&digest::SHA256, token.as_bytes()).as_ref())
}

/// Makes a token for `name`: returns it, once; the store keeps its hash.
pub fn create(
    store: &ServerStore,
    name: &str,
    role: Role,
    groups: &[String],
) -> Result<String, StoreError> {
    let token = format!("{PREFIX}{}", random_hex::<32>()?);
    store.add_token(name, role, groups, &hash(&token))?;
    Ok(token)
}

fn random_hex<const N: usize>() -> Result<String, StoreError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(ferry_engine::encoding::hex(&bytes))
}

/// Signs a browser in with a token: the session cookie's secret (the store keeps its hash)
/// and the caller, with the session's CSRF token. `None` for a token that is unknown or
/// revoked.
pub fn sign_in(store: &ServerStore, token: &str) -> Result<Option<(String, Caller)>, StoreError> {
    let Some(mut who) = authenticate(store, token)? else {
        return Ok(None);
    };
    let secret = random_hex::<32>()?;
    let csrf = random_hex::<16>()?;
    store.add_session(&hash(&secret), &hash(token.trim()), &csrf, SESSION_TTL_MS)?;
    who.csrf = Some(csrf);
    Ok(Some((secret, who)))
}

/// The caller a session cookie belongs to; `None` once it expired, was signed out, or its
/// token was revoked.
pub fn session(store: &ServerStore, secret: &str) -> Result<Option<Caller>, StoreError> {
    let Some((token_hash, csrf)) = store.session(&hash(secret.trim()))? else {
        return Ok(None);
    };
    let Some((info, _)) = store.token_by_hash(&token_hash)? else {
        return Ok(None);
    };
    let mut who = caller(info);
    who.csrf = Some(csrf);
    Ok(Some(who))
}

pub fn sign_out(store: &ServerStore, secret: &str) -> Result<(), StoreError> {
    store.remove_session(&hash(secret.trim()))
}

/// Whether a request of a session carries its CSRF token (compared in constant time).
pub fn csrf_matches(expected: &str, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| {
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), p.as_bytes()).is_ok()
    })
}

/// The caller a token belongs to; `None` for a token that is unknown or revoked.
pub fn authenticate(store: &ServerStore, token: &str) -> Result<Option<Caller>, StoreError> {
    let presented = hash(token.trim());
    let Some((info, stored)) = store.token_by_hash(&presented)? else {
        return Ok(None);
    };
    // The look-up found it by hash; the comparison is constant-time all the same.
    if aws_lc_rs::constant_time::verify_slices_are_equal(stored.as_bytes(), presented.as_bytes())
        .is_err()
    {
        return Ok(None);
    }
    Ok(Some(caller(info)))
}

fn caller(info: TokenInfo) -> Caller {
    Caller {
        name: info.name,
        role: info.role,
        groups: info.groups,
        csrf: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_authenticates_once_created_and_never_after_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path()).unwrap();
        let token = create(&store, "alice", Role::Approver, &["platform".into()]).unwrap();
        assert!(token.starts_with(PREFIX) && token.len() == PREFIX.len() + 64);
        let who = authenticate(&store, &token).unwrap().unwrap();
        assert_eq!((who.name.as_str(), who.role), ("alice", Role::Approver));
        assert_eq!(who.groups, ["platform"]);
        assert!(authenticate(&store, "ferry_0000").unwrap().is_none());
        // Only the hash is kept.
        let db = std::fs::read(dir.path().join("server.db")).unwrap();
        assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()));
        assert!(store.revoke_token("alice").unwrap());
        assert!(authenticate(&store, &token).unwrap().is_none());
        // A revoked name can be given a new token.
        create(&store, "alice", Role::Viewer, &[]).unwrap();
        assert!(create(&store, "alice", Role::Viewer, &[]).is_err());
    }

    #[test]
    fn a_session_lasts_until_signed_out_or_its_token_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = ServerStore::open(dir.path()).unwrap();
        let token = create(&store, "alice", Role::Approver, &[]).unwrap();
        assert!(sign_in(&store, "ferry_wrong").unwrap().is_none());
        let (secret, who) = sign_in(&store, &token).unwrap().unwrap();
        let csrf = who.csrf.unwrap();
        assert_ne!(secret, token);
        let again = session(&store, &secret).unwrap().unwrap();
        assert_eq!(
            (again.name.as_str(), again.csrf.as_deref()),
            ("alice", Some(csrf.as_str()))
        );
        assert!(csrf_matches(&csrf, Some(&csrf)));
        assert!(!csrf_matches(&csrf, Some("forged")) && !csrf_matches(&csrf, None));
        // Neither the cookie's secret nor the token is stored.
        let db = std::fs::read(dir.path().join("server.db")).unwrap();
        assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()));
        sign_out(&store, &secret).unwrap();
        assert!(session(&store, &secret).unwrap().is_none());
        let (secret, _) = sign_in(&store, &token).unwrap().unwrap();
        store.revoke_token("alice").unwrap();
        assert!(
            session(&store, &secret).unwrap().is_none(),
            "revoking the token ends its sessions"
        );
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Approver);
        assert!(Role::Approver < Role::Admin);
        assert_eq!(Role::parse("approver"), Some(Role::Approver));
    }
}
