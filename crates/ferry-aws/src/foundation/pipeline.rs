//! The native CodePipeline V2 pipeline (`shared.codepipeline`): ferry-plan's typed
//! definition to CreatePipeline's and back from GetPipeline's, so a second apply compares
//! them field by field and changes nothing.

use std::collections::BTreeMap;

use aws_sdk_codepipeline::error::BuildError;
use aws_sdk_codepipeline::types as cp;
use ferry_plan::Resource;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::PipelineSpec;
use ferry_plan::synth::codepipeline::{
    Action, ActionTypeId, ArtifactName, ArtifactStore, EncryptionKey, GitConfiguration, OnFailure,
    Patterns, Pipeline, PushFilter, Stage, Trigger,
};

use super::{Found, Removal, tags};
use crate::error::AwsError;
use crate::session::AccountConfig;

fn client(s: &AccountConfig) -> aws_sdk_codepipeline::Client {
    aws_sdk_codepipeline::Client::new(&s.config)
}

/// ferry's definition as the SDK's.
pub fn to_sdk(p: &Pipeline) -> Result<cp::PipelineDeclaration, BuildError> {
    let store = cp::ArtifactStore::builder()
        .r#type(cp::ArtifactStoreType::from(p.artifact_store.kind.as_str()))
        .location(&p.artifact_store.location)
        .encryption_key(
            cp::EncryptionKey::builder()
                .id(&p.artifact_store.encryption_key.id)
                .r#type(cp::EncryptionKeyType::from(
                    p.artifact_store.encryption_key.kind.as_str(),
                ))
                .build()?,
        )
        .build()?;
    let mut stages = Vec::new();
    for stage in &p.stages {
        let mut actions = Vec::new();
        for a in &stage.actions {
            let type_id = cp::ActionTypeId::builder()
                .category(cp::ActionCategory::from(a.action_type_id.category.as_str()))
                .owner(cp::ActionOwner::from(a.action_type_id.owner.as_str()))
                .provider(&a.action_type_id.provider)
                .version(&a.action_type_id.version)
                .build()?;
            let mut action = cp::ActionDeclaration::builder()
                .name(&a.name)
                .action_type_id(type_id)
                .run_order(a.run_order)
                .set_configuration(Some(a.configuration.clone().into_iter().collect()))
                .set_role_arn(a.role_arn.clone())
                .set_region(a.region.clone())
                .set_namespace(a.namespace.clone());
            for i in &a.input_artifacts {
                action =
                    action.input_artifacts(cp::InputArtifact::builder().name(&i.name).build()?);
            }
            for o in &a.output_artifacts {
                action =
                    action.output_artifacts(cp::OutputArtifact::builder().name(&o.name).build()?);
            }
            actions.push(action.build()?);
        }
        let mut s = cp::StageDeclaration::builder()
            .name(&stage.name)
            .set_actions(Some(actions));
        if let Some(f) = &stage.on_failure {
            s = s.on_failure(
                cp::FailureConditions::builder()
                    .result(cp::Result::from(f.result.as_str()))
                    .build(),
            );
        }
        stages.push(s.build()?);
    }
    let mut triggers = Vec::new();
    for t in &p.triggers {
        let mut git = cp::GitConfiguration::builder()
            .source_action_name(&t.git_configuration.source_action_name);
        for f in &t.git_configuration.push {
            git = git.push(
                cp::GitPushFilter::builder()
                    .set_branches(f.branches.as_ref().map(|b| {
                        cp::GitBranchFilterCriteria::builder()
                            .set_includes(non_empty(&b.includes))
                            .set_excludes(non_empty(&b.excludes))
                            .build()
                    }))
                    .set_tags(f.tags.as_ref().map(|b| {
                        cp::GitTagFilterCriteria::builder()
                            .set_includes(non_empty(&b.includes))
                            .set_excludes(non_empty(&b.excludes))
                            .build()
                    }))
                    .set_file_paths(f.file_paths.as_ref().map(|b| {
                        cp::GitFilePathFilterCriteria::builder()
                            .set_includes(non_empty(&b.includes))
                            .set_excludes(non_empty(&b.excludes))
                            .build()
                    }))
                    .build(),
            );
        }
        triggers.push(
            cp::PipelineTriggerDeclaration::builder()
                .provider_type(cp::PipelineTriggerProviderType::from(
                    t.provider_type.as_str(),
                ))
                .git_configuration(git.build()?)
                .build()?,
        );
    }
    cp::PipelineDeclaration::builder()
        .name(&p.name)
        .role_arn(&p.role_arn)
        .artifact_store(store)
        .set_stages(Some(stages))
        .pipeline_type(cp::PipelineType::from(p.pipeline_type.as_str()))
        .execution_mode(cp::ExecutionMode::from(p.execution_mode.as_str()))
        .set_triggers(Some(triggers))
        .build()
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn patterns(includes: &[String], excludes: &[String]) -> Patterns {
    Patterns {
        includes: includes.to_vec(),
        excludes: excludes.to_vec(),
    }
}

/// The SDK's declaration (GetPipeline's) as ferry's definition.
pub fn from_sdk(d: &cp::PipelineDeclaration) -> Pipeline {
    let store = d.artifact_store();
    Pipeline {
        name: d.name().to_owned(),
        role_arn: d.role_arn().to_owned(),
        pipeline_type: d
            .pipeline_type()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        execution_mode: d
            .execution_mode()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        artifact_store: ArtifactStore {
            kind: store
                .map(|s| s.r#type().as_str().to_owned())
                .unwrap_or_default(),
            location: store.map(|s| s.location().to_owned()).unwrap_or_default(),
            encryption_key: EncryptionKey {
                id: store
                    .and_then(|s| s.encryption_key())
                    .map(|k| k.id().to_owned())
                    .unwrap_or_default(),
                kind: store
                    .and_then(|s| s.encryption_key())
                    .map(|k| k.r#type().as_str().to_owned())
                    .unwrap_or_default(),
            },
        },
        stages: d
            .stages()
            .iter()
            .map(|s| Stage {
                name: s.name().to_owned(),
                actions: s
                    .actions()
                    .iter()
                    .map(|a| {
                        let id = a.action_type_id();
                        Action {
                            name: a.name().to_owned(),
                            action_type_id: ActionTypeId {
                                category: id
                                    .map(|i| i.category().as_str().to_owned())
                                    .unwrap_or_default(),
                                owner: id
                                    .map(|i| i.owner().as_str().to_owned())
                                    .unwrap_or_default(),
                                provider: id.map(|i| i.provider().to_owned()).unwrap_or_default(),
                                version: id.map(|i| i.version().to_owned()).unwrap_or_default(),
                            },
                            run_order: a.run_order().unwrap_or(1),
                            configuration: a
                                .configuration()
                                .map(|c| c.clone().into_iter().collect::<BTreeMap<_, _>>())
                                .unwrap_or_default(),
                            input_artifacts: a
                                .input_artifacts()
                                .iter()
                                .map(|i| ArtifactName {
                                    name: i.name().to_owned(),
                                })
                                .collect(),
                            output_artifacts: a
                                .output_artifacts()
                                .iter()
                                .map(|o| ArtifactName {
                                    name: o.name().to_owned(),
                                })
                                .collect(),
                            role_arn: a.role_arn().map(str::to_owned),
                            region: a.region().map(str::to_owned),
                            namespace: a.namespace().map(str::to_owned),
                        }
                    })
                    .collect(),
                on_failure: s.on_failure().and_then(|f| f.result()).map(|r| OnFailure {
                    result: r.as_str().to_owned(),
                }),
            })
            .collect(),
        triggers: d
            .triggers()
            .iter()
            .map(|t| Trigger {
                provider_type: t.provider_type().as_str().to_owned(),
                git_configuration: GitConfiguration {
                    source_action_name: t
                        .git_configuration()
                        .map(|g| g.source_action_name().to_owned())
                        .unwrap_or_default(),
                    push: t
                        .git_configuration()
                        .map(|g| {
                            g.push()
                                .iter()
                                .map(|f| PushFilter {
                                    branches: f
                                        .branches()
                                        .map(|b| patterns(b.includes(), b.excludes())),
                                    tags: f.tags().map(|b| patterns(b.includes(), b.excludes())),
                                    file_paths: f
                                        .file_paths()
                                        .map(|b| patterns(b.includes(), b.excludes())),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            })
            .collect(),
    }
}

pub(super) async fn read(s: &AccountConfig, name: &str) -> Result<Option<Found>, AwsError> {
    let Some(got) = s
        .find(
            "codepipeline:GetPipeline",
            name,
            client(s).get_pipeline().name(name).send(),
        )
        .await?
    else {
        return Ok(None);
    };
    let Some(declaration) = got.pipeline() else {
        return Ok(None);
    };
    let tags: BTreeMap<String, String> = match got.metadata().and_then(|m| m.pipeline_arn()) {
        Some(arn) => s
            .call(
                "codepipeline:ListTagsForResource",
                arn,
                client(s).list_tags_for_resource().resource_arn(arn).send(),
            )
            .await?
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect(),
        None => BTreeMap::new(),
    };
    Ok(Some(Found::new(
        Resource::Pipeline(PipelineSpec {
            pipeline: from_sdk(declaration),
        }),
        tags,
    )))
}

pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &PipelineSpec,
    change: &Change,
) -> Result<(), AwsError> {
    let name = spec.pipeline.name.as_str();
    let action = if change.kind == ChangeKind::Create {
        "codepipeline:CreatePipeline"
    } else {
        "codepipeline:UpdatePipeline"
    };
    let declaration = to_sdk(&spec.pipeline)
        .map_err(|e| s.fail(action, name, "InvalidRequest", e.to_string()))?;
    if change.kind == ChangeKind::Create {
        let mut create = client(s).create_pipeline().pipeline(declaration);
        for (k, v) in tags(pipeline) {
            create = create.tags(
                cp::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| s.fail(action, name, "InvalidTag", e.to_string()))?,
            );
        }
        s.call(action, name, create.send()).await?;
    } else {
        s.call(
            action,
            name,
            client(s).update_pipeline().pipeline(declaration).send(),
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn remove(s: &AccountConfig, name: &str) -> Result<Removal, AwsError> {
    s.call(
        "codepipeline:DeletePipeline",
        name,
        client(s).delete_pipeline().name(name).send(),
    )
    .await?;
    Ok(Removal::Deleted)
}
