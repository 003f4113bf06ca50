//! Who may decide an approval, and when: a pure function of the request, the decision, the
//! time and the artifacts as they are now. The store calls it inside the transaction that
//! records the decision, so what it checks cannot change between the check and the write.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::model::{Approval, ApprovalStatus};
use crate::store::Decision;

/// Why a decision on an approval is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// It was decided already, or expired.
    NotPending {
        execution: String,
        stage: String,
        status: ApprovalStatus,
    },
    /// Its deadline passed.
    Expired { execution: String, stage: String },
    /// The approval names its approvers, and this identity is not one of them.
    NotAnApprover {
        identity: String,
        stage: String,
        approvers: Vec<String>,
    },
    /// The approval asks for a comment, and the decision has none.
    CommentRequired { stage: String },
    /// The artifacts of the execution are not the ones the approval was requested for.
    ArtifactsChanged {
        execution: String,
        approved: BTreeMap<String, String>,
        now: BTreeMap<String, String>,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotPending {
                execution,
                stage,
                status,
            } => write!(
                f,
                "the approval of `{stage}` in `{execution}` is already {status:?}"
            ),
            Refusal::Expired { execution, stage } => {
                write!(f, "the approval of `{stage}` in `{execution}` has expired")
            }
            Refusal::NotAnApprover {
                identity,
                stage,
                approvers,
            } => write!(
                f,
                "`{identity}` may not approve `{stage}`; approvers: {}",
                approvers.join(", ")
            ),
            Refusal::CommentRequired { stage } => {
                write!(f, "approving or rejecting `{stage}` needs --comment")
            }
            Refusal::ArtifactsChanged {
                execution,
                approved,
                now,
            } => write!(
                f,
                "the artifacts of `{execution}` changed since the approval was requested; approved {approved:?}, now {now:?}"
            ),
        }
    }
}

/// Whether `decision` may decide `approval` at `now_ms`, the execution's artifacts being
/// `artifacts` (name → sha256). `Ok(())`: record it.
pub fn check(
    approval: &Approval,
    decision: &Decision,
    now_ms: i64,
    artifacts: &BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let (execution, stage) = (&approval.execution_id, &approval.stage);
    if approval.status != ApprovalStatus::Pending {
        return Err(Refusal::NotPending {
            execution: execution.clone(),
            stage: stage.clone(),
            status: approval.status.clone(),
        });
    }
    if now_ms > approval.deadline_ms {
        return Err(Refusal::Expired {
            execution: execution.clone(),
            stage: stage.clone(),
        });
    }
    if !approval.approvers.is_empty() && !approval.approvers.contains(&decision.identity) {
        return Err(Refusal::NotAnApprover {
            identity: decision.identity.clone(),
            stage: stage.clone(),
            approvers: approval.approvers.clone(),
        });
    }
    if approval.comment_required
        && decision
            .comment
            .as_deref()
            .is_none_or(|c| c.trim().is_empty())
    {
        return Err(Refusal::CommentRequired {
            stage: stage.clone(),
        });
    }
    if decision.approve && *artifacts != approval.digests {
        return Err(Refusal::ArtifactsChanged {
            execution: execution.clone(),
            approved: approval.digests.clone(),
            now: artifacts.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Approval {
        Approval {
            execution_id: "orders-3".into(),
            stage: "prod".into(),
            action: "approve".into(),
            status: ApprovalStatus::Pending,
            approvers: vec!["alice".into(), "bob".into()],
            comment_required: true,
            digests: BTreeMap::from([("app".into(), "aa".into())]),
            requested_ms: 1_000,
            deadline_ms: 2_000,
            identity: None,
            comment: None,
            decided_ms: None,
        }
    }

    fn by(identity: &str, approve: bool, comment: Option<&str>) -> Decision {
        Decision {
            approve,
            identity: identity.into(),
            comment: comment.map(str::to_owned),
        }
    }

    #[test]
    fn a_listed_approver_with_a_comment_on_the_same_artifacts_may_approve() {
        let r = request();
        assert_eq!(
            check(&r, &by("alice", true, Some("ok")), 1_500, &r.digests),
            Ok(())
        );
    }

    #[test]
    fn each_rule_refuses_with_its_own_reason() {
        let r = request();
        let ok = by("alice", true, Some("ok"));
        let decided = Approval {
            status: ApprovalStatus::Approved,
            ..request()
        };
        assert!(matches!(
            check(&decided, &ok, 1_500, &r.digests),
            Err(Refusal::NotPending { .. })
        ));
        assert!(matches!(
            check(&r, &ok, 2_001, &r.digests),
            Err(Refusal::Expired { .. })
        ));
        assert!(matches!(
            check(&r, &by("mallory", true, Some("ok")), 1_500, &r.digests),
            Err(Refusal::NotAnApprover { .. })
        ));
        assert!(matches!(
            check(&r, &by("bob", false, Some("  ")), 1_500, &r.digests),
            Err(Refusal::CommentRequired { .. })
        ));
        let changed = BTreeMap::from([("app".into(), "bb".into())]);
        assert!(matches!(
            check(&r, &ok, 1_500, &changed),
            Err(Refusal::ArtifactsChanged { .. })
        ));
        // Rejecting needs no particular artifacts.
        assert_eq!(
            check(&r, &by("bob", false, Some("no")), 1_500, &changed),
            Ok(())
        );
    }

    #[test]
    fn anyone_may_decide_an_approval_without_approvers() {
        let r = Approval {
            approvers: vec![],
            comment_required: false,
            ..request()
        };
        assert_eq!(
            check(&r, &by("carol", true, None), 1_500, &r.digests),
            Ok(())
        );
    }
}
