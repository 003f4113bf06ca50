//! Deploys through an API that throttles, answers 503 and drops connections — before and
//! after the emulator applied a request — on one call in five (`ferry_test_support::faults`).
//! Every deploy must end in a right state: the alias on the new version or back on the old,
//! never a weight left on it, never a version published twice; the ECS service on the new
//! revision or the old; and with the retries ferry gives every client, at least 95 % of the
//! deploys succeed.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_aws::ecs::{self, EcsDeploy, ImageChange};
use ferry_aws::lambda::{self, LambdaDeploy, Outcome, Package};
use ferry_aws::session::{Aws, RoleTarget};
use ferry_manifest::Traffic;
use ferry_test_support::faults::{FaultProxy, Plan};
use ferry_test_support::{REGION, admin_config_at, emulator};

use crate::common::*;

const DEPLOYS: usize = 20;

/// ferry in the dev account as its deploy role, through a proxy that breaks one call in five.
async fn flaky(w: &World) -> (FaultProxy, ferry_aws::session::AccountConfig) {
    let proxy = FaultProxy::start(emulator().endpoint());
    let shared = admin_config_at(proxy.endpoint(), &w.accounts.shared).await;
    let aws = Aws::with_config(shared, "ferry-faults");
    let dev = aws
        .assume(&RoleTarget {
            role_arn: format!("arn:aws:iam::{}:role/ferry-deploy", w.accounts.dev),
            external_id: None,
            region: Some(REGION.into()),
        })
        .await
        .expect("assume the dev deploy role");
    proxy.set(Plan::every(5));
    (proxy, dev)
}

/// The figures are reported, as the crash test reports its own.
#[allow(clippy::print_stderr)]
#[tokio::test]
async fn lambda_deploys_through_a_flaky_api_end_right_and_nearly_all_succeed() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v0")).await;
    alarm(&w.dev, "orders-errors").await;
    let (proxy, dev) = flaky(&w).await;
    let mut succeeded = 0;
    let mut failures = Vec::new();
    let mut live = "1".to_owned();
    for i in 1..=DEPLOYS {
        let traffic = if i % 2 == 0 {
            Traffic::parse("canary 10% 1s").unwrap()
        } else {
            Traffic::AllAtOnce
        };
        let req = LambdaDeploy {
            function: "orders-fn".into(),
            alias: "live".into(),
            package: Package::Zip(lambda_zip(&format!("v{i}"))),
            traffic,
            alarms: vec!["orders-errors".into()],
            watch_after: Duration::ZERO,
            prune_keep: None,
            referenced: Vec::new(),
            poll: Duration::from_millis(50),
            idempotency_key: Some(format!("deploy-{i}")),
        };
        let result = lambda::deploy(&dev, &req, &quiet).await;
        let (version, weights) = live_alias(&w.dev, "orders-fn").await;
        assert!(weights.is_empty(), "deploy {i} left weights {weights:?}");
        match result {
            Ok(report) if report.outcome == Outcome::Deployed => {
                succeeded += 1;
                live = report.to_version.clone().unwrap();
                assert_eq!(version, live, "deploy {i}: {report:?}");
            }
            Ok(report) => {
                assert_eq!(version, live, "deploy {i} ended {report:?}");
                failures.push(format!("deploy {i}: {:?}", report.outcome));
            }
            Err(e) => {
                // Whatever was left, the alias serves one whole version.
                live = version;
                let text = e.to_string();
                assert!(
                    !text.contains("unhandled error") && !text.contains("offset"),
                    "deploy {i}: {text}"
                );
                failures.push(format!("deploy {i}: {text}"));
            }
        }
    }
    // No code was published twice.
    let versions = aws_sdk_lambda::Client::new(&w.dev)
        .list_versions_by_function()
        .function_name("orders-fn")
        .send()
        .await
        .unwrap();
    let mut by_code: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in versions.versions() {
        if v.version() != Some("$LATEST") {
            by_code
                .entry(v.code_sha256().unwrap_or_default().to_owned())
                .or_default()
                .push(v.version().unwrap_or_default().to_owned());
        }
    }
    assert!(
        by_code.values().all(|v| v.len() == 1),
        "a version published twice: {by_code:?}"
    );
    let injected = proxy.injected().len();
    eprintln!(
        "{succeeded}/{DEPLOYS} deploys succeeded; {injected} of {} requests were faults; failures: {failures:#?}",
        proxy.requests()
    );
    assert!(
        injected * 6 >= usize::try_from(proxy.requests()).unwrap(),
        "too few faults"
    );
    assert!(succeeded * 100 >= DEPLOYS * 95, "{failures:#?}");
}

#[allow(clippy::print_stderr)]
#[tokio::test]
async fn ecs_deploys_through_a_flaky_api_end_right_and_nearly_all_succeed() {
    let w = world().await;
    ecs_service(&w.dev, 1).await;
    let (proxy, dev) = flaky(&w).await;
    let mut succeeded = 0;
    let mut failures = Vec::new();
    for i in 1..=DEPLOYS {
        let image = format!("111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api:flaky-{i}");
        let req = EcsDeploy {
            cluster: "orders".into(),
            service: "orders-api".into(),
            images: vec![ImageChange {
                container: Some("web".into()),
                image_uri: image.clone(),
            }],
            timeout: Duration::from_secs(30),
            alarms: vec![],
            watch_after: Duration::ZERO,
            strategy: ferry_manifest::EcsStrategy::Rolling,
            poll: Duration::from_millis(50),
            previous: None,
            idempotency_key: Some(format!("deploy-{i}")),
        };
        let before = service_task_definition(&w.dev).await;
        let result = ecs::deploy(&dev, &req, &quiet).await;
        let after = service_task_definition(&w.dev).await;
        match result {
            Ok(report) if report.outcome == Outcome::Deployed => {
                succeeded += 1;
                assert_eq!(
                    Some(after.as_str()),
                    report.to_task_definition.as_deref(),
                    "deploy {i}"
                );
            }
            Ok(report) => {
                assert_eq!(after, before, "deploy {i} ended {report:?}");
                failures.push(format!("deploy {i}: {:?}", report.outcome));
            }
            Err(e) => {
                let text = e.to_string();
                assert!(
                    !text.contains("unhandled error") && !text.contains("offset"),
                    "deploy {i}: {text}"
                );
                failures.push(format!("deploy {i}: {text}"));
            }
        }
    }
    eprintln!(
        "{succeeded}/{DEPLOYS} deploys succeeded; {} of {} requests were faults; failures: {failures:#?}",
        proxy.injected().len(),
        proxy.requests()
    );
    assert!(succeeded * 100 >= DEPLOYS * 95, "{failures:#?}");
}

/// Regression: once the SDK's attempts ran out, a 503 read as "Unhandled: service error:
/// unhandled error: Error at offset 0: unexpected token 'S'".
#[tokio::test]
async fn when_retries_run_out_the_error_says_which_call_what_happened_and_how_hard_it_tried() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v0")).await;
    let (proxy, dev) = flaky(&w).await;
    proxy.set(Plan::unavailable("lambda"));
    let before = proxy.requests();
    let err = dev
        .call(
            "lambda:GetFunctionConfiguration",
            "orders-fn",
            aws_sdk_lambda::Client::new(&dev.config)
                .get_function_configuration()
                .function_name("orders-fn")
                .send(),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "lambda:GetFunctionConfiguration on orders-fn failed in account {} as arn:aws:iam::{}:role/ferry-deploy: AWS answered with a server error (HTTP 503: Service Unavailable) — gave up after {} attempts over ",
            w.accounts.dev,
            w.accounts.dev,
            ferry_aws::session::MAX_ATTEMPTS
        )),
        "{text}"
    );
    // The count in the message is the requests that reached the proxy.
    assert_eq!(
        proxy.requests() - before,
        u64::from(ferry_aws::session::MAX_ATTEMPTS)
    );
}
