//! Per-request caps, each named in the error when hit: customers per `Churn/Score`, rows
//! per `Push`, days of inline history, forecast horizon, and
//! bytes of intent text. A request just under each cap passes.

use mercator_proto::v1::{
    self as pb, churn_client::ChurnClient, feature_store_client::FeatureStoreClient,
    forecasting_client::ForecastingClient, intent_client::IntentClient,
};
use tonic::Code;

use crate::harness::TestServer;

fn row(id: &str) -> pb::PushRow {
    pb::PushRow {
        entity_key: vec![id.into()],
        event_time: Some(prost_types::Timestamp {
            seconds: chrono::Utc::now().timestamp() - 60,
            nanos: 0,
        }),
        values: [(
            "orders_90d".to_string(),
            pb::FeatureValue {
                kind: Some(pb::feature_value::Kind::Float32(1.0)),
            },
        )]
        .into(),
    }
}

fn assert_cap(status: tonic::Status, field: &str, limit: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field) && status.message().contains(limit),
        "the error names {field} and {limit}: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cap_is_named_when_hit() {
    let server = TestServer::builder()
        .demo()
        .config(|c| {
            c.limits.max_push_rows = 2;
            c.limits.max_history_days = 30;
            c.limits.max_text_bytes = 16;
            c.limits.max_horizon_days = 14;
            c.limits.max_score_customers = 3;
        })
        .start()
        .await;
    let channel = server.channel().await;

    let mut features = FeatureStoreClient::new(channel.clone());
    let push = |n: usize| pb::PushRequest {
        view: "customer_churn".into(),
        rows: (0..n).map(|i| row(&format!("c{i}"))).collect(),
    };
    features.push(push(2)).await.expect("at the cap");
    let over = features.push(push(3)).await.expect_err("over the cap");
    assert_cap(over, "rows", "limits.max_push_rows = 2");

    let mut forecasting = ForecastingClient::new(channel.clone());
    let ask = |days: usize, horizon: u32| pb::ForecastRequest {
        model_name: "demand_ets".into(),
        series: Some(pb::SeriesId {
            sku_id: "SKU000".into(),
            location_id: "berlin".into(),
        }),
        horizon_days: horizon,
        history: Some(pb::History {
            values: (0..days).map(|d| 10.0 + (d % 7) as f64).collect(),
            last_date: "2026-10-03".into(),
        }),
        ..Default::default()
    };
    forecasting.forecast(ask(30, 7)).await.expect("at the cap");
    let over = forecasting
        .forecast(ask(31, 7))
        .await
        .expect_err("too long");
    assert_cap(over, "history.values", "limits.max_history_days = 30");
    let far = forecasting
        .forecast(ask(30, 15))
        .await
        .expect_err("too far");
    assert_eq!(far.code(), Code::InvalidArgument, "{far:?}");
    assert!(
        far.message().contains("14"),
        "the horizon cap is named: {far:?}"
    );

    let mut intent = IntentClient::new(channel.clone());
    let text = |t: &str| pb::ClassifyRequest {
        text: t.as_bytes().to_vec(),
        ..Default::default()
    };
    intent
        .classify(text("where is my box"))
        .await
        .expect("under the cap");
    let over = intent
        .classify(text("where is my parcel?"))
        .await
        .expect_err("too long");
    assert_cap(over, "text", "limits.max_text_bytes = 16");

    let mut churn = ChurnClient::new(channel);
    let score = |n: usize| pb::ScoreRequest {
        customer_ids: (0..n).map(|i| format!("c{i}")).collect(),
        ..Default::default()
    };
    churn.score(score(3)).await.expect("at the cap");
    let over = churn.score(score(4)).await.expect_err("too many");
    assert_cap(over, "customer_ids", "limits.max_score_customers = 3");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_is_told_when_to_retry() {
    use mercator_proto::inference as v2;
    use tonic_types::StatusExt;
    let server = TestServer::builder()
        .churn()
        .config(|c| {
            c.auth.mode = "required".into();
            c.auth.key_cache_secs = 0.0;
            // Two calls at once, then one every 100 s: the third is refused.
            c.auth.rate_limits = vec!["infer=0.01/2".into()];
        })
        .start()
        .await;
    let mut keys = Vec::new();
    for name in ["eager", "patient"] {
        let (_, key) = server
            .registry
            .create_key(name, &["infer".into()], None, "test")
            .await
            .expect("key");
        keys.push(key);
    }
    let mut client = server.v2().await;
    let ask = |token: &str| {
        crate::harness::bearer(
            v2::ModelMetadataRequest {
                name: "churn".into(),
                version: String::new(),
            },
            token,
        )
    };
    client.model_metadata(ask(&keys[0])).await.expect("first");
    client.model_metadata(ask(&keys[0])).await.expect("second");
    let refused = client
        .model_metadata(ask(&keys[0]))
        .await
        .expect_err("over the rate");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("`infer`"), "{refused:?}");
    let retry = refused
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("a RetryInfo with a delay");
    assert!(retry > std::time::Duration::ZERO, "{retry:?}");
    client
        .model_metadata(ask(&keys[1]))
        .await
        .expect("another principal has its own budget");
    server.stop().await;
}

#[tokio::test]
async fn a_garbage_last_date_is_refused_at_push_not_at_forecast_time() {
    let server = TestServer::builder().demo().start().await;
    let mut features = FeatureStoreClient::new(server.channel().await);
    let push = |date: &str| pb::PushRequest {
        view: "daily_sales".into(),
        rows: vec![pb::PushRow {
            entity_key: vec!["SKU000".into(), "berlin".into()],
            event_time: Some(prost_types::Timestamp {
                seconds: chrono::Utc::now().timestamp(),
                nanos: 0,
            }),
            values: [(
                "last_date".to_string(),
                pb::FeatureValue {
                    kind: Some(pb::feature_value::Kind::String(date.into())),
                },
            )]
            .into(),
        }],
    };
    for bad in ["2026-02-30", "yesterday", "10/03/2026"] {
        let refused = features.push(push(bad)).await.expect_err(bad);
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().contains("last_date")
                && refused.message().contains("not a YYYY-MM-DD date")
                && !refused.message().contains(bad),
            "{refused:?}"
        );
    }
    features
        .push(push("2026-10-04"))
        .await
        .expect("a calendar day is taken");
    server.stop().await;
}
