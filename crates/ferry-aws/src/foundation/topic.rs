//! The SNS topic the native pipeline's manual approvals notify.

use std::collections::BTreeMap;

use ferry_plan::Resource;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::TopicSpec;

use super::{Found, Removal, tags};
use crate::error::AwsError;
use crate::session::AccountConfig;

fn client(s: &AccountConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::new(&s.config)
}

/// The topic's ARN, from ListTopics (a read must not create it, as CreateTopic would).
async fn arn_of(s: &AccountConfig, name: &str) -> Result<Option<String>, AwsError> {
    let sns = client(s);
    let mut token: Option<String> = None;
    loop {
        let page = s
            .call(
                "sns:ListTopics",
                name,
                sns.list_topics().set_next_token(token.clone()).send(),
            )
            .await?;
        if let Some(arn) = page
            .topics()
            .iter()
            .filter_map(|t| t.topic_arn())
            .find(|arn| arn.rsplit(':').next() == Some(name))
        {
            return Ok(Some(arn.to_owned()));
        }
        match page.next_token() {
            Some(next) => token = Some(next.to_owned()),
            None => return Ok(None),
        }
    }
}

pub(super) async fn read(s: &AccountConfig, name: &str) -> Result<Option<Found>, AwsError> {
    let Some(arn) = arn_of(s, name).await? else {
        return Ok(None);
    };
    let tags: BTreeMap<String, String> = s
        .call(
            "sns:ListTagsForResource",
            &arn,
            client(s).list_tags_for_resource().resource_arn(&arn).send(),
        )
        .await?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Ok(Some(Found::new(
        Resource::Topic(TopicSpec {
            name: name.to_owned(),
        }),
        tags,
    )))
}

pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &TopicSpec,
    change: &Change,
) -> Result<(), AwsError> {
    if change.kind != ChangeKind::Create {
        return Ok(());
    }
    let mut create = client(s).create_topic().name(&spec.name);
    for (k, v) in tags(pipeline) {
        create = create.tags(
            aws_sdk_sns::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| s.fail("sns:CreateTopic", &spec.name, "InvalidTag", e.to_string()))?,
        );
    }
    s.call("sns:CreateTopic", &spec.name, create.send()).await?;
    Ok(())
}

pub(super) async fn remove(s: &AccountConfig, name: &str) -> Result<Removal, AwsError> {
    let Some(arn) = arn_of(s, name).await? else {
        return Ok(Removal::Absent);
    };
    s.call(
        "sns:DeleteTopic",
        &arn,
        client(s).delete_topic().topic_arn(&arn).send(),
    )
    .await?;
    Ok(Removal::Deleted)
}
