//! `ferry doctor`: an AWS access-denied message → which policy, in which account, lacks which
//! statement, from the plan.

use serde::Serialize;
use serde_json::Value;

use crate::access::Edge;
use crate::foundation::Foundation;
use crate::names::Names;
use crate::verify::{PolicyStore, verify};

/// What an access-denied message says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The caller as the message names it.
    pub caller: String,
    /// The role behind an assumed-role session.
    pub role: Option<String>,
    pub action: String,
    /// The resource, when the message names one.
    pub resource: Option<String>,
    /// An explicit deny rather than a missing allow.
    pub explicit: bool,
    /// The policy type the message blames: `identity-based policy`, `resource-based policy`,
    /// `service control policy`, `permissions boundary`, `session policy`, …
    pub policy_type: Option<String>,
    /// Whether the message names the caller (`User: …`). Those that do not — an ECS task that
    /// cannot pull its image or read its secret, KMS's "does not exist", S3's bare "Access
    /// Denied" — are matched to the edges by action and resource alone.
    pub caller_named: bool,
    /// An ECS task's failure: its task execution role made the call.
    pub by_ecs_task: bool,
}

/// Reads AWS's access-denied messages: `User: ARN is not authorized to perform: ACTION [on
/// resource: ARN] [because no POLICY allows the ACTION action | with an explicit deny in a
/// POLICY]`, wrapped however a tool printed it.
pub fn parse(message: &str) -> Result<Denial, String> {
    let text = message.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(start) = text.find("User: ") else {
        return callerless(&text).ok_or_else(|| "the message names no caller (`User: arn:…`) and is none of the cross-account failures ferry knows without one (an ECS image pull or secret, a KMS key that \"does not exist\", S3's \"Access Denied\"); paste the whole message, or run `ferry verify --live`".to_owned());
    };
    let rest = &text[start + "User: ".len()..];
    let (caller, rest) = rest.split_once(" is not authorized to perform: ").ok_or(
        "the message does not say which action was denied (`is not authorized to perform: …`)",
    )?;
    let action_end = rest.find(|c: char| c.is_whitespace()).unwrap_or(rest.len());
    let action = rest[..action_end].trim_end_matches(['.', ',']).to_owned();
    let rest = &rest[action_end..];
    let resource = rest
        .strip_prefix(" on resource: ")
        .map(|r| {
            r.split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches(['.', ','])
                .to_owned()
        })
        .filter(|r| r.starts_with("arn:") || r == "*");
    let explicit = rest.contains("with an explicit deny");
    let policy_type = policy_type(rest);
    let role = caller.strip_prefix("arn:aws:sts::").and_then(|r| {
        let (account, path) = r.split_once(":assumed-role/")?;
        let role = path.split('/').next()?;
        Some(format!("arn:aws:iam::{account}:role/{role}"))
    });
    Ok(Denial {
        caller: caller.to_owned(),
        role,
        action,
        resource,
        explicit,
        policy_type,
        caller_named: true,
        by_ecs_task: false,
    })
}

/// The failures people paste that name no caller, by what AWS prints for them.
fn callerless(text: &str) -> Option<Denial> {
    let lower = text.to_ascii_lowercase();
    let denial = |caller: &str, action: &str, resource: Option<String>, by_ecs_task: bool| Denial {
        caller: caller.to_owned(),
        role: None,
        action: action.to_owned(),
        resource,
        explicit: false,
        policy_type: None,
        caller_named: false,
        by_ecs_task,
    };
    let word = |prefix: &str| {
        text.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '(' | ')'))
            .find(|w| w.contains(prefix))
            .map(|w| w.trim_end_matches(['.', ':']).to_owned())
    };
    // ECS: `CannotPullContainerError: … pull image manifest … 403 Forbidden` for an image in
    // another account's ECR repository.
    if lower.contains("cannotpullcontainererror")
        && (lower.contains("403") || lower.contains("forbidden") || lower.contains("denied"))
    {
        let image = word(".dkr.ecr.")?;
        let (registry, path) = image.split_once('/')?;
        let mut parts = registry.split('.');
        let account = parts.next()?;
        let region = parts.nth(2)?;
        let repo = path.split(['@', ':']).next()?;
        return Some(denial(
            "ECS, as the task execution role, pulling the image",
            "ecr:BatchGetImage",
            Some(format!("arn:aws:ecr:{region}:{account}:repository/{repo}")),
            true,
        ));
    }
    // ECS: `ResourceInitializationError: unable to pull secrets or registry auth: … secret ARN …`.
    if lower.contains("resourceinitializationerror") && lower.contains("secret") {
        let secret = word("arn:aws:secretsmanager:");
        return Some(denial(
            "ECS, as the task execution role, reading the task's secret",
            "secretsmanager:GetSecretValue",
            secret,
            true,
        ));
    }
    // KMS hides a key the caller may not use behind "does not exist".
    if lower.contains("customer master key that does not exist")
        || lower.contains("kms key that does not exist")
    {
        return Some(denial(
            "a role decrypting an artifact (KMS does not say which)",
            "kms:Decrypt",
            word("arn:aws:kms:"),
            false,
        ));
    }
    // S3's bare answer: `An error occurred (AccessDenied) when calling the GetObject operation: Access Denied`.
    if lower.contains("access denied") {
        let operation = text
            .split_once("calling the ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .filter(|op| op.chars().all(|c| c.is_ascii_alphanumeric()))
            .unwrap_or("GetObject");
        return Some(denial(
            "a role using the artifact bucket (S3 does not say which)",
            &format!("s3:{operation}"),
            None,
            false,
        ));
    }
    None
}

fn policy_type(text: &str) -> Option<String> {
    const TYPES: &[&str] = &[
        "identity-based policy",
        "resource-based policy",
        "service control policy",
        "resource control policy",
        "permissions boundary",
        "session policy",
        "VPC endpoint policy",
    ];
    TYPES
        .iter()
        .find(|t| text.contains(*t))
        .map(|t| (*t).to_owned())
}

/// The diagnosis: the edges the denied call is, and for each what the plan grants and where.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub denial: Denial,
    pub findings: Vec<Finding>,
    /// When no edge matches: why, in words.
    pub unmatched: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub edge: Edge,
    /// The account whose policy must grant it, by manifest name and id.
    pub account: String,
    /// The policy, in words.
    pub place: String,
    /// The statement the plan has there.
    pub statement: Value,
    pub advice: String,
}

/// Explains `denial` with `foundation`'s edges and policies.
pub fn diagnose(denial: Denial, foundation: &Foundation, names: &Names<'_>) -> Diagnosis {
    let who = denial.role.clone().unwrap_or_else(|| denial.caller.clone());
    let edges: Vec<&Edge> = foundation
        .edges
        .iter()
        .filter(|e| !denial.caller_named || e.principal == who)
        .filter(|e| {
            // ECS acts as the task's execution role: ferry's, or the team's own.
            !denial.by_ecs_task
                || e.teams_role
                || e.principal
                    .ends_with(&format!(":role/{}", names.execution_role_name()))
        })
        .filter(|e| e.action.eq_ignore_ascii_case(&denial.action))
        .filter(|e| {
            denial
                .resource
                .as_deref()
                .is_none_or(|r| resource_matches(&e.grant, r) || e.resource == r)
        })
        .collect();
    if edges.is_empty() {
        let known = foundation.edges.iter().any(|e| e.principal == who);
        let unmatched = if let Some(advice) = task_secret_advice(&denial, foundation, names) {
            advice
        } else if !denial.caller_named {
            format!(
                "no call of this pipeline is {} on {}: {} is not something its plan grants, so it comes from outside ferry's foundation",
                denial.action,
                denial.resource.as_deref().unwrap_or("that resource"),
                denial.caller
            )
        } else if known {
            format!(
                "{who} does not need {} on {} in this pipeline's plan: the call is not one ferry makes, or the manifest lacks the deploy that makes it",
                denial.action,
                denial.resource.as_deref().unwrap_or("that resource")
            )
        } else {
            format!(
                "{who} is not a role of this pipeline's foundation (the pipeline role, a deploy role or the ECS execution role): check which credentials made the call"
            )
        };
        return Diagnosis {
            denial,
            findings: Vec::new(),
            unmatched: Some(unmatched),
        };
    }
    let store: PolicyStore = foundation.policies(names);
    let mut findings = Vec::new();
    for edge in edges {
        for (place, statement, layer) in granting_statements(&store, edge, names) {
            let blamed = denial
                .policy_type
                .as_deref()
                .is_none_or(|t| t.starts_with(layer_word(layer)));
            if !blamed {
                continue;
            }
            let account = foundation
                .accounts
                .iter()
                .find(|a| {
                    place.contains(&a.id)
                        || (place.contains("arn:aws:s3:::") && a.kind == crate::AccountKind::Shared)
                })
                .map_or_else(String::new, |a| format!("{} ({})", a.name, a.id));
            let advice = if denial.explicit {
                format!(
                    "an explicit Deny decided; ferry writes none that matches this call — look for a Deny in the {} of account {account}",
                    denial.policy_type.as_deref().unwrap_or("policies")
                )
            } else {
                format!(
                    "in the account, {place} lacks this statement, which the plan has: `ferry bootstrap --account {}` puts it back (`ferry plan` shows the difference)",
                    account.split(' ').next().unwrap_or_default()
                )
            };
            findings.push(Finding {
                edge: edge.clone(),
                account,
                place,
                statement,
                advice,
            });
        }
    }
    Diagnosis {
        denial,
        findings,
        unmatched: None,
    }
}

/// An ECS task that cannot read its secret: ferry.yaml names no task secrets, so no edge
/// reads it; say which role must, the statements it needs, and which policies on the secret's
/// side must admit it when the secret is in another account.
fn task_secret_advice(
    denial: &Denial,
    foundation: &Foundation,
    names: &Names<'_>,
) -> Option<String> {
    if !denial.by_ecs_task || denial.action != "secretsmanager:GetSecretValue" {
        return None;
    }
    let secret = denial.resource.as_deref()?;
    let mut parts = secret.split(':');
    let region = parts.nth(3)?;
    let owner = parts.next()?;
    let owner_name = foundation
        .accounts
        .iter()
        .find(|a| a.id == owner)
        .map_or_else(
            || format!("account {owner}"),
            |a| format!("{} ({owner})", a.name),
        );
    let identity = serde_json::json!([
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "THE-SECRET'S-KEY-ARN",
         "Condition": {"StringEquals": {"kms:ViaService": format!("secretsmanager.{region}.amazonaws.com")}}}
    ]);
    let mut advice = format!(
        "ECS reads a task's `secrets` as the task execution role named in its task definition (ferry's is `{}` in each target account); ferry.yaml names no task secrets, so no edge of the plan reads {secret} of {owner_name}. Give the execution role these statements in its identity policy: {identity}",
        names.execution_role_name()
    );
    let cross_account = !foundation
        .accounts
        .iter()
        .any(|a| a.id == owner && a.kind == crate::AccountKind::Target);
    if cross_account {
        advice.push_str(&format!(
            ". The secret is in {owner_name}, not the task's account: its resource policy must also allow the execution role secretsmanager:GetSecretValue, it must be encrypted under a customer-managed key (the default aws/secretsmanager key admits only its own account), and that key's policy must allow the role kms:Decrypt"
        ));
    }
    Some(advice)
}

fn layer_word(layer: &str) -> &'static str {
    if layer == "resource policy" {
        "resource-based"
    } else {
        "identity-based"
    }
}

/// The statements of the plan that allow `edge`: (place, statement, "identity policy" | "resource policy").
fn granting_statements(
    store: &PolicyStore,
    edge: &Edge,
    names: &Names<'_>,
) -> Vec<(String, Value, &'static str)> {
    let report = verify(store, std::slice::from_ref(edge), names);
    let mut out = Vec::new();
    let Some(result) = report.results.first() else {
        return out;
    };
    if !result.allowed {
        return out;
    }
    // Re-find the deciding statements by Sid: the plan's statements all have one.
    let holder = edge.holder();
    if let Some(doc) = store
        .resource_policy(&holder)
        .filter(|_| edge.needs_resource_grant(names))
    {
        for s in statements_for(doc, &edge.action, Some(&edge.principal)) {
            out.push((
                format!("{} of {holder}", kind_of(&holder)),
                s,
                "resource policy",
            ));
        }
    }
    let identity = identity_policy_of(store, &edge.principal);
    for (name, doc) in identity {
        for s in statements_for(&doc, &edge.action, None) {
            out.push((
                format!("identity policy {name} of {}", edge.principal),
                s,
                "identity policy",
            ));
        }
    }
    out
}

fn identity_policy_of(store: &PolicyStore, role: &str) -> Vec<(String, Value)> {
    store.identity_policies(role).to_vec()
}

fn kind_of(holder: &str) -> &'static str {
    match holder.split(':').nth(2) {
        Some("kms") => "the key policy",
        Some("s3") => "the bucket policy",
        Some("iam") => "the trust policy",
        Some("ecr") => "the repository policy",
        _ => "the resource policy",
    }
}

/// The Allow statements of `doc` that name `action` (and `principal`, in a resource policy).
fn statements_for(doc: &Value, action: &str, principal: Option<&str>) -> Vec<Value> {
    let statements = match doc.get("Statement") {
        Some(Value::Array(s)) => s.clone(),
        Some(one) => vec![one.clone()],
        None => Vec::new(),
    };
    statements
        .into_iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .filter(|s| {
            strings(s.get("Action"))
                .iter()
                .any(|a| ferry_policy::pattern::ActionPattern::new(a).matches(action))
        })
        .filter(|s| {
            principal.is_none_or(|p| {
                s.get("Principal")
                    .is_some_and(|pr| pr.to_string().contains(p))
            })
        })
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn resource_matches(pattern: &str, resource: &str) -> bool {
    ferry_policy::pattern::Glob::new(pattern, false).matches(resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_message_forms_are_read() {
        let d = parse("An error occurred (AccessDeniedException) when calling the Decrypt operation: User: arn:aws:sts::222222222222:assumed-role/ferry-deploy/ferry-orders-3 is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111111111111:key/abcd because no resource-based policy allows the kms:Decrypt action").unwrap();
        assert_eq!(
            d.role.as_deref(),
            Some("arn:aws:iam::222222222222:role/ferry-deploy")
        );
        assert_eq!(d.action, "kms:Decrypt");
        assert_eq!(
            d.resource.as_deref(),
            Some("arn:aws:kms:us-east-1:111111111111:key/abcd")
        );
        assert_eq!(d.policy_type.as_deref(), Some("resource-based policy"));
        assert!(!d.explicit);

        let d = parse("User: arn:aws:sts::111111111111:assumed-role/ferry-pipeline/s is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::444444444444:role/ferry-deploy").unwrap();
        assert_eq!((d.action.as_str(), d.policy_type), ("sts:AssumeRole", None));

        let d = parse("User: arn:aws:sts::2:assumed-role/r/s is not authorized to perform: s3:GetObject on resource: \"arn:aws:s3:::b/k\" with an explicit deny in a service control policy").unwrap();
        assert!(d.explicit);
        assert_eq!(d.policy_type.as_deref(), Some("service control policy"));
    }

    #[test]
    fn messages_without_a_caller_say_what_to_do() {
        let e = parse("Something else went wrong").unwrap_err();
        assert!(e.contains("ferry verify --live"), "{e}");
    }

    #[test]
    fn the_cross_account_failures_that_name_no_caller_are_read() {
        let pull = parse("CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref 111111111111.dkr.ecr.us-east-1.amazonaws.com/orders-api:3f2a: pulling from host 111111111111.dkr.ecr.us-east-1.amazonaws.com failed with status code [manifests 3f2a]: 403 Forbidden").unwrap();
        assert!(!pull.caller_named);
        assert_eq!(pull.action, "ecr:BatchGetImage");
        assert_eq!(
            pull.resource.as_deref(),
            Some("arn:aws:ecr:us-east-1:111111111111:repository/orders-api")
        );
        let secret = parse("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret arn:aws:secretsmanager:us-east-1:111111111111:secret:orders/db-AbCdEf from secrets manager: AccessDeniedException").unwrap();
        assert_eq!(secret.action, "secretsmanager:GetSecretValue");
        assert_eq!(
            secret.resource.as_deref(),
            Some("arn:aws:secretsmanager:us-east-1:111111111111:secret:orders/db-AbCdEf")
        );
        let kms = parse("An error occurred (AccessDeniedException) when calling the Decrypt operation: The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access it.").unwrap();
        assert_eq!((kms.action.as_str(), kms.resource), ("kms:Decrypt", None));
        let s3 = parse("download failed: s3://ferry-orders-artifacts-111111111111/orders/app.zip An error occurred (AccessDenied) when calling the GetObject operation: Access Denied").unwrap();
        assert_eq!(s3.action, "s3:GetObject");
    }
}
