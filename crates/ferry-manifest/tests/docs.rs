//! docs/manifest.md holds the field reference generated from the schema; keep it current.

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/manifest.md");
const BEGIN: &str = "<!-- BEGIN GENERATED: ferry schema --markdown -->\n";
const END: &str = "<!-- END GENERATED -->";

#[test]
fn manifest_reference_is_current() {
    let text = std::fs::read_to_string(DOC).unwrap();
    let (head, rest) = text
        .split_once(BEGIN)
        .expect("BEGIN marker in docs/manifest.md");
    let (current, tail) = rest
        .split_once(END)
        .expect("END marker in docs/manifest.md");
    let generated = ferry_manifest::schema::reference_markdown();
    if current == generated {
        return;
    }
    if std::env::var_os("FERRY_UPDATE_DOCS").is_some() {
        std::fs::write(DOC, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        return;
    }
    panic!(
        "docs/manifest.md's field reference is out of date: run FERRY_UPDATE_DOCS=1 cargo test -p ferry-manifest --test docs"
    );
}

#[test]
fn examples_in_the_guide_validate() {
    let text = std::fs::read_to_string(DOC).unwrap();
    let first = text
        .split("```yaml\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let loaded = ferry_manifest::from_str("docs/manifest.md", first);
    assert!(!loaded.has_errors(), "{}", loaded.render(false));
}
