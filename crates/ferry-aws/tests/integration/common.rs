//! Fixtures in the emulator: four fresh accounts, and what each test deploys to.

use std::io::Write;
use std::time::Duration;

use aws_config::SdkConfig;
use ferry_aws::session::{AccountConfig, Aws, RoleTarget};
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

/// A zip holding `index.py` with `body`.
pub fn lambda_zip(body: &str) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("index.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(body.as_bytes()).unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

/// A function with version 1 of `code` and alias `live` on it.
pub async fn lambda_function(config: &SdkConfig, account: &str, name: &str, code: Vec<u8>) {
    let iam = aws_sdk_iam::Client::new(config);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = format!("{name}-exec");
    iam.create_role()
        .role_name(&role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();
    let lambda = aws_sdk_lambda::Client::new(config);
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role(format!("arn:aws:iam::{account}:role/{role}"))
        .handler("index.handler")
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(code))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v = lambda
        .publish_version()
        .function_name(name)
        .send()
        .await
        .unwrap();
    lambda
        .create_alias()
        .function_name(name)
        .name("live")
        .function_version(v.version().unwrap())
        .send()
        .await
        .unwrap();
}

pub async fn alarm(config: &SdkConfig, name: &str) {
    use aws_sdk_cloudwatch::types::{ComparisonOperator, Statistic};
    aws_sdk_cloudwatch::Client::new(config)
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("AWS/Lambda")
        .metric_name("Errors")
        .statistic(Statistic::Sum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .send()
        .await
        .unwrap();
}

/// What an operator's metric would do: the alarm goes to ALARM.
pub async fn trip(config: &SdkConfig, name: &str) {
    aws_sdk_cloudwatch::Client::new(config)
        .set_alarm_state()
        .alarm_name(name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test: errors over threshold")
        .send()
        .await
        .unwrap();
}

/// Polls `check` until it holds (or fails the test after 30 s).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn quiet(_: &str) {}
