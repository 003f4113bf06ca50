//! Secrets for builds and deploys. The engine asks a [`SecretResolver`] (ferry-aws reads
//! Secrets Manager) and registers every value with the masker before any process sees it.

use async_trait::async_trait;
use secrecy::SecretString;

/// A secret as CodeBuild's `env.secrets-manager` names it:
/// `secret-id[:json-key[:version-stage[:version-id]]]`, where the id is a name or an ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub secret_id: String,
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

impl SecretRef {
    pub fn id(secret_id: &str) -> SecretRef {
        SecretRef {
            secret_id: secret_id.to_owned(),
            json_key: None,
            version_stage: None,
            version_id: None,
        }
    }

    pub fn parse(text: &str) -> Result<SecretRef, String> {
        let parts: Vec<&str> = text.split(':').collect();
        // An ARN is seven colon-separated parts: arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME.
        let (id, rest) = if text.starts_with("arn:") {
            if parts.len() < 7 {
                return Err(format!("`{text}` is not a secret ARN"));
            }
            (parts[..7].join(":"), &parts[7..])
        } else {
            (parts[0].to_owned(), &parts[1..])
        };
        if id.is_empty() || rest.len() > 3 {
            return Err(format!(
                "`{text}` is not `secret-id[:json-key[:version-stage[:version-id]]]`"
            ));
        }
        let part = |i: usize| {
            rest.get(i)
                .filter(|s| !s.is_empty())
                .map(|s| (*s).to_owned())
        };
        Ok(SecretRef {
            secret_id: id,
            json_key: part(0),
            version_stage: part(1),
            version_id: part(2),
        })
    }
}

/// A Parameter Store parameter's value, as a buildspec's `env.parameter-store` reads it.
pub struct Parameter {
    pub value: SecretString,
    /// A `SecureString` (decrypted on reading): masked in logs like a secret.
    pub secure: bool,
}

#[async_trait]
pub trait SecretResolver: Send + Sync {
    /// The value; errors name the secret, never a value.
    async fn resolve(&self, secret: &SecretRef) -> Result<SecretString, String>;

    /// A parameter by name or ARN, decrypted; errors name the parameter, never a value.
    async fn parameter(&self, name: &str) -> Result<Parameter, String>;
}

/// For runs without AWS: every secret is an error that says so.
#[derive(Debug, Default)]
pub struct NoSecrets;

#[async_trait]
impl SecretResolver for NoSecrets {
    async fn resolve(&self, secret: &SecretRef) -> Result<SecretString, String> {
        Err(format!(
            "secret `{}` cannot be read: this run has no AWS access (Secrets Manager) configured",
            secret.secret_id
        ))
    }

    async fn parameter(&self, name: &str) -> Result<Parameter, String> {
        Err(format!(
            "parameter `{name}` cannot be read: this run has no AWS access (Parameter Store) configured"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_arns_with_their_suffixes() {
        assert_eq!(
            SecretRef::parse("orders/db").unwrap(),
            SecretRef::id("orders/db")
        );
        let r = SecretRef::parse("orders/db:password:AWSCURRENT").unwrap();
        assert_eq!(
            (r.json_key.as_deref(), r.version_stage.as_deref()),
            (Some("password"), Some("AWSCURRENT"))
        );
        let arn = "arn:aws:secretsmanager:us-east-1:111111111111:secret:orders/db-AbCdEf";
        let r = SecretRef::parse(&format!("{arn}:password")).unwrap();
        assert_eq!(
            (r.secret_id.as_str(), r.json_key.as_deref()),
            (arn, Some("password"))
        );
        assert!(SecretRef::parse("arn:aws:secretsmanager:x").is_err());
    }
}
