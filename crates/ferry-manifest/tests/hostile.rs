//! Input nobody should write, handled with a clear error in bounded time and memory.

use std::time::{Duration, Instant};

/// Generous: each case takes milliseconds; this only catches runaway work.
const BOUND: Duration = Duration::from_secs(10);

fn check(name: &str, bytes: &[u8], code: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let started = Instant::now();
    let loaded = ferry_manifest::load(&path);
    assert!(
        started.elapsed() < BOUND,
        "{name} took {:?}",
        started.elapsed()
    );
    assert!(loaded.manifest.is_none());
    let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [code], "{name}: {}", loaded.render(false));
}

#[test]
fn billion_laughs_is_refused() {
    let mut doc = String::from(
        "pipeline: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let mut prev = "a".to_owned();
    for level in 0..12 {
        let name = format!("l{level}");
        let refs = vec![format!("*{prev}"); 10].join(",");
        doc.push_str(&format!("{name}: &{name} [{refs}]\n"));
        prev = name;
    }
    check("bomb.yaml", doc.as_bytes(), "too-many-nodes");
}

#[test]
fn fifty_megabytes_are_refused_before_reading() {
    let big = vec![b'#'; 50 * 1024 * 1024];
    check("big.yaml", &big, "file-too-large");
}

#[test]
fn binary_garbage_is_refused() {
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    check("garbage.bin", &garbage, "binary-file");
}

#[test]
fn invalid_utf8_is_refused() {
    check("latin1.yaml", b"pipeline: caf\xe9\n", "not-utf8");
}

#[test]
fn deep_nesting_is_refused() {
    let deep = format!("pipeline: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.yaml");
    std::fs::write(&path, deep).unwrap();
    let loaded = ferry_manifest::load(&path);
    let code = loaded.diagnostics[0].code;
    assert!(
        code == "too-deep" || code == "yaml-syntax",
        "{}",
        loaded.render(false)
    );
    let deep_block: String = (0..200)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    std::fs::write(&path, deep_block).unwrap();
    assert_eq!(ferry_manifest::load(&path).diagnostics[0].code, "too-deep");
}

#[test]
fn a_directory_and_a_missing_file_get_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = ferry_manifest::load(dir.path());
    assert_eq!(loaded.diagnostics[0].code, "unreadable-file");
    let loaded = ferry_manifest::load(&dir.path().join("ferry.yaml"));
    assert!(
        loaded.diagnostics[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("ferry init")
    );
}
