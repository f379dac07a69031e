//! Feature-backed inference: `Churn/Score` and V2 `ModelInfer` by customer id read the
//! demo customers' features from the store and give xgboost's own probabilities; unknown,
//! partial and expired customers get per-customer statuses; bad requests are named; and
//! two servers sharing a Redis online store serve what either was pushed.

use mercator_proto::inference as v2;
use mercator_proto::v1::churn_client::ChurnClient;
use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb, customer_score::Status as CustomerStatus};
use tonic::transport::Channel;

use crate::harness::{TestServer, bytes_raw, churn_expected, f32_bytes, f32_from, input};

pub const FEATURES_TOML: &str = include_str!("../../../examples/churn/features.toml");
pub const FIELDS: [&str; 12] = [
    "days_since_last_order",
    "orders_90d",
    "spend_90d",
    "avg_order_value",
    "return_rate",
    "late_deliveries_90d",
    "support_tickets_90d",
    "last_nps",
    "discount_share",
    "tenure_days",
    "app_sessions_30d",
    "email_open_rate",
];

async fn churn(server: &TestServer) -> ChurnClient<Channel> {
    ChurnClient::new(server.channel().await)
}

pub async fn score(server: &TestServer, ids: &[&str]) -> Result<pb::ScoreResponse, tonic::Status> {
    churn(server)
        .await
        .score(pb::ScoreRequest {
            customer_ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner())
}

fn band(p: f64) -> &'static str {
    if p >= 0.6 {
        "high"
    } else if p >= 0.3 {
        "medium"
    } else {
        "low"
    }
}

/// A customer row with the given fields (the others absent), at `seconds` since epoch.
pub fn customer(id: &str, values: &[(&str, f32)], seconds: i64) -> pb::PushRow {
    pb::PushRow {
        entity_key: vec![id.into()],
        event_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        values: values
            .iter()
            .map(|(f, v)| {
                (
                    f.to_string(),
                    pb::FeatureValue {
                        kind: Some(pb::feature_value::Kind::Float32(*v)),
                    },
                )
            })
            .collect(),
    }
}

async fn push(server: &TestServer, rows: Vec<pb::PushRow>) {
    FeatureStoreClient::new(server.channel().await)
        .push(pb::PushRequest {
            view: "customer_churn".into(),
            rows,
        })
        .await
        .expect("push");
}

fn keyed_request(ids: &[&str]) -> v2::ModelInferRequest {
    let elements: Vec<&[u8]> = ids.iter().map(|s| s.as_bytes()).collect();
    v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("customer_id", "BYTES", vec![ids.len() as i64])],
        raw_input_contents: vec![bytes_raw(&elements)],
        ..Default::default()
    }
}

#[tokio::test]
async fn scores_customers_by_id_as_xgboost_does() {
    let server = TestServer::builder().demo().start().await;
    let expected = churn_expected();
    let mut ids: Vec<&str> = expected.customer_ids.iter().map(String::as_str).collect();
    ids.push("C999999");
    let got = score(&server, &ids).await.expect("score");
    assert_eq!(got.model_name, "churn");
    assert_eq!(got.model_version, "1");
    assert_eq!(got.scores.len(), ids.len(), "one score per id, in order");
    for (i, s) in got.scores[..expected.rows].iter().enumerate() {
        assert_eq!(s.customer_id, ids[i]);
        assert_eq!(s.status(), CustomerStatus::Scored, "{}", s.customer_id);
        assert!(
            (s.probability - expected.probability[i]).abs() < 1e-6,
            "{}: {} vs xgboost {}",
            s.customer_id,
            s.probability,
            expected.probability[i]
        );
        assert_eq!(s.risk_band, band(s.probability), "{}", s.customer_id);
        // The demo data leaves NPS empty for some customers: reported, and left NaN.
        let nps_missing = expected.inputs[i * 12 + 7].is_nan();
        assert_eq!(
            s.missing_features,
            if nps_missing {
                vec!["customer_churn:last_nps".to_string()]
            } else {
                vec![]
            },
            "{}",
            s.customer_id
        );
    }
    let unknown = &got.scores[expected.rows];
    assert_eq!(unknown.status(), CustomerStatus::NoFeatures);
    assert_eq!((unknown.probability, unknown.risk_band.as_str()), (0.0, ""));
    assert_eq!(unknown.missing_features.len(), 12);
    let bands: std::collections::BTreeSet<_> =
        got.scores.iter().map(|s| s.risk_band.as_str()).collect();
    assert!(
        bands.len() >= 3,
        "the held-out customers span bands: {bands:?}"
    );

    // V2 by entity key: the same numbers, and the row without features is named.
    let mut client = server.v2().await;
    let response = client
        .model_infer(keyed_request(&ids))
        .await
        .expect("keyed infer")
        .into_inner();
    assert_eq!(response.model_version, "1");
    let p = f32_from(&response.raw_output_contents[0]);
    assert_eq!(p.len(), ids.len());
    for (got, want) in p.iter().zip(&expected.probability) {
        assert!((f64::from(*got) - want).abs() < 1e-6);
    }
    match response
        .parameters
        .get("entities_without_features")
        .and_then(|p| p.parameter_choice.clone())
    {
        Some(v2::infer_parameter::ParameterChoice::StringParam(rows)) => {
            assert_eq!(rows, expected.rows.to_string())
        }
        other => panic!("expected the unknown row to be named, got {other:?}"),
    }

    let metrics = server.metrics_text().await;
    for needle in [
        "mercator_feature_lookup_duration_seconds_count",
        // One lookup for Churn/Score, one for the keyed ModelInfer.
        r#"mercator_request_phase_duration_seconds_count{model="churn",phase="feature_lookup",version="1"} 2"#,
        r#"mercator_feature_values_total{field="last_nps",status="missing",view="customer_churn"}"#,
        r#"mercator_requests_total{code="OK",method="Churn.Score",model="churn",version="1"} 1"#,
    ] {
        assert!(metrics.contains(needle), "{needle} not in metrics");
    }
    server.stop().await;
}

#[tokio::test]
async fn partial_and_expired_customers_get_their_own_status() {
    let server = TestServer::builder().demo().start().await;
    let now = chrono::Utc::now().timestamp();
    push(
        &server,
        vec![
            customer("P1", &[("orders_90d", 2.0), ("return_rate", 0.4)], now),
            customer("OLD", &[("orders_90d", 2.0)], now - 91 * 86_400),
        ],
    )
    .await;
    let got = score(&server, &["P1", "OLD"]).await.expect("score");
    let (partial, old) = (&got.scores[0], &got.scores[1]);
    assert_eq!(partial.status(), CustomerStatus::Scored);
    assert_eq!(partial.missing_features.len(), 10);
    // The missing columns are NaN: the same as a V2 call with NaN sent explicitly.
    let mut row = [f32::NAN; 12];
    row[1] = 2.0;
    row[4] = 0.4;
    let explicit = server
        .v2()
        .await
        .model_infer(v2::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![1, 12])],
            raw_input_contents: vec![f32_bytes(&row)],
            ..Default::default()
        })
        .await
        .expect("tensor infer")
        .into_inner();
    let p = f32_from(&explicit.raw_output_contents[0])[0];
    assert!((partial.probability - f64::from(p)).abs() < 1e-7);
    assert_eq!(old.status(), CustomerStatus::NoFeatures, "past the 90d TTL");
    assert_eq!(old.expired_features, vec!["customer_churn:orders_90d"]);
    assert_eq!(old.missing_features.len(), 11);
    let metrics = server.metrics_text().await;
    assert!(metrics.contains(
        r#"mercator_feature_values_total{field="orders_90d",status="expired",view="customer_churn"} 1"#
    ));
    server.stop().await;
}

#[tokio::test]
async fn bad_score_and_keyed_requests_are_named() {
    let plain = crate::harness::fixture_model(
        "binary_deep-v3",
        serde_json::json!({"kind": "xgboost", "weights": "model.json",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8]}],
            "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1]}]}),
    );
    let server = TestServer::builder()
        .demo()
        .model("plain", plain)
        .start()
        .await;
    let cases: Vec<(&str, pb::ScoreRequest, tonic::Code, &str)> = vec![
        (
            "no ids",
            pb::ScoreRequest::default(),
            tonic::Code::InvalidArgument,
            "customer_ids",
        ),
        (
            "empty id",
            pb::ScoreRequest {
                customer_ids: vec!["C100000".into(), " ".into()],
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
            "customer_ids[1]",
        ),
        (
            "too many",
            pb::ScoreRequest {
                customer_ids: vec!["C1".into(); 4097],
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
            "maximum of 4096",
        ),
        (
            "unknown model",
            pb::ScoreRequest {
                model_name: "nope".into(),
                customer_ids: vec!["C1".into()],
                ..Default::default()
            },
            tonic::Code::NotFound,
            "'nope'",
        ),
        (
            "unknown version",
            pb::ScoreRequest {
                model_version: "7".into(),
                customer_ids: vec!["C1".into()],
                ..Default::default()
            },
            tonic::Code::NotFound,
            "version '7'",
        ),
        (
            "model without bindings",
            pb::ScoreRequest {
                model_name: "plain".into(),
                customer_ids: vec!["C1".into()],
                ..Default::default()
            },
            tonic::Code::FailedPrecondition,
            "not bound to feature store fields",
        ),
    ];
    let mut client = churn(&server).await;
    for (what, req, code, needle) in cases {
        let status = client.score(req).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{what}: {}",
            status.message()
        );
    }

    let mut v2c = server.v2().await;
    let mut wrong_type = keyed_request(&["C100000"]);
    wrong_type.inputs[0].datatype = "FP32".into();
    wrong_type.raw_input_contents = vec![f32_bytes(&[1.0])];
    let mut bad_utf8 = keyed_request(&["C100000"]);
    bad_utf8.raw_input_contents = vec![bytes_raw(&[&[0xff, 0xfe]])];
    let mut bad_shape = keyed_request(&["C100000"]);
    bad_shape.inputs[0].shape = vec![1, 2];
    let mut truncated = keyed_request(&["C100000"]);
    truncated.raw_input_contents = vec![vec![9, 0, 0, 0, b'C']];
    for (what, req, needle) in [
        (
            "key as FP32",
            wrong_type,
            "entity key 'customer_id' must be BYTES",
        ),
        ("key not UTF-8", bad_utf8, "not UTF-8"),
        ("key shape", bad_shape, "shape [n] or [n, 1]"),
        ("truncated key", truncated, "claims 9 bytes"),
    ] {
        let status = v2c.model_infer(req).await.expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains(needle),
            "{what}: {}",
            status.message()
        );
        assert!(
            status.message().contains("customer_id"),
            "{what}: names the input"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_bound_model_without_its_views_is_a_failed_precondition() {
    // The churn model bound to `customer_churn`, but no definitions applied.
    let server = TestServer::builder().churn().start().await;
    let status = score(&server, &["C100000"]).await.expect_err("no views");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("no view 'customer_churn'"),
        "{}",
        status.message()
    );
    // Sending the tensor still works.
    let expected = churn_expected();
    server
        .v2()
        .await
        .model_infer(v2::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![1, 12])],
            raw_input_contents: vec![f32_bytes(&expected.inputs[..12])],
            ..Default::default()
        })
        .await
        .expect("tensor infer");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_serve_what_either_was_pushed() {
    let Ok(url) = std::env::var("MERCATOR_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set MERCATOR_TEST_REDIS_URL"
        );
        eprintln!("MERCATOR_TEST_REDIS_URL unset: skipped");
        return;
    };
    // Database 1 is this test's alone; start it empty.
    let db = crate::harness::empty_redis_db(&url, 1).await;
    // Two replicas sharing the registry (definitions, models) and the online store.
    let online = db.clone();
    let a = TestServer::builder()
        .churn()
        .config(move |c| c.features.online_store = online)
        .start()
        .await;
    let shared = a.data_dir.path().to_path_buf();
    let online = db.clone();
    let b = TestServer::builder()
        .config(move |c| {
            c.features.online_store = online;
            c.registry.url = format!("sqlite://{}/registry.db?mode=rwc", shared.display());
            c.artifacts.url = shared.join("artifacts").display().to_string();
            c.features.offline_store = shared.join("features/offline").display().to_string();
        })
        .start()
        .await;
    b.wait_for_champion("churn", "1").await;
    // Definitions applied through one replica reach the other within a poll interval.
    FeatureStoreClient::new(b.channel().await)
        .apply_definitions(pb::ApplyDefinitionsRequest {
            toml: FEATURES_TOML.into(),
            dry_run: false,
            allow_removals: false,
        })
        .await
        .expect("apply");
    let mut listed = false;
    for _ in 0..100 {
        let defs = FeatureStoreClient::new(a.channel().await)
            .list_definitions(pb::ListDefinitionsRequest {})
            .await
            .expect("list")
            .into_inner();
        if defs
            .feature_views
            .iter()
            .any(|v| v.name == "customer_churn")
        {
            listed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(listed, "replica a never saw the definitions applied on b");
    let replicas = [a, b];
    let now = chrono::Utc::now().timestamp();
    let values: Vec<(&str, f32)> = FIELDS.iter().map(|f| (*f, 1.0)).collect();
    push(&replicas[0], vec![customer("R1", &values, now)]).await;
    push(&replicas[1], vec![customer("R2", &values[..3], now - 60)]).await;
    for server in &replicas {
        let got = score(server, &["R1", "R2", "R3"]).await.expect("score");
        let statuses: Vec<_> = got.scores.iter().map(|s| s.status()).collect();
        assert_eq!(
            statuses,
            [
                CustomerStatus::Scored,
                CustomerStatus::Scored,
                CustomerStatus::NoFeatures
            ]
        );
        assert!(got.scores[0].missing_features.is_empty());
        assert_eq!(got.scores[1].missing_features.len(), 9);
    }
    let a = score(&replicas[0], &["R1"]).await.expect("a").scores[0].probability;
    let b = score(&replicas[1], &["R1"]).await.expect("b").scores[0].probability;
    assert_eq!(a, b, "both replicas read the same row");
    // Freshness is the store's: b reports the newer row, which a was pushed.
    for server in &replicas {
        let series =
            r#"mercator_feature_view_newest_event_timestamp_seconds{view="customer_churn"}"#;
        server
            .wait_for_metric_where(series, |t| t == now as f64)
            .await;
    }
    for server in replicas {
        server.stop().await;
    }
}
