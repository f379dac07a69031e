//! The prediction log (issue 31, first part): every call through the serving envelope
//! leaves a row — request id, time, model, version, route, method, principal, entity,
//! code, latency — in Parquet under `model=<name>/date=<YYYY-MM-DD>/`, flushed at
//! shutdown; with the store failing and the queue full, calls are answered and the
//! rows counted as dropped.

use std::collections::BTreeMap;

use mercator_proto::inference as v2;
use mercator_proto::v1 as pb;
use tonic::metadata::MetadataValue;

use crate::harness::{TestServer, bytes_raw, input, metric_value};

fn with_id<T>(message: T, id: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut()
        .insert("x-request-id", MetadataValue::try_from(id).expect("id"));
    req
}

/// A logged row: the file it is in (under the log's folder), and column → value as text.
pub(crate) type LoggedRow = (String, BTreeMap<String, String>);

/// Every row of every Parquet file under `dir` (nulls left out).
/// The whole log folder read as a data scientist would (`pandas.read_parquet` on the
/// folder, pyarrow's Hive partitioning): the same rows per request id, under the right
/// model, with the bound features as their own columns.
fn read_back_with_pandas(dir: &std::path::Path, by_id: &BTreeMap<&str, Vec<&LoggedRow>>) {
    let Some(python) = crate::tritonclient::python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON"
        );
        return;
    };
    let script = r#"
import json, sys
import pandas as pd
log = pd.read_parquet(sys.argv[1])
assert "customer_churn:tenure_days:missing" in log.columns, list(log.columns)
groups = log.groupby("request_id")
print(json.dumps({k: [len(g), str(g["model"].iloc[0])] for k, g in groups}))
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script, &dir.display().to_string()])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "pandas could not read the log: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: BTreeMap<String, (usize, String)> =
        serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(read.len(), by_id.len());
    for (id, rows) in by_id {
        let model = rows[0].0.split('/').next().unwrap_or("");
        assert_eq!(
            read[*id],
            (rows.len(), model.trim_start_matches("model=").to_string()),
            "{id}"
        );
    }
}

pub(crate) fn read_rows(dir: &std::path::Path) -> Vec<LoggedRow> {
    use arrow_array::Array;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = bytes::Bytes::from(std::fs::read(&path).expect("read"));
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .expect("parquet")
                    .build()
                    .expect("reader");
            let rel = path.strip_prefix(dir).expect("under").display().to_string();
            for batch in reader {
                let batch = batch.expect("batch");
                for r in 0..batch.num_rows() {
                    let mut row = BTreeMap::new();
                    for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
                        if col.is_null(r) {
                            continue;
                        }
                        // Microseconds, UTC: read as the number (showing a named zone
                        // takes chrono-tz).
                        let text = match col
                            .as_any()
                            .downcast_ref::<arrow_array::TimestampMicrosecondArray>()
                        {
                            Some(t) => t.value(r).to_string(),
                            None => {
                                arrow_cast::display::array_value_to_string(col, r).expect("display")
                            }
                        };
                        row.insert(f.name().clone(), text);
                    }
                    out.push((rel.clone(), row));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_prediction_leaves_a_row_in_parquet() {
    let server = TestServer::builder().demo().start().await;
    for model in ["churn", "intent", "demand"] {
        server.wait_for_ready(model).await;
    }
    let channel = server.channel().await;
    pb::churn_client::ChurnClient::new(channel.clone())
        .score(with_id(
            pb::ScoreRequest {
                customer_ids: vec!["C100042".into(), "C109603".into(), "NOBODY".into()],
                ..Default::default()
            },
            "score-1",
        ))
        .await
        .expect("score");
    let ids: [&[u8]; 2] = [b"C100042", b"NOBODY"];
    server
        .v2()
        .await
        .model_infer(with_id(
            v2::ModelInferRequest {
                model_name: "churn".into(),
                model_version: "1".into(),
                inputs: vec![input("customer_id", "BYTES", vec![2])],
                raw_input_contents: vec![bytes_raw(&ids)],
                ..Default::default()
            },
            "v2-1",
        ))
        .await
        .expect("v2");
    pb::intent_client::IntentClient::new(channel.clone())
        .classify(with_id(
            pb::ClassifyRequest {
                text: b"where is my parcel".to_vec(),
                session_id: "s-9".into(),
                ..Default::default()
            },
            "classify-1",
        ))
        .await
        .expect("classify");
    pb::forecasting_client::ForecastingClient::new(channel.clone())
        .forecast(with_id(
            pb::ForecastRequest {
                series: Some(pb::SeriesId {
                    sku_id: "SKU000".into(),
                    location_id: "berlin".into(),
                }),
                horizon_days: 7,
                ..Default::default()
            },
            "forecast-1",
        ))
        .await
        .expect("forecast");
    let mut batch = pb::forecasting_client::ForecastingClient::new(channel.clone())
        .forecast_batch(with_id(
            pb::ForecastBatchRequest {
                series: ["berlin", "leeds"]
                    .iter()
                    .map(|l| pb::SeriesId {
                        sku_id: "SKU001".into(),
                        location_id: (*l).into(),
                    })
                    .collect(),
                horizon_days: 7,
                ..Default::default()
            },
            "batch-1",
        ))
        .await
        .expect("batch")
        .into_inner();
    while batch.message().await.expect("chunk").is_some() {}
    let err = pb::intent_client::IntentClient::new(channel)
        .classify(with_id(
            pb::ClassifyRequest {
                model_name: "intent".into(),
                model_version: "99".into(),
                text: b"hello".to_vec(),
                ..Default::default()
            },
            "classify-2",
        ))
        .await
        .expect_err("no version 99");
    assert_eq!(err.code(), tonic::Code::NotFound);
    // Shutdown flushes what is queued.
    let data = server.stop_keeping_data().await;
    let rows = read_rows(&data.path().join("predictions"));
    let mut by_id: BTreeMap<&str, Vec<&LoggedRow>> = BTreeMap::new();
    for r in &rows {
        by_id.entry(r.1["request_id"].as_str()).or_default().push(r);
    }
    read_back_with_pandas(&data.path().join("predictions"), &by_id);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    // (request id, instances, model, version, route, method, code)
    for (id, instances, model, version, route, api, code) in [
        ("score-1", 3, "churn", "1", "champion", "Churn.Score", "OK"),
        ("v2-1", 2, "churn", "1", "pinned", "ModelInfer", "OK"),
        (
            "batch-1",
            14,
            "demand",
            "1",
            "champion",
            "Forecasting.ForecastBatch",
            "OK",
        ),
        (
            "classify-1",
            1,
            "intent",
            "1",
            "champion",
            "Intent.Classify",
            "OK",
        ),
        (
            "forecast-1",
            7,
            "demand",
            "1",
            "champion",
            "Forecasting.Forecast",
            "OK",
        ),
        (
            "classify-2",
            1,
            "intent",
            "",
            "pinned",
            "Intent.Classify",
            "NOT_FOUND",
        ),
    ] {
        let found = by_id
            .get(id)
            .unwrap_or_else(|| panic!("no row for {id}: {rows:?}"));
        assert_eq!(found.len(), instances, "{id}: one row per instance");
        for (path, row) in found {
            assert!(
                path.starts_with(&format!("model={model}/date={today}/")),
                "{id}: {path}"
            );
            let got = |k: &str| row[k].as_str();
            assert_eq!(
                (
                    path.split('/')
                        .next()
                        .and_then(|m| m.strip_prefix("model="))
                        .unwrap_or(""),
                    got("version"),
                    got("route"),
                    got("api"),
                    got("code")
                ),
                (model, version, route, api, code),
                "{id}"
            );
            assert!(
                got("latency_us").parse::<i64>().expect("latency") > 0,
                "{id}"
            );
            let time = got("time").parse::<i64>().expect("time");
            let now = chrono::Utc::now().timestamp_micros();
            assert!(now - time < 300_000_000 && time <= now, "{id}: {time}");
            assert_eq!(got("sampling_fraction"), "1.0");
            assert_eq!(got("error").is_empty(), code == "OK", "{id}: {row:?}");
        }
    }
    // Each customer of the score: its id, probability and band, as the answer gave them.
    let customers: BTreeMap<&str, &BTreeMap<String, String>> = by_id["score-1"]
        .iter()
        .map(|(_, r)| (r["entity"].as_str(), r))
        .collect();
    assert_eq!(
        customers.keys().copied().collect::<Vec<_>>(),
        ["C100042", "C109603", "NOBODY"]
    );
    for (customer, band) in [("C100042", "low"), ("C109603", "medium")] {
        let r = customers[customer];
        assert_eq!(r["band"], band, "{customer}");
        let p: f64 = r["probability"].parse().expect("probability");
        assert!(p > 0.0 && p < 1.0);
        // The inputs as the model saw them: every bound feature, read from the store.
        assert!(
            r["customer_churn:tenure_days"]
                .parse::<f64>()
                .expect("tenure")
                > 0.0,
            "{r:?}"
        );
        assert_eq!(r["customer_churn:tenure_days:missing"], "false");
        assert_eq!(r["customer_churn:tenure_days:expired"], "false");
    }
    // A customer the store does not know: no score, every feature flagged missing.
    let nobody = customers["NOBODY"];
    assert!(!nobody.contains_key("probability"), "{nobody:?}");
    assert_eq!(nobody["customer_churn:last_nps:missing"], "true");
    // V2 by customer id: a row per customer, with its features and its output tensor.
    let v2_rows: BTreeMap<&str, &BTreeMap<String, String>> = by_id["v2-1"]
        .iter()
        .map(|(_, r)| (r["entity"].as_str(), r))
        .collect();
    assert_eq!(
        v2_rows.keys().copied().collect::<Vec<_>>(),
        ["C100042", "NOBODY"]
    );
    assert_eq!(
        v2_rows["C100042"]["customer_churn:tenure_days"],
        customers["C100042"]["customer_churn:tenure_days"]
    );
    assert_eq!(
        v2_rows["NOBODY"]["customer_churn:orders_90d:missing"],
        "true"
    );
    let output = v2_rows["C100042"]["output:churn_probability"].clone();
    let p: f64 = customers["C100042"]["probability"].parse().expect("p");
    let logged: f64 = output
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .expect("one value");
    assert!((logged - p).abs() < 1e-6, "{logged} vs {p}");
    // The text the intent model read.
    assert_eq!(
        by_id["classify-1"][0].1["input:text"],
        "[where is my parcel]"
    );
    // A forecast batch: a row per series and day, each naming its series.
    let mut series: Vec<&str> = by_id["batch-1"]
        .iter()
        .map(|(_, r)| r["entity"].as_str())
        .collect();
    series.dedup();
    assert_eq!(series, ["SKU001|berlin", "SKU001|leeds"]);
    assert_eq!(customers["C109603"]["action"], "loyalty_reminder");
    assert_eq!(customers["C109603"]["rule"], "medium_risk");
    // The conversation's row: its session, top intent, action and hand-off.
    let (_, intent) = by_id["classify-1"][0];
    assert_eq!(intent["entity"], "s-9");
    assert!(!intent["intent"].is_empty() && !intent["action"].is_empty());
    assert!(["true", "false"].contains(&intent["handoff"].as_str()));
    // A day per forecast row, with its quantiles.
    let mut days: Vec<&str> = by_id["forecast-1"]
        .iter()
        .map(|(_, r)| r["forecast_date"].as_str())
        .collect();
    days.sort_unstable();
    days.dedup();
    assert_eq!(days.len(), 7);
    for (_, r) in &by_id["forecast-1"] {
        assert_eq!(r["entity"], "SKU000|berlin");
        assert_eq!(r["quantile_levels"], "[0.1, 0.5, 0.9]");
        assert!(
            r["quantiles"].starts_with('[') && r["mean"].parse::<f64>().is_ok(),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_store_or_a_full_queue_never_holds_a_call_up() {
    let log_dir = tempfile::tempdir().expect("tempdir");
    // A file where the model's folder would go: every write fails.
    std::fs::write(log_dir.path().join("model=churn"), b"in the way").expect("write");
    let url = log_dir.path().display().to_string();
    let server = TestServer::builder()
        .churn()
        .config(move |c| {
            c.prediction_log.url = url;
            c.prediction_log.flush_rows = 1;
            c.prediction_log.queue_rows = 1;
        })
        .start()
        .await;
    let mut client = server.v2().await;
    let rows: Vec<f32> = vec![0.0; 12];
    for _ in 0..20 {
        client
            .model_infer(v2::ModelInferRequest {
                model_name: "churn".into(),
                inputs: vec![input("features", "FP32", vec![1, 12])],
                raw_input_contents: vec![crate::harness::f32_bytes(&rows)],
                ..Default::default()
            })
            .await
            .expect("answered, whatever the log");
    }
    let (store, _) = server
        .wait_for_metric(
            r#"mercator_prediction_log_rows_total{model="churn",outcome="dropped_store_error"}"#,
        )
        .await;
    assert!(store >= 1.0);
    let text = server.metrics_text().await;
    let full = metric_value(
        &text,
        r#"mercator_prediction_log_rows_total{model="churn",outcome="dropped_queue_full"}"#,
    )
    .unwrap_or(0.0);
    assert!(
        full >= 1.0,
        "rows beyond a queue of 1 are dropped and counted:\n{text}"
    );
    assert!(
        metric_value(
            &text,
            r#"mercator_prediction_log_rows_total{model="churn",outcome="written"}"#
        )
        .is_none()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_calls_are_sampled_by_request_id() {
    let server = TestServer::builder()
        .churn()
        .config(|c| c.prediction_log.v2_sampling = 0.5)
        .start()
        .await;
    let mut client = server.v2().await;
    let features: Vec<f32> = vec![0.0; 12];
    for n in 0..200 {
        client
            .model_infer(with_id(
                v2::ModelInferRequest {
                    model_name: "churn".into(),
                    inputs: vec![input("features", "FP32", vec![1, 12])],
                    raw_input_contents: vec![crate::harness::f32_bytes(&features)],
                    ..Default::default()
                },
                &format!("sampled-{n}"),
            ))
            .await
            .expect("infer");
    }
    let data = server.stop_keeping_data().await;
    let rows = read_rows(&data.path().join("predictions"));
    let logged: Vec<&BTreeMap<String, String>> = rows.iter().map(|(_, r)| r).collect();
    assert!(
        (60..=140).contains(&logged.len()),
        "about half of 200 calls logged, by their ids: {}",
        logged.len()
    );
    for r in &logged {
        assert_eq!(r["sampling_fraction"], "0.5");
        assert!(r["request_id"].starts_with("sampled-"));
    }
}
