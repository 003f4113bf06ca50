//! What the CLI tests against the emulator share: fresh accounts, and `ferry` run as a CI job
//! would run it — a separate process with AWS settings in its environment
//! (`AWS_ENDPOINT_URL` to the emulator, credentials of the fresh shared account).

#![allow(dead_code)]

use std::process::{Command, Output};

use aws_config::SdkConfig;
use aws_sdk_sts::config::ProvideCredentials;
use ferry_test_support::{Accounts, REGION, admin_config, emulator};
use serde_json::Value;

pub struct World {
    pub accounts: Accounts,
    pub shared: SdkConfig,
    pub dev: SdkConfig,
    /// The shared account's credentials, for the ferry process's environment.
    pub creds: aws_sdk_sts::config::Credentials,
}

pub async fn world() -> World {
    let accounts = Accounts::fresh();
    let shared = admin_config(&accounts.shared).await;
    let dev = admin_config(&accounts.dev).await;
    let creds = shared
        .credentials_provider()
        .unwrap()
        .provide_credentials()
        .await
        .unwrap();
    World {
        accounts,
        shared,
        dev,
        creds,
    }
}

impl World {
    /// The shared account's artifact bucket, as `ferry bootstrap` names it.
    pub async fn artifact_bucket(&self) {
        ferry_test_support::fixtures::s3(&self.shared)
            .create_bucket()
            .bucket(format!("ferry-artifacts-{}", self.accounts.shared))
            .send()
            .await
            .unwrap();
    }

    /// `ferry` with the SDK's standard settings, and nothing of the user's own.
    pub fn ferry(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ferry"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("NO_COLOR", "1")
            .env("FERRY_IDENTITY", "tester")
            .env("AWS_ENDPOINT_URL", emulator().endpoint())
            .env("AWS_REGION", REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_ACCESS_KEY_ID", self.creds.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", self.creds.secret_access_key())
            .env(
                "AWS_SESSION_TOKEN",
                self.creds.session_token().unwrap_or_default(),
            );
        cmd
    }

    pub fn role(&self) -> String {
        format!("arn:aws:iam::{}:role/ferry-deploy", self.accounts.dev)
    }

    /// No credential reaches the output.
    pub fn assert_no_credentials(&self, out: &Output) {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains(self.creds.secret_access_key()),
            "a secret key was printed"
        );
        assert!(
            !text.contains(self.creds.session_token().unwrap()),
            "a session token was printed"
        );
    }
}

pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// A database of its own on the test cluster (`FERRY_TEST_POSTGRES`, which scripts/test
/// starts): its URL.
pub fn fresh_database(label: &str) -> String {
    let admin = std::env::var("FERRY_TEST_POSTGRES").expect(
        "this test needs FERRY_TEST_POSTGRES, a PostgreSQL admin URL: run it through scripts/test, which starts a cluster",
    );
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("ferry_{label}_{stamp}_{}", std::process::id());
    ferry_engine::store::create_database(&admin, &name).unwrap();
    let (server, _) = admin.rsplit_once('/').unwrap();
    format!("{server}/{name}")
}
