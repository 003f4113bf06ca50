//! An IAM OpenID Connect provider (GitHub Actions' token issuer). There is one per issuer in
//! an account, which every role that trusts the issuer shares: bootstrap creates it when
//! missing and adds ferry's audience to ferry's own, and destroy keeps it while any role
//! still trusts it.

use std::collections::BTreeMap;

use ferry_plan::Resource;
use ferry_plan::diff::{Change, ChangeKind};
use ferry_plan::foundation::OidcProviderSpec;

use super::role::iam_tags;
use super::{Found, Removal, url_decode};
use crate::error::AwsError;
use crate::session::AccountConfig;

fn client(s: &AccountConfig) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::new(&s.config)
}

/// The provider's ARN, from ListOpenIDConnectProviders (the account's providers, by issuer).
async fn arn_of(s: &AccountConfig, issuer: &str) -> Result<Option<String>, AwsError> {
    let suffix = format!(":oidc-provider/{issuer}");
    let list = s
        .call(
            "iam:ListOpenIDConnectProviders",
            issuer,
            client(s).list_open_id_connect_providers().send(),
        )
        .await?;
    Ok(list
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn())
        .find(|arn| arn.ends_with(&suffix))
        .map(str::to_owned))
}

async fn audiences(s: &AccountConfig, arn: &str) -> Result<Vec<String>, AwsError> {
    let got = s
        .call(
            "iam:GetOpenIDConnectProvider",
            arn,
            client(s)
                .get_open_id_connect_provider()
                .open_id_connect_provider_arn(arn)
                .send(),
        )
        .await?;
    Ok(got.client_id_list().to_vec())
}

pub(super) async fn read(s: &AccountConfig, issuer: &str) -> Result<Option<Found>, AwsError> {
    let Some(arn) = arn_of(s, issuer).await? else {
        return Ok(None);
    };
    let audiences = audiences(s, &arn).await?;
    let tags: BTreeMap<String, String> = s
        .call(
            "iam:ListOpenIDConnectProviderTags",
            &arn,
            client(s)
                .list_open_id_connect_provider_tags()
                .open_id_connect_provider_arn(&arn)
                .send(),
        )
        .await?
        .tags()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    Ok(Some(Found::new(
        Resource::OidcProvider(OidcProviderSpec {
            issuer: issuer.to_owned(),
            audiences,
        }),
        tags,
    )))
}

/// Creates the provider, or adds the audiences `was` (the provider as read) lacks.
pub(super) async fn apply(
    s: &AccountConfig,
    pipeline: &str,
    spec: &OidcProviderSpec,
    change: &Change,
    was: Option<&OidcProviderSpec>,
) -> Result<(), AwsError> {
    let iam = client(s);
    match change.kind {
        ChangeKind::Unchanged => Ok(()),
        ChangeKind::Create => {
            let action = "iam:CreateOpenIDConnectProvider";
            let create = iam
                .create_open_id_connect_provider()
                .url(spec.url())
                .set_client_id_list(Some(spec.audiences.clone()))
                .set_tags(Some(iam_tags(s, pipeline, action, &spec.issuer)?));
            s.call(action, &spec.issuer, create.send()).await?;
            Ok(())
        }
        ChangeKind::Update => {
            let Some(arn) = arn_of(s, &spec.issuer).await? else {
                return Ok(());
            };
            let live = was.map_or(&[][..], |w| w.audiences.as_slice());
            for audience in spec.audiences.iter().filter(|a| !live.contains(a)) {
                s.call(
                    "iam:AddClientIDToOpenIDConnectProvider",
                    &arn,
                    iam.add_client_id_to_open_id_connect_provider()
                        .open_id_connect_provider_arn(&arn)
                        .client_id(audience)
                        .send(),
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// Deletes the provider unless a role of the account still trusts it (another pipeline's, or
/// a team's): deleting it would lock that role's workflows out.
pub(super) async fn remove(s: &AccountConfig, issuer: &str) -> Result<Removal, AwsError> {
    let Some(arn) = arn_of(s, issuer).await? else {
        return Ok(Removal::Absent);
    };
    let iam = client(s);
    let mut marker: Option<String> = None;
    loop {
        let page = s
            .call(
                "iam:ListRoles",
                &arn,
                iam.list_roles().set_marker(marker.clone()).send(),
            )
            .await?;
        let truster = page.roles().iter().find(|r| {
            r.assume_role_policy_document()
                .is_some_and(|doc| url_decode(doc).contains(&arn))
        });
        if let Some(role) = truster {
            return Ok(Removal::KeptInUse {
                by: format!("iam role {}", role.role_name()),
            });
        }
        match page.marker().filter(|_| page.is_truncated()) {
            Some(next) => marker = Some(next.to_owned()),
            None => break,
        }
    }
    s.call(
        "iam:DeleteOpenIDConnectProvider",
        &arn,
        iam.delete_open_id_connect_provider()
            .open_id_connect_provider_arn(&arn)
            .send(),
    )
    .await?;
    Ok(Removal::Deleted)
}
