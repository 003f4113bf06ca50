//! The pipeline as an AWS CodePipeline V2 definition (`aws codepipeline create-pipeline
//! --cli-input-json`): the same stages, manual approvals, and deploy actions that act in each
//! target account through its deploy role.

use ferry_manifest::{ActionKind, ExecutionMode, LambdaPackage, Manifest, Traffic};
use serde_json::{Value, json};

use crate::names::Names;

/// The definition, and what the user must still provide (CodeBuild projects, a connection).
pub fn codepipeline(names: &Names<'_>) -> (Value, Vec<String>) {
    let m: &Manifest = names.manifest;
    let mut notes = vec![
        "Source: replace CONNECTION_ARN with a CodeStar connection to your repository, and FullRepositoryId with owner/name".to_owned(),
        format!("The pipeline role {} must trust codepipeline.amazonaws.com (ferry's plan has it)", names.pipeline_role()),
    ];
    let mut stages = vec![json!({
        "name": "Source",
        "actions": [{
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
            "configuration": {"ConnectionArn": "CONNECTION_ARN", "FullRepositoryId": repository_id(&m.source.repo), "BranchName": m.source.branch, "OutputArtifactFormat": "CODE_ZIP"},
            "outputArtifacts": [{"name": "source"}],
            "runOrder": 1
        }]
    })];
    for stage in &m.stages {
        let account = stage.account.as_deref().and_then(|a| m.account(a));
        let mut actions = Vec::new();
        for action in &stage.actions {
            let mut a = json!({"name": action.name, "runOrder": action.run_order});
            match &action.kind {
                ActionKind::Build(b) => {
                    let project = format!("{}-{}-{}", m.pipeline, stage.name, action.name);
                    notes.push(format!("CodeBuild project {project} runs the buildspec of {}.{} (create it with the pipeline role as its service role)", stage.name, action.name));
                    a["actionTypeId"] = json!({"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"});
                    a["configuration"] = json!({"ProjectName": project});
                    a["inputArtifacts"] = artifacts(&b.inputs);
                    a["outputArtifacts"] = artifacts(&b.outputs);
                }
                ActionKind::Approval(ap) => {
                    a["actionTypeId"] = json!({"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"});
                    let mut text = format!(
                        "Promote to {}",
                        stage.environment.as_deref().unwrap_or(&stage.name)
                    );
                    if !ap.approvers.is_empty() {
                        text.push_str(&format!(" (approvers: {})", ap.approvers.join(", ")));
                    }
                    a["configuration"] = json!({"CustomData": text});
                }
                ActionKind::Ecs(e) => {
                    a["actionTypeId"] = json!({"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"});
                    a["configuration"] = json!({"ClusterName": e.cluster, "ServiceName": e.service, "FileName": e.image_definitions, "DeploymentTimeout": e.timeout.as_secs().div_ceil(60).to_string()});
                    a["inputArtifacts"] = artifacts(std::slice::from_ref(&e.artifact));
                    deploy_in(&mut a, names, account);
                }
                ActionKind::Lambda(l) => {
                    a["actionTypeId"] = json!({"category": "Deploy", "owner": "AWS", "provider": "Lambda", "version": "1"});
                    a["configuration"] = json!({"FunctionName": l.function, "FunctionAlias": l.alias, "DeployStrategy": strategy(l.traffic)});
                    if let LambdaPackage::Zip { artifact, .. } = &l.package {
                        a["inputArtifacts"] = artifacts(std::slice::from_ref(artifact));
                    }
                    if !l.alarms.is_empty() {
                        notes.push(format!("{}.{}: CodePipeline does not watch ferry's alarms ({}); configure rollback on them in the action", stage.name, action.name, l.alarms.join(", ")));
                    }
                    deploy_in(&mut a, names, account);
                }
            }
            actions.push(a);
        }
        stages.push(json!({"name": stage.name, "actions": actions}));
    }
    let mode = match m.mode {
        ExecutionMode::Superseded => "SUPERSEDED",
        ExecutionMode::Queued => "QUEUED",
        ExecutionMode::Parallel => "PARALLEL",
    };
    let definition = json!({"pipeline": {
        "name": m.pipeline,
        "roleArn": names.pipeline_role(),
        "pipelineType": "V2",
        "executionMode": mode,
        "artifactStore": {"type": "S3", "location": names.shared.artifact_bucket, "encryptionKey": {"id": names.key_alias_arn(), "type": "KMS"}},
        "stages": stages,
    }});
    (definition, notes)
}

fn artifacts(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| json!({"name": n})).collect())
}

/// A deploy action acts in its account through the deploy role.
fn deploy_in(action: &mut Value, names: &Names<'_>, account: Option<&ferry_manifest::Account>) {
    if let Some(account) = account {
        action["roleArn"] = json!(names.deploy_role(account));
        action["region"] = json!(account.region);
    }
}

/// CodePipeline's names for ferry's traffic shifts.
fn strategy(traffic: Traffic) -> String {
    match traffic {
        Traffic::AllAtOnce => "AllAtOnce".into(),
        Traffic::Canary { percent, bake } => format!(
            "Canary{percent}Percent{}Minutes",
            bake.as_secs().div_ceil(60)
        ),
        Traffic::Linear { percent, interval } => format!(
            "Linear{percent}PercentEvery{}Minute{}",
            interval.as_secs().div_ceil(60),
            if interval.as_secs() > 60 { "s" } else { "" }
        ),
    }
}

/// `owner/name` of a GitHub-style URL, or a placeholder.
fn repository_id(repo: &str) -> String {
    let trimmed = repo.trim_end_matches('/').trim_end_matches(".git");
    let parts: Vec<&str> = trimmed.rsplit(['/', ':']).take(2).collect();
    if is_url(repo) && parts.len() == 2 {
        format!("{}/{}", parts[1], parts[0])
    } else {
        "OWNER/REPOSITORY".into()
    }
}

fn is_url(repo: &str) -> bool {
    repo.contains("://") || repo.starts_with("git@")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn traffic_maps_to_codepipeline_strategies() {
        assert_eq!(strategy(Traffic::AllAtOnce), "AllAtOnce");
        assert_eq!(
            strategy(Traffic::Canary {
                percent: 10,
                bake: Duration::from_secs(300)
            }),
            "Canary10Percent5Minutes"
        );
        assert_eq!(
            strategy(Traffic::Linear {
                percent: 10,
                interval: Duration::from_secs(60)
            }),
            "Linear10PercentEvery1Minute"
        );
    }

    #[test]
    fn repository_ids_come_from_urls() {
        assert_eq!(
            repository_id("https://github.com/acme/orders.git"),
            "acme/orders"
        );
        assert_eq!(
            repository_id("git@github.com:acme/orders.git"),
            "acme/orders"
        );
        assert_eq!(repository_id("."), "OWNER/REPOSITORY");
    }
}
