//! Kafka sources (issue 35): events produced to a topic reach the online store within a
//! second and the point-in-time history; a malformed message goes to the dead-letter
//! topic naming its field while the partition keeps moving; a partition without an
//! offset can start at the end (the fetch's high watermark, which Tansu reports right
//! where its ListOffsets(latest) did not).

use std::time::{Duration, Instant};

use mercator_proto::v1::feature_store_client::FeatureStoreClient;
use mercator_proto::v1::{self as pb, feature_value::Kind};
use mercator_server::Config;
use mercator_streams::SourceConfig;
use tonic::transport::Channel;

use crate::harness::{TestServer, metric_value};
use crate::kafka::{Kafka, broker, eventually, quantile, topic};

pub const DEFS: &str = r#"
[[entities]]
name = "customer"
join_keys = ["customer_id"]

[[feature_views]]
name = "deliveries"
entity = "customer"
ttl = "30d"
fields = [
  { name = "late_days", type = "int64" },
  { name = "carrier", type = "string" },
]
"#;

/// `[streams]` with one source feeding the `deliveries` view.
pub fn source_config(c: &mut Config, broker: &str, topic: &str, dead_letters: &str) {
    c.streams.brokers = vec![broker.to_string()];
    c.streams.fetch_max_wait_ms = 100;
    c.streams.sources = vec![SourceConfig {
        name: "deliveries".into(),
        topic: topic.into(),
        view: "deliveries".into(),
        dead_letter_topic: dead_letters.into(),
        ..SourceConfig::default()
    }];
}

pub async fn apply(channel: Channel, defs: &str) {
    FeatureStoreClient::new(channel)
        .apply_definitions(pb::ApplyDefinitionsRequest {
            toml: defs.into(),
            dry_run: false,
            allow_removals: false,
        })
        .await
        .expect("apply");
}

/// Each customer's `deliveries:late_days` online (`None`: not present).
pub async fn late_days(c: &mut FeatureStoreClient<Channel>, ids: &[String]) -> Vec<Option<i64>> {
    c.get_online_features(pb::GetOnlineFeaturesRequest {
        features: vec!["deliveries:late_days".into()],
        entities: ids
            .iter()
            .map(|id| pb::EntityKey {
                values: vec![id.clone()],
            })
            .collect(),
    })
    .await
    .expect("online")
    .into_inner()
    .results
    .into_iter()
    .map(|r| match r.values.first().and_then(|v| v.kind.clone()) {
        Some(Kind::Int64(n)) => Some(n),
        _ => None,
    })
    .collect()
}

/// Each (customer, time)'s `deliveries:late_days` as of that time, from history.
pub async fn history(
    c: &mut FeatureStoreClient<Channel>,
    rows: &[(String, i64)],
) -> Vec<Option<i64>> {
    let entity_rows = rows
        .iter()
        .map(|(id, micros)| pb::EntityRow {
            values: vec![id.clone()],
            timestamp: Some(prost_types::Timestamp {
                seconds: micros.div_euclid(1_000_000),
                nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
            }),
        })
        .collect();
    let mut stream = c
        .get_historical_features(pb::GetHistoricalFeaturesRequest {
            features: vec!["deliveries:late_days".into()],
            entity_rows,
        })
        .await
        .expect("historical")
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        out.extend(chunk.results.iter().map(
            |r| match r.values.first().and_then(|v| v.kind.clone()) {
                Some(Kind::Int64(n)) => Some(n),
                _ => None,
            },
        ));
    }
    out
}

pub fn event(id: &str, micros: i64, late_days: i64) -> String {
    let time = chrono::DateTime::from_timestamp_micros(micros).expect("time");
    serde_json::json!({
        "customer_id": id,
        "event_timestamp": time.to_rfc3339(),
        "late_days": late_days,
        "carrier": "dhl",
        "order_id": format!("o-{id}-{late_days}"),
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_the_online_store_within_a_second_and_history_has_them() {
    let Some(broker) = broker() else { return };
    let kafka = Kafka::connect(&broker).await;
    let (source, dlq) = (topic("deliveries"), topic("deliveries-dlq"));
    kafka.create(&source, 2).await;
    kafka.create(&dlq, 1).await;
    let (b, s, d) = (broker.clone(), source.clone(), dlq.clone());
    let server = TestServer::builder()
        .config(move |c| source_config(c, &b, &s, &d))
        .start()
        .await;
    apply(server.channel().await, DEFS).await;
    let mut client = FeatureStoreClient::new(server.channel().await);

    // 1,000 events, each acknowledged by the broker, then looked for online every 10 ms.
    let n = 1000;
    let ids: Vec<String> = (0..n).map(|i| format!("S{i:04}")).collect();
    let now = chrono::Utc::now().timestamp_micros();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(vec![None::<Instant>; n]));
    let producer = {
        let (acked, ids, source) = (acked.clone(), ids.clone(), source.clone());
        let kafka = Kafka::connect(&broker).await;
        tokio::spawn(async move {
            for (i, id) in ids.iter().enumerate() {
                let partition = (i % 2) as i32;
                kafka
                    .produce(
                        &source,
                        partition,
                        id,
                        &event(id, now - 1000 + i as i64, i as i64),
                    )
                    .await;
                acked.lock().expect("lock")[i] = Some(Instant::now());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut seen = vec![None::<Instant>; n];
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.iter().any(Option::is_none) {
        assert!(
            Instant::now() < deadline,
            "events never all reached the store"
        );
        let values = late_days(&mut client, &ids).await;
        let at = Instant::now();
        for (i, v) in values.iter().enumerate() {
            if seen[i].is_none() && v.is_some() {
                assert_eq!(*v, Some(i as i64), "{}", ids[i]);
                seen[i] = Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    producer.await.expect("producer");
    let acked = acked.lock().expect("lock").clone();
    let mut latencies: Vec<f64> = acked
        .iter()
        .zip(&seen)
        .map(|(a, s)| {
            let (a, s) = (a.expect("acked"), s.expect("seen"));
            s.saturating_duration_since(a).as_secs_f64() * 1000.0
        })
        .collect();
    eprintln!(
        "stream freshness over {n} events (produce acknowledged → online read, 10 ms polls): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        quantile(&mut latencies, 0.5),
        quantile(&mut latencies, 0.99),
        quantile(&mut latencies, 1.0)
    );

    // The point-in-time history has every event: as of its own time, its value; a
    // microsecond before, nothing.
    let at: Vec<(String, i64)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), now - 1000 + i as i64))
        .collect();
    let want: Vec<Option<i64>> = (0..n as i64).map(Some).collect();
    assert_eq!(history(&mut client, &at).await, want);
    let before: Vec<(String, i64)> = at.iter().map(|(id, t)| (id.clone(), t - 1)).collect();
    assert!(
        history(&mut client, &before)
            .await
            .iter()
            .all(Option::is_none)
    );

    // A malformed message goes to the dead-letter topic, named; the partition goes on.
    let time = chrono::Utc::now().to_rfc3339();
    let bad =
        format!(r#"{{"customer_id": "B1", "event_timestamp": "{time}", "late_days": "three"}}"#);
    kafka.produce(&source, 0, "B1", &bad).await;
    kafka.produce(&source, 0, "B2", "not json").await;
    let ahead =
        r#"{"customer_id": "B4", "event_timestamp": "2100-01-01T00:00:00Z", "late_days": 1}"#;
    kafka.produce(&source, 0, "B4", ahead).await;
    kafka.produce(&source, 0, "B3", &event("B3", now, 7)).await;
    let b3 = ["B3".to_string()];
    eventually(30, "the message after the bad ones", || {
        let mut c = client.clone();
        let b3 = b3.clone();
        async move { late_days(&mut c, &b3).await == [Some(7)] }
    })
    .await;
    let dead = kafka.read_all(&dlq, 0).await;
    assert_eq!(dead.len(), 3, "{dead:?}");
    let header = |r: &rskafka::record::Record, k: &str| {
        String::from_utf8(r.headers[&format!("mercator.error.{k}")].clone()).expect("utf8")
    };
    assert_eq!(header(&dead[0], "field"), "late_days");
    assert!(
        header(&dead[0], "message").contains("whole number"),
        "{}",
        header(&dead[0], "message")
    );
    assert_eq!(
        dead[0].value.as_deref(),
        Some(bad.as_bytes()),
        "the value as it came"
    );
    assert_eq!(header(&dead[0], "topic"), source);
    assert_eq!(header(&dead[0], "partition"), "0");
    assert_eq!(header(&dead[1], "field"), "value");
    assert_eq!(
        header(&dead[2], "field"),
        "event_timestamp",
        "past the allowed skew"
    );
    assert!(
        header(&dead[2], "message").contains("future"),
        "{}",
        header(&dead[2], "message")
    );
    assert_eq!(
        late_days(&mut client, &["B1".into(), "B2".into()]).await,
        [None, None]
    );

    let text = server.metrics_text().await;
    // The families the dashboard and alerts name (deploy/) are the ones exported.
    for family in &crate::deploy::STREAMS_ONLY[..2] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
    }
    let series = |s: &str| metric_value(&text, s).unwrap_or(-1.0);
    assert_eq!(
        series(r#"mercator_stream_messages_total{outcome="bad",source="deliveries"}"#),
        3.0
    );
    assert_eq!(
        series(r#"mercator_stream_messages_total{outcome="written",source="deliveries"}"#),
        (n + 1) as f64
    );
    eventually(10, "no lag", || {
        let server = &server;
        async move {
            let text = server.metrics_text().await;
            ["0", "1"].iter().all(|p| {
                metric_value(
                    &text,
                    &format!(r#"mercator_stream_lag{{partition="{p}",source="deliveries"}}"#),
                ) == Some(0.0)
            })
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_without_an_offset_can_start_at_the_high_watermark() {
    let Some(broker) = broker() else { return };
    let kafka = Kafka::connect(&broker).await;
    let source = topic("late-start");
    kafka.create(&source, 1).await;
    let now = chrono::Utc::now().timestamp_micros();
    for i in 0..3 {
        kafka
            .produce(&source, 0, "old", &event(&format!("old{i}"), now, i))
            .await;
    }
    assert_eq!(kafka.high_watermark(&source, 0).await, 3);
    let (b, s) = (broker.clone(), source.clone());
    let server = TestServer::builder()
        .config(move |c| {
            source_config(c, &b, &s, "");
            c.streams.start = "latest".into();
        })
        .start()
        .await;
    apply(server.channel().await, DEFS).await;
    let mut client = FeatureStoreClient::new(server.channel().await);
    // Once the consumer sits at the end (its lag reported), a new event is the first read.
    eventually(30, "the consumer at the end", || {
        let server = &server;
        async move {
            let text = server.metrics_text().await;
            metric_value(
                &text,
                r#"mercator_stream_lag{partition="0",source="deliveries"}"#,
            ) == Some(0.0)
        }
    })
    .await;
    kafka
        .produce(&source, 0, "new", &event("new", now, 9))
        .await;
    let new = ["new".to_string()];
    eventually(30, "the new event", || {
        let mut c = client.clone();
        let new = new.clone();
        async move { late_days(&mut c, &new).await == [Some(9)] }
    })
    .await;
    let old: Vec<String> = (0..3).map(|i| format!("old{i}")).collect();
    assert_eq!(late_days(&mut client, &old).await, [None, None, None]);
    let offset = server
        .registry
        .stream_offset("deliveries", &source, 0)
        .await
        .expect("offset");
    assert_eq!(offset, Some(4), "committed after the one message read");
    server.stop().await;
}

/// The AUC as the share of (positive, negative) pairs ranked right, ties half.
fn pairwise_auc(p: &[f64], y: &[bool]) -> f64 {
    let (mut right, mut pairs) = (0.0, 0.0);
    for (pi, yi) in p.iter().zip(y) {
        for (pj, yj) in p.iter().zip(y) {
            if *yi && !*yj {
                pairs += 1.0;
                right += if pi > pj {
                    1.0
                } else if pi == pj {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    right / pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_from_a_topic_are_judged() {
    let Some(broker) = broker() else { return };
    let kafka = Kafka::connect(&broker).await;
    let (source, dlq) = (topic("churned"), topic("churned-dlq"));
    kafka.create(&source, 1).await;
    kafka.create(&dlq, 1).await;
    let (b, s, d) = (broker.clone(), source.clone(), dlq.clone());
    let server = TestServer::builder()
        .demo()
        .config(move |c| {
            c.prediction_log.flush_secs = 0.05;
            c.prediction_log.quality_every_secs = 0.0;
            c.prediction_log.quality.insert(
                "churn".into(),
                mercator_runtime::manifest::quality::Quality {
                    kind: mercator_runtime::manifest::quality::QualityKind::Binary,
                    window: "1s".into(),
                },
            );
            c.streams.brokers = vec![b];
            c.streams.fetch_max_wait_ms = 100;
            c.streams.sources = vec![SourceConfig {
                name: "churned".into(),
                topic: s,
                kind: mercator_streams::SourceKind::Outcomes,
                model: "churn".into(),
                fields: [("entity".to_string(), "customer_id".to_string())].into(),
                timestamp_unit: "ms".into(),
                dead_letter_topic: d,
                ..SourceConfig::default()
            }];
        })
        .start()
        .await;
    server.wait_for_ready("churn").await;
    let channel = server.channel().await;
    let ids: Vec<String> = (0..40).map(|i| format!("C1000{i:02}")).collect();
    let scores = pb::churn_client::ChurnClient::new(channel.clone())
        .score(pb::ScoreRequest {
            customer_ids: ids.clone(),
            ..Default::default()
        })
        .await
        .expect("score")
        .into_inner()
        .scores;
    // Every third customer churns half a second after the score, as a backend reports it.
    let at = chrono::Utc::now().timestamp_millis() + 500;
    let (mut p, mut y) = (Vec::new(), Vec::new());
    for (i, s) in scores.iter().enumerate() {
        let churned = i % 3 == 0;
        p.push(s.probability);
        y.push(churned);
        let message =
            serde_json::json!({"customer_id": s.customer_id, "time": at, "value": churned});
        kafka
            .produce(&source, 0, &s.customer_id, &message.to_string())
            .await;
    }
    let bad = serde_json::json!({"customer_id": "C100001", "time": at, "value": "yes"}).to_string();
    kafka.produce(&source, 0, "C100001", &bad).await;
    let mut monitoring = pb::monitoring_client::MonitoringClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    let judged = loop {
        let q = monitoring
            .get_quality(pb::GetQualityRequest {
                model_name: "churn".into(),
                window_days: 0.0,
            })
            .await
            .expect("quality")
            .into_inner();
        if let Some(v) = q.versions.first().filter(|v| v.judged == 40) {
            break v.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the outcomes were not judged: {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let auc = judged.metrics["auc"];
    assert!((auc - pairwise_auc(&p, &y)).abs() < 1e-12, "{auc}");
    assert_eq!(judged.metrics["positive_rate"], 14.0 / 40.0);
    let dead = kafka.read_all(&dlq, 0).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].headers["mercator.error.field"], b"value");
    server.stop().await;
}
