//! Proof that the harness gives tests separate AWS accounts on one emulator: what a test
//! creates in one account through an assumed role is invisible from another.

use ferry_test_support::{Accounts, admin_config};

#[tokio::test]
async fn resources_made_through_assume_role_stay_in_their_account() {
    let accounts = Accounts::fresh();
    let shared = admin_config(&accounts.shared).await;
    let dev = admin_config(&accounts.dev).await;

    let who = aws_sdk_sts::Client::new(&dev)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some(accounts.dev.as_str()));

    // A KMS key made in dev is found in dev and not in shared.
    let dev_kms = aws_sdk_kms::Client::new(&dev);
    let key = dev_kms
        .create_key()
        .description("isolation")
        .send()
        .await
        .unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    assert!(dev_kms.describe_key().key_id(&key_id).send().await.is_ok());
    let from_shared = aws_sdk_kms::Client::new(&shared)
        .describe_key()
        .key_id(&key_id)
        .send()
        .await;
    assert!(from_shared.is_err(), "shared account sees dev's key");
    let shared_keys = aws_sdk_kms::Client::new(&shared)
        .list_keys()
        .send()
        .await
        .unwrap();
    assert!(
        shared_keys
            .keys()
            .iter()
            .all(|k| k.key_id() != Some(key_id.as_str()))
    );

    // A bucket made in dev is listed in dev and not in shared.
    let s3 = |c: &aws_config::SdkConfig| {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(c)
                .force_path_style(true)
                .build(),
        )
    };
    let bucket = format!("isolation-{}", accounts.dev);
    s3(&dev)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let names = |out: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    };
    assert!(names(s3(&dev).list_buckets().send().await.unwrap()).contains(&bucket));
    assert!(!names(s3(&shared).list_buckets().send().await.unwrap()).contains(&bucket));
}
