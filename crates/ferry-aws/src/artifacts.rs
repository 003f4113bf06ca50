//! Artifacts in the shared account's S3 bucket, written with SSE-KMS under the pipeline's
//! customer-managed key — what CodePipeline does, so the bucket and key policies that admit
//! the target accounts are the whole story. Target-account sessions read them with
//! [`S3Artifacts::reading_as`]. Content-addressed like the local store: the key is the
//! sha256 of the plaintext, an object already there is not uploaded again, and every read
//! is checked against that sha256.

use std::path::Path;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use ferry_engine::artifact::{ArtifactError, ArtifactStore, sha256_file};
use ferry_engine::encoding::hex;
use ferry_engine::model::ArtifactRef;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::session::{AccountConfig, s3_client};

/// A single `PutObject` takes at most 5 GiB; artifacts are build outputs, far below that.
const MAX_OBJECT: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct S3Artifacts {
    client: aws_sdk_s3::Client,
    account: AccountConfig,
    bucket: String,
    /// Objects live under `<prefix>/` (the pipeline's name).
    prefix: String,
    /// The customer-managed key (ARN, id or `alias/…`) for SSE-KMS.
    kms_key: String,
}

impl S3Artifacts {
    pub fn new(account: &AccountConfig, bucket: &str, prefix: &str, kms_key: &str) -> S3Artifacts {
        S3Artifacts {
            client: s3_client(&account.config),
            account: account.clone(),
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
            kms_key: kms_key.to_owned(),
        }
    }

    /// The same bucket, read by another account's session (a deploy role).
    pub fn reading_as(&self, account: &AccountConfig) -> S3Artifacts {
        S3Artifacts {
            client: s3_client(&account.config),
            account: account.clone(),
            ..self.clone()
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn key_of(&self, sha: &str) -> String {
        format!("{}/{sha}.zip", self.prefix)
    }

    /// Whether the object is there already, with this content.
    async fn exists(&self, key: &str, sha: &str) -> Result<bool, ArtifactError> {
        // HEAD has no body, so a missing object is a bare 404: classified as not found.
        let head = self
            .account
            .find(
                "s3:HeadObject",
                &format!("s3://{}/{key}", self.bucket),
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send(),
            )
            .await
            .map_err(|e| ArtifactError::Backend(e.to_string()))?;
        Ok(head.is_some_and(|head| {
            head.metadata()
                .and_then(|m| m.get("sha256"))
                .map(String::as_str)
                == Some(sha)
        }))
    }
}

/// `s3://bucket/key` → (bucket, key).
fn parse_location(location: &str) -> Option<(&str, &str)> {
    location.strip_prefix("s3://")?.split_once('/')
}

#[async_trait]
impl ArtifactStore for S3Artifacts {
    fn shared(&self) -> bool {
        true
    }

    async fn put(&self, name: &str, path: &Path) -> Result<ArtifactRef, ArtifactError> {
        let (sha, size) = sha256_file(path)?;
        if size > MAX_OBJECT {
            return Err(ArtifactError::Backend(format!(
                "artifact `{name}` is {size} bytes; the S3 store takes at most 5 GiB per artifact"
            )));
        }
        let key = self.key_of(&sha);
        let location = format!("s3://{}/{key}", self.bucket);
        if !self.exists(&key, &sha).await? {
            let body = ByteStream::from_path(path).await.map_err(|e| {
                ArtifactError::Backend(format!("cannot read {}: {e}", path.display()))
            })?;
            self.account
                .call(
                    "s3:PutObject",
                    &location,
                    self.client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(&key)
                        .body(body)
                        .content_type("application/zip")
                        .server_side_encryption(ServerSideEncryption::AwsKms)
                        .ssekms_key_id(&self.kms_key)
                        .metadata("sha256", &sha)
                        .send(),
                )
                .await
                .map_err(|e| ArtifactError::Backend(e.to_string()))?;
        }
        Ok(ArtifactRef {
            name: name.to_owned(),
            sha256: sha,
            size,
            location,
            envelope: json!({"sse": "aws:kms", "kms_key": self.kms_key}),
        })
    }

    async fn get(&self, artifact: &ArtifactRef, dest: &Path) -> Result<(), ArtifactError> {
        download(&self.client, &self.account, artifact, dest).await
    }
}

/// Reads an artifact from S3 as `account` (a deploy role reads what the pipeline wrote),
/// checking it against its sha256.
pub async fn read_as(
    account: &AccountConfig,
    artifact: &ArtifactRef,
    dest: &Path,
) -> Result<(), ArtifactError> {
    download(&s3_client(&account.config), account, artifact, dest).await
}

/// Whether an artifact is in S3 (rather than the local store).
pub fn is_s3(artifact: &ArtifactRef) -> bool {
    parse_location(&artifact.location).is_some()
}

async fn download(
    client: &aws_sdk_s3::Client,
    account: &AccountConfig,
    artifact: &ArtifactRef,
    dest: &Path,
) -> Result<(), ArtifactError> {
    let (bucket, key) = parse_location(&artifact.location).ok_or_else(|| {
        ArtifactError::Backend(format!(
            "artifact `{}` is not in S3 ({})",
            artifact.name, artifact.location
        ))
    })?;
    let out = account
        .call(
            "s3:GetObject",
            &artifact.location,
            client.get_object().bucket(bucket).key(key).send(),
        )
        .await
        .map_err(|e| ArtifactError::Backend(e.to_string()))?;
    let write_error = |source| ArtifactError::Io {
        context: format!("cannot write {}", dest.display()),
        source,
    };
    let mut body = out.body;
    let mut file = tokio::fs::File::create(dest).await.map_err(write_error)?;
    let mut digest = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| ArtifactError::Backend(format!("reading {}: {e}", artifact.location)))?
    {
        digest.update(&chunk);
        file.write_all(&chunk).await.map_err(write_error)?;
    }
    file.flush().await.map_err(write_error)?;
    if hex(digest.finish().as_ref()) != artifact.sha256 {
        let _ = tokio::fs::remove_file(dest).await;
        return Err(ArtifactError::Integrity(artifact.name.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(parse_location("s3://b/p/x.zip"), Some(("b", "p/x.zip")));
        assert_eq!(parse_location("/local/x"), None);
    }
}
