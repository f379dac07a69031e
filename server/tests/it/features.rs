//! The FeatureStore service over gRPC: apply and list definitions, push rows (a bad row
//! fails the call and writes nothing), read online features with statuses, and keep
//! everything across a restart.

use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb, feature_value::Kind};
use tonic::transport::Channel;

use crate::harness::TestServer;

const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "activity"
entity = "customer"
ttl = "30d"
fields = [
  { name = "orders_90d", type = "float32" },
  { name = "segment", type = "string" },
]
"#;

async fn client(server: &TestServer) -> FeatureStoreClient<Channel> {
    FeatureStoreClient::new(server.channel().await)
}

fn now() -> prost_types::Timestamp {
    let t = chrono::Utc::now();
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: 0,
    }
}

fn push_row(id: &str, orders: f32, event_time: prost_types::Timestamp) -> pb::PushRow {
    pb::PushRow {
        entity_key: vec![id.into()],
        event_time: Some(event_time),
        values: [
            (
                "orders_90d".to_string(),
                pb::FeatureValue {
                    kind: Some(Kind::Float32(orders)),
                },
            ),
            (
                "segment".to_string(),
                pb::FeatureValue {
                    kind: Some(Kind::String("gold".into())),
                },
            ),
        ]
        .into(),
    }
}

async fn read(c: &mut FeatureStoreClient<Channel>, ids: &[&str]) -> pb::GetOnlineFeaturesResponse {
    c.get_online_features(pb::GetOnlineFeaturesRequest {
        features: vec!["activity:orders_90d".into(), "activity:segment".into()],
        entities: ids
            .iter()
            .map(|id| pb::EntityKey {
                values: vec![(*id).into()],
            })
            .collect(),
    })
    .await
    .expect("get online features")
    .into_inner()
}

#[tokio::test]
async fn apply_push_read_and_restart() {
    let server = TestServer::builder().start().await;
    let mut c = client(&server).await;
    let changes = c
        .apply_definitions(pb::ApplyDefinitionsRequest {
            toml: DEFS.into(),
            dry_run: false,
            allow_removals: false,
        })
        .await
        .expect("apply")
        .into_inner()
        .changes;
    assert_eq!(
        changes,
        vec!["add entity customer", "add feature view activity"]
    );
    let again = c
        .apply_definitions(pb::ApplyDefinitionsRequest {
            toml: DEFS.into(),
            dry_run: false,
            allow_removals: false,
        })
        .await
        .expect("re-apply");
    assert!(again.into_inner().changes.is_empty(), "apply is idempotent");
    let breaking = DEFS.replace(
        "\"orders_90d\", type = \"float32\"",
        "\"orders_90d\", type = \"string\"",
    );
    let err = c
        .apply_definitions(pb::ApplyDefinitionsRequest {
            toml: breaking,
            dry_run: false,
            allow_removals: false,
        })
        .await
        .expect_err("type change");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(
        err.message().contains("activity.orders_90d"),
        "{}",
        err.message()
    );

    let t = now();
    let older = prost_types::Timestamp {
        seconds: t.seconds - 3600,
        nanos: 0,
    };
    let pushed = c
        .push(pb::PushRequest {
            view: "activity".into(),
            rows: vec![push_row("c1", 4.0, t), push_row("c2", 1.0, t)],
        })
        .await
        .expect("push")
        .into_inner();
    assert_eq!((pushed.written, pushed.ignored_older), (2, 0));
    let late = c
        .push(pb::PushRequest {
            view: "activity".into(),
            rows: vec![push_row("c1", 99.0, older)],
        })
        .await
        .expect("late push");
    assert_eq!(late.into_inner().ignored_older, 1);

    let mut bad = push_row("c3", 1.0, t);
    bad.values.insert(
        "orders_90d".into(),
        pb::FeatureValue {
            kind: Some(Kind::Int64(3)),
        },
    );
    let err = c
        .push(pb::PushRequest {
            view: "activity".into(),
            rows: vec![push_row("c3", 1.0, t), bad],
        })
        .await
        .expect_err("bad row");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("rows[1].orders_90d"),
        "{}",
        err.message()
    );
    let err = c
        .push(pb::PushRequest {
            view: "nope".into(),
            rows: vec![push_row("c3", 1.0, t)],
        })
        .await
        .expect_err("unknown view");
    assert_eq!(err.code(), tonic::Code::NotFound);

    let got = read(&mut c, &["c1", "c3", "c2"]).await;
    let present = pb::FeatureStatus::Present as i32;
    let missing = pb::FeatureStatus::Missing as i32;
    assert_eq!(
        got.results[0].values[0].kind,
        Some(Kind::Float32(4.0)),
        "the late event did not win"
    );
    assert_eq!(got.results[0].statuses, vec![present, present]);
    assert_eq!(
        got.results[1].statuses,
        vec![missing, missing],
        "nothing of the refused call was written"
    );
    assert_eq!(got.results[2].values[0].kind, Some(Kind::Float32(1.0)));
    let err = c
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: vec!["activity".into()],
            entities: vec![],
        })
        .await
        .expect_err("bad reference");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("features[0]"), "{}", err.message());

    let text = server.metrics_text().await;
    for line in [
        r#"mercator_feature_values_total{field="orders_90d",status="present",view="activity"} 2"#,
        r#"mercator_feature_values_total{field="orders_90d",status="missing",view="activity"} 1"#,
        "mercator_feature_lookup_duration_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }

    // A restart keeps the definitions and every acknowledged write.
    let dir = server.stop_keeping_data().await;
    let server = TestServer::builder().data_dir(dir).start().await;
    let mut c = client(&server).await;
    let listed = c
        .list_definitions(pb::ListDefinitionsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.feature_views[0].name, "activity");
    assert_eq!(listed.feature_views[0].ttl_seconds, 30 * 86400);
    let got = read(&mut c, &["c1", "c2"]).await;
    assert_eq!(got.results[0].values[0].kind, Some(Kind::Float32(4.0)));
    assert_eq!(
        got.results[1].values[1].kind,
        Some(Kind::String("gold".into()))
    );
    server.stop().await;
}

#[tokio::test]
async fn each_view_reports_the_age_of_its_newest_row() {
    let server = TestServer::builder().start().await;
    let mut c = client(&server).await;
    c.apply_definitions(pb::ApplyDefinitionsRequest {
        toml: DEFS.into(),
        dry_run: false,
        allow_removals: false,
    })
    .await
    .expect("apply");
    let hours_ago = |h: i64| prost_types::Timestamp {
        seconds: now().seconds - h * 3600,
        nanos: 0,
    };
    // The view's TTL is known before it has rows; its age is not.
    let (ttl, text) = server
        .wait_for_metric(r#"mercator_feature_view_ttl_seconds{view="activity"}"#)
        .await;
    assert_eq!(ttl, 30.0 * 86400.0);
    assert!(
        !text.contains("mercator_feature_view_age_seconds{"),
        "no age before the first row:\n{text}"
    );
    let (newest, older) = (hours_ago(2), hours_ago(5));
    c.push(pb::PushRequest {
        view: "activity".into(),
        rows: vec![push_row("c1", 1.0, older), push_row("c2", 2.0, newest)],
    })
    .await
    .expect("push");
    let series = r#"mercator_feature_view_newest_event_timestamp_seconds{view="activity"}"#;
    let (t, text) = server.wait_for_metric(series).await;
    assert_eq!(t, newest.seconds as f64, "the newest of the rows pushed");
    let age = crate::harness::metric_value(
        &text,
        r#"mercator_feature_view_age_seconds{view="activity"}"#,
    )
    .expect("age exported with the timestamp");
    assert!(
        (7200.0..7200.0 + 60.0).contains(&age),
        "two hours old, give or take the sampling: {age}"
    );
    crate::metrics::promtool_check(&text);

    // A late row does not make the view look fresher; a newer one does.
    c.push(pb::PushRequest {
        view: "activity".into(),
        rows: vec![push_row("c3", 3.0, hours_ago(9))],
    })
    .await
    .expect("late push");
    c.push(pb::PushRequest {
        view: "activity".into(),
        rows: vec![push_row("c1", 4.0, hours_ago(1))],
    })
    .await
    .expect("newer push");
    let want = hours_ago(1).seconds as f64;
    server.wait_for_metric_where(series, |t| t == want).await;

    // A view removed from the definitions loses its series.
    c.apply_definitions(pb::ApplyDefinitionsRequest {
        toml: DEFS
            .split("[[feature_views]]")
            .next()
            .unwrap_or_default()
            .into(),
        dry_run: false,
        // A removal must now be asked for.
        allow_removals: true,
    })
    .await
    .expect("remove the view");
    for _ in 0..200 {
        if !server.metrics_text().await.contains(r#"view="activity""#) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let text = server.metrics_text().await;
    assert!(
        !text.contains("mercator_feature_view_"),
        "a removed view's freshness series stay:\n{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_applies_and_lists_definitions() {
    let server = TestServer::builder().start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("features.toml");
    std::fs::write(&file, DEFS).expect("write");
    let file = file.display().to_string();
    let url = server.url();
    let dry = crate::cli::ok(&["features", "--server", &url, "apply", &file, "--dry-run"]);
    assert!(dry.contains("would add feature view activity"), "{dry}");
    let applied = crate::cli::ok(&["features", "--server", &url, "apply", &file]);
    assert!(applied.contains("add feature view activity"), "{applied}");
    let listed = crate::cli::ok(&["features", "--server", &url, "list"]);
    assert!(
        listed.contains("activity") && listed.contains("customer (customer_id)"),
        "{listed}"
    );
    let json: serde_json::Value = serde_json::from_str(&crate::cli::ok(&[
        "features", "--server", &url, "list", "--json",
    ]))
    .expect("features list --json prints JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "entities": [{"name": "customer", "join_keys": ["customer_id"]}],
            "feature_views": [{
                "name": "activity",
                "entity": "customer",
                "ttl_seconds": 30 * 86_400,
                "fields": [
                    {"name": "orders_90d", "type": "float32"},
                    {"name": "segment", "type": "string"},
                ],
            }],
        })
    );

    // A file with one new view: as the whole state it would remove `activity`, so the
    // apply is refused, and so is its dry run (exit 1, naming the removal); with
    // `--merge` it is added beside what is applied.
    let one = dir.path().join("support.toml");
    std::fs::write(
        &one,
        "[[entities]]\nname = \"customer\"\njoin_keys = [\"customer_id\"]\n\n\
         [[feature_views]]\nname = \"support\"\nentity = \"customer\"\n\
         fields = [{ name = \"tickets_90d\", type = \"int64\" }]\n",
    )
    .expect("write");
    let one = one.display().to_string();
    for extra in [None, Some("--dry-run")] {
        let mut args = vec!["features", "--server", &url, "apply", &one];
        args.extend(extra);
        let refused = crate::cli::mercator(&args);
        assert!(
            !refused.status.success(),
            "{extra:?} must fail as the apply would"
        );
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(
            said.contains("remove feature view activity") && said.contains("--merge"),
            "{said}"
        );
    }
    let merged = crate::cli::ok(&["features", "--server", &url, "apply", &one, "--merge"]);
    assert!(merged.contains("add feature view support"), "{merged}");
    assert!(!merged.contains("remove"), "{merged}");
    let listed = crate::cli::ok(&["features", "--server", &url, "list"]);
    assert!(
        listed.contains("activity") && listed.contains("support"),
        "{listed}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_demo_loads_the_customers_features_once() {
    let server = TestServer::builder().demo().start().await;
    let mut c = client(&server).await;
    let got = c
        .get_online_features(pb::GetOnlineFeaturesRequest {
            features: vec![
                "customer_churn:orders_90d".into(),
                "customer_churn:return_rate".into(),
            ],
            entities: vec![
                pb::EntityKey {
                    values: vec!["C100000".into()],
                },
                pb::EntityKey {
                    values: vec!["C111999".into()],
                },
            ],
        })
        .await
        .expect("demo features")
        .into_inner();
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/churn/customers.csv"
    ))
    .expect("csv");
    for (result, line) in got
        .results
        .iter()
        .zip([csv.lines().nth(1), csv.lines().last()])
    {
        let cells: Vec<&str> = line.expect("line").split(',').collect();
        assert_eq!(
            result.values[0].kind,
            Some(Kind::Float32(cells[2].parse().expect("orders")))
        );
        assert_eq!(
            result.values[1].kind,
            Some(Kind::Float32(cells[5].parse().expect("return rate")))
        );
        assert_eq!(result.statuses, vec![pb::FeatureStatus::Present as i32; 2]);
    }
    // A second start over the same data leaves what is there.
    let dir = server.stop_keeping_data().await;
    let server = TestServer::builder().demo().data_dir(dir).start().await;
    server.stop().await;
}
