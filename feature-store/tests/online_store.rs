//! What every online store backend must do, run against each: the embedded store (a temp
//! dir) and Redis when `MERCATOR_TEST_REDIS_URL` names a server (as `.ci/run` does), each
//! test under a key prefix of its own. Newest event wins whatever the arrival order, TTL
//! gives per-value statuses, composite keys work, and a bad row fails the whole call.

use std::sync::Arc;

use mercator_features::online::{EmbeddedStore, OnlineStore, PushRow, RedisStore, ViewRead};
use mercator_features::{FeatureError, Status, Value};

mod common;
use common::{row, view};

const HOUR: i64 = 3_600_000_000;

/// Each backend under test, with what keeps its storage alive.
async fn stores() -> Vec<(&'static str, Arc<dyn OnlineStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("test setup");
    let mut out: Vec<(&'static str, Arc<dyn OnlineStore>, tempfile::TempDir)> = vec![(
        "embedded",
        Arc::new(EmbeddedStore::open(dir.path()).expect("test setup")),
        dir,
    )];
    match std::env::var("MERCATOR_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            let prefix = format!(
                "test-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("test setup")
                    .as_nanos()
            );
            let redis = RedisStore::connect_with_prefix(&url, &prefix)
                .await
                .expect("connect to redis");
            out.push((
                "redis",
                Arc::new(redis),
                tempfile::tempdir().expect("test setup"),
            ));
        }
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set MERCATOR_TEST_REDIS_URL so the Redis backend is tested"
            );
            eprintln!("MERCATOR_TEST_REDIS_URL unset: Redis tests skipped");
        }
    }
    out
}

async fn orders(store: &dyn OnlineStore, id: &str, now: i64) -> (Option<Value>, Status) {
    store
        .read(&view("activity"), &[vec![id.into()]], &["orders_90d"], now)
        .await
        .expect("read")[0][0]
        .clone()
}

#[tokio::test]
async fn newest_event_wins_whatever_the_arrival_order() {
    for (backend, store, _dir) in stores().await {
        let store = store.as_ref();
        let v = view("activity");
        let out = store
            .write(&v, &[row("c1", 200, 2.0), row("c2", 100, 7.0)])
            .await
            .unwrap();
        assert_eq!((out.written, out.ignored_older), (2, 0), "{backend}");
        let late = store.write(&v, &[row("c1", 100, 1.0)]).await.unwrap();
        assert_eq!(
            (late.written, late.ignored_older),
            (0, 1),
            "{backend}: a late event does not overwrite a newer one"
        );
        assert_eq!(orders(store, "c1", 200).await.0, Some(Value::Float32(2.0)));
        store.write(&v, &[row("c1", 200, 3.0)]).await.unwrap();
        assert_eq!(
            orders(store, "c1", 200).await.0,
            Some(Value::Float32(3.0)),
            "{backend}: same event time, the last write wins"
        );
        // Within one call, out of order: the newest of the call stays.
        let out = store
            .write(
                &v,
                &[row("c3", 30, 3.0), row("c3", 50, 5.0), row("c3", 40, 4.0)],
            )
            .await
            .unwrap();
        assert_eq!((out.written, out.ignored_older), (2, 1), "{backend}");
        assert_eq!(orders(store, "c3", 50).await.0, Some(Value::Float32(5.0)));
        // A newer row replaces the whole row: a field it does not give becomes null.
        let only_orders = PushRow {
            key: vec!["c1".into()],
            event_time_micros: 300,
            values: vec![("orders_90d".into(), Some(Value::Float32(4.0)))],
        };
        store.write(&v, &[only_orders]).await.unwrap();
        let got = store
            .read(&v, &[vec!["c1".into()]], &["orders_90d", "segment"], 300)
            .await
            .unwrap();
        assert_eq!(
            got[0],
            vec![
                (Some(Value::Float32(4.0)), Status::Present),
                (None, Status::Missing)
            ],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn statuses_present_missing_expired() {
    for (backend, store, _dir) in stores().await {
        let store = store.as_ref();
        let v = view("activity");
        store.write(&v, &[row("c1", 10 * HOUR, 5.0)]).await.unwrap();
        let got = store
            .read(
                &v,
                &[vec!["c1".into()], vec!["nobody".into()]],
                &["orders_90d", "vip", "segment"],
                10 * HOUR + HOUR / 2,
            )
            .await
            .unwrap();
        assert_eq!(got[0][0], (Some(Value::Float32(5.0)), Status::Present));
        assert_eq!(
            got[0][1],
            (None, Status::Missing),
            "{backend}: a field the row did not give"
        );
        assert_eq!(
            got[0][2],
            (Some(Value::String("s5".into())), Status::Present)
        );
        assert!(
            got[1]
                .iter()
                .all(|(v, s)| v.is_none() && *s == Status::Missing),
            "{backend}: an unknown entity"
        );
        assert_eq!(
            orders(store, "c1", 12 * HOUR).await,
            (None, Status::Expired),
            "{backend}"
        );
        assert!(
            store
                .read(&v, &[vec!["c1".into()]], &["nope"], 0)
                .await
                .is_err(),
            "{backend}: an unknown field is refused"
        );
        assert!(store.read(&v, &[], &["vip"], 0).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn several_views_read_together_as_each_alone() {
    for (backend, store, _dir) in stores().await {
        let store = store.as_ref();
        let (activity, loyalty) = (view("activity"), view("loyalty"));
        store
            .write(&activity, &[row("c1", 10 * HOUR, 5.0)])
            .await
            .unwrap();
        let points = |id: &str, n: i64| PushRow {
            key: vec![id.into()],
            event_time_micros: HOUR,
            values: vec![("points".into(), Some(Value::Int64(n)))],
        };
        store
            .write(&loyalty, &[points("c1", 7), points("c2", 9)])
            .await
            .unwrap();
        let keys = [vec!["c1".into()], vec!["c2".into()], vec!["nobody".into()]];
        let now = 12 * HOUR; // activity's 1 h TTL has passed; loyalty has none
        let a_fields: &[&str] = &["orders_90d", "segment"];
        let l_fields: &[&str] = &["points"];
        let read = |view, fields, keys| ViewRead { view, fields, keys };
        // Loyalty for other entities than activity, in the same call.
        let few = &keys[1..];
        let both = store
            .read_views(
                &[
                    read(&activity, a_fields, &keys),
                    read(&loyalty, l_fields, &keys),
                    read(&loyalty, l_fields, few),
                ],
                now,
            )
            .await
            .unwrap();
        let alone = [
            store.read(&activity, &keys, a_fields, now).await.unwrap(),
            store.read(&loyalty, &keys, l_fields, now).await.unwrap(),
            store.read(&loyalty, few, l_fields, now).await.unwrap(),
        ];
        assert_eq!(both, alone, "{backend}");
        assert_eq!(both[2].len(), 2, "{backend}: each read its own entities");
        assert_eq!(both[0][0][0], (None, Status::Expired), "{backend}");
        assert_eq!(both[1][0][0], (Some(Value::Int64(7)), Status::Present));
        assert_eq!(both[1][1][0], (Some(Value::Int64(9)), Status::Present));
        assert_eq!(both[1][2][0], (None, Status::Missing));
        let bad: &[&str] = &["nope"];
        assert!(
            store
                .read_views(
                    &[read(&activity, a_fields, &keys), read(&loyalty, bad, few)],
                    now
                )
                .await
                .is_err(),
            "{backend}: an unknown field in any view refuses the call"
        );
    }
}

#[tokio::test]
async fn composite_keys_and_every_type_round_trip() {
    for (backend, store, _dir) in stores().await {
        let store = store.as_ref();
        let sales = view("sales");
        let key = |s: &str, l: &str| vec![s.to_string(), l.to_string()];
        let values = vec![
            (
                "units".to_string(),
                Some(Value::Float32List(vec![1.0, 0.0, 3.5, f32::NAN])),
            ),
            ("price".to_string(), Some(Value::Float64(19.99))),
            ("stock".to_string(), Some(Value::Int64(-3))),
        ];
        store
            .write(
                &sales,
                &[PushRow {
                    key: key("sku1", "berlin"),
                    event_time_micros: 0,
                    values: values.clone(),
                }],
            )
            .await
            .unwrap();
        let got = store
            .read(
                &sales,
                &[
                    key("sku1", "berlin"),
                    key("sku1", "paris"),
                    key("berlin", "sku1"),
                ],
                &["stock", "price", "units"],
                i64::MAX,
            )
            .await
            .unwrap();
        assert_eq!(got[0][0], (Some(Value::Int64(-3)), Status::Present));
        assert_eq!(got[0][1], (Some(Value::Float64(19.99)), Status::Present));
        match &got[0][2] {
            (Some(Value::Float32List(l)), Status::Present) => {
                assert_eq!(&l[..3], &[1.0, 0.0, 3.5]);
                assert!(l[3].is_nan(), "{backend}: NaN survives");
            }
            other => panic!("{backend}: {other:?}"),
        }
        assert!(
            got[1..]
                .iter()
                .flatten()
                .all(|(_, s)| *s == Status::Missing),
            "{backend}: no TTL never expires, other keys are other entities"
        );
    }
}

#[tokio::test]
async fn each_view_knows_its_newest_event_time() {
    for (backend, store, _dir) in stores().await {
        let store = store.as_ref();
        let (activity, sales) = (view("activity"), view("sales"));
        let newest = |v| async move { store.newest_event_micros(v).await.unwrap() };
        assert_eq!(
            newest(&activity).await,
            None,
            "{backend}: nothing written yet"
        );
        store
            .write(
                &activity,
                &[row("c1", 5 * HOUR, 1.0), row("c2", 9 * HOUR, 2.0)],
            )
            .await
            .unwrap();
        assert_eq!(newest(&activity).await, Some(9 * HOUR), "{backend}");
        // Older rows, even of new entities, do not move it back.
        store
            .write(&activity, &[row("c3", HOUR, 1.0), row("c2", 2 * HOUR, 0.0)])
            .await
            .unwrap();
        assert_eq!(newest(&activity).await, Some(9 * HOUR), "{backend}");
        store
            .write(&activity, &[row("c1", 10 * HOUR, 1.0)])
            .await
            .unwrap();
        assert_eq!(newest(&activity).await, Some(10 * HOUR), "{backend}");
        assert_eq!(newest(&sales).await, None, "{backend}: per view");
        // A refused call changes nothing.
        let mut bad = row("c4", 20 * HOUR, 1.0);
        bad.values[0].1 = Some(Value::Int64(1));
        store.write(&activity, &[bad]).await.expect_err("bad row");
        assert_eq!(newest(&activity).await, Some(10 * HOUR), "{backend}");
    }
}

#[tokio::test]
async fn a_bad_row_fails_the_whole_call_and_names_itself() {
    for (backend, store, _dir) in stores().await {
        let store = store.as_ref();
        let v = view("activity");
        let mut wrong_type = row("c2", 1, 1.0);
        wrong_type.values[0].1 = Some(Value::Int64(1));
        let mut unknown = row("c2", 1, 1.0);
        unknown
            .values
            .push(("colour".into(), Some(Value::String("red".into()))));
        let mut twice = row("c2", 1, 1.0);
        twice.values.push(("segment".into(), None));
        let wrong_key = PushRow {
            key: vec![],
            ..row("c2", 1, 1.0)
        };
        let separator_in_key = PushRow {
            key: vec!["a\u{1f}b".into()],
            ..row("c2", 1, 1.0)
        };
        let too_long_key = PushRow {
            key: vec!["k".repeat(1025)],
            ..row("c2", 1, 1.0)
        };
        for (bad, field, needle) in [
            (
                wrong_type,
                "orders_90d",
                "int64 given, the field is float32",
            ),
            (unknown, "colour", "no field 'colour'"),
            (twice, "segment", "given twice"),
            (wrong_key, "customer_id", "0 key values given"),
            (separator_in_key, "customer_id", "U+001F"),
            (too_long_key, "customer_id", "at most 1024"),
        ] {
            match store.write(&v, &[row("c1", 1, 1.0), bad]).await {
                Err(FeatureError::InvalidRow {
                    row,
                    field: f,
                    message,
                }) => {
                    assert_eq!((row, f.as_str()), (1, field), "{backend}");
                    assert!(message.contains(needle), "{backend}: {message}");
                }
                other => panic!("{backend}: expected InvalidRow, got {other:?}"),
            }
        }
        assert_eq!(
            orders(store, "c1", 1).await,
            (None, Status::Missing),
            "{backend}: nothing of a refused call is applied"
        );
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_not_a_panic() {
    match RedisStore::connect("redis://127.0.0.1:1/0").await {
        Err(FeatureError::Unavailable(m)) => assert!(m.contains("redis"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(matches!(
        RedisStore::connect("redis://[bad").await,
        Err(FeatureError::InvalidRequest { .. })
    ));
}

/// `rediss://` against the test Redis's TLS port (`scripts/redis.sh`: a throwaway CA, and
/// client certificates required): with the CA and a client certificate it stores and
/// reads; without the client certificate, or trusting only the system's roots or another
/// CA, it does not connect.
#[tokio::test]
async fn redis_over_tls_verifies_the_server_and_presents_a_client_certificate() {
    let (Ok(base), Ok(dir)) = (
        std::env::var("MERCATOR_TEST_REDIS_TLS_URL"),
        std::env::var("MERCATOR_TEST_REDIS_TLS_DIR"),
    ) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set MERCATOR_TEST_REDIS_TLS_URL (scripts/redis.sh with openssl)"
        );
        eprintln!("MERCATOR_TEST_REDIS_TLS_URL unset: Redis over TLS not tested");
        return;
    };
    let file = |name: &str| format!("{dir}/{name}");
    let full = format!(
        "{base}/0?tls_ca_file={}&tls_cert_file={}&tls_key_file={}",
        file("ca.crt"),
        file("client.crt"),
        file("client.key")
    );
    let prefix = format!("tls-test-{}", std::process::id());
    let store = RedisStore::connect_with_prefix(&full, &prefix)
        .await
        .expect("connect over TLS");
    let v = view("activity");
    let now = 1_000 * HOUR;
    store
        .write(&v, &[row("t1", now, 4.0)])
        .await
        .expect("write");
    assert_eq!(
        orders(&store, "t1", now).await,
        (Some(Value::Float32(4.0)), Status::Present)
    );

    let other_ca = tempfile::tempdir().expect("test setup");
    let status = std::process::Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/test_ca.sh"
    ))
    .arg(other_ca.path())
    .arg("another CA")
    .status()
    .expect("run scripts/test_ca.sh");
    assert!(status.success());
    let refused = [
        // The server asks for a client certificate.
        format!("{base}/0?tls_ca_file={}", file("ca.crt")),
        // The system's roots do not hold the test CA.
        format!(
            "{base}/0?tls_cert_file={}&tls_key_file={}",
            file("client.crt"),
            file("client.key")
        ),
        // Another CA did not sign the server's certificate.
        format!(
            "{base}/0?tls_ca_file={}/ca.crt&tls_cert_file={}&tls_key_file={}",
            other_ca.path().display(),
            file("client.crt"),
            file("client.key")
        ),
    ];
    for url in refused {
        match RedisStore::connect_with_prefix(&url, &prefix).await {
            Err(FeatureError::Unavailable(_)) => {}
            other => panic!("{url}: expected Unavailable, got {other:?}"),
        }
    }
}
