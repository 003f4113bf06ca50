//! The PostgreSQL state over TLS, against the test cluster: scripts/lib.sh serves it with a
//! certificate for IP 127.0.0.1 only, signed by a CA of its own (`FERRY_TEST_POSTGRES_CA`).
//! What each connection used is read from the server's side (`pg_stat_ssl`).

use ferry_engine::store::{PostgresStore, create_database};

fn cluster() -> (String, String) {
    let admin = std::env::var("FERRY_TEST_POSTGRES").expect(
        "this test needs FERRY_TEST_POSTGRES, a PostgreSQL admin URL: run it through scripts/test, which starts a cluster",
    );
    let ca = std::env::var("FERRY_TEST_POSTGRES_CA").expect(
        "this test needs FERRY_TEST_POSTGRES_CA, the test cluster's CA: run it through scripts/test",
    );
    (admin, ca)
}

/// A database of the test's own, and its URL on `host` with `query`.
fn database(name: &str, host: &str, query: &str) -> String {
    let (admin, _) = cluster();
    create_database(&admin, name).unwrap();
    let port = admin
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap();
    format!("postgres://ferry:s3cret@{host}:{port}/{name}{query}")
}

/// That `database` has open connections and each is encrypted (or each is not), as the
/// server sees them.
fn assert_encrypted(database: &str, encrypted: bool) {
    let (admin, _) = cluster();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let seen: Vec<bool> = client
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
                &[&database],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            !seen.is_empty() && seen.iter().all(|&s| s == encrypted),
            "{database}: encrypted connections {seen:?}"
        );
    })
}

#[test]
fn verify_full_connects_over_tls_to_a_server_the_named_root_signs() {
    let (_, ca) = cluster();
    let url = database(
        "ferry_tls_full",
        "127.0.0.1",
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    );
    let _store = PostgresStore::open(&url).unwrap();
    assert_encrypted("ferry_tls_full", true);
}

#[test]
fn without_sslmode_the_store_prefers_tls_and_disable_turns_it_off() {
    let url = database("ferry_tls_prefer", "127.0.0.1", "");
    let store = PostgresStore::open(&url).unwrap();
    assert_encrypted("ferry_tls_prefer", true);
    drop(store);

    let url = database("ferry_tls_disable", "127.0.0.1", "?sslmode=disable");
    let _store = PostgresStore::open(&url).unwrap();
    assert_encrypted("ferry_tls_disable", false);
}

#[test]
fn verify_full_refuses_a_server_no_trusted_root_signs_and_says_what_to_do() {
    // The system's roots do not include the test cluster's CA.
    let url = database("ferry_tls_unknown", "127.0.0.1", "?sslmode=verify-full");
    let err = PostgresStore::open(&url).unwrap_err().to_string();
    assert!(err.contains("not signed by a trusted root"), "{err}");
    assert!(err.contains("sslrootcert=FILE"), "{err}");
    assert!(!err.contains("s3cret"), "the password leaked: {err}");
    // `require` encrypts without checking who answers, as libpq's does.
    let url = database("ferry_tls_unknown", "127.0.0.1", "?sslmode=require");
    let _store = PostgresStore::open(&url).unwrap();
    assert_encrypted("ferry_tls_unknown", true);
}

#[test]
fn verify_full_refuses_a_certificate_for_another_host_that_verify_ca_accepts() {
    let (_, ca) = cluster();
    // The certificate names 127.0.0.1, not localhost.
    let url = database(
        "ferry_tls_host",
        "localhost",
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    );
    let err = PostgresStore::open(&url).unwrap_err().to_string();
    assert!(err.contains("does not name the host"), "{err}");
    let url = database(
        "ferry_tls_host",
        "localhost",
        &format!("?sslmode=verify-ca&sslrootcert={ca}"),
    );
    let _store = PostgresStore::open(&url).unwrap();
    assert_encrypted("ferry_tls_host", true);
}
