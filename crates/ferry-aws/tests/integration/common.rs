//! Four fresh accounts with ferry acting as the shared one; the fixtures are
//! `ferry_test_support::fixtures`.

use aws_config::SdkConfig;
use ferry_aws::artifacts::S3Artifacts;
use ferry_aws::session::{AccountConfig, Aws, RoleTarget};
pub use ferry_test_support::fixtures::*;
use ferry_test_support::{Accounts, REGION, admin_config};

/// The system's accounts, with ferry acting as the shared account's pipeline identity.
pub struct World {
    pub accounts: Accounts,
    /// ferry's own identity: an administrator of the shared account.
    pub aws: Aws,
    pub shared: SdkConfig,
    /// An administrator of the dev account, for fixtures and checks.
    pub dev: SdkConfig,
}

pub async fn world() -> World {
    let accounts = Accounts::fresh();
    let shared = admin_config(&accounts.shared).await;
    let dev = admin_config(&accounts.dev).await;
    let aws = Aws::with_config(shared.clone(), "ferry-test");
    World {
        accounts,
        aws,
        shared,
        dev,
    }
}

impl World {
    pub fn deploy_role(&self, account: &str) -> RoleTarget {
        RoleTarget {
            role_arn: format!("arn:aws:iam::{account}:role/ferry-deploy"),
            external_id: None,
            region: Some(REGION.into()),
        }
    }

    /// ferry in the dev account, as its deploy role.
    pub async fn in_dev(&self) -> AccountConfig {
        self.aws
            .assume(&self.deploy_role(&self.accounts.dev))
            .await
            .expect("assume the dev deploy role")
    }
}

/// Progress nobody watches.
pub fn quiet(_: &str) {}

/// What `expected.json` says of one recorded response: the decision and a part of its reason.
#[derive(serde::Deserialize)]
pub struct Expected {
    pub expect: String,
    #[serde(default)]
    pub reason: String,
}

/// The recorded responses of `tests/data/<dir>/`, each with its expectation, in file order.
/// Every fixture has an expectation and every expectation a fixture.
pub fn recorded<T: serde::de::DeserializeOwned>(dir: &str) -> Vec<(String, Expected, T)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.json")
        .collect();
    files.sort();
    let listed = expected.keys().filter(|k| !k.starts_with('_')).count();
    assert_eq!(listed, files.len(), "fixtures and expected.json disagree");
    files
        .into_iter()
        .map(|file| {
            let want = serde_json::from_value(expected[&file].clone()).unwrap();
            let response =
                serde_json::from_str(&std::fs::read_to_string(dir.join(&file)).unwrap()).unwrap();
            (file, want, response)
        })
        .collect()
}

/// Runs `decide` on every recorded response of `tests/data/<dir>/`; `decide` names the
/// decision (`steady`, `waiting`, …) and its text, which must be what `expected.json` says.
pub fn check_recorded<T: serde::de::DeserializeOwned>(
    dir: &str,
    decide: impl Fn(&T) -> (&'static str, String),
) {
    let mut failures = Vec::new();
    for (file, want, response) in recorded::<T>(dir) {
        let (kind, text) = decide(&response);
        if kind != want.expect || !text.contains(&want.reason) {
            failures.push(format!(
                "{file}: expected {} ({}), got {kind} ({text})",
                want.expect, want.reason
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The shared account's artifact bucket and key, as `ferry bootstrap` makes them.
pub async fn artifact_store(w: &World) -> (S3Artifacts, String) {
    let kms = aws_sdk_kms::Client::new(&w.shared);
    let key = kms
        .create_key()
        .description("ferry orders artifacts")
        .send()
        .await
        .unwrap();
    let key_arn = key.key_metadata().unwrap().arn().unwrap().to_owned();
    let bucket = format!("ferry-artifacts-{}", w.accounts.shared);
    s3(&w.shared)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    (
        S3Artifacts::new(&w.aws.own(None), &bucket, "orders", &key_arn),
        key_arn,
    )
}

/// A deploy's progress lines, and whether one containing `mark` was said yet: a test acts
/// at that point of the deploy (as the world would) without guessing when it comes.
#[derive(Clone, Default)]
pub struct Said(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Said {
    pub fn hear(&self, line: &str) {
        self.0.lock().unwrap().push(line.to_owned());
    }

    pub fn has(&self, mark: &str) -> bool {
        self.0.lock().unwrap().iter().any(|l| l.contains(mark))
    }

    /// Trips `alarm` in `config`'s account once a line with `mark` was said.
    pub fn trip_when(
        &self,
        mark: &'static str,
        config: &SdkConfig,
        alarm: &'static str,
    ) -> tokio::task::JoinHandle<()> {
        let (said, config) = (self.clone(), config.clone());
        tokio::spawn(async move {
            eventually(mark, || async { said.has(mark) }).await;
            trip(&config, alarm).await;
        })
    }
}
