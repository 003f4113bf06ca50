//! Four fresh accounts with ferry acting as the shared one; the fixtures are
//! `ferry_test_support::fixtures`.

use aws_config::SdkConfig;
use ferry_aws::session::{AccountConfig, Aws, RoleTarget};
pub use ferry_test_support::fixtures::*;
use ferry_test_support::{Accounts, REGION, admin_config};

/// The system's accounts, with ferry acting as the shared account's pipeline identity.
pub struct World {
    pub accounts: Accounts,
    /// ferry's own identity: an administrator of the shared account.
    pub aws: Aws,
    pub shared: SdkConfig,
    /// An administrator of the dev account, for fixtures and checks.
    pub dev: SdkConfig,
}

pub async fn world() -> World {
    let accounts = Accounts::fresh();
    let shared = admin_config(&accounts.shared).await;
    let dev = admin_config(&accounts.dev).await;
    let aws = Aws::with_config(shared.clone(), "ferry-test");
    World {
        accounts,
        aws,
        shared,
        dev,
    }
}

impl World {
    pub fn deploy_role(&self, account: &str) -> RoleTarget {
        RoleTarget {
            role_arn: format!("arn:aws:iam::{account}:role/ferry-deploy"),
            external_id: None,
            region: Some(REGION.into()),
        }
    }

    /// ferry in the dev account, as its deploy role.
    pub async fn in_dev(&self) -> AccountConfig {
        self.aws
            .assume(&self.deploy_role(&self.accounts.dev))
            .await
            .expect("assume the dev deploy role")
    }
}

/// Progress nobody watches.
pub fn quiet(_: &str) {}
