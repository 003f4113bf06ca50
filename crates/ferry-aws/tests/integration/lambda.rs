//! Lambda deploys against the emulator, in a target account reached through its deploy role.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_aws::lambda::{self, LambdaDeploy, Outcome, Package};
use ferry_manifest::Traffic;

use crate::common::*;

fn request(code: Vec<u8>, traffic: Traffic, alarms: &[&str]) -> LambdaDeploy {
    LambdaDeploy {
        function: "orders-fn".into(),
        alias: "live".into(),
        package: Package::Zip(code),
        traffic,
        alarms: alarms.iter().map(|s| (*s).to_owned()).collect(),
        watch_after: Duration::ZERO,
        prune_keep: None,
        referenced: Vec::new(),
        poll: Duration::from_millis(100),
        idempotency_key: None,
    }
}

#[tokio::test]
async fn a_canary_deploy_shifts_ten_percent_then_everything() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    alarm(&w.dev, "orders-errors").await;
    let account = w.in_dev().await;

    // Watch the alias from the side, as a client would see it.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let (dev, seen) = (w.dev.clone(), seen.clone());
        tokio::spawn(async move {
            loop {
                let state = live_alias(&dev, "orders-fn").await;
                seen.lock().unwrap().push(state);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let req = request(
        lambda_zip("v2"),
        Traffic::parse("canary 10% 1s").unwrap(),
        &["orders-errors"],
    );
    let report = lambda::deploy(&account, &req, &quiet).await.unwrap();
    watcher.abort();

    assert_eq!(report.outcome, Outcome::Deployed, "{report:?}");
    assert_eq!(
        (report.from_version.as_deref(), report.to_version.as_deref()),
        (Some("1"), Some("2"))
    );
    assert!(report.verified);
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("2".into(), vec![]));
    let seen = seen.lock().unwrap();
    assert!(
        seen.contains(&("1".into(), vec![("2".into(), 0.1)])),
        "the canary split was never visible: {seen:?}"
    );
    // The whole deploy ran as the dev account's deploy role.
    let calls = w.aws.calls.calls();
    assert_eq!(
        calls.iter().filter(|c| *c == "sts:AssumeRole").count(),
        1,
        "{calls:?}"
    );
    assert!(calls.contains(&"lambda:PublishVersion".to_owned()));
}

#[tokio::test]
async fn a_repeated_deploy_publishes_nothing() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    let account = w.in_dev().await;
    let req = request(lambda_zip("v2"), Traffic::AllAtOnce, &[]);
    assert_eq!(
        lambda::deploy(&account, &req, &quiet)
            .await
            .unwrap()
            .outcome,
        Outcome::Deployed
    );

    let calls = ferry_aws::session::CallLog::default();
    let counted = ferry_aws::session::AccountConfig {
        calls: calls.clone(),
        ..account.clone()
    };
    let again = lambda::deploy(&counted, &req, &quiet).await.unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyDeployed);
    assert_eq!(again.to_version.as_deref(), Some("2"));
    let made = calls.calls();
    assert!(
        !made
            .iter()
            .any(|c| c == "lambda:PublishVersion" || c == "lambda:UpdateFunctionCode"),
        "{made:?}"
    );
}

#[tokio::test]
async fn an_alarm_during_the_bake_puts_the_old_version_back() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    alarm(&w.dev, "orders-errors").await;
    let account = w.in_dev().await;

    // Trip the alarm once the canary is live.
    let tripper = {
        let dev = w.dev.clone();
        tokio::spawn(async move {
            eventually("the canary split", || async {
                !live_alias(&dev, "orders-fn").await.1.is_empty()
            })
            .await;
            trip(&dev, "orders-errors").await;
        })
    };
    let started = Instant::now();
    let req = request(
        lambda_zip("v2"),
        Traffic::parse("canary 10% 10m").unwrap(),
        &["orders-errors"],
    );
    let report = lambda::deploy(&account, &req, &quiet).await.unwrap();
    tripper.await.unwrap();

    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    assert!(
        report.error.as_deref().unwrap().contains("orders-errors"),
        "{report:?}"
    );
    assert!(!report.verified);
    // Back on version 1, with the canary weights cleared, long before the 10-minute bake.
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("1".into(), vec![]));
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn an_alarm_already_firing_before_the_deploy_is_ignored() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    alarm(&w.dev, "orders-errors").await;
    trip(&w.dev, "orders-errors").await;
    let account = w.in_dev().await;
    let req = request(
        lambda_zip("v2"),
        Traffic::parse("linear 50% every 1s").unwrap(),
        &["orders-errors"],
    );
    let report = lambda::deploy(&account, &req, &quiet).await.unwrap();
    assert_eq!(report.outcome, Outcome::Deployed, "{report:?}");
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.contains("already in ALARM before the deploy")),
        "{:?}",
        report.steps
    );
}

#[tokio::test]
async fn pruning_keeps_what_an_alias_or_the_ledger_references() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    let account = w.in_dev().await;
    for n in 2..=4 {
        let req = request(lambda_zip(&format!("v{n}")), Traffic::AllAtOnce, &[]);
        lambda::deploy(&account, &req, &quiet).await.unwrap();
    }
    // Versions 1..4 exist; the alias is on 4; the ledger still references 1.
    let mut req = request(lambda_zip("v5"), Traffic::AllAtOnce, &[]);
    req.prune_keep = Some(1);
    req.referenced = vec!["1".into()];
    let report = lambda::deploy(&account, &req, &quiet).await.unwrap();
    assert_eq!(report.to_version.as_deref(), Some("5"));
    assert_eq!(report.pruned, ["4", "3", "2"]);
}

#[tokio::test]
async fn a_missing_function_is_an_error_that_names_account_role_action_and_resource() {
    let w = world().await;
    let account = w.in_dev().await;
    let req = request(lambda_zip("v1"), Traffic::AllAtOnce, &[]);
    let err = lambda::deploy(&account, &req, &quiet).await.unwrap_err();
    let text = err.to_string();
    for needle in [
        w.accounts.dev.as_str(),
        "role/ferry-deploy",
        "lambda:",
        "orders-fn",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
    assert!(err.is_not_found(), "{err:?}");
}

/// `gates.after`: once all traffic is on the new version the alarms are watched a while
/// longer, and one firing then still puts the old version back.
#[tokio::test]
async fn an_alarm_in_the_watch_after_the_deploy_puts_the_old_version_back() {
    let w = world().await;
    lambda_function(&w.dev, &w.accounts.dev, "orders-fn", lambda_zip("v1")).await;
    alarm(&w.dev, "orders-errors").await;
    let account = w.in_dev().await;
    let said = Said::default();
    let tripper = said.trip_when("after the deploy", &w.dev, "orders-errors");
    let mut req = request(lambda_zip("v2"), Traffic::AllAtOnce, &["orders-errors"]);
    req.watch_after = Duration::from_secs(600);
    let report = lambda::deploy(&account, &req, &|l| said.hear(l))
        .await
        .unwrap();
    tripper.await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    assert_eq!(
        report.error.as_deref(),
        Some("alarm orders-errors entered ALARM during the watch after the deploy")
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| s == "watching 1 alarm(s) for 10m after the deploy"),
        "{:?}",
        report.steps
    );
    assert_eq!(live_alias(&w.dev, "orders-fn").await, ("1".into(), vec![]));

    // A quiet watch: deployed once it is over.
    recover(&w.dev, "orders-errors").await;
    let mut req = request(lambda_zip("v3"), Traffic::AllAtOnce, &["orders-errors"]);
    req.watch_after = Duration::from_secs(1);
    let report = lambda::deploy(&account, &req, &quiet).await.unwrap();
    assert_eq!(report.outcome, Outcome::Deployed, "{report:?}");
    assert!(report.verified);
}
