//! The plan of the orders example: what each account gets, that every edge is allowed by the
//! plan's own policies, that nothing is granted beyond the edges, and that verify names each
//! broken edge with its fix. These test the documents; moto cannot (it applies no resource
//! policies), which is why verify exists.

use std::path::Path;

use ferry_plan::Resource;
use ferry_plan::verify::{PolicyStore, verify};
use ferry_plan::{Names, plan};
use serde_json::{Value, json};

fn manifest(name: &str) -> ferry_manifest::Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    let loaded = ferry_manifest::load(&path);
    assert!(!loaded.has_errors(), "{}", loaded.render(false));
    loaded.manifest.unwrap()
}

fn orders() -> ferry_manifest::Manifest {
    manifest("../../examples/orders/ferry.yaml")
}

/// The orders manifest with `from` replaced by `to` in its text.
fn orders_edited(from: &str, to: &str) -> ferry_manifest::Manifest {
    orders_edits(&[(from, to)])
}

/// The orders manifest with each `(from, to)` replaced in its text.
fn orders_edits(edits: &[(&str, &str)]) -> ferry_manifest::Manifest {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/orders/ferry.yaml");
    let mut text = std::fs::read_to_string(path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the example no longer has {from:?}");
        text = text.replace(from, to);
    }
    let loaded = ferry_manifest::from_str("ferry.yaml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render(false));
    loaded.manifest.unwrap()
}

#[test]
fn the_orders_foundation_is_what_review_expects() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    insta::assert_json_snapshot!("orders-foundation", plan(&names));
}

#[test]
fn every_edge_is_allowed_by_the_plans_own_policies_and_nothing_more_is_granted() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let report = proven(&f, &names);
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);
    // Each environment's deploys, and the pipeline's own calls.
    let groups: Vec<Option<&str>> = report.by_environment().iter().map(|(e, _)| *e).collect();
    assert_eq!(groups, [None, Some("dev"), Some("qa"), Some("prod")]);
}

/// Verify on the plan's own policies: every edge allowed, nothing granted beyond them.
fn proven(f: &ferry_plan::Foundation, names: &Names<'_>) -> ferry_plan::verify::Report {
    let report = verify(&f.policies(names), &f.edges, names);
    let denied: Vec<String> = report
        .results
        .iter()
        .filter(|r| !r.allowed)
        .map(|r| {
            format!(
                "{} {} {}: {}",
                r.edge.principal, r.edge.action, r.edge.resource, r.reason
            )
        })
        .collect();
    assert!(denied.is_empty(), "{denied:#?}");
    assert!(report.wider.is_empty(), "{:#?}", report.wider);
    report
}

fn statements(doc: &Value) -> Vec<Value> {
    doc["Statement"].as_array().cloned().unwrap_or_default()
}

fn orders_with_a_server() -> ferry_manifest::Manifest {
    orders_edits(&[
        (
            "  repositories: [orders-api]\n",
            "  repositories: [orders-api]\n  server:\n    image: 111111111111.dkr.ecr.us-east-1.amazonaws.com/ferry:0.1.0\n    vpc: vpc-0abc1234\n    subnets: [subnet-0abc1234]\n",
        ),
        (
            "  repo: .\n",
            "  repo: https://github.com/acme/orders.git\n",
        ),
    ])
}

/// `shared.server`: the pipeline role is also ferry serve's ECS task role — for tasks of the
/// shared account only — and may mount only its own pipeline's state volume.
/// Its policy comes from the server's edges, so verify holds it to them.
#[test]
fn a_server_makes_the_pipeline_role_a_task_role_of_its_own_account_only() {
    let pipeline_role = |f: &ferry_plan::Foundation, m: &ferry_manifest::Manifest| {
        f.accounts[0]
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::Role(role) if role.name == m.shared.as_ref().unwrap().pipeline_role => {
                    Some(role.clone())
                }
                _ => None,
            })
            .unwrap()
    };
    let m = orders_with_a_server();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let pipeline = pipeline_role(&f, &m);
    let trust = serde_json::to_value(&pipeline.trust).unwrap();
    let ecs = statements(&trust)
        .into_iter()
        .find(|s| s["Principal"]["Service"] == "ecs-tasks.amazonaws.com")
        .unwrap_or_else(|| panic!("no ecs-tasks in {trust:#}"));
    assert_eq!(
        ecs["Condition"]["StringEquals"]["aws:SourceAccount"],
        "111111111111"
    );
    let server = serde_json::to_value(&pipeline.policies["ferry-pipeline"]).unwrap();
    let mount = statements(&server)
        .into_iter()
        .find(|s| {
            s["Action"]
                .to_string()
                .contains("elasticfilesystem:ClientMount")
        })
        .unwrap_or_else(|| panic!("{server:#}"));
    assert_eq!(
        mount["Condition"]["StringEquals"]["aws:ResourceTag/ferry:pipeline"],
        "orders"
    );
    // Without the server, neither.
    let plain = orders();
    let plain_names = Names::new(&plain, None).unwrap();
    let plain_role = pipeline_role(&plan(&plain_names), &plain);
    let plain_policy = serde_json::to_string(&plain_role.policies["ferry-pipeline"]).unwrap();
    assert!(!plain_policy.contains("elasticfilesystem") && !plain_policy.contains("ssmmessages"));
    assert!(
        !serde_json::to_string(&plain_role.trust)
            .unwrap()
            .contains("ecs-tasks")
    );
    // The pipeline's edges are still allowed, and nothing wider is granted.
    let report = verify(&f.policies(&names), &f.edges, &names);
    assert!(report.results.iter().all(|r| r.allowed));
    assert!(report.wider.is_empty(), "{:#?}", report.wider);
}

#[test]
fn identity_policies_use_star_only_where_aws_forces_it() {
    for m in [orders(), orders_with_a_server()] {
        identity_policies_use_star_only_where_aws_forces_it_in(&m);
    }
}

fn identity_policies_use_star_only_where_aws_forces_it_in(m: &ferry_manifest::Manifest) {
    let names = Names::new(m, None).unwrap();
    let catalog = ferry_policy::catalog::catalog();
    for account in plan(&names).accounts {
        for r in account.resources {
            let Resource::Role(role) = r else {
                continue;
            };
            let name = &role.name;
            for (policy, doc) in &role.policies {
                for s in statements(doc) {
                    if s["Resource"] == json!("*") {
                        let actions: Vec<String> = match &s["Action"] {
                            Value::String(a) => vec![a.clone()],
                            Value::Array(a) => {
                                a.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
                            }
                            _ => vec![],
                        };
                        for a in actions {
                            assert!(
                                catalog.is_wildcard_only(&a),
                                "{name}/{policy}: {a} on \"*\" but it has a resource type"
                            );
                        }
                    }
                    assert!(
                        !s["Action"].to_string().contains('*'),
                        "{name}/{policy}: a wildcard action in {s}"
                    );
                }
            }
        }
    }
}

/// A service whose task definition has a task role: the deploy role may pass exactly ferry's
/// execution role and that task role, to ECS tasks only — and every edge is still allowed.
#[test]
fn an_ecs_task_role_is_passable_by_the_deploy_role_and_nothing_else_is() {
    let m = orders_edited(
        "      timeout: 10m\n",
        "      timeout: 10m\n      task_role: orders-api-task-${env}\n",
    );
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    proven(&f, &names);

    let prod = f.accounts.iter().find(|a| a.name == "prod").unwrap();
    let mut passable: Vec<String> = Vec::new();
    for r in &prod.resources {
        let Resource::Role(role) = r else {
            continue;
        };
        let name = &role.name;
        for doc in role.policies.values() {
            for s in statements(doc) {
                if s["Action"].to_string().contains("iam:PassRole") {
                    assert_eq!(name, "ferry-deploy", "{s}");
                    assert_eq!(
                        s["Condition"]["StringEquals"]["iam:PassedToService"],
                        "ecs-tasks.amazonaws.com",
                        "{s}"
                    );
                    match &s["Resource"] {
                        Value::String(r) => passable.push(r.clone()),
                        Value::Array(rs) => {
                            passable.extend(rs.iter().map(|r| r.as_str().unwrap().to_owned()))
                        }
                        other => panic!("{other}"),
                    }
                }
            }
        }
    }
    passable.sort();
    assert_eq!(
        passable,
        [
            format!("arn:aws:iam::{}:role/ferry-orders-ecs-execution", prod.id),
            format!("arn:aws:iam::{}:role/orders-api-task-prod", prod.id),
        ]
    );
}

/// A service whose task definition names the team's own execution role: the deploy role may
/// pass exactly that role, the repository policy lets it pull, ferry lays no execution role of
/// its own — and offline verify proves ferry's side while saying the role's own policies are
/// for `--live`; a role whose policies lack the pulls is found.
#[test]
fn a_teams_own_execution_role_is_passed_and_admitted_and_its_policies_stay_its_own() {
    let m = orders_edited(
        "      timeout: 10m\n",
        "      timeout: 10m\n      execution_role: orders-api-execution\n",
    );
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let report = proven(&f, &names);
    let prod = f.accounts.iter().find(|a| a.name == "prod").unwrap();
    let team_role = format!("arn:aws:iam::{}:role/orders-api-execution", prod.id);
    let pulls: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.edge.principal == team_role && r.edge.action == "ecr:BatchGetImage")
        .collect();
    assert_eq!(pulls.len(), 1, "{pulls:#?}");
    assert!(
        pulls[0].reason.contains("the team's own"),
        "{}",
        pulls[0].reason
    );

    // No execution role of ferry's is laid where every service brings its own.
    let roles: Vec<&str> = prod
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::Role(role) => Some(role.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(roles, ["ferry-deploy"], "{roles:?}");
    let deploy_policy = serde_json::to_string(&prod.resources).unwrap();
    assert!(
        deploy_policy.contains(&team_role),
        "PassRole names the team's role"
    );
    assert!(!deploy_policy.contains("ferry-orders-ecs-execution"));
    // The shared repository's policy admits the team's role to pull.
    let shared = &f.accounts[0];
    let repo = shared
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Repository(repo) => repo.policy.clone(),
            _ => None,
        })
        .unwrap();
    assert!(repo.0.to_string().contains(&team_role), "{}", repo.0);

    // Live, the team's role is read: one without the pulls is denied, with the fix in its
    // own identity policy.
    let mut live = serde_json::to_value(f.policies(&names)).unwrap();
    live.as_object_mut().unwrap().remove("teams_roles_assumed");
    let live: PolicyStore = serde_json::from_value(live).unwrap();
    let report = verify(&live, &f.edges, &names);
    let denied_pulls: Vec<_> = report
        .results
        .iter()
        .filter(|r| !r.allowed)
        .map(|r| (r.edge.principal.as_str(), r.edge.action.as_str()))
        .collect();
    assert!(
        denied_pulls.contains(&(team_role.as_str(), "ecr:BatchGetImage")),
        "{denied_pulls:?}"
    );
    assert!(
        denied_pulls
            .iter()
            .all(|(p, _)| p.ends_with("/orders-api-execution")),
        "{denied_pulls:?}"
    );
}

/// A resource policy that could not be read leaves its edges undecided, with no statement to
/// add. (Regression: an unread key's edges were reported denied, each with a "fix".)
#[test]
fn edges_on_a_policy_that_could_not_be_read_are_not_decided_and_prescribe_nothing() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let mut store = f.policies(&names);
    store.mark_not_read(&names.key_arn);
    let report = verify(&store, &f.edges, &names);
    let on_key: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.edge.resource == names.key_arn && r.edge.action.starts_with("kms:"))
        .collect();
    assert!(!on_key.is_empty());
    for r in &on_key {
        assert!(!r.allowed && r.fixes.is_empty(), "{r:#?}");
        assert!(r.reason.contains("could not be read"), "{}", r.reason);
    }
    // Everything else is decided as before.
    assert!(
        report
            .results
            .iter()
            .filter(|r| !r.allowed)
            .all(|r| r.reason.contains("could not be read")),
        "{:#?}",
        denied(&report)
    );
}

/// The orders manifest with its function deployed from an image in the shared repository.
fn orders_with_an_image_function() -> ferry_manifest::Manifest {
    orders_edited(
        "      artifact: app\n      zip: function.zip\n",
        "      image_uri: 111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api:fn-1\n",
    )
}

/// Lambda pulls a cross-account image itself: the repository policy must let the Lambda
/// service pull, for these functions only, and the deploy roles pull (Lambda checks the caller).
#[test]
fn an_image_function_lets_lambda_pull_from_the_shared_repository_for_that_function_only() {
    let m = orders_with_an_image_function();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let report = verify(&f.policies(&names), &f.edges, &names);
    assert!(denied(&report).is_empty(), "{:#?}", denied(&report));
    assert!(report.wider.is_empty(), "{:#?}", report.wider);
    assert!(report.unreadable.is_empty(), "{:?}", report.unreadable);

    let shared = f.accounts.iter().find(|a| a.name == "shared").unwrap();
    let policy = shared
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Repository(repo) => repo.policy.clone(),
            _ => None,
        })
        .unwrap();
    let service: Vec<Value> = statements(&policy)
        .into_iter()
        .filter(|s| s["Principal"]["Service"] == "lambda.amazonaws.com")
        .collect();
    let mut sources: Vec<String> = Vec::new();
    for s in &service {
        assert_eq!(
            s["Action"],
            json!(["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]),
            "{s:#}"
        );
        let arns: Vec<String> =
            serde_json::from_value(s["Condition"]["StringLike"]["aws:SourceArn"].clone()).unwrap();
        sources.extend(arns);
    }
    sources.sort();
    assert_eq!(
        sources,
        [
            "arn:aws:lambda:us-east-1:222222222222:function:orders-fn",
            "arn:aws:lambda:us-east-1:222222222222:function:orders-fn:*",
            "arn:aws:lambda:us-east-1:333333333333:function:orders-fn",
            "arn:aws:lambda:us-east-1:333333333333:function:orders-fn:*",
            "arn:aws:lambda:us-east-1:444444444444:function:orders-fn",
            "arn:aws:lambda:us-east-1:444444444444:function:orders-fn:*",
        ]
    );
    // The image comes from the registry: no artifact read for the function.
    assert!(
        !f.edges
            .iter()
            .any(|e| e.action == "s3:GetObject" && e.why.contains("orders-fn"))
    );
}

#[test]
fn a_repository_policy_without_the_lambda_service_is_caught_with_its_fix() {
    let m = orders_with_an_image_function();
    let names = Names::new(&m, None).unwrap();
    let mut f = plan(&names);
    let address = f
        .accounts
        .iter()
        .flat_map(|a| &a.resources)
        .find(|r| matches!(r, Resource::Repository(_)))
        .unwrap()
        .address();
    let policy = policy_mut(&mut f.accounts, "shared", &address);
    let kept: Vec<Value> = statements(policy)
        .into_iter()
        .filter(|s| s["Principal"]["Service"] != "lambda.amazonaws.com")
        .collect();
    policy["Statement"] = Value::Array(kept);
    let report = verify(&f.policies(&names), &f.edges, &names);
    let broken = denied(&report);
    assert_eq!(broken.len(), 6, "{broken:#?}");
    assert!(
        broken
            .iter()
            .all(|r| r.edge.principal == "lambda.amazonaws.com"),
        "{broken:#?}"
    );
    let fix = &broken[0].fixes[0];
    assert!(
        fix.place.contains("orders-api"),
        "the fix names the repository: {}",
        fix.place
    );
    assert_eq!(
        fix.statement["Principal"]["Service"],
        "lambda.amazonaws.com"
    );
}

/// The plan's policies, changed by `edit`, then verified.
fn verify_with(
    edit: impl FnOnce(&mut Vec<ferry_plan::AccountPlan>, &Names<'_>),
) -> ferry_plan::verify::Report {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let mut f = plan(&names);
    edit(&mut f.accounts, &names);
    let store: PolicyStore = f.policies(&names);
    verify(&store, &f.edges, &names)
}

fn denied(report: &ferry_plan::verify::Report) -> Vec<&ferry_plan::verify::EdgeResult> {
    report.results.iter().filter(|r| !r.allowed).collect()
}

fn policy_mut<'a>(
    accounts: &'a mut [ferry_plan::AccountPlan],
    account: &str,
    address: &str,
) -> &'a mut Value {
    let a = accounts.iter_mut().find(|a| a.name == account).unwrap();
    let r = a
        .resources
        .iter_mut()
        .find(|r| r.address() == address)
        .unwrap();
    match r {
        Resource::Key(k) => &mut k.policy,
        Resource::Bucket(b) => b.policy.as_mut().unwrap(),
        Resource::Role(role) => &mut role.trust,
        Resource::Repository(repo) => repo.policy.as_mut().unwrap(),
        other => panic!("{} has no policy", other.address()),
    }
}

#[test]
fn a_key_policy_without_the_qa_deploy_role_is_caught_with_its_fix() {
    let report = verify_with(|accounts, _| {
        let policy = policy_mut(accounts, "shared", "kms key alias/ferry-orders");
        let text = policy
            .to_string()
            .replace(r#""arn:aws:iam::333333333333:role/ferry-deploy","#, "")
            .replace(r#","arn:aws:iam::333333333333:role/ferry-deploy""#, "");
        *policy = serde_json::from_str(&text).unwrap();
    });
    let broken = denied(&report);
    assert_eq!(broken.len(), 1, "{broken:#?}");
    let r = broken[0];
    assert_eq!(
        (r.edge.environment.as_deref(), r.edge.action.as_str()),
        (Some("qa"), "kms:Decrypt")
    );
    assert_eq!(r.layer.as_deref(), Some("resource policy"));
    assert!(
        r.fixes[0]
            .place
            .starts_with("the key policy of arn:aws:kms:us-east-1:111111111111:key/"),
        "{:?}",
        r.fixes
    );
    assert_eq!(
        r.fixes[0].statement["Principal"]["AWS"],
        "arn:aws:iam::333333333333:role/ferry-deploy"
    );
}

#[test]
fn a_prod_deploy_role_that_no_longer_trusts_the_pipeline_is_caught() {
    let report = verify_with(|accounts, _| {
        *policy_mut(accounts, "prod", "iam role ferry-deploy") = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    });
    let broken = denied(&report);
    assert_eq!(broken.len(), 1, "{broken:#?}");
    assert_eq!(
        (
            broken[0].edge.environment.as_deref(),
            broken[0].edge.action.as_str()
        ),
        (Some("prod"), "sts:AssumeRole")
    );
    assert!(
        broken[0].fixes.iter().any(|f| f
            .place
            .starts_with("the trust policy of arn:aws:iam::444444444444:role/ferry-deploy")),
        "{:?}",
        broken[0].fixes
    );
}

#[test]
fn a_narrowed_bucket_policy_is_caught_for_every_deploy_role() {
    let report = verify_with(|accounts, _| {
        let policy = policy_mut(
            accounts,
            "shared",
            "s3 bucket ferry-orders-artifacts-111111111111",
        );
        let text = policy.to_string().replace("/orders/*", "/other/*");
        *policy = serde_json::from_str(&text).unwrap();
    });
    let broken = denied(&report);
    let envs: Vec<(&str, &str)> = broken
        .iter()
        .map(|r| {
            (
                r.edge.environment.as_deref().unwrap_or("-"),
                r.edge.action.as_str(),
            )
        })
        .collect();
    assert_eq!(
        envs,
        [
            ("dev", "s3:GetObject"),
            ("qa", "s3:GetObject"),
            ("prod", "s3:GetObject")
        ]
    );
    assert!(
        broken[0].fixes[0]
            .place
            .starts_with("the bucket policy of arn:aws:s3:::ferry-orders-artifacts-111111111111")
    );
}

#[test]
fn a_wildcard_grant_is_reported_as_wider_than_needed() {
    let report = verify_with(|accounts, _| {
        let a = accounts.iter_mut().find(|a| a.name == "dev").unwrap();
        if let Resource::Role(role) = &mut a.resources[0] {
            let doc = role.policies.get_mut("ferry-deploy").unwrap();
            doc["Statement"].as_array_mut().unwrap().push(
                json!({"Sid": "Everything", "Effect": "Allow", "Action": "ecr:*", "Resource": "*"}),
            );
        }
    });
    assert!(denied(&report).is_empty());
    let wider: Vec<&str> = report.wider.iter().map(|w| w.detail.as_str()).collect();
    assert!(
        report
            .wider
            .iter()
            .any(|w| w.statement.as_deref() == Some("Everything")),
        "{wider:?}"
    );
    assert!(wider.iter().any(|d| d.contains("ecr:*")), "{wider:?}");
}

/// An ECS task that cannot pull its image from the shared repository: the message names no
/// caller, so doctor finds the edges by action and repository — each environment's execution
/// role — and names the repository policy and the roles' own policies that grant them.
#[test]
fn doctor_explains_an_image_pull_refused_across_accounts() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let message = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api:3f2a: unexpected status from HEAD request: 403 Forbidden";
    let d = ferry_plan::doctor::diagnose(ferry_plan::doctor::parse(message).unwrap(), &f, &names);
    assert!(d.unmatched.is_none(), "{d:#?}");
    let principals: std::collections::BTreeSet<&str> = d
        .findings
        .iter()
        .map(|x| x.edge.principal.as_str())
        .collect();
    assert!(principals.len() >= 2, "{principals:?}");
    assert!(
        principals.iter().all(|p| p.ends_with("-ecs-execution")),
        "{principals:?}"
    );
    assert!(
        d.findings
            .iter()
            .any(|x| x.place.contains("repository policy")),
        "{:#?}",
        d.findings.iter().map(|x| &x.place).collect::<Vec<_>>()
    );
    // S3's bare "Access Denied" on the artifact bucket: every role that reads it, and where.
    let s3 = ferry_plan::doctor::diagnose(
        ferry_plan::doctor::parse(
            "An error occurred (AccessDenied) when calling the GetObject operation: Access Denied",
        )
        .unwrap(),
        &f,
        &names,
    );
    assert!(
        s3.findings
            .iter()
            .any(|x| x.place.contains("bucket policy")),
        "{s3:#?}"
    );
}

/// An ECS task that cannot read its secret from the shared account: no edge of the plan reads
/// task secrets, so doctor says which role must, with the statements, and what the secret's
/// own account must allow.
#[test]
fn doctor_explains_a_task_secret_read_refused_across_accounts() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let message = "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:111111111111:secret:orders/db-AbCdEf from secrets manager: AccessDeniedException";
    let d = ferry_plan::doctor::diagnose(ferry_plan::doctor::parse(message).unwrap(), &f, &names);
    let advice = d.unmatched.as_deref().unwrap();
    for part in [
        "ferry-orders-ecs-execution",
        "\"Resource\":\"arn:aws:secretsmanager:us-east-1:111111111111:secret:orders/db-AbCdEf\"",
        "secretsmanager.us-east-1.amazonaws.com",
        "The secret is in shared (111111111111)",
        "customer-managed key",
    ] {
        assert!(advice.contains(part), "{part}: {advice}");
    }
    // A secret in the task's own account needs no cross-account policies.
    let own = message.replace("111111111111", "222222222222");
    let d = ferry_plan::doctor::diagnose(ferry_plan::doctor::parse(&own).unwrap(), &f, &names);
    let advice = d.unmatched.as_deref().unwrap();
    assert!(!advice.contains("not the task's account"), "{advice}");
}

#[test]
fn doctor_names_the_policy_and_statement_for_a_denied_decrypt() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let message = "An error occurred (AccessDeniedException) when calling the Decrypt operation: User: arn:aws:sts::333333333333:assumed-role/ferry-deploy/ferry-orders-7 is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111111111111:key/created-by-bootstrap because no resource-based policy allows the kms:Decrypt action";
    let d = ferry_plan::doctor::diagnose(ferry_plan::doctor::parse(message).unwrap(), &f, &names);
    assert!(d.unmatched.is_none(), "{d:#?}");
    assert_eq!(d.findings.len(), 1, "{d:#?}");
    let finding = &d.findings[0];
    assert_eq!(finding.account, "shared (111111111111)");
    assert!(
        finding.place.starts_with("the key policy of arn:aws:kms:"),
        "{}",
        finding.place
    );
    assert!(
        finding
            .statement
            .to_string()
            .contains("arn:aws:iam::333333333333:role/ferry-deploy"),
        "{}",
        finding.statement
    );
    assert!(
        finding.advice.contains("ferry bootstrap --account shared"),
        "{}",
        finding.advice
    );
}

#[test]
fn doctor_says_when_a_call_is_not_one_the_pipeline_makes() {
    let m = orders();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let message = "User: arn:aws:sts::222222222222:assumed-role/ferry-deploy/x is not authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:222222222222:table/orders because no identity-based policy allows the dynamodb:PutItem action";
    let d = ferry_plan::doctor::diagnose(ferry_plan::doctor::parse(message).unwrap(), &f, &names);
    assert!(
        d.unmatched
            .as_deref()
            .unwrap()
            .contains("does not need dynamodb:PutItem"),
        "{d:#?}"
    );
    let stranger = "User: arn:aws:sts::222222222222:assumed-role/someone-else/x is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k";
    let d = ferry_plan::doctor::diagnose(ferry_plan::doctor::parse(stranger).unwrap(), &f, &names);
    assert!(
        d.unmatched
            .as_deref()
            .unwrap()
            .contains("is not a role of this pipeline's foundation"),
        "{d:#?}"
    );
}

/// The orders example with its builds on CodeBuild (`shared.builds.runner: codebuild`).
fn orders_on_codebuild() -> ferry_manifest::Manifest {
    orders_edited(
        "  repositories: [orders-api]\n",
        "  repositories: [orders-api]\n  builds: {runner: codebuild, compute_type: BUILD_GENERAL1_MEDIUM}\n",
    )
}

#[test]
fn builds_on_codebuild_get_a_project_and_a_service_role_limited_to_their_needs() {
    let m = orders_on_codebuild();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let shared = &f.accounts[0];
    let project = shared
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Project(p) => Some(p.clone()),
            _ => None,
        })
        .expect("a CodeBuild project");
    assert_eq!(project.name, "ferry-orders");
    assert_eq!(project.compute_type, "BUILD_GENERAL1_MEDIUM");
    assert_eq!(
        project.service_role,
        "arn:aws:iam::111111111111:role/ferry-orders-build"
    );
    assert_eq!(project.log_group, "/aws/codebuild/ferry-orders");
    let role = shared
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Role(role) if role.name == "ferry-orders-build" => Some(role.clone()),
            _ => None,
        })
        .expect("the project's service role");
    // Only CodeBuild in this account may act as it.
    let trust = serde_json::to_value(&role.trust).unwrap();
    let service = &statements(&trust)[0];
    assert_eq!(service["Principal"]["Service"], "codebuild.amazonaws.com");
    assert_eq!(
        service["Condition"]["StringEquals"]["aws:SourceAccount"],
        "111111111111"
    );
    let policy = serde_json::to_value(&role.policies["ferry-build"]).unwrap();
    let text = policy.to_string();
    // Its own log group, its prefix of the bucket, the secret its build names, ECR push.
    assert!(
        text.contains("log-group:/aws/codebuild/ferry-orders:log-stream:*"),
        "{policy:#}"
    );
    assert!(
        text.contains("arn:aws:s3:::ferry-orders-artifacts-111111111111/orders/codebuild/*"),
        "{policy:#}"
    );
    assert!(
        text.contains("secret:orders/api-token-??????"),
        "{policy:#}"
    );
    assert!(text.contains("ecr:PutImage"), "{policy:#}");
    assert!(
        !text.contains("logs:CreateLogGroup"),
        "bootstrap makes the group: {policy:#}"
    );
    // The pipeline starts, follows and stops builds of that project only.
    let pipeline = f
        .edges
        .iter()
        .filter(|e| {
            e.principal.ends_with(":role/ferry-orders") && e.action.starts_with("codebuild:")
        })
        .map(|e| (e.action.as_str(), e.resource.as_str()))
        .collect::<Vec<_>>();
    assert_eq!(
        pipeline,
        [
            (
                "codebuild:StartBuild",
                "arn:aws:codebuild:us-east-1:111111111111:project/ferry-orders"
            ),
            (
                "codebuild:BatchGetBuilds",
                "arn:aws:codebuild:us-east-1:111111111111:project/ferry-orders"
            ),
            (
                "codebuild:StopBuild",
                "arn:aws:codebuild:us-east-1:111111111111:project/ferry-orders"
            ),
            (
                "codebuild:ListBuildsForProject",
                "arn:aws:codebuild:us-east-1:111111111111:project/ferry-orders"
            ),
        ]
    );

    // Verify proves every one of those edges, and the plan grants nothing more.
    let report = proven(&f, &names);
    assert!(
        report
            .results
            .iter()
            .any(|r| r.edge.principal == "arn:aws:iam::111111111111:role/ferry-orders-build")
    );

    // A key policy that forgets the build role is caught.
    let key = f.accounts[0]
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Key(k) => Some(k.policy.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(key.contains("ferry-orders-build"), "{key}");

    // Local builds get neither.
    let local = orders();
    let names = Names::new(&local, None).unwrap();
    let f = plan(&names);
    assert!(
        !f.accounts[0]
            .resources
            .iter()
            .any(|r| matches!(r, Resource::Project(_)))
    );
    assert!(
        !f.edges
            .iter()
            .any(|e| e.principal.ends_with("ferry-orders-build"))
    );
}

/// Gives every build of `m` a buildspec that reads `reads` (what ferry-workflows records when
/// it reads the buildspecs).
fn reading(
    mut m: ferry_manifest::Manifest,
    reads: &ferry_manifest::BuildspecReads,
) -> ferry_manifest::Manifest {
    for action in m.stages.iter_mut().flat_map(|s| &mut s.actions) {
        if let ferry_manifest::ActionKind::Build(b) = &mut action.kind {
            b.reads = reads.clone();
        }
    }
    m
}

/// Regression: a secret or parameter named only in a buildspec's `env` was granted to no
/// role, so a build on CodeBuild failed on AccessDenied that `ferry verify` never showed.
#[test]
fn what_a_buildspec_reads_is_granted_to_the_role_that_reads_it() {
    let reads = ferry_manifest::BuildspecReads {
        secrets: vec!["orders/db".into()],
        parameters: vec!["/orders/feature-flags".into()],
    };
    // The role's policy as text, and the calls on the buildspec's reads `verify` proved.
    let grants = |m: &ferry_manifest::Manifest, role: &str| {
        let names = Names::new(m, None).unwrap();
        let f = plan(&names);
        let policies = f.accounts[0]
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::Role(r) if r.name == role => {
                    Some(serde_json::to_string(&r.policies).unwrap())
                }
                _ => None,
            })
            .unwrap();
        let proven: Vec<String> = proven(&f, &names)
            .results
            .into_iter()
            .filter(|r| r.allowed && r.edge.principal.ends_with(&format!(":role/{role}")))
            .filter(|r| {
                r.edge.resource.contains("orders/db-") || r.edge.resource.contains(":parameter/")
            })
            .map(|r| r.edge.action)
            .collect();
        (policies, proven)
    };
    // On CodeBuild: the build role, with the call CodeBuild makes.
    let (text, proved) = grants(
        &reading(orders_on_codebuild(), &reads),
        "ferry-orders-build",
    );
    assert!(
        text.contains("arn:aws:secretsmanager:us-east-1:111111111111:secret:orders/db-??????"),
        "{text}"
    );
    assert!(
        text.contains("arn:aws:ssm:us-east-1:111111111111:parameter/orders/feature-flags"),
        "{text}"
    );
    assert_eq!(
        proved,
        ["secretsmanager:GetSecretValue", "ssm:GetParameters"]
    );
    // Built here: the pipeline role, with the call ferry makes.
    let (text, proved) = grants(&reading(orders(), &reads), "ferry-orders");
    assert!(text.contains("secret:orders/db-??????"), "{text}");
    assert!(text.contains("parameter/orders/feature-flags"), "{text}");
    assert_eq!(
        proved,
        ["secretsmanager:GetSecretValue", "ssm:GetParameter"]
    );
    // Neither when no buildspec names them.
    let (text, proved) = grants(&orders_on_codebuild(), "ferry-orders-build");
    assert!(!text.contains("ssm:"), "{text}");
    assert!(proved.is_empty(), "{proved:?}");
}

#[test]
fn a_build_role_that_cannot_decrypt_is_caught_with_its_fix() {
    let m = orders_on_codebuild();
    let names = Names::new(&m, None).unwrap();
    let mut f = plan(&names);
    let key = policy_mut(&mut f.accounts, "shared", "kms key alias/ferry-orders");
    let text = key
        .to_string()
        .replace(
            r#""arn:aws:iam::111111111111:role/ferry-orders-build","#,
            "",
        )
        .replace(
            r#","arn:aws:iam::111111111111:role/ferry-orders-build""#,
            "",
        );
    *key = serde_json::from_str(&text).unwrap();
    let report = verify(&f.policies(&names), &f.edges, &names);
    let denied: Vec<_> = report
        .results
        .iter()
        .filter(|r| !r.allowed)
        .map(|r| format!("{} {}", r.edge.principal, r.edge.action))
        .collect();
    assert!(
        denied
            .iter()
            .any(|d| d.contains("ferry-orders-build kms:Decrypt")),
        "{denied:#?}"
    );
}

/// The orders example's CodeBuild builds in a VPC of the shared account.
fn orders_in_a_vpc() -> ferry_manifest::Manifest {
    orders_edited(
        "  repositories: [orders-api]\n",
        "  repositories: [orders-api]\n  builds:\n    runner: codebuild\n    vpc:\n      id: vpc-0abc1234\n      subnets: [subnet-0bbb2222, subnet-0aaa1111]\n      security_groups: [sg-0abc1234]\n",
    )
}

/// The build role's ferry-build policy as JSON text.
fn build_policy(f: &ferry_plan::Foundation) -> String {
    f.accounts[0]
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Role(r) if r.name == "ferry-orders-build" => {
                Some(serde_json::to_string(&r.policies["ferry-build"]).unwrap())
            }
            _ => None,
        })
        .unwrap()
}

/// Builds in a VPC: the project names it, and the build role may make network interfaces in
/// those subnets with those security groups only, attach them for CodeBuild only and delete
/// them in that VPC only; only the Describe calls, which have no resource type, are on "*".
#[test]
fn builds_in_a_vpc_may_make_network_interfaces_in_its_subnets_only() {
    let m = orders_in_a_vpc();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let project = f.accounts[0]
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Project(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    let vpc = project.vpc.expect("the project's VPC");
    assert_eq!(vpc.id, "vpc-0abc1234");
    // Sorted, as CodeBuild's read-back is compared.
    assert_eq!(vpc.subnets, ["subnet-0aaa1111", "subnet-0bbb2222"]);
    assert_eq!(vpc.security_groups, ["sg-0abc1234"]);
    let text = build_policy(&f);
    let ec2 = "arn:aws:ec2:us-east-1:111111111111";
    for arn in [
        "subnet/subnet-0aaa1111",
        "subnet/subnet-0bbb2222",
        "security-group/sg-0abc1234",
        "network-interface/*",
        "vpc/vpc-0abc1234",
    ] {
        assert!(text.contains(&format!("{ec2}:{arn}")), "{arn}: {text}");
    }
    assert!(
        text.contains(r#""ec2:AuthorizedService":"codebuild.amazonaws.com""#),
        "{text}"
    );
    // Every edge is allowed by these policies, nothing wider is granted, and the "*" grants
    // are the Describe calls AWS allows only on "*".
    let report = proven(&f, &names);
    let on_ec2: Vec<String> = report
        .results
        .iter()
        .filter(|r| r.edge.action.starts_with("ec2:"))
        .map(|r| format!("{} {}", r.edge.action, r.edge.resource))
        .collect();
    assert_eq!(on_ec2.len(), 11, "{on_ec2:#?}");
    identity_policies_use_star_only_where_aws_forces_it_in(&m);
    // Out of a VPC, the role gets no EC2 grant.
    let plain = orders_on_codebuild();
    let f = plan(&Names::new(&plain, None).unwrap());
    assert!(!build_policy(&f).contains("ec2:"));
}

/// A build role that lost one subnet is caught by verify on that subnet's edge.
#[test]
fn a_build_role_without_a_subnet_of_its_vpc_is_caught() {
    let m = orders_in_a_vpc();
    let names = Names::new(&m, None).unwrap();
    let mut f = plan(&names);
    for r in &mut f.accounts[0].resources {
        if let Resource::Role(role) = r
            && role.name == "ferry-orders-build"
        {
            let policy = role.policies.get_mut("ferry-build").unwrap();
            let text = policy
                .0
                .to_string()
                .replace(
                    r#","arn:aws:ec2:us-east-1:111111111111:subnet/subnet-0bbb2222""#,
                    "",
                )
                .replace(
                    r#""arn:aws:ec2:us-east-1:111111111111:subnet/subnet-0bbb2222","#,
                    "",
                );
            assert_ne!(text, policy.0.to_string(), "the subnet was in the policy");
            policy.0 = serde_json::from_str(&text).unwrap();
        }
    }
    let report = verify(&f.policies(&names), &f.edges, &names);
    let denied: Vec<String> = denied(&report)
        .iter()
        .map(|r| format!("{} {}", r.edge.action, r.edge.resource))
        .collect();
    assert_eq!(
        denied,
        ["ec2:CreateNetworkInterface arn:aws:ec2:us-east-1:111111111111:subnet/subnet-0bbb2222"],
        "{denied:#?}"
    );
}

/// The orders example laid as a native CodePipeline pipeline too.
fn orders_native() -> ferry_manifest::Manifest {
    orders_edits(&[
        (
            "  repositories: [orders-api]\n",
            "  repositories: [orders-api]\n  codepipeline:\n    connection: arn:aws:codeconnections:us-east-1:111111111111:connection/0a1b2c3d-4e5f-6789-abcd-ef0123456789\n    ferry_image: 111111111111.dkr.ecr.us-east-1.amazonaws.com/ferry:0.1.0\n",
        ),
        (
            "  repo: .\n",
            "  repo: https://github.com/acme/orders.git\n",
        ),
        (
            "          inputs: [source, app]\n",
            "          inputs: [source, app]\n          env: {IMAGE_TAG: \"v#{build.package.VERSION}\"}\n",
        ),
    ])
}

#[test]
fn the_native_pipeline_has_its_projects_topic_and_own_role_and_verify_proves_every_edge() {
    let m = orders_native();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let shared = &f.accounts[0];
    let addresses: Vec<String> = shared.resources.iter().map(Resource::address).collect();
    for wanted in [
        "codebuild project ferry-orders-build-package",
        "codebuild project ferry-orders-test-integration",
        "codebuild project ferry-orders-dev-function",
        "codebuild project ferry-orders-prod-function",
        "iam role ferry-orders-codepipeline",
        "iam role ferry-orders-build",
        "sns topic ferry-orders-approvals",
        "codepipeline pipeline orders",
    ] {
        assert!(
            addresses.iter().any(|a| a == wanted),
            "{wanted} missing from {addresses:#?}"
        );
    }
    // The pipeline comes last: its actions name the target accounts' roles.
    assert_eq!(addresses.last().unwrap(), "codepipeline pipeline orders");
    // No runner project: no build says `runner: codebuild`.
    assert!(!addresses.contains(&"codebuild project ferry-orders".to_owned()));

    let role = |name: &str| {
        shared
            .resources
            .iter()
            .find_map(|r| match r {
                Resource::Role(role) if role.name == name => Some(role.clone()),
                _ => None,
            })
            .unwrap()
    };
    let trust = serde_json::to_value(&role("ferry-orders-codepipeline").trust).unwrap();
    let statements = statements(&trust);
    assert_eq!(statements.len(), 1, "{trust:#}");
    assert_eq!(
        statements[0]["Principal"]["Service"],
        "codepipeline.amazonaws.com"
    );
    assert_eq!(
        statements[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        "111111111111"
    );
    // The pipeline role people and ferry serve act as does not become CodePipeline's.
    let pipeline_trust = serde_json::to_value(&role("ferry-orders").trust).unwrap();
    assert!(
        !pipeline_trust.to_string().contains("codepipeline"),
        "{pipeline_trust:#}"
    );

    let Some(Resource::Pipeline(spec)) = shared.resources.last() else {
        unreachable!()
    };
    let p = &spec.pipeline;
    assert_eq!(
        p.role_arn,
        "arn:aws:iam::111111111111:role/ferry-orders-codepipeline"
    );
    assert_eq!(p.pipeline_type, "V2");
    let stage = |name: &str| p.stages.iter().find(|s| s.name == name).unwrap();
    assert_eq!(
        stage("Source").actions[0].configuration["FullRepositoryId"],
        "acme/orders"
    );
    for env in ["dev", "qa", "prod"] {
        let s = stage(env);
        assert_eq!(s.on_failure.as_ref().unwrap().result, "ROLLBACK", "{env}");
        let api = s.actions.iter().find(|a| a.name == "api").unwrap();
        assert_eq!(api.action_type_id.provider, "ECS");
        assert!(
            api.role_arn
                .as_ref()
                .unwrap()
                .ends_with(":role/ferry-deploy")
        );
        let function = s.actions.iter().find(|a| a.name == "function").unwrap();
        assert_eq!(function.action_type_id.provider, "CodeBuild");
        assert_eq!(
            function.configuration["ProjectName"],
            format!("ferry-orders-{env}-function")
        );
        assert!(function.run_order >= 1 && api.run_order >= 1);
    }
    let approval = stage("qa")
        .actions
        .iter()
        .find(|a| a.action_type_id.category == "Approval")
        .unwrap();
    assert_eq!(
        approval.configuration["NotificationArn"],
        "arn:aws:sns:us-east-1:111111111111:ferry-orders-approvals"
    );
    assert!(stage("build").on_failure.is_none());
    // A build's variables are its namespace; a later build reads them through it, and its
    // secrets go as references CodeBuild resolves.
    let package = &stage("build").actions[0];
    assert_eq!(package.namespace.as_deref(), Some("build@package"));
    let vars: Value = serde_json::from_str(&package.configuration["EnvironmentVariables"]).unwrap();
    assert_eq!(
        vars,
        serde_json::json!([{"name": "ORDERS_API_TOKEN", "value": "orders/api-token", "type": "SECRETS_MANAGER"}])
    );
    let integration: Value =
        serde_json::from_str(&stage("test").actions[0].configuration["EnvironmentVariables"])
            .unwrap();
    assert_eq!(integration[0]["value"], "v#{build@package.VERSION}");
    let push = &p.triggers[0].git_configuration.push;
    assert_eq!(push[0].branches.as_ref().unwrap().includes, ["main"]);

    // Prod's Lambda deploy runs `ferry deploy lambda` as prod's deploy role, with its
    // ExternalId, the manifest's traffic and prod's alarm.
    let buildspec = shared
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Project(p) if p.name == "ferry-orders-prod-function" => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        buildspec.image,
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/ferry:0.1.0"
    );
    assert!(buildspec.pull_as_role);
    let ferry_plan::spec::ProjectIo::Pipeline { buildspec } = &buildspec.io else {
        panic!("{buildspec:?}")
    };
    for part in [
        "ferry deploy lambda",
        "--role-arn 'arn:aws:iam::444444444444:role/ferry-deploy'",
        "--external-id 'ferry-orders-prod'",
        "--traffic 'canary 10% 5s'",
        "--alarm 'orders-fn-errors-prod'",
        "--zip \"$CODEBUILD_SRC_DIR\"/'function.zip'",
    ] {
        assert!(buildspec.contains(part), "{part} missing:\n{buildspec}");
    }

    // Every role's access is an edge verify proves, and nothing more is granted.
    proven(&f, &names);
    // Each deploy role trusts the CodePipeline role (ECS deploys) and the build role
    // (`ferry deploy lambda`).
    let prod = f.account("prod").unwrap();
    let trust = prod
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::Role(role) if role.name == "ferry-deploy" => Some(role.trust.to_string()),
            _ => None,
        })
        .unwrap();
    assert!(trust.contains("role/ferry-orders-codepipeline"), "{trust}");
    assert!(trust.contains("role/ferry-orders-build"), "{trust}");
}

fn orders_in_github_actions() -> ferry_manifest::Manifest {
    orders_edited(
        "  repositories: [orders-api]\n",
        "  repositories: [orders-api]\n  github_actions:\n    repository: acme/orders\n    branch: main\n",
    )
}

/// `shared.github_actions`: GitHub's OIDC provider in the shared account, and the pipeline
/// role trusts a workflow run of that repository's branch only — a web-identity edge that
/// verify proves from the trust policy alone.
#[test]
fn github_actions_gets_the_oidc_provider_and_a_trust_for_its_repository_and_branch_only() {
    let m = orders_in_github_actions();
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let shared = f.account("shared").unwrap();
    let provider = shared
        .resources
        .iter()
        .find_map(|r| match r {
            Resource::OidcProvider(p) => Some(p),
            _ => None,
        })
        .expect("the plan lays GitHub's provider");
    assert_eq!(
        (provider.url().as_str(), provider.audiences.as_slice()),
        (
            "https://token.actions.githubusercontent.com",
            ["sts.amazonaws.com".to_owned()].as_slice()
        )
    );
    let trust = match shared
        .resources
        .iter()
        .find(|r| r.address() == "iam role ferry-orders")
    {
        Some(Resource::Role(role)) => role.trust.0.clone(),
        other => panic!("no pipeline role: {other:?}"),
    };
    let github = statements(&trust)
        .into_iter()
        .find(|s| s["Sid"] == "GithubActions")
        .expect("a statement for GitHub Actions");
    assert_eq!(
        github,
        json!({
            "Sid": "GithubActions",
            "Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": "repo:acme/orders:ref:refs/heads/main"
            }}
        })
    );
    let report = proven(&f, &names);
    let edge = report
        .results
        .iter()
        .find(|r| r.edge.action == "sts:AssumeRoleWithWebIdentity")
        .expect("the web-identity edge is verified");
    assert!(edge.allowed, "{}", edge.reason);
    assert_eq!(edge.layer.as_deref(), Some("resource policy"));
}

#[test]
fn a_trust_that_admits_another_branch_than_the_manifests_is_caught_with_its_fix() {
    let m = orders_in_github_actions();
    let names = Names::new(&m, None).unwrap();
    let mut f = plan(&names);
    let trust = policy_mut(&mut f.accounts, "shared", "iam role ferry-orders");
    let text = trust
        .to_string()
        .replace("refs/heads/main", "refs/heads/develop");
    *trust = serde_json::from_str(&text).unwrap();
    let report = verify(&f.policies(&names), &f.edges, &names);
    let broken = denied(&report);
    assert_eq!(broken.len(), 1, "{broken:#?}");
    let r = broken[0];
    assert_eq!(r.edge.action, "sts:AssumeRoleWithWebIdentity");
    let fix = &r.fixes[0];
    assert!(
        fix.place
            .starts_with("the trust policy of arn:aws:iam::111111111111:role/ferry-orders"),
        "{fix:?}"
    );
    assert_eq!(
        fix.statement["Principal"],
        json!({"Federated": "arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com"})
    );
}

/// An entry gate reads its alarms as the environment's deploy role, so the role may read
/// those alarms and no others.
#[test]
fn an_entry_gate_alarm_is_read_by_that_environments_deploy_role_only() {
    let m = orders_edited(
        "    gates: {alarms: [orders-api-5xx-prod]}\n",
        "    gates:\n      alarms: [orders-p99-prod]\n      soak: 1h\n",
    );
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let gate: Vec<_> = f
        .edges
        .iter()
        .filter(|e| e.resource.ends_with(":alarm:orders-p99-prod"))
        .collect();
    assert_eq!(gate.len(), 1, "{gate:#?}");
    assert_eq!(gate[0].action, "cloudwatch:DescribeAlarms");
    assert_eq!(
        gate[0].principal,
        "arn:aws:iam::444444444444:role/ferry-deploy"
    );
    assert_eq!(
        gate[0].resource,
        "arn:aws:cloudwatch:us-east-1:444444444444:alarm:orders-p99-prod"
    );
    let report = verify(&f.policies(&names), &f.edges, &names);
    assert!(denied(&report).is_empty(), "{:#?}", denied(&report));
    assert!(report.wider.is_empty(), "{:#?}", report.wider);
}

/// ECS's own traffic shifting: the deploy role may follow and stop that service's
/// deployments, and no other service's.
#[test]
fn a_blue_green_service_lets_its_deploy_role_follow_and_stop_its_deployments_only() {
    let m = orders_edited(
        "      timeout: 10m\n",
        "      timeout: 10m\n      strategy: canary 10% 5m\n      bake: 15m\n",
    );
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let mut edges: Vec<(String, &str, &str)> = f
        .edges
        .iter()
        .filter(|e| e.action.contains("ServiceDeployment"))
        .filter(|e| e.principal == "arn:aws:iam::444444444444:role/ferry-deploy")
        .map(|e| (e.action.clone(), e.resource.as_str(), e.why.as_str()))
        .collect();
    edges.sort();
    assert_eq!(
        edges,
        [
            (
                "ecs:DescribeServiceDeployments".to_owned(),
                "arn:aws:ecs:us-east-1:444444444444:service-deployment/orders-prod/orders-api/a1b2c3",
                "follow ECS's traffic shifting on orders-prod/orders-api"
            ),
            (
                "ecs:DescribeServiceDeployments".to_owned(),
                "arn:aws:ecs:us-east-1:444444444444:service/orders-prod/orders-api",
                "follow ECS's traffic shifting on orders-prod/orders-api"
            ),
            (
                "ecs:StopServiceDeployment".to_owned(),
                "arn:aws:ecs:us-east-1:444444444444:service-deployment/orders-prod/orders-api/a1b2c3",
                "ask ECS to roll back on an alarm on orders-prod/orders-api"
            ),
            (
                "ecs:StopServiceDeployment".to_owned(),
                "arn:aws:ecs:us-east-1:444444444444:service/orders-prod/orders-api",
                "ask ECS to roll back on an alarm on orders-prod/orders-api"
            ),
        ]
    );
    let report = verify(&f.policies(&names), &f.edges, &names);
    assert!(denied(&report).is_empty(), "{:#?}", denied(&report));
    assert!(report.wider.is_empty(), "{:#?}", report.wider);
    identity_policies_use_star_only_where_aws_forces_it_in(&m);
}

#[test]
fn a_service_with_hooks_lets_its_deploy_role_answer_its_own_pauses_and_nothing_else() {
    let m = orders_edited(
        "      timeout: 10m\n",
        "      timeout: 10m\n      strategy: blue_green\n      hooks:\n        - approval: {approvers: [alice]}\n",
    );
    let names = Names::new(&m, None).unwrap();
    let f = plan(&names);
    let mut answers: Vec<(&str, &str)> = f
        .edges
        .iter()
        .filter(|e| e.action == "ecs:ContinueServiceDeployment")
        .map(|e| (e.principal.as_str(), e.resource.as_str()))
        .collect();
    answers.sort_unstable();
    // Each environment's deploy role, on its own service and that service's deployments.
    let mut want = Vec::new();
    for (account, env) in [
        ("222222222222", "dev"),
        ("333333333333", "qa"),
        ("444444444444", "prod"),
    ] {
        let role = format!("arn:aws:iam::{account}:role/ferry-deploy");
        for resource in [
            format!(
                "arn:aws:ecs:us-east-1:{account}:service-deployment/orders-{env}/orders-api/a1b2c3"
            ),
            format!("arn:aws:ecs:us-east-1:{account}:service/orders-{env}/orders-api"),
        ] {
            want.push((role.clone(), resource));
        }
    }
    let answers: Vec<(String, String)> = answers
        .into_iter()
        .map(|(p, r)| (p.to_owned(), r.to_owned()))
        .collect();
    assert_eq!(answers, want);
    let report = verify(&f.policies(&names), &f.edges, &names);
    assert!(denied(&report).is_empty(), "{:#?}", denied(&report));
    assert!(report.wider.is_empty(), "{:#?}", report.wider);
    // Without hooks, no deploy role may answer a pause.
    let plain = orders_edited(
        "      timeout: 10m\n",
        "      timeout: 10m\n      strategy: blue_green\n",
    );
    let names = Names::new(&plain, None).unwrap();
    assert!(
        !plan(&names)
            .edges
            .iter()
            .any(|e| e.action == "ecs:ContinueServiceDeployment")
    );
}
