//! docs/server.md holds the route table generated from the API's endpoints and a server.yaml
//! to start from; keep both true.

use std::path::Path;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/server.md");
const BEGIN: &str = "<!-- BEGIN GENERATED: routes -->\n";
const END: &str = "<!-- END GENERATED -->";

#[test]
fn the_route_table_is_current() {
    let text = std::fs::read_to_string(DOC).unwrap();
    let (head, rest) = text
        .split_once(BEGIN)
        .expect("BEGIN marker in docs/server.md");
    let (current, tail) = rest.split_once(END).expect("END marker in docs/server.md");
    let generated = ferry_server::api::reference_markdown();
    if current == generated {
        return;
    }
    if std::env::var_os("FERRY_UPDATE_DOCS").is_some() {
        std::fs::write(DOC, format!("{head}{BEGIN}{generated}{END}{tail}")).unwrap();
        return;
    }
    panic!(
        "docs/server.md's route table is out of date: run FERRY_UPDATE_DOCS=1 cargo test -p ferry-server --test docs"
    );
}

/// The first `yaml` block is a server.yaml that loads (its secret file made beside it).
#[test]
fn the_server_yaml_in_the_guide_loads() {
    let text = std::fs::read_to_string(DOC).unwrap();
    let example = text
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block in docs/server.md");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.webhook-secret"), "s3cret").unwrap();
    let path = dir.path().join("server.yaml");
    let loaded = ferry_server::config::from_source(
        &path,
        ferry_yaml::SourceFile::new("docs/server.md", example),
    );
    if let Err(invalid) = &loaded {
        panic!("{:?}", invalid.diagnostics);
    }
    assert!(Path::new(&loaded.unwrap().state).is_absolute());
}
