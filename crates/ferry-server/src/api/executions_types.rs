//! The bodies mutating requests take: the server reads them, the client sends them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct StartBody {
    /// A commit, branch or tag; default: the head of `branch`.
    pub revision: Option<String>,
    /// The branch it runs for; default: the pipeline's branch.
    pub branch: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct StopBody {
    /// Cancel running actions too, instead of letting them finish.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RetryBody {
    /// The stage to retry; default: the stage that failed.
    pub stage: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct DecideBody {
    /// Why (an approval may require it).
    pub comment: Option<String>,
    /// The approval action decided, when several wait in the stage; without it, the stage's
    /// only one, or the only one that admits the caller.
    pub action: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// Why the release goes past its gates: the ledger of the stage's releases and the audit
    /// log keep it.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct RollbackBody {
    /// One deploy: its action name or target (`lambda:orders-fn:live`); default: all.
    pub target: Option<String>,
    /// Return to this release id instead of the last verified good.
    pub to: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockBody {
    /// Why the release is bad: shown to whoever tries to promote or approve it.
    pub reason: String,
    /// Also return every environment that runs it to its last good release.
    #[serde(default)]
    pub rollback: bool,
}
