//! The pipeline as a native AWS CodePipeline V2 pipeline: the same stages, a CodeBuild action
//! per build, manual approvals that notify an SNS topic, ECS deploys through each account's
//! deploy role, Lambda deploys as a CodeBuild action that runs `ferry deploy lambda` (so the
//! safe sequence holds), triggers with the manifest's filters and rollback of an environment
//! stage on failure. The typed [`Pipeline`] serializes as CreatePipeline's JSON (`aws
//! codepipeline create-pipeline --cli-input-json`), and is what ferry-aws creates, reads
//! back and compares when `shared.codepipeline` puts the pipeline in the foundation.
//!
//! Why Lambda deploys do not use CodePipeline's Lambda deploy action: it deploys its input
//! artifact itself as the function's code, while ferry's Lambda deploys name a zip inside an
//! artifact (`artifact: app, zip: function.zip`) that other deploys read too; and its
//! strategies count whole minutes, where ferry's traffic shifts may bake for seconds.

use std::collections::BTreeMap;

use ferry_manifest::{Account, ActionKind, ExecutionMode, LambdaDeploy, LambdaPackage, Manifest};
use serde::Serialize;

use crate::names::Names;

/// CreatePipeline's `pipeline` (the fields ferry sets).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub name: String,
    pub role_arn: String,
    pub pipeline_type: String,
    pub execution_mode: String,
    pub artifact_store: ArtifactStore,
    pub stages: Vec<Stage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<Trigger>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    #[serde(rename = "type")]
    pub kind: String,
    pub location: String,
    pub encryption_key: EncryptionKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EncryptionKey {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    pub name: String,
    pub actions: Vec<Action>,
    /// `ROLLBACK` for an environment's stage: a failed deploy puts back the last execution
    /// that succeeded there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnFailure {
    pub result: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    pub name: String,
    pub action_type_id: ActionTypeId,
    pub run_order: i32,
    pub configuration: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub input_artifacts: Vec<ArtifactName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output_artifacts: Vec<ArtifactName>,
    /// The role CodePipeline acts as (a target account's deploy role).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A build's variables namespace, which later actions read as `#{namespace.NAME}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionTypeId {
    pub category: String,
    pub owner: String,
    pub provider: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArtifactName {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    pub provider_type: String,
    pub git_configuration: GitConfiguration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConfiguration {
    pub source_action_name: String,
    pub push: Vec<PushFilter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushFilter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branches: Option<Patterns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Patterns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<Patterns>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Patterns {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
}

/// The placeholder for the source connection when the manifest names none.
pub const CONNECTION_PLACEHOLDER: &str = "CONNECTION_ARN";

/// One CodeBuild project the native pipeline runs: a build action's, or a Lambda deploy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeProject {
    pub name: String,
    pub stage: String,
    pub action: String,
    /// The project's buildspec: a path in the first input artifact, or the text.
    pub buildspec: String,
    /// The image: the build's (`shared.builds`), or the image with ferry for a deploy.
    pub image: String,
}

fn action_type(category: &str, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category: category.into(),
        owner: "AWS".into(),
        provider: provider.into(),
        version: "1".into(),
    }
}

fn artifacts(names: &[String]) -> Vec<ArtifactName> {
    names
        .iter()
        .map(|n| ArtifactName { name: n.clone() })
        .collect()
}

fn config<const N: usize>(pairs: [(&str, String); N]) -> BTreeMap<String, String> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// The CodeBuild projects of the native pipeline, in stage order.
pub fn projects(names: &Names<'_>) -> Vec<NativeProject> {
    let m: &Manifest = names.manifest;
    let ferry_image = names
        .shared
        .codepipeline
        .as_ref()
        .and_then(|c| c.ferry_image.clone())
        .unwrap_or_else(|| "FERRY_IMAGE".into());
    let mut out = Vec::new();
    for stage in &m.stages {
        let account = stage.account.as_deref().and_then(|a| m.account(a));
        for action in &stage.actions {
            let (buildspec, image) = match (&action.kind, account) {
                (ActionKind::Build(b), _) => (
                    match &b.buildspec {
                        ferry_manifest::Buildspec::File(path) => path.clone(),
                        ferry_manifest::Buildspec::Inline { text, .. } => text.clone(),
                    },
                    names.shared.codebuild.image.clone(),
                ),
                (ActionKind::Lambda(l), Some(account)) => (
                    lambda_deploy_buildspec(
                        &stage.name,
                        &action.name,
                        l,
                        account,
                        ledger_of(names, stage),
                    ),
                    ferry_image.clone(),
                ),
                _ => continue,
            };
            out.push(NativeProject {
                name: names.native_project(&stage.name, &action.name),
                stage: stage.name.clone(),
                action: action.name.clone(),
                buildspec,
                image,
            });
        }
    }
    out
}

/// The pipeline and the environment whose ledger `stage`'s Lambda deploys record into: when
/// the native pipeline names ferry's state.
fn ledger_of<'s>(
    names: &'s Names<'_>,
    stage: &'s ferry_manifest::Stage,
) -> Option<(&'s str, &'s str)> {
    names
        .shared
        .codepipeline
        .as_ref()?
        .state_url_secret
        .as_ref()?;
    let environment = stage.environment.as_deref().unwrap_or(&stage.name);
    Some((&names.manifest.pipeline, environment))
}

/// The source action's variables namespace (its `CommitId` is the revision).
const SOURCE_NAMESPACE: &str = "SourceVariables";

/// What a Lambda deploy that records into the ledger reads from CodePipeline, through the
/// CodeBuild action's `EnvironmentVariables`: the execution (the run) and the commit. The
/// state's URL (`FERRY_STATE_URL`) comes beside them from Secrets Manager, which CodeBuild
/// reads as the project's role.
pub const LEDGER_VARIABLES: [(&str, &str); 2] = [
    ("FERRY_RUN", "#{codepipeline.PipelineExecutionId}"),
    ("FERRY_REVISION", "#{SourceVariables.CommitId}"),
];

/// The namespace of a build's exported variables: its stage and action, joined by `@`
/// (which a ferry name never holds, so two builds never share one).
pub fn variables_namespace(stage: &str, action: &str) -> String {
    format!("{stage}@{action}")
}

/// The CodeBuild action's `EnvironmentVariables`: the build's `env`, `#{stage.action.NAME}`
/// rewritten to the exporting build's namespace, and its secrets as Secrets Manager
/// references, which CodeBuild resolves as the project's role.
fn environment_variables(m: &Manifest, b: &ferry_manifest::Build) -> Option<String> {
    let mut vars = Vec::new();
    for (name, value) in &b.env {
        let value = b.imports.iter().fold(value.clone(), |v, r| {
            v.replace(
                &r.text(),
                &format!(
                    "#{{{}.{}}}",
                    variables_namespace(&r.stage, &r.action),
                    r.variable
                ),
            )
        });
        vars.push(serde_json::json!({"name": name, "value": value, "type": "PLAINTEXT"}));
    }
    for binding in b.secrets.iter().filter_map(|s| m.secret(s)) {
        vars.push(serde_json::json!({"name": binding.name, "value": binding.secret_id, "type": "SECRETS_MANAGER"}));
    }
    (!vars.is_empty()).then(|| serde_json::Value::Array(vars).to_string())
}

/// A shell word: single-quoted (the values are names, ARNs and traffic notations, which hold
/// no single quote; one that did is closed, escaped and reopened).
fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The buildspec of a Lambda deploy in the native pipeline: `ferry deploy lambda` as the
/// account's deploy role, from the first input artifact (`CODEBUILD_SRC_DIR`), with the
/// manifest's traffic and alarms; with `ledger` (the pipeline and the environment), recorded
/// in ferry's release ledger — the run and the revision come from the action's variables
/// ([`LEDGER_VARIABLES`]), the state's URL from its secret.
pub fn lambda_deploy_buildspec(
    stage: &str,
    action: &str,
    deploy: &LambdaDeploy,
    account: &Account,
    ledger: Option<(&str, &str)>,
) -> String {
    let mut args = vec![
        format!("--function {}", quoted(&deploy.function)),
        format!("--alias {}", quoted(&deploy.alias)),
    ];
    match &deploy.package {
        LambdaPackage::Zip { path, .. } => {
            args.push(format!("--zip \"$CODEBUILD_SRC_DIR\"/{}", quoted(path)));
        }
        LambdaPackage::Image { uri } => args.push(format!("--image-uri {}", quoted(uri))),
    }
    args.push(format!("--role-arn {}", quoted(&account.deploy_role_arn())));
    if let Some(id) = &account.external_id {
        args.push(format!("--external-id {}", quoted(id)));
    }
    args.push(format!("--region {}", quoted(&account.region)));
    args.push(format!("--traffic {}", quoted(&deploy.traffic.to_string())));
    for alarm in &deploy.alarms {
        args.push(format!("--alarm {}", quoted(alarm)));
    }
    if let Some((pipeline, environment)) = ledger {
        args.push(format!(
            "--ledger {} --pipeline {}",
            quoted(environment),
            quoted(pipeline)
        ));
    }
    let command = format!(
        "ferry deploy lambda \\\n          {}",
        args.join(" \\\n          ")
    );
    format!(
        "# Written by ferry for {stage}.{action}: the deploy as `ferry deploy lambda`, so that in\n\
         # CodePipeline too a version is published once, the alias shifts as the manifest says, the\n\
         # alarms are watched and a failure puts the alias back.\n\
         version: 0.2\n\
         phases:\n  build:\n    commands:\n      - |\n        {command}\n"
    )
}

/// The definition, and what the user must still provide when the manifest has no
/// `shared.codepipeline` (the connection; the projects, which `--apply` creates).
pub fn codepipeline(names: &Names<'_>) -> (Pipeline, Vec<String>) {
    let m: &Manifest = names.manifest;
    let native = names.shared.codepipeline.as_ref();
    let mut notes = Vec::new();
    if native.is_none() {
        notes.push(format!(
            "Source: replace {CONNECTION_PLACEHOLDER} with a CodeConnections connection to your repository, or add `shared.codepipeline: {{connection: …}}` and run `ferry synth codepipeline --apply`, which creates the pipeline with its CodeBuild projects, roles and approval topic"
        ));
    }
    if repository_id(&m.source.repo).is_none() {
        notes.push(
            "Source: FullRepositoryId is OWNER/REPOSITORY: give `source.repo` the repository's URL"
                .into(),
        );
    }
    let connection = native.map_or(CONNECTION_PLACEHOLDER.to_owned(), |c| c.connection.clone());
    let mut stages = vec![Stage {
        name: "Source".into(),
        actions: vec![Action {
            name: "Source".into(),
            action_type_id: action_type("Source", "CodeStarSourceConnection"),
            run_order: 1,
            configuration: config([
                ("ConnectionArn", connection),
                (
                    "FullRepositoryId",
                    repository_id(&m.source.repo).unwrap_or_else(|| "OWNER/REPOSITORY".into()),
                ),
                ("BranchName", m.source.branch.clone()),
                ("OutputArtifactFormat", "CODE_ZIP".into()),
            ]),
            input_artifacts: vec![],
            output_artifacts: artifacts(&["source".to_owned()]),
            role_arn: None,
            region: None,
            namespace: Some(SOURCE_NAMESPACE.into()),
        }],
        on_failure: None,
    }];
    for env in m.environments.iter().filter(|e| e.gates.hold_entry()) {
        notes.push(format!(
            "{}: its `gates` (alarms, windows, soak) hold releases only when ferry runs the pipeline; this definition does not lay them as stage entry conditions",
            env.name
        ));
    }
    for stage in &m.stages {
        let account = stage.account.as_deref().and_then(|a| m.account(a));
        // CodePipeline's run orders start at 1; an environment's approval has 0.
        let offset = i32::from(stage.actions.iter().any(|a| a.run_order == 0));
        let mut actions = Vec::new();
        for action in &stage.actions {
            let run_order = i32::try_from(action.run_order).unwrap_or(999) + offset;
            let project = names.native_project(&stage.name, &action.name);
            let mut a = Action {
                name: action.name.clone(),
                action_type_id: action_type("Build", "CodeBuild"),
                run_order,
                configuration: BTreeMap::new(),
                input_artifacts: vec![],
                output_artifacts: vec![],
                role_arn: None,
                region: None,
                namespace: None,
            };
            match &action.kind {
                ActionKind::Build(b) => {
                    a.configuration = config([("ProjectName", project)]);
                    a.namespace = Some(variables_namespace(&stage.name, &action.name));
                    if let Some(vars) = environment_variables(m, b) {
                        a.configuration.insert("EnvironmentVariables".into(), vars);
                    }
                    a.input_artifacts = artifacts(&b.inputs);
                    a.output_artifacts = artifacts(&b.outputs);
                    if b.inputs.len() > 1 {
                        a.configuration
                            .insert("PrimarySource".into(), b.inputs[0].clone());
                    }
                }
                ActionKind::Approval(ap) => {
                    a.action_type_id = action_type("Approval", "Manual");
                    let mut text = format!(
                        "Promote to {}",
                        stage.environment.as_deref().unwrap_or(&stage.name)
                    );
                    if !ap.approvers.is_empty() {
                        text.push_str(&format!(" (approvers: {})", ap.approvers.join(", ")));
                    }
                    a.configuration = config([
                        ("CustomData", text),
                        ("NotificationArn", names.approvals_topic_arn()),
                    ]);
                }
                ActionKind::Ecs(e) => {
                    a.action_type_id = action_type("Deploy", "ECS");
                    a.configuration = config([
                        ("ClusterName", e.cluster.clone()),
                        ("ServiceName", e.service.clone()),
                        ("FileName", e.image_definitions.clone()),
                        (
                            "DeploymentTimeout",
                            e.timeout.as_secs().div_ceil(60).to_string(),
                        ),
                    ]);
                    a.input_artifacts = artifacts(std::slice::from_ref(&e.artifact));
                    if let Some(account) = account {
                        a.role_arn = Some(names.deploy_role(account));
                        a.region = Some(account.region.clone());
                    }
                    if !e.alarms.is_empty() {
                        notes.push(format!("{}.{}: the ECS deploy action does not watch alarms ({}); the stage rolls back when the action fails", stage.name, action.name, e.alarms.join(", ")));
                    }
                    if e.strategy != ferry_manifest::EcsStrategy::Rolling {
                        notes.push(format!("{}.{}: the ECS deploy action does a rolling update; its `strategy` applies only when ferry runs the pipeline", stage.name, action.name));
                    }
                }
                ActionKind::Lambda(l) => {
                    a.configuration = config([("ProjectName", project)]);
                    match native.and_then(|n| n.state_url_secret.as_deref()) {
                        Some(secret) => {
                            let mut vars: Vec<serde_json::Value> = LEDGER_VARIABLES
                                .iter()
                                .map(|(name, value)| serde_json::json!({"name": name, "value": value, "type": "PLAINTEXT"}))
                                .collect();
                            vars.push(serde_json::json!({"name": "FERRY_STATE_URL", "value": secret, "type": "SECRETS_MANAGER"}));
                            a.configuration.insert(
                                "EnvironmentVariables".into(),
                                serde_json::Value::Array(vars).to_string(),
                            );
                        }
                        None => notes.push(format!(
                            "{}.{}: the deploy writes no entry to ferry's release ledger (`ferry releases`, `ferry rollback`); add `shared.codepipeline.state_url_secret`, a secret holding the PostgreSQL URL of ferry's state, and it will",
                            stage.name, action.name
                        )),
                    }
                    if let LambdaPackage::Zip { artifact, .. } = &l.package {
                        a.input_artifacts = artifacts(std::slice::from_ref(artifact));
                    } else {
                        a.input_artifacts = artifacts(&["source".to_owned()]);
                    }
                }
            }
            actions.push(a);
        }
        stages.push(Stage {
            name: stage.name.clone(),
            actions,
            on_failure: stage.environment.as_ref().map(|_| OnFailure {
                result: "ROLLBACK".into(),
            }),
        });
    }
    let execution_mode = match m.mode {
        ExecutionMode::Superseded => "SUPERSEDED",
        ExecutionMode::Queued => "QUEUED",
        ExecutionMode::Parallel => "PARALLEL",
    };
    let pipeline = Pipeline {
        name: m.pipeline.clone(),
        role_arn: names.codepipeline_role(),
        pipeline_type: "V2".into(),
        execution_mode: execution_mode.into(),
        artifact_store: ArtifactStore {
            kind: "S3".into(),
            location: names.shared.artifact_bucket.clone(),
            encryption_key: EncryptionKey {
                id: names.key_alias_arn(),
                kind: "KMS".into(),
            },
        },
        stages,
        triggers: vec![Trigger {
            provider_type: "CodeStarSourceConnection".into(),
            git_configuration: GitConfiguration {
                source_action_name: "Source".into(),
                push: push_filters(m),
            },
        }],
    };
    (pipeline, notes)
}

/// The manifest's push filters, or a push to the source branch.
fn push_filters(m: &Manifest) -> Vec<PushFilter> {
    let patterns = |g: &ferry_manifest::Globs| Patterns {
        includes: g.include.clone(),
        excludes: g.exclude.clone(),
    };
    let branch = || Patterns {
        includes: vec![m.source.branch.clone()],
        excludes: vec![],
    };
    if m.source.triggers.is_empty() {
        return vec![PushFilter {
            branches: Some(branch()),
            ..PushFilter::default()
        }];
    }
    m.source
        .triggers
        .iter()
        .map(|t| PushFilter {
            branches: match (&t.branches, &t.tags) {
                (Some(b), _) => Some(patterns(b)),
                (None, None) => Some(branch()),
                (None, Some(_)) => None,
            },
            tags: t.tags.as_ref().map(patterns),
            file_paths: t.file_paths.as_ref().map(patterns),
        })
        .collect()
}

/// `owner/name` of a GitHub-style URL.
fn repository_id(repo: &str) -> Option<String> {
    let is_url = repo.contains("://") || repo.starts_with("git@");
    let trimmed = repo.trim_end_matches('/').trim_end_matches(".git");
    let parts: Vec<&str> = trimmed.rsplit(['/', ':']).take(2).collect();
    (is_url && parts.len() == 2).then(|| format!("{}/{}", parts[1], parts[0]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_ids_come_from_urls() {
        assert_eq!(
            repository_id("https://github.com/acme/orders.git").as_deref(),
            Some("acme/orders")
        );
        assert_eq!(
            repository_id("git@github.com:acme/orders.git").as_deref(),
            Some("acme/orders")
        );
        assert_eq!(repository_id("."), None);
    }

    #[test]
    fn shell_words_are_quoted_once() {
        assert_eq!(quoted("orders-fn"), "'orders-fn'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
    }
}
