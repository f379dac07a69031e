//! The registry's PostgreSQL over TLS: the throwaway server of `scripts/postgres.sh`
//! speaks TLS with a certificate from its own throwaway CA, and `sslmode=verify-full`
//! with that CA as `sslrootcert` connects, while a CA that did not sign it is refused.

use mercator_registry::{ArtifactStore, Registry};
use sqlx::{Connection, Row};

/// The test PostgreSQL's URL and its certificate, when `scripts/test.sh` provides them.
fn postgres_with_tls() -> Option<(String, String)> {
    let url = std::env::var("MERCATOR_TEST_POSTGRES_URL").ok();
    let ca = std::env::var("MERCATOR_TEST_POSTGRES_CA").ok();
    match (url, ca) {
        (Some(url), Some(ca)) => Some((url, ca)),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must provide MERCATOR_TEST_POSTGRES_URL and MERCATOR_TEST_POSTGRES_CA"
            );
            eprintln!("no PostgreSQL with TLS: skipped");
            None
        }
    }
}

#[tokio::test]
async fn the_registry_reaches_postgres_over_verified_tls() {
    let Some((url, ca)) = postgres_with_tls() else {
        return;
    };
    let verified = format!("{url}?sslmode=verify-full&sslrootcert={ca}");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&verified)
        .await
        .expect("verified TLS connection");
    let row = sqlx::query("SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_ssl");
    assert_eq!(row.try_get::<String, _>("ssl").expect("ssl"), "true");

    let dir = tempfile::tempdir().expect("dir");
    let artifacts = ArtifactStore::open(&dir.path().display().to_string()).expect("artifacts");
    let registry = Registry::open(
        &verified,
        artifacts.clone(),
        std::sync::Arc::new(mercator_server::models::BuildCheck),
    )
    .await
    .expect("the registry opens over verified TLS");
    registry.list_models().await.expect("and reads");

    // A CA that did not sign the server's certificate: refused, not silently trusted.
    let other = dir.path().join("other-ca.pem");
    let ca = crate::tls::Ca::new("not the database's CA");
    std::fs::write(&other, ca.pem()).expect("write ca");
    let wrong = format!("{url}?sslmode=verify-full&sslrootcert={}", other.display());
    let refused = Registry::open(
        &wrong,
        artifacts,
        std::sync::Arc::new(mercator_server::models::BuildCheck),
    )
    .await;
    assert!(
        refused.is_err(),
        "a certificate from an untrusted CA was accepted"
    );
}
