//! ECS deploys against the emulator. moto never moves a deployment forward (moto-matrix.md
//! §1.5): a new service starts with one running task, so a service of desired count 1 is
//! steady at once and one of 2 stays at 1/2 until the test brings it up — as ECS's scheduler
//! would — with `UpdateService(desiredCount)`. Rolling, draining and circuit-breaker states
//! are shown against recorded AWS responses in `assess.rs`.

use std::time::Duration;

use ferry_aws::ecs::{self, EcsDeploy, ImageChange};
use ferry_aws::lambda::Outcome;

use crate::common::*;

const REPO: &str = "111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api";

fn request(image: &str, timeout: Duration, alarms: &[&str]) -> EcsDeploy {
    EcsDeploy {
        cluster: "orders".into(),
        service: "orders-api".into(),
        images: vec![ImageChange {
            container: Some("web".into()),
            image_uri: image.into(),
        }],
        timeout,
        alarms: alarms.iter().map(|s| (*s).to_owned()).collect(),
        watch_after: Duration::ZERO,
        strategy: ferry_manifest::EcsStrategy::Rolling,
        poll: Duration::from_millis(100),
        previous: None,
        idempotency_key: None,
    }
}

#[tokio::test]
async fn a_deploy_registers_a_revision_with_the_new_image_and_updates_the_service() {
    let w = world().await;
    let v1 = ecs_service(&w.dev, 1).await;
    let account = w.in_dev().await;
    let report = ecs::deploy(
        &account,
        &request(&format!("{REPO}:v2"), Duration::from_secs(30), &[]),
        &quiet,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Deployed, "{report:?}");
    assert_eq!(report.from_task_definition.as_deref(), Some(v1.as_str()));
    let v2 = report.to_task_definition.clone().unwrap();
    assert!(v2.ends_with("task-definition/orders-api:2"), "{v2}");
    assert_eq!(service_task_definition(&w.dev).await, v2);

    // Only the web image changed; every writable field was copied, tags included.
    let out = aws_sdk_ecs::Client::new(&w.dev)
        .describe_task_definition()
        .task_definition(&v2)
        .include(aws_sdk_ecs::types::TaskDefinitionField::Tags)
        .send()
        .await
        .unwrap();
    let td = out.task_definition().unwrap();
    let images: Vec<(&str, &str)> = td
        .container_definitions()
        .iter()
        .map(|c| (c.name().unwrap(), c.image().unwrap()))
        .collect();
    assert_eq!(
        images,
        [
            ("web", format!("{REPO}:v2").as_str()),
            ("log-router", LOG_ROUTER_IMAGE)
        ]
    );
    assert_eq!((td.cpu(), td.memory()), (Some("256"), Some("512")));
    assert_eq!(
        td.execution_role_arn(),
        Some("arn:aws:iam::111111111111:role/ecsTaskExecutionRole")
    );
    assert_eq!(td.container_definitions()[0].memory(), Some(256));
    assert_eq!(
        out.tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect::<Vec<_>>(),
        [("team", "orders")]
    );

    // The same images again: nothing registered, nothing updated.
    let calls = ferry_aws::session::CallLog::default();
    let counted = ferry_aws::session::AccountConfig {
        calls: calls.clone(),
        ..account.clone()
    };
    let again = ecs::deploy(
        &counted,
        &request(&format!("{REPO}:v2"), Duration::from_secs(30), &[]),
        &quiet,
    )
    .await
    .unwrap();
    assert_eq!(again.outcome, Outcome::AlreadyDeployed);
    let made = calls.calls();
    assert!(
        !made
            .iter()
            .any(|c| c == "ecs:RegisterTaskDefinition" || c == "ecs:UpdateService"),
        "{made:?}"
    );
}

#[tokio::test]
async fn an_alarm_while_waiting_for_steady_state_rolls_the_service_back() {
    let w = world().await;
    let v1 = ecs_service(&w.dev, 2).await;
    alarm(&w.dev, "orders-api-5xx").await;
    let account = w.in_dev().await;

    // The test plays ECS's part: trip the alarm once the service is on the new revision, and
    // bring the old tasks up once ferry has set the service back.
    let operator = {
        let (dev, v1) = (w.dev.clone(), v1.clone());
        tokio::spawn(async move {
            eventually("the update to :2", || async {
                service_task_definition(&dev).await.ends_with(":2")
            })
            .await;
            trip(&dev, "orders-api-5xx").await;
            eventually("the rollback to :1", || async {
                service_task_definition(&dev).await == v1
            })
            .await;
            aws_sdk_ecs::Client::new(&dev)
                .update_service()
                .cluster("orders")
                .service("orders-api")
                .desired_count(2)
                .send()
                .await
                .unwrap();
        })
    };
    let req = request(
        &format!("{REPO}:v2"),
        Duration::from_secs(120),
        &["orders-api-5xx"],
    );
    let report = ecs::deploy(&account, &req, &quiet).await.unwrap();
    operator.await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    assert!(report.error.as_deref().unwrap().contains("orders-api-5xx"));
    assert_eq!(service_task_definition(&w.dev).await, v1);
}

#[tokio::test]
async fn a_rollback_that_cannot_reach_steady_state_says_what_it_left() {
    let w = world().await;
    let v1 = ecs_service(&w.dev, 2).await;
    let account = w.in_dev().await;
    let report = ecs::deploy(
        &account,
        &request(&format!("{REPO}:v2"), Duration::from_secs(1), &[]),
        &quiet,
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::RollbackFailed, "{report:?}");
    let error = report.error.unwrap();
    assert!(
        error.contains("orders-api:2 did not reach steady state within 1 s (1/2 tasks running"),
        "{error}"
    );
    assert!(
        error.contains("the service was set back to orders-api:1 but"),
        "{error}"
    );
    assert_eq!(service_task_definition(&w.dev).await, v1);
}

#[tokio::test]
async fn an_unknown_container_changes_nothing() {
    let w = world().await;
    let v1 = ecs_service(&w.dev, 1).await;
    let account = w.in_dev().await;
    let mut req = request("x:1", Duration::from_secs(5), &[]);
    req.images[0].container = Some("api".into());
    let err = ecs::deploy(&account, &req, &quiet).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no container `api`; its containers are: web, log-router"),
        "{err}"
    );
    assert_eq!(service_task_definition(&w.dev).await, v1);
}

/// `gates.after`: a steady service is watched a while longer; an alarm then rolls it back.
#[tokio::test]
async fn an_alarm_in_the_watch_after_steady_state_rolls_the_service_back() {
    let w = world().await;
    let v1 = ecs_service(&w.dev, 1).await;
    alarm(&w.dev, "orders-api-5xx").await;
    let account = w.in_dev().await;
    let said = Said::default();
    let tripper = said.trip_when("after the deploy", &w.dev, "orders-api-5xx");
    let mut req = request(
        &format!("{REPO}:v2"),
        Duration::from_secs(30),
        &["orders-api-5xx"],
    );
    req.watch_after = Duration::from_secs(600);
    let report = ecs::deploy(&account, &req, &|l| said.hear(l))
        .await
        .unwrap();
    tripper.await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    assert_eq!(
        report.error.as_deref(),
        Some("alarm orders-api-5xx entered ALARM during the watch after the deploy")
    );
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.ends_with("is steady on orders-api:2")),
        "{:?}",
        report.steps
    );
    assert_eq!(service_task_definition(&w.dev).await, v1);
}
