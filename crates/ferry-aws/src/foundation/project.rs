//! The CodeBuild project that `runner: codebuild` builds run on, and its log group. The
//! project holds only the machine, the service role and the logs: each build brings its
//! buildspec, source, artifact location and encryption key as StartBuild overrides
//! (`crate::codebuild`).

use std::collections::BTreeMap;

use aws_sdk_codebuild::types as cb;
use ferry_manifest::CodebuildVpc;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::{ProjectIo, ProjectSpec};
use ferry_plan::{Field, Resource};

use super::{Found, Removal, propagating, tags};
use crate::error::{AwsError, AwsErrorKind};
use crate::session::AccountConfig;

fn codebuild(s: &AccountConfig) -> aws_sdk_codebuild::Client {
    aws_sdk_codebuild::Client::new(&s.config)
}

fn logs(s: &AccountConfig) -> aws_sdk_cloudwatchlogs::Client {
    aws_sdk_cloudwatchlogs::Client::new(&s.config)
}

pub(super) async fn read(s: &AccountConfig, name: &str) -> Result<Option<Found>, AwsError> {
    let got = s
        .call(
            "codebuild:BatchGetProjects",
            name,
            codebuild(s).batch_get_projects().names(name).send(),
        )
        .await?;
    let Some(project) = got.projects().iter().find(|p| p.name() == Some(name)) else {
        return Ok(None);
    };
    let log_group = project
        .logs_config()
        .and_then(|l| l.cloud_watch_logs())
        .and_then(|c| c.group_name())
        .unwrap_or_default()
        .to_owned();
    let retention = if log_group.is_empty() {
        0
    } else {
        s.call(
            "logs:DescribeLogGroups",
            &log_group,
            logs(s)
                .describe_log_groups()
                .log_group_name_prefix(&log_group)
                .send(),
        )
        .await?
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(log_group.as_str()))
        .and_then(|g| g.retention_in_days())
        .unwrap_or(0)
    };
    let environment = project.environment();
    let artifacts = project.artifacts();
    let source = project.source();
    let io = match source.map(|s| s.r#type()) {
        Some(cb::SourceType::Codepipeline) => ProjectIo::Pipeline {
            buildspec: source
                .and_then(|s| s.buildspec())
                .unwrap_or_default()
                .to_owned(),
        },
        _ => ProjectIo::Overridden {
            bucket: artifacts
                .and_then(|a| a.location())
                .unwrap_or_default()
                .to_owned(),
            prefix: artifacts
                .and_then(|a| a.path())
                .unwrap_or_default()
                .to_owned(),
        },
    };
    let tags: BTreeMap<String, String> = project
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
        .collect();
    // A project out of any VPC reads back with none, or with an empty `vpcConfig`.
    let vpc = project
        .vpc_config()
        .filter(|v| v.vpc_id().is_some_and(|id| !id.is_empty()))
        .map(|v| {
            let sorted = |ids: &[String]| {
                let mut ids = ids.to_vec();
                ids.sort();
                ids
            };
            CodebuildVpc {
                id: v.vpc_id().unwrap_or_default().to_owned(),
                subnets: sorted(v.subnets()),
                security_groups: sorted(v.security_group_ids()),
            }
        });
    let spec = ProjectSpec {
        name: name.to_owned(),
        description: project.description().unwrap_or_default().to_owned(),
        service_role: project.service_role().unwrap_or_default().to_owned(),
        image: environment
            .map(|e| e.image().to_owned())
            .unwrap_or_default(),
        compute_type: environment
            .map(|e| e.compute_type().as_str().to_owned())
            .unwrap_or_default(),
        log_group,
        log_retention_days: retention,
        pull_as_role: environment.and_then(|e| e.image_pull_credentials_type())
            == Some(&cb::ImagePullCredentialsType::ServiceRole),
        io,
        vpc,
    };
    Ok(Some(Found::new(Resource::Project(spec), tags)))
}

fn invalid(s: &AccountConfig, action: &str, name: &str, e: impl std::fmt::Display) -> AwsError {
    s.fail(action, name, "InvalidRequest", e.to_string())
}

/// The project's parts, as CreateProject and UpdateProject take them.
struct Parts {
    source: cb::ProjectSource,
    artifacts: cb::ProjectArtifacts,
    environment: cb::ProjectEnvironment,
    logs: cb::LogsConfig,
    /// Empty for a project out of any VPC: UpdateProject takes that as "none".
    vpc: cb::VpcConfig,
}

fn parts(s: &AccountConfig, spec: &ProjectSpec, action: &str) -> Result<Parts, AwsError> {
    let bad = |e: aws_sdk_codebuild::error::BuildError| invalid(s, action, &spec.name, e);
    let (source, artifacts) = match &spec.io {
        // Every build overrides the source with its own input artifact.
        ProjectIo::Overridden { bucket, prefix } => (
            cb::ProjectSource::builder()
                .r#type(cb::SourceType::S3)
                .location(format!("{bucket}/{prefix}"))
                .build()
                .map_err(bad)?,
            cb::ProjectArtifacts::builder()
                .r#type(cb::ArtifactsType::S3)
                .location(bucket)
                .path(prefix)
                .packaging(cb::ArtifactPackaging::Zip)
                .build()
                .map_err(bad)?,
        ),
        // CodePipeline hands the build its input and takes its output. CodeBuild ignores a
        // location for these; the emulator requires one.
        ProjectIo::Pipeline { buildspec } => (
            cb::ProjectSource::builder()
                .r#type(cb::SourceType::Codepipeline)
                .location("codepipeline")
                .buildspec(buildspec)
                .build()
                .map_err(bad)?,
            cb::ProjectArtifacts::builder()
                .r#type(cb::ArtifactsType::Codepipeline)
                .location("codepipeline")
                .build()
                .map_err(bad)?,
        ),
    };
    let pull = if spec.pull_as_role {
        cb::ImagePullCredentialsType::ServiceRole
    } else {
        cb::ImagePullCredentialsType::Codebuild
    };
    Ok(Parts {
        source,
        artifacts,
        environment: cb::ProjectEnvironment::builder()
            .r#type(cb::EnvironmentType::LinuxContainer)
            .image(&spec.image)
            .compute_type(cb::ComputeType::from(spec.compute_type.as_str()))
            .image_pull_credentials_type(pull)
            .build()
            .map_err(bad)?,
        logs: cb::LogsConfig::builder()
            .cloud_watch_logs(
                cb::CloudWatchLogsConfig::builder()
                    .status(cb::LogsConfigStatusType::Enabled)
                    .group_name(&spec.log_group)
                    .build()
                    .map_err(bad)?,
            )
            .build(),
        vpc: match &spec.vpc {
            Some(v) => cb::VpcConfig::builder()
                .vpc_id(&v.id)
                .set_subnets(Some(v.subnets.clone()))
                .set_security_group_ids(Some(v.security_groups.clone()))
                .build(),
            None => cb::VpcConfig::builder().build(),
        },
    })
}

/// The log group, created when missing, with the spec's retention.
async fn ensure_log_group(
    s: &AccountConfig,
    pipeline: &str,
    spec: &ProjectSpec,
) -> Result<(), AwsError> {
    let group = spec.log_group.as_str();
    let mut create = logs(s).create_log_group().log_group_name(group);
    for (k, v) in tags(pipeline) {
        create = create.tags(k, v);
    }
    match s.call("logs:CreateLogGroup", group, create.send()).await {
        Ok(_) => {}
        Err(e) if e.kind == AwsErrorKind::Conflict => {}
        Err(e) => return Err(e),
    }
    s.call(
        "logs:PutRetentionPolicy",
        group,
        logs(s)
            .put_retention_policy()
            .log_group_name(group)
            .retention_in_days(spec.log_retention_days)
            .send(),
    )
    .await?;
    Ok(())
}

pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &ProjectSpec,
    change: &Change,
) -> Result<(), AwsError> {
    let name = spec.name.as_str();
    if change.kind == ChangeKind::Create || change.touches(Field::Logs) {
        ensure_log_group(s, pipeline, spec).await?;
    }
    if change.kind == ChangeKind::Create {
        let p = parts(s, spec, "codebuild:CreateProject")?;
        let mut create = codebuild(s)
            .create_project()
            .name(name)
            .description(&spec.description)
            .service_role(&spec.service_role)
            .source(p.source)
            .artifacts(p.artifacts)
            .environment(p.environment)
            .logs_config(p.logs);
        if spec.vpc.is_some() {
            create = create.vpc_config(p.vpc);
        }
        for (k, v) in tags(pipeline) {
            create = create.tags(cb::Tag::builder().key(k).value(v).build());
        }
        // CodeBuild checks, as the service role, that it may act as it (and in a VPC, that
        // it may read the network): a role made seconds ago is refused until IAM has it.
        propagating(|| async {
            s.call("codebuild:CreateProject", name, create.clone().send())
                .await
                .map(|_| ())
        })
        .await?;
    } else if [
        Field::Description,
        Field::ServiceRole,
        Field::Environment,
        Field::Logs,
        Field::Buildspec,
        Field::Vpc,
    ]
    .into_iter()
    .any(|f| change.touches(f))
    {
        let p = parts(s, spec, "codebuild:UpdateProject")?;
        let update = codebuild(s)
            .update_project()
            .name(name)
            .description(&spec.description)
            .service_role(&spec.service_role)
            .source(p.source)
            .artifacts(p.artifacts)
            .environment(p.environment)
            .logs_config(p.logs)
            .vpc_config(p.vpc);
        propagating(|| async {
            s.call("codebuild:UpdateProject", name, update.clone().send())
                .await
                .map(|_| ())
        })
        .await?;
    }
    Ok(())
}

pub(super) async fn remove(s: &AccountConfig, spec: &ProjectSpec) -> Result<Removal, AwsError> {
    s.call(
        "codebuild:DeleteProject",
        &spec.name,
        codebuild(s).delete_project().name(&spec.name).send(),
    )
    .await?;
    s.find(
        "logs:DeleteLogGroup",
        &spec.log_group,
        logs(s)
            .delete_log_group()
            .log_group_name(&spec.log_group)
            .send(),
    )
    .await?;
    Ok(Removal::Deleted)
}
