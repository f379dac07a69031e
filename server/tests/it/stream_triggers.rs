//! Post-purchase triggers (issue 35): a late-delivery event for a high-risk customer
//! publishes exactly one intervention (with its reasons and version), none for a
//! customer in the rule's control group, none twice within the cooldown although the
//! events reach both replicas; the end-to-end latency from the event's produce to the
//! intervention's consume is reported. Two replicas share the source's partitions
//! (`p mod 2 == index`) and the online store (Redis, where the cooldown lives).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mercator_server::api::churn::experiment::in_control;
use mercator_streams::{SourceConfig, TriggerConfig};

use crate::harness::{CHURN_DIR, TestServer, metric_value, read_dir_files};
use crate::kafka::{Kafka, broker, eventually, quantile, topic};

const REDIS_DB: u32 = 7;
const EXPERIMENT: &str = "late_deliveries:apology_voucher:0.5";

/// The demo churn model as `churn_ab`, its late-deliveries rule holding out half.
fn churn_ab() -> BTreeMap<String, Bytes> {
    let mut files = read_dir_files(Path::new(CHURN_DIR), &["mercator.json", "model.json"]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&files["mercator.json"]).expect("manifest");
    for rule in manifest["runbook"].as_array_mut().expect("runbook") {
        if rule["rule"] == "late_deliveries" {
            rule["control"] = 0.5.into();
        }
    }
    files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
    files
}

/// A delivery event carrying the customer's whole `customer_churn` row: `late` says
/// whether it is a late-delivery profile of a customer at risk, else a happy one.
fn event(id: &str, late: bool) -> String {
    let time = chrono::Utc::now().to_rfc3339();
    // (late deliveries, support tickets, days since the last order, orders, tenure)
    let (late_deliveries, tickets, days, orders, tenure) = if late {
        (6.0, 3.0, 90.0, 1.0, 150.0)
    } else {
        (0.0, 0.0, 3.0, 6.0, 800.0)
    };
    serde_json::json!({
        "customer_id": id, "event_timestamp": time, "order_id": format!("o-{id}"),
        "days_since_last_order": days, "orders_90d": orders,
        "spend_90d": 30.0 * orders, "avg_order_value": 30.0, "return_rate": 0.3,
        "late_deliveries_90d": late_deliveries, "support_tickets_90d": tickets,
        "last_nps": 8.0, "discount_share": 0.3, "tenure_days": tenure,
        "app_sessions_30d": if late { 0.0 } else { 20.0 }, "email_open_rate": 0.1,
    })
    .to_string()
}

/// A replica (`index` of 2, or the only one with -1) with the trigger `late_delivery`.
async fn replica(broker: &str, source: &str, out: &str, redis: &str, index: i64) -> TestServer {
    let (broker, source, out, redis) = (
        broker.to_string(),
        source.to_string(),
        out.to_string(),
        redis.to_string(),
    );
    let server = TestServer::builder()
        .demo()
        .model("churn_ab", churn_ab())
        .config(move |c| {
            if !redis.is_empty() {
                c.features.online_store = redis;
            }
            c.prediction_log.flush_secs = 0.05;
            c.streams.brokers = vec![broker];
            c.streams.fetch_max_wait_ms = 100;
            c.streams.replicas = if index < 0 { 1 } else { 2 };
            c.streams.index = index.max(0);
            c.streams.sources = vec![SourceConfig {
                name: "deliveries".into(),
                topic: source,
                view: "customer_churn".into(),
                ..SourceConfig::default()
            }];
            c.streams.triggers = vec![TriggerConfig {
                name: "late_delivery".into(),
                source: "deliveries".into(),
                model: "churn_ab".into(),
                topic: out,
                cooldown: "24h".into(),
                ..TriggerConfig::default()
            }];
        })
        .start()
        .await;
    server.wait_for_ready("churn_ab").await;
    server
}

/// `mercator_stream_triggers_total{outcome}` summed over the replicas.
async fn fired(replicas: &[&TestServer], outcome: &str) -> f64 {
    let mut sum = 0.0;
    for r in replicas {
        let text = r.metrics_text().await;
        sum += metric_value(
            &text,
            &format!(
                r#"mercator_stream_triggers_total{{outcome="{outcome}",trigger="late_delivery"}}"#
            ),
        )
        .unwrap_or(0.0);
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_delivery_publishes_one_intervention_across_replicas() {
    let Some(broker) = broker() else { return };
    let Ok(redis) = std::env::var("MERCATOR_TEST_REDIS_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set MERCATOR_TEST_REDIS_URL"
        );
        return;
    };
    let redis = crate::harness::empty_redis_db(&redis, REDIS_DB).await;
    let kafka = Kafka::connect(&broker).await;
    let (source, out) = (topic("deliveries"), topic("interventions"));
    kafka.create(&source, 4).await;
    kafka.create(&out, 1).await;
    let a = replica(&broker, &source, &out, &redis, 0).await;
    let b = replica(&broker, &source, &out, &redis, 1).await;

    // Each replica consumes its own partitions: 0 and 2, 1 and 3.
    for (server, mine, theirs) in [(&a, ["0", "2"], ["1", "3"]), (&b, ["1", "3"], ["0", "2"])] {
        eventually(30, "the replica's partitions", || async move {
            let text = server.metrics_text().await;
            let lag = |p: &str| {
                metric_value(
                    &text,
                    &format!(r#"mercator_stream_lag{{partition="{p}",source="deliveries"}}"#),
                )
            };
            mine.iter().all(|p| lag(p).is_some()) && theirs.iter().all(|p| lag(p).is_none())
        })
        .await;
    }

    let ids = (0..).map(|i| format!("T{i:05}"));
    let treated: Vec<String> = ids
        .clone()
        .filter(|id| !in_control("churn_ab", EXPERIMENT, id, 0.5))
        .take(21)
        .collect();
    let held = ids
        .clone()
        .find(|id| in_control("churn_ab", EXPERIMENT, id, 0.5))
        .expect("a held-out id");
    let (high, happy) = (treated[0].clone(), "HAPPY1".to_string());
    kafka.produce(&source, 0, &high, &event(&high, true)).await;
    kafka.produce(&source, 1, &held, &event(&held, true)).await;
    kafka
        .produce(&source, 2, &happy, &event(&happy, false))
        .await;
    let both = [&a, &b];
    eventually(60, "the three triggers", || async move {
        fired(&both, "published").await == 1.0
            && fired(&both, "control").await == 1.0
            && fired(&both, "no_action").await == 1.0
    })
    .await;
    // The same customer late again, through both replicas: the cooldown holds.
    kafka.produce(&source, 1, &high, &event(&high, true)).await;
    kafka.produce(&source, 2, &high, &event(&high, true)).await;
    eventually(60, "two cooldowns", || async move {
        fired(&both, "cooldown").await == 2.0
    })
    .await;

    let published = kafka.read_all(&out, 0).await;
    assert_eq!(published.len(), 1, "exactly one intervention");
    let intervention: serde_json::Value =
        serde_json::from_slice(published[0].value.as_deref().expect("value")).expect("json");
    assert_eq!(published[0].key.as_deref(), Some(high.as_bytes()));
    assert_eq!(intervention["customer_id"], high.as_str());
    assert_eq!(intervention["model"], "churn_ab");
    assert_eq!(intervention["version"], "1");
    assert_eq!(intervention["risk_band"], "high");
    assert_eq!(intervention["action"], "apology_voucher");
    assert_eq!(intervention["rule"], "late_delivery");
    assert_eq!(intervention["runbook_rule"], "late_deliveries");
    assert_eq!(intervention["experiment"], EXPERIMENT);
    assert!(
        intervention["probability"].as_f64().expect("probability") >= 0.6,
        "{intervention}"
    );
    let reasons = intervention["reasons"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 3, "{intervention}");
    assert!(
        reasons
            .iter()
            .take(2)
            .any(|r| r["feature"] == "customer_churn:late_deliveries_90d"),
        "{intervention}"
    );
    assert_eq!(intervention["event"]["order_id"], format!("o-{high}"));
    assert_eq!(intervention["source"], "deliveries");
    let request_id = intervention["request_id"]
        .as_str()
        .expect("request id")
        .to_string();

    // End to end: from each event's acknowledged produce to its intervention's fetch.
    let rest = &treated[1..];
    let mut produced = BTreeMap::new();
    for (i, id) in rest.iter().enumerate() {
        kafka
            .produce(&source, (i % 4) as i32, id, &event(id, true))
            .await;
        produced.insert(id.clone(), Instant::now());
    }
    let mut seen = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < rest.len() {
        assert!(
            Instant::now() < deadline,
            "interventions missing: {} of {}",
            seen.len(),
            rest.len()
        );
        for r in kafka.read_all(&out, 0).await.iter().skip(1) {
            let id = String::from_utf8(r.key.clone().unwrap_or_default()).expect("key");
            seen.entry(id).or_insert_with(Instant::now);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut ms: Vec<f64> = seen
        .iter()
        .map(|(id, at)| at.duration_since(produced[id]).as_secs_f64() * 1000.0)
        .collect();
    eprintln!(
        "trigger end to end over {} events (produce acknowledged → intervention fetched): p50 {:.1} ms, p99 {:.1} ms",
        ms.len(),
        quantile(&mut ms, 0.5),
        quantile(&mut ms, 0.99)
    );

    // Every triggered score is in the prediction log with route `trigger`, the held-out
    // customer's marked as control.
    let (da, db) = (a.stop_keeping_data().await, b.stop_keeping_data().await);
    let rows: Vec<BTreeMap<String, String>> = [da.path(), db.path()]
        .iter()
        .flat_map(|d| crate::prediction_log::read_rows(&d.join("predictions")))
        .map(|(_, r)| r)
        .filter(|r| r.get("route").is_some_and(|x| x == "trigger"))
        .collect();
    let of = |id: &str| {
        rows.iter()
            .filter(|r| r["entity"] == id)
            .collect::<Vec<_>>()
    };
    assert_eq!(of(&high).len(), 3, "scored for each of its three events");
    assert!(of(&high).iter().any(|r| r["request_id"] == request_id));
    assert_eq!(of(&held).len(), 1);
    assert_eq!(of(&held)[0]["control"], "true");
    assert_eq!(of(&happy).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backends_confluent_kafka_clients_produce_and_consume() {
    let Some(broker) = broker() else { return };
    let Some(python) = crate::tritonclient::python().filter(|p| {
        std::process::Command::new(p)
            .args(["-c", "import confluent_kafka"])
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install confluent-kafka"
        );
        eprintln!("no Python with confluent-kafka: skipped");
        return;
    };
    let kafka = Kafka::connect(&broker).await;
    let (source, out) = (topic("deliveries"), topic("interventions"));
    kafka.create(&source, 2).await;
    kafka.create(&out, 2).await;
    let server = replica(&broker, &source, &out, "", -1).await;
    let customers: Vec<String> = (0..)
        .map(|i| format!("P{i:05}"))
        .filter(|id| !in_control("churn_ab", EXPERIMENT, id, 0.5))
        .take(20)
        .collect();
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../python/tests/streams.py");
    let args = [
        script.display().to_string(),
        broker.clone(),
        source,
        out,
        customers.join(","),
    ];
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args(&args)
            .output()
            .expect("run python")
    })
    .await
    .expect("python task");
    let stdout = String::from_utf8_lossy(&run.stdout);
    eprint!("{stdout}");
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("end to end over 20 events"), "{stdout}");
    server.stop().await;
}
