//! `cargo bench -p ferry-policy`: evaluations per second, and allocations per evaluation.
//!
//! Sets: ferry's pipeline cases (policies of at most 10 statements, the target of 1,000,000
//! evaluations per second per core), every conformance case, and one 200-statement policy.
//! The baseline, measured in the same run, is one precompiled wildcard match (`s3:Get*`
//! against `s3:GetObject`); ratios say how many such matches one evaluation costs.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]
// A benchmark reports on standard output.
#![allow(clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_policy::{Case, PolicySet, Principal, Request, evaluate, parse_json};
use serde_json::json;

struct Counting;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn cases(files: &[PathBuf]) -> Vec<(PolicySet, Request)> {
    files
        .iter()
        .filter(|f| f.exists())
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| Case::from_json(&line).ok()?.build(false).ok())
        .collect()
}

/// Runs `f` over the set for about a second; returns (ns per evaluation, allocations per evaluation).
fn measure(set: &[(PolicySet, Request)]) -> (f64, f64) {
    for (p, r) in set {
        black_box(evaluate(p, r));
    }
    let mut evaluations = 0u64;
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        for (p, r) in set {
            black_box(evaluate(black_box(p), black_box(r)));
        }
        evaluations += set.len() as u64;
    }
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    (
        elapsed.as_nanos() as f64 / evaluations as f64,
        allocations as f64 / evaluations as f64,
    )
}

fn baseline() -> f64 {
    let pattern = wildmatch::WildMatch::new_case_insensitive("s3:Get*");
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..10_000 {
            black_box(pattern.matches(black_box("s3:GetObject")));
        }
        n += 10_000;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn big_policy() -> (PolicySet, Request) {
    let mut statements: Vec<serde_json::Value> = (0..199)
        .map(|i| {
            json!({"Sid": format!("S{i}"), "Effect": "Allow",
                   "Action": [format!("s3:Get{i}*"), format!("kms:Decrypt{i}")],
                   "Resource": [format!("arn:aws:s3:::bucket-{i}/*"), format!("arn:aws:kms:us-east-1:111111111111:key/{i}")],
                   "Condition": {"StringEquals": {"aws:PrincipalTag/team": format!("team-{i}")}}})
        })
        .collect();
    statements.push(json!({"Sid": "Last", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*",
                           "Condition": {"StringEquals": {"aws:PrincipalTag/team": "ci"}}}));
    let policy = parse_json(&json!({"Version": "2012-10-17", "Statement": statements})).unwrap();
    let mut request = Request::new(
        Principal::parse("arn:aws:iam::111111111111:user/ci").unwrap(),
        "s3:GetObject",
        "arn:aws:s3:::artifacts/x.zip",
    );
    request.context.insert(
        "aws:PrincipalTag/team",
        ferry_policy::ContextValue::Single("ci".into()),
    );
    (
        PolicySet {
            identity: vec![policy],
            ..PolicySet::default()
        },
        request,
    )
}

fn main() {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = std::env::var_os("FERRY_IAM_SIMULATE_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| here.join("../../../shared/conformance/iam/iam-simulate.jsonl"));
    let pipeline = cases(&[here.join("tests/conformance/ferry.jsonl")]);
    let all = cases(&[
        here.join("tests/conformance/ferry.jsonl"),
        here.join("tests/conformance/politest.jsonl"),
        here.join("tests/conformance/aws-docs-examples.jsonl"),
        shared,
    ]);
    let big = vec![big_policy()];
    let base = baseline();
    println!("baseline: one wildcard match = {base:.1} ns");
    println!(
        "{:<44} {:>8} {:>12} {:>14} {:>12}",
        "set", "cases", "ns/eval", "evals/s", "allocs/eval"
    );
    for (name, set) in [
        ("pipeline cases (≤10 statements)", &pipeline),
        ("all conformance cases", &all),
        ("one 200-statement policy (match at the end)", &big),
    ] {
        let (ns, allocs) = measure(set);
        println!(
            "{name:<44} {:>8} {ns:>12.1} {:>14.0} {allocs:>12.2}   ({:.0}× baseline)",
            set.len(),
            1e9 / ns,
            ns / base
        );
    }
}
