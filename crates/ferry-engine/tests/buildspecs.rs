//! Buildspecs shaped like the ones teams run in CodeBuild (tests/buildspecs/, written for this
//! project): each file's first line says what ferry must report — `clean`, or the severity
//! and codes of its diagnostics — and this one harness checks them all.

use ferry_engine::buildspec::parse;
use ferry_yaml::{Severity, SourceFile};

#[test]
fn real_world_buildspecs_read_as_codebuild_reads_them() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/buildspecs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "the corpus is in {}", dir.display());
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line `# expect: …`", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (spec, diags) = parse(&SourceFile::new(name.clone(), text.as_str()));
        let got: Vec<String> = diags
            .iter()
            .map(|d| {
                let sev = match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                };
                format!("{sev} {}", d.code)
            })
            .collect();
        let want: Vec<String> = if expect == "clean" {
            Vec::new()
        } else {
            vec![expect.to_owned()]
        };
        assert_eq!(got, want, "{name}: {diags:#?}");
        let errors = diags.iter().any(|d| d.severity == Severity::Error);
        assert_eq!(spec.is_some(), !errors, "{name}");
        // Every diagnostic says where and what to do.
        for d in &diags {
            assert!(d.span.is_some() && d.hint.is_some(), "{name}: {d:?}");
        }
    }
}

#[test]
fn the_common_mistakes_get_their_own_hint() {
    let read = |text: &str| parse(&SourceFile::new("buildspec.yml", text)).1;
    let in_phase = read(
        "version: 0.2\nphases:\n  build:\n    env: {variables: {A: b}}\n    commands: [true]\n",
    );
    assert!(
        in_phase[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("top-level section"),
        "{in_phase:?}"
    );
    let old = read(
        "version: 0.2\nenvironment_variables: {plaintext: {A: b}}\nphases:\n  build:\n    commands: [true]\n",
    );
    assert!(
        old[0].hint.as_deref().unwrap().contains("env: {variables"),
        "{old:?}"
    );
    let batch = read("version: 0.2\nbatch:\n  build-list: []\n");
    assert!(
        batch[0].hint.as_deref().unwrap().contains("buildspec"),
        "{batch:?}"
    );
}

#[test]
fn one_string_commands_and_commented_items_run_as_written() {
    let (spec, _) = parse(&SourceFile::new(
        "buildspec.yml",
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n      - # echo b\n      - echo c\n    finally: echo done\n",
    ));
    let build = &spec.unwrap().phases[0];
    assert_eq!(build.commands, ["echo a", "echo c"]);
    assert_eq!(build.finally, ["echo done"]);
}
