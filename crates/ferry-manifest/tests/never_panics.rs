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
