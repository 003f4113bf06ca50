//! Property: whatever the bytes, reading a manifest returns diagnostics and never panics.

use proptest::prelude::*;

const VALID: &str = include_str!("../../../examples/orders/ferry.yaml");

fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("\n".to_owned()),
        Just("  ".to_owned()),
        Just("- ".to_owned()),
        Just(": ".to_owned()),
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: ".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(", ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("|\n".to_owned()),
        Just("${env}".to_owned()),
        Just("!Ref ".to_owned()),
        Just("---\n".to_owned()),
        Just("#".to_owned()),
        Just("\t".to_owned()),
        prop::sample::select(vec![
            "pipeline",
            "shared",
            "stages",
            "actions",
            "name",
            "build",
            "lambda",
            "ecs",
            "environments",
            "deploy",
            "traffic",
            "canary 10% 5m",
            "id",
            "\"111111111111\"",
            "é",
            "🦀"
        ])
        .prop_map(str::to_owned),
        "[a-z0-9%]{1,8}",
    ];
    prop::collection::vec(token, 0..120).prop_map(|t| t.concat())
}

/// The example manifest with a few bytes replaced, deleted or inserted.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((0..VALID.len(), any::<u8>(), 0..3u8), 1..8).prop_map(|edits| {
        let mut bytes = VALID.as_bytes().to_vec();
        for (at, byte, op) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match op {
                0 => bytes[at] = byte,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        bytes
    })
}

fn load_bytes(bytes: Vec<u8>) {
    let limits = ferry_yaml::Limits::default();
    if let Ok(file) = ferry_manifest::SourceFile::from_bytes("fuzz.yaml", bytes, &limits) {
        let loaded = ferry_manifest::from_str("fuzz.yaml", file.text());
        // Rendering touches every span: it must not panic either.
        let _ = loaded.render(false);
        let _ = loaded.diagnostics_json();
        assert_eq!(loaded.manifest.is_some(), !loaded.has_errors());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        load_bytes(bytes);
    }

    #[test]
    fn yaml_shaped_text(text in yamlish()) {
        load_bytes(text.into_bytes());
    }

    #[test]
    fn mutated_example(bytes in mutated()) {
        load_bytes(bytes);
    }
}

/// Four to six fields made of what cron fields are written with, so most cases reach the
/// field parser and some parse.
fn cronish() -> impl Strategy<Value = String> {
    // Mostly what every field accepts, some of what only some do, some of what none does.
    let token = prop_oneof![
        6 => prop::sample::select(vec!["*", "*/5", "1-5", "1", "2/3", "3-4/2"]),
        2 => prop::sample::select(vec!["0", "7", "9-16", "31", "59", "MON-FRI", "sun", "JAN"]),
        1 => prop::sample::select(vec!["2/0", "60", "5-1", "-", "/", "?", "L", "", "99999999999"]),
    ];
    let field = prop::collection::vec(token, 1..3).prop_map(|parts| parts.join(","));
    let count = prop_oneof![4 => Just(5usize), 1 => 0usize..8];
    count
        .prop_flat_map(move |n| prop::collection::vec(field.clone(), n))
        .prop_map(|fields| fields.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// A window's cron expression either parses or says why; a parsed one answers every
    /// question about time without panicking.
    #[test]
    fn window_cron_expressions(text in cronish(), seconds in -62_135_596_800i64..253_402_207_200) {
        use ferry_manifest::schedule::{Rule, Window, closed_at, next_open};
        if let Ok(window) = Window::new(Rule::Allow, &text, "Europe/Berlin") {
            let t = jiff::Timestamp::from_second(seconds).unwrap();
            let _ = closed_at(std::slice::from_ref(&window), t);
            let _ = next_open(std::slice::from_ref(&window), t);
        }
    }
}
