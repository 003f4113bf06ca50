//! Every file in `tests/malformed/` is a manifest with one kind of mistake. Its diagnostics,
//! exactly as `ferry validate` prints them, are pinned by a snapshot: a change in wording,
//! position or hint shows up in review.

#[test]
fn each_malformed_manifest_gets_precise_diagnostics() {
    insta::glob!("malformed/*.yaml", |path| {
        let loaded = ferry_manifest::load(path);
        let name = format!("malformed/{}", path.file_name().unwrap().to_string_lossy());
        let file = ferry_manifest::SourceFile::new(name, loaded.file.text());
        let text = ferry_yaml::render_text(&file, &loaded.diagnostics, false);
        assert!(
            !loaded.diagnostics.is_empty(),
            "{} has no diagnostics",
            path.display()
        );
        for d in &loaded.diagnostics {
            assert!(
                d.hint.is_some(),
                "{}: `{}` has no hint",
                path.display(),
                d.message
            );
        }
        insta::assert_snapshot!(text);
    });
}
