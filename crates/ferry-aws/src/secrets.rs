//! Secrets Manager and Parameter Store behind the engine's [`SecretResolver`]: the engine
//! registers each secret value with the masker before any process or request sees it.
//! Errors name the secret (and its JSON key) or the parameter, never a value.

use async_trait::async_trait;
use ferry_engine::secrets::{Parameter, SecretRef, SecretResolver};
use secrecy::SecretString;

use crate::session::AccountConfig;

/// The shared account's secrets and parameters, as the builds there read them.
#[derive(Debug, Clone)]
pub struct AwsSecrets {
    client: aws_sdk_secretsmanager::Client,
    ssm: aws_sdk_ssm::Client,
    account: AccountConfig,
}

impl AwsSecrets {
    pub fn new(account: &AccountConfig) -> AwsSecrets {
        AwsSecrets {
            client: aws_sdk_secretsmanager::Client::new(&account.config),
            ssm: aws_sdk_ssm::Client::new(&account.config),
            account: account.clone(),
        }
    }
}

#[async_trait]
impl SecretResolver for AwsSecrets {
    async fn resolve(&self, secret: &SecretRef) -> Result<SecretString, String> {
        let out = self
            .account
            .call(
                "secretsmanager:GetSecretValue",
                &secret.secret_id,
                self.client
                    .get_secret_value()
                    .secret_id(&secret.secret_id)
                    .set_version_stage(secret.version_stage.clone())
                    .set_version_id(secret.version_id.clone())
                    .send(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let Some(text) = out.secret_string() else {
            return Err(format!(
                "secret `{}` holds binary data; ferry reads only string secrets",
                secret.secret_id
            ));
        };
        match &secret.json_key {
            None => Ok(SecretString::from(text.to_owned())),
            Some(key) => json_field(text, key)
                .map_err(|why| format!("secret `{}`, key `{key}`: {why}", secret.secret_id)),
        }
    }

    async fn parameter(&self, name: &str) -> Result<Parameter, String> {
        let out = self
            .account
            .call(
                "ssm:GetParameter",
                name,
                self.ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send(),
            )
            .await
            .map_err(|e| e.to_string())?;
        let p = out
            .parameter()
            .ok_or_else(|| format!("parameter `{name}`: Parameter Store answered without it"))?;
        Ok(Parameter {
            value: SecretString::from(p.value().unwrap_or_default().to_owned()),
            secure: p.r#type() == Some(&aws_sdk_ssm::types::ParameterType::SecureString),
        })
    }
}

/// One key of a JSON secret. The error never quotes the secret: serde_json's messages give
/// only positions.
fn json_field(text: &str, key: &str) -> Result<SecretString, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "it ends early",
            _ => "a syntax error",
        };
        format!(
            "the secret is not a JSON object ({what} at line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let object = value.as_object().ok_or("the secret is not a JSON object")?;
    match object.get(key) {
        Some(serde_json::Value::String(s)) => Ok(SecretString::from(s.clone())),
        Some(serde_json::Value::Null) | None => {
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            Err(format!(
                "no such key; the secret's keys are: {}",
                keys.join(", ")
            ))
        }
        Some(other) => Ok(SecretString::from(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn json_keys_resolve_and_errors_never_quote_the_value() {
        let text = r#"{"password": "hunter2-s3cret", "port": 5432}"#;
        assert_eq!(
            json_field(text, "password").unwrap().expose_secret(),
            "hunter2-s3cret"
        );
        assert_eq!(json_field(text, "port").unwrap().expose_secret(), "5432");
        let e = json_field(text, "user").unwrap_err();
        assert!(
            e.contains("password, port") && !e.contains("hunter2"),
            "{e}"
        );
        let e = json_field("hunter2-s3cret", "password").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
