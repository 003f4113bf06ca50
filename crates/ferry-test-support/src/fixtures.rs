//! What deploy tests deploy to, made in the emulator as an operator would: a Lambda function
//! with alias `live` on version 1, an ECS service, a CloudWatch alarm, the shared account's
//! artifact bucket. Each takes the configuration of the account to make it in.

use std::io::Write;
use std::time::Duration;

use aws_config::SdkConfig;

/// The image of the `web` container of [`ecs_service`] before any deploy.
pub const WEB_IMAGE_V1: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api:v1";
/// The sidecar of [`ecs_service`], which deploys never change.
pub const LOG_ROUTER_IMAGE: &str = "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0";

/// A zip holding `index.py` whose handler returns `body`.
pub fn lambda_zip(body: &str) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    zip.start_file("index.py", zip::write::SimpleFileOptions::default())
        .expect("zip entry");
    zip.write_all(format!("def handler(event, context):\n    return {body:?}\n").as_bytes())
        .expect("zip write");
    zip.finish().expect("zip finish");
    out.into_inner()
}

/// Function `name` (and its execution role) in `account`, with version 1 of `code` and alias
/// `live` on it.
///
/// # Panics
/// When the emulator refuses: a broken fixture fails the test that uses it.
pub async fn lambda_function(config: &SdkConfig, account: &str, name: &str, code: Vec<u8>) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = format!("{name}-exec");
    aws_sdk_iam::Client::new(config)
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("CreateRole");
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
        .expect("CreateFunction");
    let v = lambda
        .publish_version()
        .function_name(name)
        .send()
        .await
        .expect("PublishVersion");
    lambda
        .create_alias()
        .function_name(name)
        .name("live")
        .function_version(v.version().unwrap_or("1"))
        .send()
        .await
        .expect("CreateAlias");
}

/// The version alias `live` of `function` points at, and its canary weights.
///
/// # Panics
/// When the alias cannot be read.
pub async fn live_alias(config: &SdkConfig, function: &str) -> (String, Vec<(String, f64)>) {
    let a = aws_sdk_lambda::Client::new(config)
        .get_alias()
        .function_name(function)
        .name("live")
        .send()
        .await
        .expect("GetAlias");
    let weights = a
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    (a.function_version().unwrap_or_default().to_owned(), weights)
}

/// An errors alarm (state `OK`; moto never evaluates metrics, so tests [`trip`] it).
///
/// # Panics
/// When the emulator refuses.
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
        .expect("PutMetricAlarm");
}

/// What a breached metric would do: the alarm goes to `ALARM`.
///
/// # Panics
/// When the emulator refuses.
pub async fn trip(config: &SdkConfig, name: &str) {
    aws_sdk_cloudwatch::Client::new(config)
        .set_alarm_state()
        .alarm_name(name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason("test: errors over threshold")
        .send()
        .await
        .expect("SetAlarmState");
}

/// What a recovered metric would do: the alarm goes back to `OK`.
///
/// # Panics
/// When the emulator refuses.
pub async fn recover(config: &SdkConfig, name: &str) {
    aws_sdk_cloudwatch::Client::new(config)
        .set_alarm_state()
        .alarm_name(name)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
        .state_reason("test: recovered")
        .send()
        .await
        .expect("SetAlarmState");
}

/// Cluster `orders` with service `orders-api` of `desired` tasks on task definition
/// `orders-api:1` (containers `web` and `log-router`, cpu, memory, an execution role and a
/// tag, so a deploy's copy can be checked). Returns the task definition's ARN.
///
/// moto starts the service with one running task (`MOTO_ECS_SERVICE_RUNNING`): desired 1 is
/// steady at once, desired 2 never by itself.
///
/// # Panics
/// When the emulator refuses.
pub async fn ecs_service(config: &SdkConfig, desired: i32) -> String {
    use aws_sdk_ecs::types::{ContainerDefinition, Tag};
    let ecs = aws_sdk_ecs::Client::new(config);
    ecs.create_cluster()
        .cluster_name("orders")
        .send()
        .await
        .expect("CreateCluster");
    let td = ecs
        .register_task_definition()
        .family("orders-api")
        .cpu("256")
        .memory("512")
        .execution_role_arn("arn:aws:iam::111111111111:role/ecsTaskExecutionRole")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(WEB_IMAGE_V1)
                .memory(256)
                .essential(true)
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("log-router")
                .image(LOG_ROUTER_IMAGE)
                .memory(64)
                .build(),
        )
        .tags(Tag::builder().key("team").value("orders").build())
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let arn = td
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .expect("a task definition ARN")
        .to_owned();
    ecs.create_service()
        .cluster("orders")
        .service_name("orders-api")
        .task_definition(&arn)
        .desired_count(desired)
        .send()
        .await
        .expect("CreateService");
    arn
}

/// The task definition service `orders-api` of cluster `orders` uses.
///
/// # Panics
/// When the service cannot be read.
pub async fn service_task_definition(config: &SdkConfig) -> String {
    let out = aws_sdk_ecs::Client::new(config)
        .describe_services()
        .cluster("orders")
        .services("orders-api")
        .send()
        .await
        .expect("DescribeServices");
    out.services()[0]
        .task_definition()
        .unwrap_or_default()
        .to_owned()
}

/// An S3 client for the emulator (path-style addressing).
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    )
}

/// Takes the Deny statements out of `bucket`'s policy, as `scripts/demo` does in its sandbox:
/// the emulator applies them to every object request, ignoring their conditions, so ferry's
/// "deny unencrypted uploads" and "deny plain HTTP" would refuse every artifact.
///
/// # Panics
/// When the bucket has no policy or the emulator refuses.
pub async fn set_aside_bucket_denies(config: &SdkConfig, bucket: &str) {
    let s3 = s3(config);
    let policy = s3.get_bucket_policy().bucket(bucket).send().await.unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    doc["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["Effect"] != "Deny");
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(doc.to_string())
        .send()
        .await
        .unwrap();
}

/// Polls `check` until it holds.
///
/// # Panics
/// After 30 s without it.
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
