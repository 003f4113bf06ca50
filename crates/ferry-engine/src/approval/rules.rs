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
    /// The approval names its approvers, and this identity is not one of them (nor in one
    /// of their groups).
    NotAnApprover {
        identity: String,
        stage: String,
        approvers: Vec<String>,
    },
    /// The identity started the execution or pushed its commit, and the approval forbids
    /// approving one's own change.
    SelfApproval { identity: String, stage: String },
    /// The identity has decided this approval already; another must.
    AlreadyDecided { identity: String, stage: String },
    /// The approval asks for a comment, and the decision has none.
    CommentRequired { stage: String },
    /// The release is blocked (`ferry release block`): no approval of it is accepted.
    Blocked { stage: String, why: String },
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
            Refusal::SelfApproval { identity, stage } => write!(
                f,
                "`{identity}` started this execution or pushed its commit and may not decide `{stage}`: another approver must"
            ),
            Refusal::AlreadyDecided { identity, stage } => write!(
                f,
                "`{identity}` has already approved `{stage}`; it needs another approver"
            ),
            Refusal::Blocked { stage, why } => write!(f, "`{stage}` cannot be approved: {why}"),
            Refusal::CommentRequired { stage } => {
                write!(
                    f,
                    "approving or rejecting `{stage}` needs a comment (--comment)"
                )
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

/// What a decision the rules allow does to the approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Enough distinct identities approved.
    Approved,
    /// One rejection decides.
    Rejected,
    /// Recorded; more approvers are needed.
    Waiting { approved: u32, required: u32 },
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether `approval` lets `identity` (with its `groups`) decide it: it lists no approvers, or
/// names the identity or one of its groups.
pub fn admits(approval: &Approval, identity: &str, groups: &[String]) -> bool {
    let listed = |name: &str| approval.approvers.iter().any(|a| same(a, name));
    approval.approvers.is_empty() || listed(identity) || groups.iter().any(|g| listed(g))
}

/// Whether `decision` may be recorded on `approval` at `now_ms`, the execution's artifacts
/// being `artifacts` (name → sha256), and what it does if so.
pub fn check(
    approval: &Approval,
    decision: &Decision,
    now_ms: i64,
    artifacts: &BTreeMap<String, String>,
) -> Result<Verdict, Refusal> {
    let (execution, stage) = (&approval.execution_id, &approval.stage);
    if approval.status != ApprovalStatus::Pending {
        return Err(Refusal::NotPending {
            execution: execution.clone(),
            stage: stage.clone(),
            status: approval.status,
        });
    }
    if now_ms > approval.deadline_ms {
        return Err(Refusal::Expired {
            execution: execution.clone(),
            stage: stage.clone(),
        });
    }
    if decision.automatic {
        // `ferry run --auto-approve`: the one who runs it approves everything, alone.
        return Ok(if decision.approve {
            Verdict::Approved
        } else {
            Verdict::Rejected
        });
    }
    if !admits(approval, &decision.identity, &decision.groups) {
        return Err(Refusal::NotAnApprover {
            identity: decision.identity.clone(),
            stage: stage.clone(),
            approvers: approval.approvers.clone(),
        });
    }
    if approval
        .forbidden
        .iter()
        .any(|f| same(f, &decision.identity))
    {
        return Err(Refusal::SelfApproval {
            identity: decision.identity.clone(),
            stage: stage.clone(),
        });
    }
    if approval
        .votes
        .iter()
        .any(|v| same(&v.identity, &decision.identity))
    {
        return Err(Refusal::AlreadyDecided {
            identity: decision.identity.clone(),
            stage: stage.clone(),
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
    if !decision.approve {
        return Ok(Verdict::Rejected);
    }
    if *artifacts != approval.digests {
        return Err(Refusal::ArtifactsChanged {
            execution: execution.clone(),
            approved: approval.digests.clone(),
            now: artifacts.clone(),
        });
    }
    let approved = u32::try_from(approval.votes.iter().filter(|v| v.approve).count())
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let required = approval.required.max(1);
    Ok(if approved >= required {
        Verdict::Approved
    } else {
        Verdict::Waiting { approved, required }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Vote;

    fn request() -> Approval {
        Approval {
            execution_id: "orders-3".into(),
            stage: "prod".into(),
            action: "approve".into(),
            status: ApprovalStatus::Pending,
            approvers: vec!["alice".into(), "bob".into(), "platform".into()],
            comment_required: true,
            required: 1,
            forbidden: vec![],
            votes: vec![],
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
            ..Decision::default()
        }
    }

    fn voted(r: &Approval, identity: &str) -> Approval {
        let mut r = r.clone();
        r.votes.push(Vote {
            identity: identity.into(),
            approve: true,
            comment: Some("ok".into()),
            digests: r.digests.clone(),
            decided_ms: 1_200,
        });
        r
    }

    #[test]
    fn a_listed_approver_with_a_comment_on_the_same_artifacts_may_approve() {
        let r = request();
        assert_eq!(
            check(&r, &by("alice", true, Some("ok")), 1_500, &r.digests),
            Ok(Verdict::Approved)
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
            Ok(Verdict::Rejected)
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
            Ok(Verdict::Approved)
        );
    }

    #[test]
    fn a_member_of_a_listed_group_may_decide() {
        let r = request();
        let carol = Decision {
            groups: vec!["Platform".into()],
            ..by("carol", true, Some("ok"))
        };
        assert_eq!(check(&r, &carol, 1_500, &r.digests), Ok(Verdict::Approved));
    }

    #[test]
    fn two_required_approvers_must_be_distinct() {
        let r = Approval {
            required: 2,
            ..request()
        };
        assert_eq!(
            check(&r, &by("alice", true, Some("ok")), 1_500, &r.digests),
            Ok(Verdict::Waiting {
                approved: 1,
                required: 2
            })
        );
        let after_alice = voted(&r, "alice");
        assert!(matches!(
            check(
                &after_alice,
                &by("Alice", true, Some("again")),
                1_500,
                &r.digests
            ),
            Err(Refusal::AlreadyDecided { .. })
        ));
        assert_eq!(
            check(
                &after_alice,
                &by("bob", true, Some("ok")),
                1_500,
                &r.digests
            ),
            Ok(Verdict::Approved)
        );
        // One rejection decides, whatever the approvals so far.
        assert_eq!(
            check(
                &after_alice,
                &by("bob", false, Some("no")),
                1_500,
                &r.digests
            ),
            Ok(Verdict::Rejected)
        );
    }

    #[test]
    fn who_started_or_pushed_may_not_approve_when_self_approval_is_forbidden() {
        let r = Approval {
            forbidden: vec!["bob".into()],
            ..request()
        };
        assert!(matches!(
            check(&r, &by("bob", true, Some("mine")), 1_500, &r.digests),
            Err(Refusal::SelfApproval { .. })
        ));
        assert_eq!(
            check(&r, &by("alice", true, Some("ok")), 1_500, &r.digests),
            Ok(Verdict::Approved)
        );
    }

    #[test]
    fn auto_approve_decides_alone() {
        let r = Approval {
            required: 3,
            forbidden: vec!["tester".into()],
            ..request()
        };
        let auto = Decision {
            automatic: true,
            ..by("tester (--auto-approve)", true, None)
        };
        assert_eq!(check(&r, &auto, 1_500, &r.digests), Ok(Verdict::Approved));
    }
}
