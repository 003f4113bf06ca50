//! Findings about a policy document: what it grants that it probably should not, and what
//! cannot work. Each finding has a severity, the JSON path, the position, and the fix.

use serde::Serialize;

use ferry_yaml::Span;

use crate::ast::{AwsPrincipal, Effect, Policy, PrincipalValue, SetQualifier, Statement};
use crate::catalog::{catalog, template_may_match};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable identifier: `wildcard-action`, `unknown-action`, …
    pub code: &'static str,
    /// JSON path, e.g. `Statement[1].Action[0]`.
    pub path: String,
    #[serde(skip)]
    pub span: Option<Span>,
    pub message: String,
    pub fix: String,
}

impl Finding {
    pub fn to_diagnostic(&self) -> ferry_yaml::Diagnostic {
        let d = match self.severity {
            Severity::Error => {
                ferry_yaml::Diagnostic::error(self.code, format!("{}: {}", self.path, self.message))
            }
            Severity::Warning => ferry_yaml::Diagnostic::warning(
                self.code,
                format!("{}: {}", self.path, self.message),
            ),
        }
        .with_hint(self.fix.clone());
        match self.span {
            Some(s) => d.at(s),
            None => d,
        }
    }
}

/// Condition keys that narrow a `"Principal": "*"` grant to known callers.
const NARROWING_KEYS: &[&str] = &[
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
    "aws:userid",
    "aws:username",
    "kms:calleraccount",
    "kms:viaservice",
];

/// What lint knows about where a policy lives.
#[derive(Debug, Clone, Default)]
pub struct LintOptions {
    /// The account the policy belongs to: a `kms:*` grant to its own root in a key policy is
    /// then the standard delegation, not a finding.
    pub account: Option<String>,
}

pub fn lint(policy: &Policy, options: &LintOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let resource_policy = policy.names_principals();
    let bucket_policy = resource_policy
        && policy.statements.iter().any(|s| {
            s.resource.as_ref().is_some_and(|r| {
                r.patterns
                    .iter()
                    .any(|p| p.text.starts_with("arn:aws:s3:::"))
            })
        });
    for s in &policy.statements {
        let at = |path: String, span: Span| (path, (span != Span::default()).then_some(span));
        let sp = format!("Statement[{}]", s.index);
        let mut push =
            |severity, code, (path, span): (String, Option<Span>), message: String, fix: String| {
                out.push(Finding {
                    severity,
                    code,
                    path,
                    span,
                    message,
                    fix,
                });
            };
        // Principals.
        if resource_policy && s.principal.is_none() {
            push(
                Severity::Warning,
                "no-principal",
                at(sp.clone(), s.span),
                "a resource-policy statement without Principal applies to nobody".into(),
                "add the Principal it is meant for".into(),
            );
        }
        if let Some(p) = &s.principal {
            let key = if p.negated {
                "NotPrincipal"
            } else {
                "Principal"
            };
            if p.negated && s.effect == Effect::Allow {
                push(
                    Severity::Error,
                    "allow-not-principal",
                    at(format!("{sp}.{key}"), p.span),
                    "Allow with NotPrincipal grants everyone else, anonymous callers included"
                        .into(),
                    "name the principals to allow in Principal instead".into(),
                );
            }
            if p.negated && s.effect == Effect::Deny {
                push(Severity::Warning, "deny-not-principal", at(format!("{sp}.{key}"), p.span), "Deny with NotPrincipal denies principals with a permissions boundary whatever it lists, and needs the account, role and session ARNs of each one it spares".into(), "use \"Principal\": \"*\" with a Condition ArnNotEquals on aws:PrincipalArn".into());
            }
            for v in &p.values {
                if let PrincipalValue::Aws(AwsPrincipal::Invalid(text)) = v {
                    push(Severity::Error, "invalid-principal", at(format!("{sp}.{key}"), p.span), format!("`{text}` matches nobody: principals take no partial wildcards, and unique ids (AROA…) are what is left when a role was deleted"), "write an account id, or a user, role or session ARN; for patterns use \"Principal\": \"*\" with ArnLike on aws:PrincipalArn".into());
                }
            }
            let public = !p.negated && p.values.contains(&PrincipalValue::Everyone);
            let narrowed = s
                .conditions
                .iter()
                .any(|c| NARROWING_KEYS.contains(&c.key_lower.as_str()));
            if public && s.effect == Effect::Allow && !narrowed {
                push(Severity::Error, "public-principal", at(format!("{sp}.{key}"), p.span), "\"Principal\": \"*\" with no condition narrowing it grants everyone, anonymous callers included".into(), "name the principals, or add a condition on aws:PrincipalOrgID, aws:PrincipalAccount or aws:SourceAccount".into());
            }
        }
        actions(s, &sp, options, &mut out);
        if s.effect == Effect::Allow {
            if let Some(r) = &s.resource
                && r.negated
            {
                out.push(Finding { severity: Severity::Warning, code: "allow-not-resource", path: format!("{sp}.NotResource"), span: (r.span != Span::default()).then_some(r.span), message: "Allow with NotResource grants on every resource except those listed, including ones created later".into(), fix: "list the resources to allow in Resource instead".into() });
            }
            for c in &s.conditions {
                if c.operator.set == SetQualifier::ForAllValues {
                    out.push(Finding { severity: Severity::Warning, code: "allow-for-all-values", path: format!("{sp}.Condition"), span: (c.span != Span::default()).then_some(c.span), message: format!("ForAllValues is true when `{}` is absent, so this Allow also holds for requests without it", c.key), fix: format!("add a Null condition: \"Null\": {{\"{}\": \"false\"}}", c.key) });
                }
            }
        }
        conditions(s, &sp, &mut out);
    }
    if bucket_policy && !policy.statements.iter().any(denies_insecure_transport) {
        out.push(Finding {
            severity: Severity::Warning,
            code: "no-tls-deny",
            path: "Statement".into(),
            span: None,
            message: "this bucket policy does not deny requests without TLS".into(),
            fix: r#"add {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": ["arn:aws:s3:::BUCKET", "arn:aws:s3:::BUCKET/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}"#.into(),
        });
    }
    out.sort_by_key(|f| (f.span.map_or(usize::MAX, |s| s.start), f.severity));
    out
}

fn denies_insecure_transport(s: &Statement) -> bool {
    s.effect == Effect::Deny
        && s.conditions.iter().any(|c| {
            c.key_lower == "aws:securetransport"
                && c.values
                    .iter()
                    .any(|v| v.text.eq_ignore_ascii_case("false"))
        })
}

fn actions(s: &Statement, sp: &str, options: &LintOptions, out: &mut Vec<Finding>) {
    let cat = catalog();
    let key = if s.action.negated {
        "NotAction"
    } else {
        "Action"
    };
    if s.action.negated && s.effect == Effect::Allow {
        out.push(Finding { severity: Severity::Warning, code: "allow-not-action", path: format!("{sp}.NotAction"), span: spanned(s.action.span), message: "Allow with NotAction grants every action except those listed, including actions AWS adds later".into(), fix: "list the actions to allow in Action instead".into() });
    }
    for (i, a) in s.action.patterns.iter().enumerate() {
        let path = format!("{sp}.{key}[{i}]");
        let span = spanned(a.span);
        if let Some(why) = &a.malformed {
            out.push(Finding {
                severity: Severity::Error,
                code: "malformed-action",
                path,
                span,
                message: format!("`{}` matches no action: {why}", a.text),
                fix:
                    "write each action as its own string, e.g. [\"s3:GetObject\", \"s3:PutObject\"]"
                        .into(),
            });
            continue;
        }
        let service = a.service();
        if a.text == "*" {
            if s.effect == Effect::Allow {
                out.push(Finding {
                    severity: Severity::Error,
                    code: "wildcard-action",
                    path,
                    span,
                    message: "\"Action\": \"*\" grants every action of every service".into(),
                    fix: "name the actions the principal needs".into(),
                });
            }
            continue;
        }
        let Some(svc) = cat.service(&service) else {
            let prefixes: Vec<&str> = cat.service_prefixes().collect();
            let fix = match ferry_yaml::did_you_mean(&service, &prefixes) {
                Some(best) => format!("did you mean the service `{best}`?"),
                None => "check the service prefix in the Service Authorization Reference".into(),
            };
            out.push(Finding {
                severity: Severity::Error,
                code: "unknown-action",
                path,
                span,
                message: format!("`{service}` is not an AWS service prefix"),
                fix,
            });
            continue;
        };
        let expanded = cat.expand(a);
        if expanded.is_empty() {
            let name = a.text.split_once(':').map_or("", |(_, n)| n);
            let names: Vec<&str> = svc.action_names().collect();
            let fix = match ferry_yaml::did_you_mean(name, &names) {
                Some(best) => format!("did you mean `{}:{best}`?", svc.prefix),
                None => format!(
                    "see the `{}` actions in the Service Authorization Reference",
                    svc.prefix
                ),
            };
            out.push(Finding {
                severity: Severity::Error,
                code: "unknown-action",
                path,
                span,
                message: format!("`{}` matches no {} action", a.text, svc.prefix),
                fix,
            });
            continue;
        }
        if s.effect == Effect::Allow && !s.action.negated {
            let name = a.text.split_once(':').map_or("", |(_, n)| n);
            if name != "*" {
                takeover(s, a, &expanded, options, &path, span, out);
            }
            if name == "*" {
                match root_delegation(s, &svc.prefix) {
                    // The default key policy: delegates to the account's own IAM policies.
                    Some(root) if options.account.as_deref() == Some(root) => {}
                    Some(root) if options.account.is_none() => out.push(Finding {
                        severity: Severity::Warning,
                        code: "wildcard-action",
                        path: path.clone(),
                        span,
                        message: format!("`{}` to account {root}: the standard key-policy delegation if {root} owns the key, an over-wide grant if not", a.text),
                        fix: "pass --account with the key's account to check; another account should get only [\"kms:Decrypt\", \"kms:DescribeKey\"] (readers) or also [\"kms:Encrypt\", \"kms:GenerateDataKey\"] (writers)".into(),
                    }),
                    _ => out.push(Finding { severity: Severity::Error, code: "wildcard-action", path: path.clone(), span, message: format!("`{}` grants all {} {} actions, administration included", a.text, expanded.len(), svc.prefix), fix: replacement(&svc.prefix, s) }),
                }
            }
            resources(s, sp, a, &expanded, &path, span, out);
        }
    }
}

/// Actions whose resource types cannot match any resource of the statement grant nothing.
fn resources(
    s: &Statement,
    sp: &str,
    a: &crate::pattern::ActionPattern,
    expanded: &[String],
    path: &str,
    span: Option<Span>,
    out: &mut Vec<Finding>,
) {
    let cat = catalog();
    let Some(r) = s.resource.as_ref().filter(|r| !r.negated) else {
        return;
    };
    if r.patterns
        .iter()
        .any(|p| p.text == "*" || p.has_variables())
        || a.text.contains(['*', '?'])
    {
        return;
    }
    let action = &expanded[0];
    if cat.is_wildcard_only(action) {
        out.push(Finding {
            severity: Severity::Warning,
            code: "resource-mismatch",
            path: format!("{sp}.Resource"),
            span: spanned(r.span),
            message: format!(
                "`{action}` acts on no resource type, so a Resource other than \"*\" grants nothing"
            ),
            fix: format!(
                "grant `{action}` in its own statement with \"Resource\": \"*\" (AWS requires it)"
            ),
        });
        return;
    }
    let templates = cat.arn_templates(action);
    let fits = r
        .patterns
        .iter()
        .any(|p| templates.iter().any(|t| template_may_match(t, &p.text)));
    if !fits && !templates.is_empty() {
        out.push(Finding {
            severity: Severity::Warning,
            code: "resource-mismatch",
            path: path.to_owned(),
            span,
            message: format!(
                "`{action}` acts on {}, and none of this statement's resources can be one",
                templates.join(" or ")
            ),
            fix: "move the action to a statement whose Resource is of that type".into(),
        });
    }
}

/// The account of a `kms:*` key-policy statement naming exactly one account root.
fn root_delegation<'a>(s: &'a Statement, service: &str) -> Option<&'a str> {
    let p = s
        .principal
        .as_ref()
        .filter(|p| !p.negated && service == "kms" && s.conditions.is_empty())?;
    match p.values.as_slice() {
        [PrincipalValue::Aws(AwsPrincipal::Account(a))] => Some(a),
        _ => None,
    }
}

/// Actions that change who may use the resource: whoever holds them can grant themselves the rest.
const POLICY_CHANGING: &[&str] = &[
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
    "ecr:SetRepositoryPolicy",
    "ecr:DeleteRepositoryPolicy",
    "kms:PutKeyPolicy",
];

/// A resource-policy grant to another account of an action that changes the resource's own
/// policy or ACL: it hands the resource over. (A service-wide `s3:*` is already reported as a
/// wildcard.) The resource's account is `--account`, else the one in its ARN.
fn takeover(
    s: &Statement,
    a: &crate::pattern::ActionPattern,
    expanded: &[String],
    options: &LintOptions,
    path: &str,
    span: Option<Span>,
    out: &mut Vec<Finding>,
) {
    let Some(p) = s.principal.as_ref().filter(|p| !p.negated) else {
        return;
    };
    let covered: Vec<&str> = POLICY_CHANGING
        .iter()
        .copied()
        .filter(|c| expanded.iter().any(|e| e.eq_ignore_ascii_case(c)))
        .collect();
    if covered.is_empty() {
        return;
    }
    let owner = options.account.clone().or_else(|| {
        s.resource.as_ref().and_then(|r| {
            r.patterns.iter().find_map(|p| {
                let account = p.text.split(':').nth(4)?;
                (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| account.to_owned())
            })
        })
    });
    let mut others: Vec<String> = Vec::new();
    let mut everyone = false;
    for v in &p.values {
        match v {
            PrincipalValue::Everyone => everyone = true,
            PrincipalValue::Aws(
                AwsPrincipal::Account(account)
                | AwsPrincipal::User { account, .. }
                | AwsPrincipal::Role { account, .. }
                | AwsPrincipal::Session { account, .. }
                | AwsPrincipal::FederatedUser { account, .. },
            ) if owner.as_deref() != Some(account.as_str()) => others.push(account.clone()),
            _ => {}
        }
    }
    if !everyone && others.is_empty() {
        return;
    }
    let who = if everyone {
        "everyone".to_owned()
    } else {
        format!("account {}", others.join(", "))
    };
    let known = everyone || owner.is_some();
    out.push(Finding {
        severity: if known { Severity::Error } else { Severity::Warning },
        code: "cross-account-policy-change",
        path: path.to_owned(),
        span,
        message: format!(
            "`{}` lets {who} change this resource's own policy or ACL ({}){}: it can then grant itself anything on it",
            a.text,
            covered.join(", "),
            if known { "" } else { ", if that account does not own the resource (pass --account to say which does)" }
        ),
        fix: format!(
            "grant {who} only the actions it calls, without {}",
            covered.join(", ")
        ),
    });
}

/// A precise replacement for a service-wide wildcard, read from the statement's shape.
fn replacement(service: &str, s: &Statement) -> String {
    let cross_account_principal = s.principal.as_ref().is_some_and(|p| {
        p.values.iter().any(|v| {
            matches!(
                v,
                PrincipalValue::Aws(
                    AwsPrincipal::Role { .. }
                        | AwsPrincipal::Account(_)
                        | AwsPrincipal::User { .. }
                )
            )
        })
    });
    let root_only = s.principal.as_ref().is_some_and(|p| {
        p.values
            .iter()
            .all(|v| matches!(v, PrincipalValue::Aws(AwsPrincipal::Account(_))))
    });
    match service {
        "ecr" if cross_account_principal => {
            "a repository policy for pulling needs only [\"ecr:BatchGetImage\", \"ecr:GetDownloadUrlForLayer\", \"ecr:BatchCheckLayerAvailability\"]".into()
        }
        "ecr" => "to pull: [\"ecr:BatchGetImage\", \"ecr:GetDownloadUrlForLayer\", \"ecr:BatchCheckLayerAvailability\"] on the repository ARN; to push: add [\"ecr:InitiateLayerUpload\", \"ecr:UploadLayerPart\", \"ecr:CompleteLayerUpload\", \"ecr:PutImage\"]; plus a separate statement with \"ecr:GetAuthorizationToken\" on \"*\"".into(),
        "kms" if root_only => "a key policy may delegate to its own account with kms:*, but another account should get only [\"kms:Decrypt\", \"kms:DescribeKey\"] (readers) or also [\"kms:Encrypt\", \"kms:GenerateDataKey\"] (writers)".into(),
        "kms" if cross_account_principal => "grant a reader [\"kms:Decrypt\", \"kms:DescribeKey\"]; a writer also [\"kms:Encrypt\", \"kms:GenerateDataKey\"]".into(),
        "kms" => "name the key ARNs and grant [\"kms:Decrypt\", \"kms:DescribeKey\"] to read, plus [\"kms:Encrypt\", \"kms:GenerateDataKey\"] to write".into(),
        "s3" => "grant [\"s3:GetObject\"] (read) and [\"s3:PutObject\"] (write) on arn:aws:s3:::BUCKET/PREFIX/*, and [\"s3:ListBucket\"] on arn:aws:s3:::BUCKET if listing is needed".into(),
        "iam" => "name the IAM actions; iam:* lets the principal grant itself anything".into(),
        other => format!("name the {other} actions the principal calls; `ferry plan` lists the ones ferry's pipeline needs"),
    }
}

fn conditions(s: &Statement, sp: &str, out: &mut Vec<Finding>) {
    let cat = catalog();
    for c in &s.conditions {
        let Some((prefix, _)) = c.key.split_once(':') else {
            out.push(Finding {
                severity: Severity::Warning,
                code: "unknown-condition-key",
                path: format!("{sp}.Condition"),
                span: spanned(c.span),
                message: format!(
                    "`{}` is not a condition key (they look like `service:Name`)",
                    c.key
                ),
                fix: "see the condition keys of the service in the Service Authorization Reference"
                    .into(),
            });
            continue;
        };
        if prefix.eq_ignore_ascii_case("aws") {
            continue;
        }
        if let Some(svc) = cat.service(prefix)
            && !svc.has_condition(&c.key)
        {
            out.push(Finding { severity: Severity::Warning, code: "unknown-condition-key", path: format!("{sp}.Condition"), span: spanned(c.span), message: format!("{} has no condition key `{}`; a condition on a key that is never set is never true", svc.prefix, c.key), fix: "check the spelling against the service's condition keys".into() });
        }
    }
}

fn spanned(span: Span) -> Option<Span> {
    (span != Span::default()).then_some(span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_str;

    fn codes(json: &str) -> Vec<&'static str> {
        lint(&parse_str(json).unwrap(), &LintOptions::default())
            .iter()
            .map(|f| f.code)
            .collect()
    }

    /// Regression: `s3:Put*` to a deploy account passed lint, yet it includes PutBucketPolicy.
    #[test]
    fn another_account_that_may_change_the_resources_policy_is_an_error() {
        let bucket = |actions: &str| {
            format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::222222222222:role/deploy"}},"Action":{actions},"Resource":["arn:aws:s3:::artifacts","arn:aws:s3:::artifacts/*"]}}]}}"#
            )
        };
        let shared = LintOptions {
            account: Some("111111111111".into()),
        };
        let put = lint(&parse_str(&bucket(r#""s3:Put*""#)).unwrap(), &shared);
        let f = put
            .iter()
            .find(|f| f.code == "cross-account-policy-change")
            .unwrap_or_else(|| panic!("{put:?}"));
        assert_eq!(f.severity, Severity::Error);
        assert!(f.message.contains("s3:PutBucketPolicy") && f.message.contains("s3:PutObjectAcl"));
        assert!(f.message.contains("222222222222"));
        // What a deploy role needs is no finding of this kind.
        let read = lint(
            &parse_str(&bucket(r#"["s3:GetObject","s3:PutObject"]"#)).unwrap(),
            &shared,
        );
        assert!(
            read.iter().all(|f| f.code != "cross-account-policy-change"),
            "{read:?}"
        );
        // The account's own roles may; without --account an S3 ARN names no owner: a warning.
        let own = lint(
            &parse_str(&bucket(r#""s3:PutBucketPolicy""#).replace("222222222222", "111111111111"))
                .unwrap(),
            &shared,
        );
        assert!(own.iter().all(|f| f.code != "cross-account-policy-change"));
        let unknown = lint(
            &parse_str(&bucket(r#""s3:PutBucketAcl""#)).unwrap(),
            &LintOptions::default(),
        );
        assert!(unknown.iter().any(|f| f.code == "cross-account-policy-change" && f.severity == Severity::Warning));
        // The owner read from an ECR or KMS ARN.
        let repo = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"333333333333"},"Action":["ecr:BatchGetImage","ecr:Set*"],"Resource":"arn:aws:ecr:us-east-1:111111111111:repository/app"}]}"#;
        assert!(codes(repo).contains(&"cross-account-policy-change"));
        let key = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":["kms:Decrypt","kms:Put*"],"Resource":"arn:aws:kms:us-east-1:111111111111:key/k"}]}"#;
        assert!(codes(key).contains(&"cross-account-policy-change"));
    }

    #[test]
    fn seed_style_wildcards_get_a_precise_replacement() {
        let p = parse_str(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"ecr:*"}]}"#).unwrap();
        let f = &lint(&p, &LintOptions::default())[0];
        assert_eq!(f.code, "wildcard-action");
        assert!(
            f.fix.contains("ecr:BatchGetImage") && f.fix.contains("ecr:GetDownloadUrlForLayer"),
            "{}",
            f.fix
        );
        let p = parse_str(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:role/deploy"},"Action":"kms:*","Resource":"*"}]}"#).unwrap();
        assert!(
            lint(&p, &LintOptions::default())[0]
                .fix
                .contains("\"kms:Decrypt\", \"kms:DescribeKey\"")
        );
        // The default key policy's delegation to the key's own account is not a finding.
        let key = parse_str(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:*","Resource":"*"}]}"#).unwrap();
        let own = LintOptions {
            account: Some("111111111111".into()),
        };
        let findings = lint(&key, &own);
        assert_eq!(findings.len(), 1);
        assert_eq!(
            (findings[0].severity, findings[0].path.as_str()),
            (Severity::Error, "Statement[1].Action[0]")
        );
        assert_eq!(
            lint(&key, &LintOptions::default())[0].severity,
            Severity::Warning
        );
    }

    #[test]
    fn each_rule_fires_on_its_shape() {
        assert_eq!(
            codes(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#),
            ["wildcard-action"]
        );
        assert_eq!(
            codes(r#"{"Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#),
            ["allow-not-action"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","NotResource":"arn:aws:s3:::b/*"}]}"#
            ),
            ["allow-not-resource"]
        );
        assert_eq!(
            codes(r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObjekt","Resource":"*"}]}"#),
            ["unknown-action"]
        );
        assert_eq!(
            codes(r#"{"Statement":[{"Effect":"Allow","Action":"s3:Get,Put","Resource":"*"}]}"#),
            ["malformed-action"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b/*"}]}"#
            ),
            ["resource-mismatch"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Action":"ecr:GetAuthorizationToken","Resource":"arn:aws:ecr:us-east-1:111111111111:repository/r"}]}"#
            ),
            ["resource-mismatch"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::b/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#
            ),
            ["public-principal"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/r"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#
            ),
            ["no-tls-deny"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::111111111111:assumed-role/r/*"},"Action":"sts:AssumeRole"}]}"#
            ),
            ["invalid-principal"]
        );
        assert_eq!(
            codes(
                r#"{"Statement":[{"Effect":"Allow","Action":"ecs:UpdateService","Resource":"*","Condition":{"StringEquals":{"ecs:clustr":"x"}}}]}"#
            ),
            ["unknown-condition-key"]
        );
        assert!(codes(r#"{"Statement":[{"Effect":"Allow","Action":["ecs:UpdateService"],"Resource":"arn:aws:ecs:us-east-1:111111111111:service/c/s","Condition":{"ArnEquals":{"ecs:cluster":"arn:aws:ecs:us-east-1:111111111111:cluster/c"}}}]}"#).is_empty());
    }
}
