//! Properties of the evaluator and the builder, over generated policies and requests.

use ferry_policy::builder::{Need, build};
use ferry_policy::catalog::catalog;
use ferry_policy::{Outcome, PolicySet, Principal, Request, authorize, parse_json, parse_str};
use proptest::prelude::*;
use serde_json::json;

const ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "kms:Decrypt",
    "kms:Encrypt",
    "ecr:BatchGetImage",
    "ecr:GetAuthorizationToken",
    "lambda:UpdateAlias",
];
const RESOURCES: &[&str] = &[
    "arn:aws:s3:::a/x",
    "arn:aws:s3:::b/y",
    "arn:aws:s3:::a",
    "arn:aws:kms:us-east-1:111111111111:key/k",
    "arn:aws:ecr:us-east-1:111111111111:repository/r",
    "arn:aws:lambda:us-east-1:111111111111:function:f:live",
];
const PATTERNS: &[&str] = &[
    "*",
    "arn:aws:s3:::a/*",
    "arn:aws:s3:::*",
    "arn:aws:kms:*",
    "arn:aws:ecr:us-east-1:111111111111:repository/r",
    "arn:aws:lambda:us-east-1:111111111111:function:f*",
];
const ACTION_PATTERNS: &[&str] = &[
    "*",
    "s3:*",
    "s3:Get*",
    "kms:Decrypt",
    "ecr:*",
    "lambda:Update*",
    "kms:*",
];

fn statement() -> impl Strategy<Value = serde_json::Value> {
    (
        any::<bool>(),
        prop::sample::subsequence(ACTION_PATTERNS.to_vec(), 1..3),
        prop::sample::subsequence(PATTERNS.to_vec(), 1..3),
        any::<bool>(),
    )
        .prop_map(|(allow, actions, resources, not_action)| {
            let mut s =
                json!({"Effect": if allow { "Allow" } else { "Deny" }, "Resource": resources});
            s[if not_action { "NotAction" } else { "Action" }] = json!(actions);
            s
        })
}

fn policy() -> impl Strategy<Value = serde_json::Value> {
    prop::collection::vec(statement(), 1..6)
        .prop_map(|st| json!({"Version": "2012-10-17", "Statement": st}))
}

fn request(action: &str, resource: &str) -> Request {
    Request::new(
        Principal::parse("arn:aws:iam::111111111111:user/u").unwrap(),
        action,
        resource,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// A matching Deny wins, whatever else allows.
    #[test]
    fn an_explicit_deny_always_wins(p in policy(), a in 0..ACTIONS.len(), r in 0..RESOURCES.len()) {
        let mut doc = p;
        doc["Statement"].as_array_mut().unwrap().push(json!({"Effect": "Deny", "Action": ACTIONS[a], "Resource": RESOURCES[r]}));
        doc["Statement"].as_array_mut().unwrap().push(json!({"Effect": "Allow", "Action": "*", "Resource": "*"}));
        let set = PolicySet { identity: vec![parse_json(&doc).unwrap()], ..PolicySet::default() };
        prop_assert_eq!(authorize(&set, &request(ACTIONS[a], RESOURCES[r])).outcome, Outcome::ExplicitDeny);
    }

    /// Adding an Allow statement never takes access away.
    #[test]
    fn adding_an_allow_never_removes_access(p in policy(), extra in statement(), a in 0..ACTIONS.len(), r in 0..RESOURCES.len()) {
        let before = PolicySet { identity: vec![parse_json(&p).unwrap()], ..PolicySet::default() };
        let mut doc = p;
        let mut allow = extra;
        allow["Effect"] = json!("Allow");
        doc["Statement"].as_array_mut().unwrap().push(allow);
        let after = PolicySet { identity: vec![parse_json(&doc).unwrap()], ..PolicySet::default() };
        let req = request(ACTIONS[a], RESOURCES[r]);
        if authorize(&before, &req).is_allowed() {
            prop_assert!(authorize(&after, &req).is_allowed());
        }
    }

    /// The builder's policy allows every need and nothing else.
    #[test]
    fn built_policies_grant_exactly_the_needs(pairs in prop::collection::btree_set((0..ACTIONS.len(), 0..RESOURCES.len()), 1..12)) {
        let needs: Vec<(usize, usize)> = pairs.into_iter().collect();
        let built = build(needs.iter().map(|&(a, r)| Need::new("grant", ACTIONS[a], RESOURCES[r])));
        // KMS keys need their key policy to allow; the default one delegates to the account.
        let key_policy = parse_str(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#).unwrap();
        for (a, action) in ACTIONS.iter().enumerate() {
            for (r, resource) in RESOURCES.iter().enumerate() {
                let set = PolicySet {
                    identity: vec![parse_json(&built.to_json()).unwrap()],
                    resource: resource.starts_with("arn:aws:kms:").then(|| key_policy.clone()),
                    ..PolicySet::default()
                };
                let wildcard_only = catalog().is_wildcard_only(action);
                let needed = needs.iter().any(|&(na, nr)| na == a && (nr == r || wildcard_only));
                let allowed = authorize(&set, &request(action, resource)).is_allowed();
                prop_assert_eq!(allowed, needed, "{} on {}", action, resource);
            }
        }
    }

    /// The parser and the evaluator never panic, whatever the text.
    #[test]
    fn parser_and_evaluator_never_panic(text in "\\PC{0,300}", a in 0..ACTIONS.len(), r in 0..RESOURCES.len()) {
        if let Ok(p) = parse_str(&text) {
            let set = PolicySet { identity: vec![p.clone()], resource: Some(p), ..PolicySet::default() };
            let _ = authorize(&set, &request(ACTIONS[a], RESOURCES[r]));
        }
    }

    /// Same, with text shaped like a policy.
    #[test]
    fn policy_shaped_input_never_panics(p in policy(), cut in 0usize..400, junk in "[\\[\\]{}\",:*$?]{0,5}", a in 0..ACTIONS.len(), r in 0..RESOURCES.len()) {
        let text = p.to_string();
        let at = cut.min(text.len());
        let mangled = format!("{}{junk}{}", &text[..at], &text[at..]);
        if let Ok(p) = parse_str(&mangled) {
            let set = PolicySet { identity: vec![p.clone()], resource: Some(p), ..PolicySet::default() };
            let _ = authorize(&set, &request(ACTIONS[a], RESOURCES[r]));
            let _ = ferry_policy::lint::lint(&set.identity[0], &ferry_policy::lint::LintOptions::default());
        }
    }
}
