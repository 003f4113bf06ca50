//! What the server reads from others never panics it: server.yaml (an operator's file, read
//! with diagnostics), webhook deliveries (anyone who can reach the port), session cookies.
//! A property test in the suite, beside the fuzz targets of the pure crates' parsers.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ferry_server::hooks::{self, Source, sign};
use proptest::prelude::*;
use secrecy::SecretString;

fn headers(pairs: &[(String, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            h.append(k, v);
        }
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_server_yaml_gets_diagnostics_or_a_config(text in "(state|pipelines|  - name|repo|poll|url|tls|listen|: |\\n|[ -~]){0,200}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.yaml");
        let _ = ferry_server::config::from_source(&path, ferry_yaml::SourceFile::new("server.yaml", text));
    }

    #[test]
    fn any_delivery_is_read_or_refused(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        json in "\\{(\"(ref|after|revision|branch|pushed_by|pusher|user_username|checkout_sha)\": (\"[ -~]{0,12}\"|null|1|\\{\\}),? ?){0,5}\\}",
        pairs in proptest::collection::vec(("x-(github-event|gitlab-event|gitlab-token|hub-signature-256|github-delivery)", "[ -~]{0,40}"), 0..4),
        signed in any::<bool>(),
    ) {
        let secret = SecretString::from("s3cret".to_owned());
        for payload in [body.as_slice(), json.as_bytes()] {
            let mut h = headers(&pairs);
            if signed {
                h.insert("x-hub-signature-256", HeaderValue::try_from(sign(payload, "s3cret")).unwrap());
                h.insert("x-gitlab-token", HeaderValue::from_static("s3cret"));
            }
            for source in [Source::Github, Source::Gitlab, Source::Generic] {
                let _ = hooks::read(source, "orders", &h, payload, Some(&secret));
            }
        }
    }

    #[test]
    fn any_cookie_header_is_read_or_ignored(cookie in "[ -~]{0,120}") {
        let h = headers(&[("cookie".to_owned(), cookie)]);
        let _ = ferry_server::api::session_cookie(&h);
    }
}
