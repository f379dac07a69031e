//! Point-in-time retrieval against a hand-checked table: late, duplicate and out-of-order
//! events, TTL boundaries, a replaced row's nulls, unknown entities, and a refused call
//! leaving no history. Run over each online backend (embedded, and Redis when
//! `MERCATOR_TEST_REDIS_URL` is set): history must not depend on it.

use std::sync::Arc;

use mercator_features::historical::EntityRow;
use mercator_features::offline::OfflineStore;
use mercator_features::online::{EmbeddedStore, OnlineStore, PushRow, RedisStore};
use mercator_features::{FeatureStore, Status, Value};

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "1h"
fields = [
  { name = "orders", type = "float32" },
  { name = "segment", type = "string" },
]
"#;

/// (entity, minute, orders with status, segment with status).
type Expected = (
    &'static str,
    i64,
    (Option<f32>, Status),
    (Option<&'static str>, Status),
);

const T0: i64 = 1_700_000_000_000_000;
const MIN: i64 = 60_000_000;

fn at(minutes: i64) -> i64 {
    T0 + minutes * MIN
}

fn row(id: &str, minute: i64, orders: f32, segment: Option<&str>) -> PushRow {
    let mut values = vec![("orders".to_string(), Some(Value::Float32(orders)))];
    if let Some(s) = segment {
        values.push(("segment".into(), Some(Value::String(s.into()))));
    }
    PushRow {
        key: vec![id.into()],
        event_time_micros: at(minute),
        values,
    }
}

async fn online_backends(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn OnlineStore>)> {
    let mut out: Vec<(&'static str, Arc<dyn OnlineStore>)> = vec![(
        "embedded",
        Arc::new(EmbeddedStore::open(&dir.join("embedded")).expect("embedded")),
    )];
    match std::env::var("MERCATOR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix = format!("hist-{}", uuid::Uuid::new_v4().simple());
            out.push((
                "redis",
                Arc::new(
                    RedisStore::connect_with_prefix(&url, &prefix)
                        .await
                        .expect("redis"),
                ),
            ));
        }
        _ => assert!(
            std::env::var("CI").is_err(),
            "CI must set MERCATOR_TEST_REDIS_URL"
        ),
    }
    out
}

/// Creates a bucket on the S3 test server (moto accepts an unsigned PUT).
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
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

/// The offline store for a run: a local folder, or a fresh bucket on the S3 test server.
async fn offline_store(home: &std::path::Path, on_s3: bool) -> OfflineStore {
    if !on_s3 {
        return OfflineStore::open(&home.join("offline").display().to_string()).expect("offline");
    }
    let endpoint = std::env::var("MERCATOR_TEST_S3_ENDPOINT").expect("endpoint");
    let bucket = format!("history-{}", uuid::Uuid::new_v4().simple());
    create_bucket(&endpoint, &bucket).await;
    let options = [
        ("aws_endpoint", endpoint.as_str()),
        ("aws_allow_http", "true"),
        ("aws_access_key_id", "test"),
        ("aws_secret_access_key", "test"),
        ("aws_region", "us-east-1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    OfflineStore::open_with(&format!("s3://{bucket}/features"), options).expect("s3 offline")
}

#[tokio::test]
async fn point_in_time_values_match_the_hand_checked_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s3 = match std::env::var("MERCATOR_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => true,
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set MERCATOR_TEST_S3_ENDPOINT"
            );
            false
        }
    };
    // Each online backend with history in a folder; and history on S3 (via moto).
    let mut runs: Vec<(String, Arc<dyn OnlineStore>, bool)> = online_backends(dir.path())
        .await
        .into_iter()
        .map(|(name, online)| (name.to_string(), online, false))
        .collect();
    if s3 {
        let online: Arc<dyn OnlineStore> =
            Arc::new(EmbeddedStore::open(&dir.path().join("embedded-s3")).expect("embedded"));
        runs.push(("embedded, history on s3".into(), online, true));
    }
    for (backend, online, on_s3) in runs {
        let home = dir.path().join(backend.replace([',', ' '], "_"));
        let offline = offline_store(&home, on_s3).await;
        let store = FeatureStore::open_with(&home, online, offline).expect("store");
        store.apply(DEFS, false).await.expect("apply");
        // Arrival order, one call each.
        let calls = vec![
            vec![
                row("c1", 10, 1.0, Some("a")),
                row("c2", 10, 10.0, Some("b")),
            ],
            vec![row("c1", 30, 3.0, Some("a"))],
            vec![row("c1", 20, 2.0, Some("late"))], // late: arrives after the 30' event
            vec![row("c1", 30, 33.0, Some("dup"))], // same event time, written later
            vec![row("c2", 100, 20.0, None)],       // replaces c2's row: segment null
            vec![row("c3", 50, 5.0, None), row("c3", 40, 4.0, None)], // out of order in a call
        ];
        for rows in &calls {
            store.push("activity", rows).await.expect("push");
        }
        // Refused (a wrong type in its second row): nothing of it reaches history.
        let mut bad = row("c5", 10, 1.0, None);
        bad.values[0].1 = Some(Value::Int64(1));
        store
            .push("activity", &[row("c5", 10, 1.0, None), bad])
            .await
            .expect_err("refused");

        // (entity, minute) → (orders, segment) as hand-checked; None = null with status.
        use Status::{Expired, Missing, Present};
        let table: Vec<Expected> = vec![
            ("c1", 5, (None, Missing), (None, Missing)), // before the first event
            ("c1", 10, (Some(1.0), Present), (Some("a"), Present)), // at an event: included
            ("c1", 25, (Some(2.0), Present), (Some("late"), Present)), // the late event counts
            ("c1", 30, (Some(33.0), Present), (Some("dup"), Present)), // later write wins a tie
            ("c1", 89, (Some(33.0), Present), (Some("dup"), Present)),
            ("c1", 90, (Some(33.0), Present), (Some("dup"), Present)), // age = TTL: still in
            ("c1", 91, (None, Expired), (None, Expired)),              // past the TTL
            ("c2", 50, (Some(10.0), Present), (Some("b"), Present)),
            ("c2", 75, (None, Expired), (None, Expired)),
            ("c2", 100, (Some(20.0), Present), (None, Missing)), // the newer row has no segment
            ("c3", 45, (Some(4.0), Present), (None, Missing)),
            ("c3", 55, (Some(5.0), Present), (None, Missing)),
            ("c4", 100, (None, Missing), (None, Missing)), // never seen
            ("c5", 100, (None, Missing), (None, Missing)), // only in a refused call
        ];
        let rows: Vec<EntityRow> = table
            .iter()
            .map(|(id, minute, _, _)| EntityRow {
                key: vec![id.to_string()],
                timestamp_micros: at(*minute),
            })
            .collect();
        let got = store
            .get_historical(
                &["activity:orders".into(), "activity:segment".into()],
                &rows,
            )
            .await
            .expect("historical");
        for ((id, minute, orders, segment), got) in table.iter().zip(&got) {
            let want_orders = (orders.0.map(Value::Float32), orders.1);
            let want_segment = (segment.0.map(|s| Value::String(s.into())), segment.1);
            assert_eq!(
                got,
                &vec![want_orders, want_segment],
                "{backend}: {id} at minute {minute}"
            );
        }
        // The online store agrees with history at the end of time.
        let online = store
            .get_online(
                &["activity:orders".into()],
                &[vec!["c1".into()], vec!["c3".into()]],
                at(100),
            )
            .await
            .expect("online");
        assert_eq!(online[0][0], (None, Expired), "{backend}");
        assert_eq!(
            online[1][0],
            (Some(Value::Float32(5.0)), Present),
            "{backend}"
        );

        // Bad requests name the field.
        let err = store
            .get_historical(&["activity:nope".into()], &rows)
            .await
            .expect_err("unknown field");
        assert!(err.to_string().contains("features[0]"), "{err}");
        let err = store
            .get_historical(
                &["activity:orders".into()],
                &[EntityRow {
                    key: vec![],
                    timestamp_micros: 0,
                }],
            )
            .await
            .expect_err("bad key");
        assert!(err.to_string().contains("entities[0]"), "{err}");
    }
}

#[tokio::test]
async fn history_lives_in_object_storage_as_parquet() {
    // The history is plain Parquet with the keys, both timestamps and the fields.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FeatureStore::open(dir.path()).expect("store");
    store.apply(DEFS, false).await.expect("apply");
    store
        .push("activity", &[row("c1", 10, 1.5, Some("a"))])
        .await
        .expect("push");
    // Partitioned Hive-style by view and event date: `view=<v>/date=<YYYY-MM-DD>/`.
    let day = dir.path().join("offline/view=activity/date=2023-11-14");
    let files: Vec<_> = std::fs::read_dir(&day)
        .expect("the event date's partition")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1, "one file per call and date");
    let bytes = bytes::Bytes::from(std::fs::read(&files[0]).expect("read"));
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("parquet");
    let names: Vec<String> = reader
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "customer_id",
            "event_timestamp",
            "created_timestamp",
            "orders",
            "segment"
        ]
    );
}

#[tokio::test]
async fn history_is_partitioned_by_date_and_the_old_layout_is_still_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FeatureStore::open(dir.path()).expect("store");
    store.apply(DEFS, false).await.expect("apply");
    // One call spanning two days writes one file into each day's partition.
    let two_days = 2 * 24 * 60;
    store
        .push(
            "activity",
            &[
                row("c1", 10, 1.0, Some("a")),
                row("c1", two_days, 2.0, Some("b")),
            ],
        )
        .await
        .expect("push");
    let offline = dir.path().join("offline");
    for date in ["2023-11-14", "2023-11-16"] {
        let day = offline.join(format!("view=activity/date={date}"));
        assert_eq!(
            std::fs::read_dir(&day).expect("partition").count(),
            1,
            "{date}"
        );
    }
    let asked = |minute: i64| EntityRow {
        key: vec!["c1".into()],
        timestamp_micros: at(minute),
    };
    let orders = |got: &[Vec<mercator_features::online::Feature>]| -> Vec<Option<Value>> {
        got.iter().map(|r| r[0].0.clone()).collect()
    };
    let features = ["activity:orders".to_string()];
    let rows = [asked(11), asked(two_days + 1)];
    let want = vec![Some(Value::Float32(1.0)), Some(Value::Float32(2.0))];
    let got = store
        .get_historical(&features, &rows)
        .await
        .expect("history");
    assert_eq!(orders(&got), want);
    // Only the first day is needed as of minute 11 (the later day is skipped).
    let early = store
        .get_historical(&features, &rows[..1])
        .await
        .expect("history");
    assert_eq!(orders(&early), want[..1]);
    // A store written before the partitioning: the same files, flat under the view.
    let old = offline.join("activity");
    std::fs::create_dir_all(&old).expect("old dir");
    for date in ["2023-11-14", "2023-11-16"] {
        let day = offline.join(format!("view=activity/date={date}"));
        for f in std::fs::read_dir(&day).expect("partition") {
            let f = f.expect("entry").path();
            std::fs::rename(&f, old.join(f.file_name().expect("name"))).expect("move");
        }
    }
    std::fs::remove_dir_all(offline.join("view=activity")).expect("clear");
    let got = store
        .get_historical(&features, &rows)
        .await
        .expect("history");
    assert_eq!(orders(&got), want, "the old layout is read");
}
