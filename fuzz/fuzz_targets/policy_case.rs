//! A request with its policies, as `ferry policy simulate` reads it: parse every policy, derive
//! the context, evaluate, and lint each policy. Seeds: the conformance cases.
#![no_main]

use ferry_policy::lint::{LintOptions, lint};
use ferry_policy::{Case, authorize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(case) = Case::from_json(text) else {
        return;
    };
    for derive in [true, false] {
        let Ok((set, request)) = case.build(derive) else {
            return;
        };
        let decision = authorize(&set, &request);
        // The explanation is part of the answer: build it too.
        let _ = format!("{decision:?}");
        let options = LintOptions::default();
        for policy in set.identity.iter().chain(set.resource.iter()) {
            let _ = lint(policy, &options);
        }
    }
});
