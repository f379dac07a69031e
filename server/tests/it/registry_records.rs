//! Registry behaviour against real databases: every test runs on SQLite (a temp file) and,
//! when `MERCATOR_TEST_POSTGRES_URL` names a server (as `.ci/run` does), on PostgreSQL in
//! a fresh database of its own. Artifacts go through `object_store` (a local folder, or an
//! in-memory store with injected faults).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use mercator_registry::{ArtifactStore, NewVersion, Registry, RegistryError, VersionSelector};
use object_store::path::Path;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

const MODEL: &[u8] =
    include_bytes!("../../../runtime/tests/fixtures/xgboost/binary_shallow_nan-v3.model.json");

fn manifest() -> String {
    r#"{"kind":"xgboost","weights":"model.json","description":"test churn",
        "inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}],
        "outputs":[{"name":"probability","datatype":"FP32","shape":[-1]}]}"#
        .to_string()
}

fn new_version(model: &str) -> NewVersion {
    let mut files = BTreeMap::new();
    files.insert("mercator.json".to_string(), Bytes::from(manifest()));
    files.insert("model.json".to_string(), Bytes::from_static(MODEL));
    NewVersion {
        model: model.into(),
        files,
        actor: "alice".into(),
        ..NewVersion::default()
    }
}

/// Database URLs to run each test against; each is a fresh, empty database.
async fn databases(dir: &std::path::Path) -> Vec<String> {
    let mut urls = vec![format!("sqlite://{}/registry.db?mode=rwc", dir.display())];
    match std::env::var("MERCATOR_TEST_POSTGRES_URL") {
        Ok(admin) if !admin.is_empty() => urls.push(fresh_postgres(&admin).await),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set MERCATOR_TEST_POSTGRES_URL so PostgreSQL is tested"
            );
            eprintln!("MERCATOR_TEST_POSTGRES_URL unset: PostgreSQL tests skipped");
        }
    }
    urls
}

pub async fn fresh_postgres(admin: &str) -> String {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let name = format!("mercator_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin)
        .await
        .expect("connect to postgres");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b)
        .expect("postgres url has a database");
    format!("{base}/{name}")
}

/// One registry per database, sharing a folder (SQLite file, artifacts per registry) that
/// is removed when the last returned handle drops.
async fn registries() -> Vec<(Registry, Arc<tempfile::TempDir>)> {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let mut out = Vec::new();
    for (i, url) in databases(dir.path()).await.into_iter().enumerate() {
        let artifacts = ArtifactStore::open(
            &dir.path()
                .join(format!("artifacts-{i}"))
                .display()
                .to_string(),
        )
        .expect("artifacts");
        out.push((
            Registry::open(
                &url,
                artifacts,
                std::sync::Arc::new(mercator_server::models::BuildCheck),
            )
            .await
            .expect("open registry"),
            Arc::clone(&dir),
        ));
    }
    out
}

#[tokio::test]
async fn versions_are_numbered_and_record_their_files() {
    for (reg, _dir) in registries().await {
        let v1 = reg.register(new_version("churn")).await.expect("v1");
        let v2 = reg.register(new_version("churn")).await.expect("v2");
        assert_eq!((v1.version, v2.version), (1, 2), "{:?}", reg.backend());
        assert_eq!(v1.registered_by, "alice");
        assert_eq!(v1.description, "test churn");
        let model_file = v1
            .files
            .iter()
            .find(|f| f.path == "model.json")
            .expect("model file");
        assert_eq!(model_file.size_bytes, MODEL.len() as u64);
        assert_eq!(
            model_file.sha256,
            mercator_registry::artifacts::sha256_hex(MODEL)
        );
        let read = reg
            .get_version("churn", &VersionSelector::Number(2))
            .await
            .expect("read v2");
        assert_eq!(read.files, v2.files);
        assert_eq!(read.manifest_json, manifest());
        let fetched = reg.fetch_artifacts(&read).await.expect("fetch");
        assert_eq!(fetched["model.json"].as_ref(), MODEL);
        let (summary, versions) = reg.get_model("churn").await.expect("model");
        assert_eq!(summary.latest_version, 2);
        assert_eq!(versions.len(), 2);
        assert_eq!(reg.list_models().await.expect("list").len(), 1);
    }
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_numbers() {
    for (reg, _dir) in registries().await {
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let reg = reg.clone();
                tokio::spawn(
                    async move { reg.register(new_version("demand")).await.map(|v| v.version) },
                )
            })
            .collect();
        let mut numbers = Vec::new();
        for t in tasks {
            numbers.push(t.await.expect("join").expect("register"));
        }
        numbers.sort_unstable();
        assert_eq!(numbers, vec![1, 2, 3, 4, 5, 6], "{:?}", reg.backend());
    }
}

#[tokio::test]
async fn bad_registrations_are_refused_and_leave_nothing() {
    for (reg, _dir) in registries().await {
        let mut no_manifest = new_version("churn");
        no_manifest.files.remove("mercator.json");
        let mut no_inputs = new_version("churn");
        no_inputs.files.insert(
            "mercator.json".into(),
            Bytes::from(r#"{"kind":"xgboost","weights":"model.json","inputs":[],"outputs":[{"name":"p","datatype":"FP32","shape":[-1]}]}"#),
        );
        let mut no_weights = new_version("churn");
        no_weights.files.remove("model.json");
        let mut wrong_width = new_version("churn");
        wrong_width.files.insert(
            "mercator.json".into(),
            Bytes::from(manifest().replace("[-1,8]", "[-1,9]")),
        );
        let mut escaping = new_version("churn");
        escaping
            .files
            .insert("../evil".into(), Bytes::from_static(b"x"));
        let mut garbage_weights = new_version("churn");
        garbage_weights
            .files
            .insert("model.json".into(), Bytes::from_static(b"{not json"));
        let bad_name = new_version("Churn Model");
        let mut bad_alias = new_version("churn");
        bad_alias.alias = Some("Champion!".into());
        for (what, nv, needle) in [
            ("no manifest", no_manifest, "mercator.json"),
            ("no inputs", no_inputs, "inputs"),
            ("no weights", no_weights, "weights file"),
            ("wrong width", wrong_width, "9 features"),
            ("escaping path", escaping, "../evil"),
            ("garbage weights", garbage_weights, "XGBoost"),
            ("bad name", bad_name, "model"),
            ("bad alias", bad_alias, "alias"),
        ] {
            match reg.register(nv).await {
                Err(RegistryError::InvalidArgument { field, message }) => {
                    assert!(
                        format!("{field}: {message}").contains(needle),
                        "{what}: {field}: {message}"
                    );
                }
                other => panic!("{what}: expected InvalidArgument, got {other:?}"),
            }
        }
        assert!(reg.list_models().await.expect("list").is_empty());
        assert!(reg.audit_log(None, 100).await.expect("audit").is_empty());
    }
}

#[tokio::test]
async fn aliases_move_with_history_and_roll_back() {
    for (reg, _dir) in registries().await {
        let mut first = new_version("churn");
        first.alias = Some("champion".into());
        reg.register(first).await.expect("v1");
        reg.register(new_version("churn")).await.expect("v2");
        let mv = reg
            .set_alias("churn", "champion", 2, "bob", "better AUC")
            .await
            .expect("promote");
        assert_eq!((mv.from_version, mv.to_version), (Some(1), 2));
        let champion = reg
            .get_version("churn", &VersionSelector::Alias("champion".into()))
            .await
            .expect("champion");
        assert_eq!(champion.version, 2);
        assert_eq!(champion.aliases, vec!["champion".to_string()]);

        let back = reg
            .rollback_alias("churn", "champion", "carol", "")
            .await
            .expect("rollback");
        assert_eq!((back.from_version, back.to_version), (Some(2), 1));
        assert_eq!(
            reg.get_version("churn", &VersionSelector::Alias("champion".into()))
                .await
                .expect("c")
                .version,
            1
        );

        let history = reg
            .alias_history("churn", Some("champion"))
            .await
            .expect("history");
        let moves: Vec<_> = history
            .iter()
            .map(|m| (m.from_version, m.to_version, m.actor.as_str()))
            .collect();
        assert_eq!(
            moves,
            vec![
                (None, 1, "alice"),
                (Some(1), 2, "bob"),
                (Some(2), 1, "carol")
            ]
        );
        assert_eq!(history[1].reason, "better AUC");

        let actions: Vec<String> = reg
            .audit_log(Some("churn"), 100)
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            vec![
                "rollback_alias",
                "set_alias",
                "register",
                "set_alias",
                "register"
            ]
        );

        assert!(matches!(
            reg.set_alias("churn", "champion", 7, "x", "").await,
            Err(RegistryError::NotFound(_))
        ));
        assert!(matches!(
            reg.set_alias("nope", "champion", 1, "x", "").await,
            Err(RegistryError::NotFound(_))
        ));
        assert!(matches!(
            reg.get_version("churn", &VersionSelector::Alias("staging".into()))
                .await,
            Err(RegistryError::NotFound(_))
        ));
        let mut fresh = new_version("other");
        fresh.alias = Some("champion".into());
        reg.register(fresh).await.expect("other");
        assert!(matches!(
            reg.rollback_alias("other", "champion", "x", "").await,
            Err(RegistryError::FailedPrecondition(_))
        ));
    }
}

#[tokio::test]
async fn archive_refuses_aliased_versions_and_archived_ones_cannot_be_aliased() {
    for (reg, _dir) in registries().await {
        let mut first = new_version("churn");
        first.alias = Some("champion".into());
        reg.register(first).await.expect("v1");
        reg.register(new_version("churn")).await.expect("v2");
        assert!(matches!(
            reg.archive("churn", 1, "x").await,
            Err(RegistryError::FailedPrecondition(_))
        ));
        let archived = reg.archive("churn", 2, "x").await.expect("archive v2");
        assert_eq!(
            archived.status,
            mercator_registry::model::VersionStatus::Archived
        );
        assert!(matches!(
            reg.set_alias("churn", "challenger", 2, "x", "").await,
            Err(RegistryError::FailedPrecondition(_))
        ));
        assert!(matches!(
            reg.archive("churn", 9, "x").await,
            Err(RegistryError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn traffic_splits_are_stored_whole_and_audited() {
    use mercator_registry::model::TrafficRoute;
    let route = |alias: &str, percent, shadow| TrafficRoute {
        alias: alias.into(),
        percent,
        shadow,
    };
    for (reg, _dir) in registries().await {
        reg.register(new_version("churn")).await.expect("v1");
        reg.register(new_version("churn")).await.expect("v2");
        reg.set_alias("churn", "champion", 1, "ann", "")
            .await
            .expect("alias");
        reg.set_alias("churn", "challenger", 2, "ann", "")
            .await
            .expect("alias");
        let split = vec![
            route("champion", 90, false),
            route("challenger", 10, false),
            route("champion-shadow-free", 5, true),
        ];
        // Every alias must exist: nothing is stored when one does not.
        let err = reg.set_traffic("churn", &split, "ann", "").await;
        assert!(
            matches!(&err, Err(RegistryError::InvalidArgument { field, .. }) if field == "routes[2].alias"),
            "{err:?}"
        );
        let (summary, _) = reg.get_model("churn").await.expect("model");
        assert!(summary.traffic.is_empty(), "{:?}", reg.backend());

        let split = vec![route("challenger", 10, false), route("champion", 90, false)];
        let stored = reg
            .set_traffic("churn", &split, "ann", "canary")
            .await
            .expect("split");
        assert_eq!(
            stored,
            vec![route("challenger", 10, false), route("champion", 90, false)]
        );
        // Replaced whole: the shadow-only split leaves no live route behind.
        reg.set_traffic("churn", &[route("challenger", 100, true)], "ann", "")
            .await
            .expect("shadow");
        let listed = reg.list_models().await.expect("list");
        assert_eq!(listed[0].traffic, vec![route("challenger", 100, true)]);
        for bad in [
            vec![route("champion", 50, false)],
            vec![route("champion", 101, false)],
            vec![route("champion", 100, false), route("champion", 10, true)],
        ] {
            assert!(
                matches!(
                    reg.set_traffic("churn", &bad, "ann", "").await,
                    Err(RegistryError::InvalidArgument { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(
            reg.set_traffic("churn", &[], "ann", "")
                .await
                .expect("clear")
                .is_empty()
        );
        let audit = reg.audit_log(Some("churn"), 20).await.expect("audit");
        assert_eq!(
            audit.iter().filter(|e| e.action == "set_traffic").count(),
            3,
            "{:?}",
            reg.backend()
        );
    }
}

#[tokio::test]
async fn promote_keeps_the_previous_champion() {
    for (reg, _dir) in registries().await {
        for _ in 0..3 {
            reg.register(new_version("churn")).await.expect("version");
        }
        let (first, none) = reg.promote("churn", 1, "ann", "first").await.expect("v1");
        assert_eq!((first.from_version, first.to_version), (None, 1));
        assert!(none.is_none(), "no champion before: no previous");
        let (champion, previous) = reg.promote("churn", 3, "ann", "better").await.expect("v3");
        assert_eq!((champion.from_version, champion.to_version), (Some(1), 3));
        let previous = previous.expect("previous moved");
        assert_eq!(
            (previous.alias.as_str(), previous.to_version),
            ("previous", 1)
        );
        let (summary, _) = reg.get_model("churn").await.expect("model");
        let alias = |name: &str| {
            summary
                .aliases
                .iter()
                .find(|a| a.name == name)
                .map(|a| a.version)
        };
        assert_eq!((alias("champion"), alias("previous")), (Some(3), Some(1)));
        assert!(matches!(
            reg.promote("churn", 3, "ann", "").await,
            Err(RegistryError::FailedPrecondition(_))
        ));
        assert!(matches!(
            reg.promote("churn", 9, "ann", "").await,
            Err(RegistryError::NotFound(_))
        ));
        let back = reg
            .rollback_alias("churn", "champion", "ann", "")
            .await
            .expect("rollback");
        assert_eq!(back.to_version, 1);
        let audit = reg.audit_log(Some("churn"), 10).await.expect("audit");
        assert_eq!(
            audit.iter().filter(|e| e.action == "promote").count(),
            3,
            "one audit entry per alias moved"
        );
    }
}

#[tokio::test]
async fn load_reports_keep_each_instances_latest_attempt() {
    for (reg, _dir) in registries().await {
        reg.register(new_version("churn")).await.expect("v1");
        let at = chrono::Utc::now();
        let failed = mercator_registry::LoadReport {
            model: "churn".into(),
            version: 1,
            instance: "pod-a".into(),
            loaded: false,
            reason: "integrity".into(),
            message: "model.json: sha256 mismatch".into(),
            attempts: 3,
            at,
            seen_at: at,
        };
        reg.report_load(&failed).await.expect("report");
        let other = mercator_registry::LoadReport {
            instance: "pod-b".into(),
            loaded: true,
            reason: String::new(),
            message: String::new(),
            attempts: 0,
            ..failed.clone()
        };
        reg.report_load(&other).await.expect("report b");
        let got = reg.load_reports("churn").await.expect("reports");
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].instance.as_str(), got[0].loaded, got[0].attempts),
            ("pod-a", false, 3)
        );
        assert_eq!(got[0].message, failed.message);
        assert!((got[0].at - at).num_milliseconds().abs() < 1);
        // A later attempt replaces the instance's row.
        let recovered = mercator_registry::LoadReport {
            loaded: true,
            reason: String::new(),
            message: String::new(),
            attempts: 0,
            ..failed.clone()
        };
        reg.report_load(&recovered).await.expect("recovered");
        let got = reg.load_reports("churn").await.expect("reports");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|r| r.loaded));
        assert!(reg.load_reports("other").await.expect("none").is_empty());
        assert!(matches!(
            reg.load_reports("Bad Name").await,
            Err(RegistryError::InvalidArgument { .. })
        ));
        // A heartbeat refreshes every report of its instance, and only those.
        reg.heartbeat("pod-b").await.expect("heartbeat");
        let got = reg.load_reports("churn").await.expect("reports");
        assert_eq!(got[0].seen_at, got[0].at, "pod-a has not been heard from");
        assert!(got[1].seen_at > got[1].at, "pod-b's heartbeat is recorded");
    }
}

#[tokio::test]
async fn corrupted_artifacts_fail_the_checksum() {
    for (reg, _dir) in registries().await {
        let v = reg.register(new_version("churn")).await.expect("v1");
        let mut changed = MODEL.to_vec();
        changed[100] ^= 1;
        reg.artifacts()
            .overwrite_for_test(&v, "model.json", Bytes::from(changed))
            .await
            .expect("overwrite");
        match reg.fetch_artifacts(&v).await {
            Err(RegistryError::Integrity(msg)) => assert!(msg.contains("model.json"), "{msg}"),
            other => panic!("expected an integrity error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn database_immutability_is_enforced_by_the_schema() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    for url in databases(dir.path()).await {
        let artifacts = ArtifactStore::open("memory://").expect("artifacts");
        let reg = Registry::open(
            &url,
            artifacts,
            std::sync::Arc::new(mercator_server::models::BuildCheck),
        )
        .await
        .expect("open");
        let mut first = new_version("churn");
        first.alias = Some("champion".into());
        reg.register(first).await.expect("v1");
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
        for refused in [
            "UPDATE model_versions SET manifest = '{}'",
            "UPDATE artifact_files SET sha256 = 'x'",
            "DELETE FROM alias_history",
            "UPDATE alias_history SET to_version = 5",
            "UPDATE audit_log SET actor = 'mallory'",
        ] {
            assert!(
                sqlx::query(refused).execute(&mut conn).await.is_err(),
                "{url}: {refused} must be refused"
            );
        }
        sqlx::query("UPDATE model_versions SET status = 'ready'")
            .execute(&mut conn)
            .await
            .expect("status may change");
    }
}

/// An in-memory store whose `copy` fails while `fail_copy` is set: a registration that
/// breaks after staging must leave no version behind.
#[derive(Debug)]
struct FlakyStore {
    inner: object_store::memory::InMemory,
    fail_copy: AtomicBool,
}

impl fmt::Display for FlakyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlakyStore")
    }
}

#[async_trait::async_trait]
impl ObjectStore for FlakyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    async fn delete(&self, location: &Path) -> object_store::Result<()> {
        self.inner.delete(location).await
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        if self.fail_copy.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic {
                store: "flaky",
                source: "injected copy failure".into(),
            });
        }
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(&self, from: &Path, to: &Path) -> object_store::Result<()> {
        self.inner.copy_if_not_exists(from, to).await
    }
}

#[tokio::test]
async fn a_failure_midway_leaves_no_half_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    for url in databases(dir.path()).await {
        let flaky = Arc::new(FlakyStore {
            inner: object_store::memory::InMemory::new(),
            fail_copy: AtomicBool::new(false),
        });
        let reg = Registry::open(
            &url,
            ArtifactStore::from_store(flaky.clone(), "memory://flaky"),
            std::sync::Arc::new(mercator_server::models::BuildCheck),
        )
        .await
        .expect("open");
        reg.register(new_version("churn")).await.expect("v1");
        flaky.fail_copy.store(true, Ordering::SeqCst);
        let mut second = new_version("churn");
        second.alias = Some("champion".into());
        assert!(matches!(
            reg.register(second).await,
            Err(RegistryError::Storage(_))
        ));
        let (summary, versions) = reg.get_model("churn").await.expect("model");
        assert_eq!((summary.latest_version, versions.len()), (1, 1));
        assert!(summary.aliases.is_empty());
        let staged: Vec<_> =
            futures::TryStreamExt::try_collect::<Vec<_>>(flaky.list(Some(&Path::from("staging"))))
                .await
                .expect("list");
        assert!(staged.is_empty(), "staging cleaned up: {staged:?}");
        flaky.fail_copy.store(false, Ordering::SeqCst);
        assert_eq!(
            reg.register(new_version("churn"))
                .await
                .expect("v2")
                .version,
            2
        );
    }
}

/// Creates a bucket on an S3-compatible server with a bare HTTP request (path-style).
async fn create_bucket(endpoint: &str, bucket: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .expect("connect to the S3 endpoint");
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "create bucket: {response}"
    );
}

/// Artifacts on S3 (an S3-compatible test server, `MERCATOR_TEST_S3_ENDPOINT`), through
/// the same object_store code path production uses for `s3://` URLs.
#[tokio::test]
async fn artifacts_round_trip_through_s3() {
    let endpoint = match std::env::var("MERCATOR_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set MERCATOR_TEST_S3_ENDPOINT so S3 is tested"
            );
            eprintln!("MERCATOR_TEST_S3_ENDPOINT unset: S3 test skipped");
            return;
        }
    };
    let bucket = format!("mercator-{}", uuid::Uuid::new_v4().simple());
    create_bucket(&endpoint, &bucket).await;
    let options = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let artifacts =
        ArtifactStore::open_with(&format!("s3://{bucket}/team-a"), options).expect("s3 store");
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/registry.db?mode=rwc", dir.path().display());
    let reg = Registry::open(
        &url,
        artifacts,
        std::sync::Arc::new(mercator_server::models::BuildCheck),
    )
    .await
    .expect("open");
    let mut first = new_version("churn");
    first.alias = Some("champion".into());
    let v1 = reg.register(first).await.expect("register on s3");
    let fetched = reg.fetch_artifacts(&v1).await.expect("fetch from s3");
    assert_eq!(fetched["model.json"].as_ref(), MODEL);
    assert_eq!(
        reg.register(new_version("churn"))
            .await
            .expect("v2")
            .version,
        2
    );
    let mut changed = MODEL.to_vec();
    changed[10] ^= 1;
    reg.artifacts()
        .overwrite_for_test(&v1, "model.json", Bytes::from(changed))
        .await
        .expect("overwrite");
    assert!(matches!(
        reg.fetch_artifacts(&v1).await,
        Err(RegistryError::Integrity(_))
    ));
    let bad =
        ArtifactStore::open_with("s3://b", [("aws_no_such_key".to_string(), "x".to_string())]);
    assert!(matches!(bad, Err(RegistryError::Config(_))));
}

#[tokio::test]
async fn feature_definitions_are_revisioned_and_race_safe() {
    for (reg, _dir) in registries().await {
        let backend = reg.backend();
        assert_eq!(reg.feature_definitions().await.expect("read"), None);
        assert_eq!(
            reg.save_feature_definitions(None, "a = 1", "alice", &[])
                .await
                .expect("first"),
            1
        );
        // A second apply that checked revision "none" lost the race: refused.
        let stale = reg
            .save_feature_definitions(None, "b = 2", "bob", &[])
            .await;
        assert!(
            matches!(stale, Err(RegistryError::FailedPrecondition(_))),
            "{backend:?}: {stale:?}"
        );
        assert_eq!(
            reg.save_feature_definitions(Some(1), "c = 3", "carol", &[])
                .await
                .expect("second"),
            2
        );
        assert_eq!(
            reg.feature_definitions().await.expect("read"),
            Some((2, "c = 3".to_string()))
        );
        // Concurrent applies from the same revision: exactly one wins.
        let (x, y) = tokio::join!(
            reg.save_feature_definitions(Some(2), "x", "x", &[]),
            reg.save_feature_definitions(Some(2), "y", "y", &[]),
        );
        assert_eq!(
            [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count(),
            1,
            "{backend:?}: {x:?} {y:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_wait_for_each_other_instead_of_failing() {
    for (reg, _dir) in registries().await {
        reg.register(new_version("churn")).await.expect("v1");
        reg.register(new_version("churn")).await.expect("v2");
        let mut tasks = Vec::new();
        for i in 0..32u64 {
            let reg = reg.clone();
            tasks.push(tokio::spawn(async move {
                reg.set_alias("churn", "champion", 1 + i % 2, "ann", "race")
                    .await
                    .map(|_| ())
            }));
        }
        for t in tasks {
            t.await
                .expect("join")
                .expect("every concurrent alias move lands");
        }
        let history = reg
            .alias_history("churn", Some("champion"))
            .await
            .expect("history");
        assert_eq!(history.len(), 32, "{:?}", reg.backend());
    }
}

/// Replicas starting at once against a new PostgreSQL database all bring the schema up
/// (sqlx's migrator holds a PostgreSQL advisory lock while it migrates), and all see one
/// registry: what one registers, the others read.
#[tokio::test]
async fn replicas_starting_together_migrate_one_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(url) = databases(dir.path())
        .await
        .into_iter()
        .find(|u| u.starts_with("postgres"))
    else {
        return;
    };
    let opens = (0..6).map(|_| {
        let artifacts = ArtifactStore::open(&dir.path().join("artifacts").display().to_string())
            .expect("artifacts");
        Registry::open(
            &url,
            artifacts,
            Arc::new(mercator_server::models::BuildCheck),
        )
    });
    let replicas: Vec<Registry> = futures::future::join_all(opens)
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .expect("every replica opens the registry");
    let v = replicas[0]
        .register(new_version("churn"))
        .await
        .expect("register");
    for r in &replicas[1..] {
        let seen = r
            .get_version("churn", &VersionSelector::Number(v.version))
            .await
            .expect("another replica reads it");
        assert_eq!(seen.version, v.version);
    }
}
