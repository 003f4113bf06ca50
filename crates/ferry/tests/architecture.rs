//! The architecture invariants about dependencies, checked on the resolved dependency graph
//! (`cargo metadata`): the pure crates never depend on the AWS SDK, not even through another
//! crate, so they build and test in seconds; the binary uses the SDK only through the library
//! crates (and in its tests).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// The pure crates (ARCHITECTURE.md).
const PURE: &[&str] = &[
    "ferry-yaml",
    "ferry-manifest",
    "ferry-policy",
    "ferry-plan",
    "ferry-engine",
];

fn is_sdk(name: &str) -> bool {
    name.starts_with("aws-sdk-")
}

/// Package name → its dependencies that are not dev-dependencies, and those that are
/// direct non-dev dependencies of workspace members, by package name.
struct Graph {
    names: BTreeMap<String, String>,
    normal: BTreeMap<String, Vec<String>>,
}

/// The machine's target triple: the graph is resolved for it (other platforms' crates, such
/// as Windows-only ones, are not downloaded, and `--frozen` forbids fetching them).
fn host() -> String {
    let out = std::process::Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

fn graph() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--frozen",
            "--filter-platform",
        ])
        .arg(host())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeMap<String, String> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut normal = BTreeMap::new();
    for node in doc["resolve"]["nodes"].as_array().unwrap() {
        let deps: Vec<String> = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect();
        normal.insert(node["id"].as_str().unwrap().to_owned(), deps);
    }
    Graph { names, normal }
}

impl Graph {
    fn id(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(id, _)| id.clone())
            .unwrap_or_else(|| panic!("no package {name} in the workspace"))
    }

    /// The path from `from` to every package it reaches through non-dev dependencies.
    fn reachable(&self, from: &str) -> BTreeMap<String, Vec<String>> {
        let start = self.id(from);
        let mut paths = BTreeMap::from([(start.clone(), vec![from.to_owned()])]);
        let mut queue = vec![start];
        while let Some(id) = queue.pop() {
            let path = paths[&id].clone();
            for dep in self.normal.get(&id).into_iter().flatten() {
                if !paths.contains_key(dep) {
                    let mut p = path.clone();
                    p.push(self.names[dep].clone());
                    paths.insert(dep.clone(), p);
                    queue.push(dep.clone());
                }
            }
        }
        paths
    }
}

#[test]
fn the_pure_crates_never_depend_on_the_aws_sdk() {
    let g = graph();
    let mut offending = BTreeSet::new();
    for krate in PURE {
        for (id, path) in g.reachable(krate) {
            if is_sdk(&g.names[&id]) {
                offending.insert(path.join(" → "));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "a pure crate reaches the AWS SDK:\n{}",
        offending.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_binary_uses_the_aws_sdk_only_through_the_library_crates() {
    let g = graph();
    let direct: Vec<&String> = g.normal[&g.id("ferry")]
        .iter()
        .map(|id| &g.names[id])
        .filter(|name| is_sdk(name))
        .collect();
    assert!(
        direct.is_empty(),
        "the binary depends on {direct:?} directly; go through ferry-workflows or ferry-aws"
    );
}

/// The check itself must be able to fail: the SDK is reachable from the crates that use it.
#[test]
fn the_graph_sees_the_sdk_where_it_is() {
    let g = graph();
    assert!(
        g.reachable("ferry-aws")
            .keys()
            .any(|id| g.names[id] == "aws-sdk-lambda")
    );
}
