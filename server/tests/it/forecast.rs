//! `mercator.v1.Forecasting` over gRPC on the demo: histories read from the feature
//! store (and sent inline), the numbers of the libraries that trained the models
//! (statsmodels for the ETS bundle, PyTorch for the neural net), dates, non-crossing and
//! non-negative quantiles, the streamed batch, and every bad input named.

use mercator_proto::inference as v2pb;
use mercator_proto::v1::{self as pb, forecasting_client::ForecastingClient};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

use crate::harness::{TestServer, bytes_raw, input};

const DEMAND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demand");

fn expected(model: &str) -> serde_json::Value {
    let path = format!("{DEMAND}/{model}/expected.json");
    serde_json::from_slice(&std::fs::read(&path).expect("expected")).expect("json")
}

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn series(sku: &str, loc: &str) -> Option<pb::SeriesId> {
    Some(pb::SeriesId {
        sku_id: sku.into(),
        location_id: loc.into(),
    })
}

fn request(model: &str, sku: &str, loc: &str, horizon: u32) -> pb::ForecastRequest {
    pb::ForecastRequest {
        model_name: model.into(),
        series: series(sku, loc),
        horizon_days: horizon,
        ..Default::default()
    }
}

async fn client(server: &TestServer) -> ForecastingClient<Channel> {
    ForecastingClient::new(server.channel().await).max_decoding_message_size(256 << 20)
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= rel * want.abs().max(1.0),
        "{what}: {got} vs {want}"
    );
}

/// Every point: dates follow the history, quantiles rise with the level, nothing < 0.
fn check_shape(points: &[pb::ForecastPoint], first: &str, levels: usize) {
    assert_eq!(points[0].date, first);
    let dates: Vec<chrono::NaiveDate> = points
        .iter()
        .map(|p| chrono::NaiveDate::parse_from_str(&p.date, "%Y-%m-%d").expect("date"))
        .collect();
    assert!(dates.windows(2).all(|w| (w[1] - w[0]).num_days() == 1));
    for p in points {
        assert_eq!(p.quantiles.len(), levels);
        assert!(
            p.mean >= 0.0 && p.quantiles.iter().all(|q| *q >= 0.0),
            "{p:?}"
        );
        assert!(p.quantiles.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
    }
}

#[tokio::test]
async fn ets_bundle_forecasts_from_the_feature_store_match_statsmodels() {
    let server = TestServer::builder().demo().start().await;
    let mut client = client(&server).await;
    let want = expected("ets");
    for case in want["series"].as_array().expect("series").iter().take(4) {
        let key = numbers_key(&case["key"]);
        let got = client
            .forecast(pb::ForecastRequest {
                quantiles: vec![0.1, 0.5, 0.9],
                ..request("demand_ets", &key[0], &key[1], 28)
            })
            .await
            .expect("forecast")
            .into_inner();
        assert_eq!(got.model_version, "1");
        // The store holds sales up to 2026-10-31; the models were fitted up to 2026-10-03,
        // so the server filtered the 28 days in between, as statsmodels' smoothing did.
        assert_eq!(got.history_last_date, "2026-10-31");
        assert_eq!(got.points.len(), 28);
        check_shape(&got.points, "2026-11-01", 3);
        let from_full = &case["from_full"];
        let (mean, lo, hi) = (
            numbers(&from_full["mean"]),
            numbers(&from_full["q0.1"]),
            numbers(&from_full["q0.9"]),
        );
        for (h, p) in got.points.iter().enumerate() {
            let what = format!("{key:?} day {h}");
            close(p.mean, mean[h].max(0.0), 1e-6, &what);
            close(p.quantiles[0], lo[h].max(0.0), 1e-6, &what);
            close(p.quantiles[1], mean[h].max(0.0), 1e-6, &what);
            close(p.quantiles[2], hi[h].max(0.0), 1e-6, &what);
        }
    }
    server.stop().await;
}

fn numbers_key(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .expect("key")
        .iter()
        .map(|p| p.as_str().expect("part").to_string())
        .collect()
}

#[tokio::test]
async fn neural_forecasts_match_pytorch_inline_and_read_the_store() {
    let server = TestServer::builder().demo().start().await;
    let mut client = client(&server).await;
    let want = expected("net");
    let case = &want["series"][0];
    let key = numbers_key(&case["key"]);
    let asked = numbers(&case["quantiles"]);
    let got = client
        .forecast(pb::ForecastRequest {
            quantiles: asked.clone(),
            history: Some(pb::History {
                values: numbers(&case["history"]),
                last_date: case["last_date"].as_str().expect("date").into(),
            }),
            ..request("", &key[0], &key[1], 28)
        })
        .await
        .expect("inline forecast")
        .into_inner();
    assert_eq!(got.model_name, "demand", "the default model");
    assert_eq!(got.quantiles, asked);
    assert_eq!(got.history_last_date, "2026-10-03");
    let mean = numbers(&case["mean"]);
    let values: Vec<Vec<f64>> = case["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(numbers)
        .collect();
    for (h, p) in got.points.iter().enumerate() {
        close(p.mean, mean[h], 1e-5, &format!("mean {h}"));
        for (j, v) in values.iter().enumerate() {
            close(
                p.quantiles[j],
                v[h],
                1e-5,
                &format!("q{} day {h}", asked[j]),
            );
        }
    }
    assert_eq!(got.points[0].date, "2026-10-04");

    // From the store: the last 56 of its 112 days, up to 2026-10-31; a shorter horizon.
    let stored = client
        .forecast(request("demand", &key[0], &key[1], 7))
        .await
        .expect("stored forecast")
        .into_inner();
    assert_eq!(stored.quantiles, [0.1, 0.5, 0.9]);
    assert_eq!(stored.points.len(), 7);
    check_shape(&stored.points, "2026-11-01", 3);
    // The same numbers as sending that history inline.
    let history = pb::History {
        values: history_of(&key).into_iter().rev().take(56).rev().collect(),
        last_date: "2026-10-31".into(),
    };
    let inline = client
        .forecast(pb::ForecastRequest {
            history: Some(history),
            ..request("demand", "", "", 7)
        })
        .await
        .expect("inline")
        .into_inner();
    assert_eq!(inline.points, stored.points);
    server.stop().await;
}

/// The series' sales in the demo's sales.csv.
fn history_of(key: &[String]) -> Vec<f64> {
    let text = std::fs::read_to_string(format!("{DEMAND}/sales.csv")).expect("sales");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0] == key[0] && cells[1] == key[1]).then(|| cells[3].parse().expect("units"))
        })
        .collect()
}

#[tokio::test]
async fn forecast_batch_streams_every_series_in_order() {
    let server = TestServer::builder().demo().start().await;
    let mut client = client(&server).await;
    let text = std::fs::read_to_string(format!("{DEMAND}/history.csv")).expect("history");
    let mut ids: Vec<pb::SeriesId> = text
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            pb::SeriesId {
                sku_id: cells[0].into(),
                location_id: cells[1].into(),
            }
        })
        .collect();
    assert_eq!(ids.len(), 200);
    ids.extend(ids.clone());
    ids.insert(
        300,
        pb::SeriesId {
            sku_id: "SKU999".into(),
            location_id: "berlin".into(),
        },
    );
    for model in ["demand", "demand_ets"] {
        let mut stream = client
            .forecast_batch(pb::ForecastBatchRequest {
                model_name: model.into(),
                series: ids.clone(),
                horizon_days: 14,
                quantiles: vec![0.9, 0.1],
                ..Default::default()
            })
            .await
            .expect("batch")
            .into_inner();
        let mut got = Vec::new();
        let mut messages = 0;
        while let Some(message) = stream.message().await.expect("message") {
            assert_eq!(message.model_name, model);
            assert_eq!(message.quantiles, [0.9, 0.1]);
            messages += 1;
            got.extend(message.forecasts);
        }
        assert_eq!(messages, 2, "401 series in chunks of 256");
        assert_eq!(got.len(), ids.len());
        for (i, (f, id)) in got.iter().zip(&ids).enumerate() {
            assert_eq!(f.series.as_ref(), Some(id), "order at {i}");
            if i == 300 {
                assert_eq!(f.code, Code::NotFound as i32, "{f:?}");
                assert!(f.error.contains("SKU999/berlin"), "{}", f.error);
                assert!(f.points.is_empty());
                continue;
            }
            assert_eq!(f.code, 0, "{model} {i}: {}", f.error);
            assert_eq!(f.points.len(), 14);
            assert_eq!(f.history_last_date, "2026-10-31");
            for p in &f.points {
                assert!(p.quantiles[0] >= p.quantiles[1], "0.9 over 0.1: {p:?}");
            }
        }
        // A batched series gets what a single call gets.
        for i in [0, 137, 399] {
            let id = &ids[i];
            let one = client
                .forecast(pb::ForecastRequest {
                    quantiles: vec![0.9, 0.1],
                    ..request(model, &id.sku_id, &id.location_id, 14)
                })
                .await
                .expect("single")
                .into_inner();
            let batched = &got[i];
            for (a, b) in one.points.iter().zip(&batched.points) {
                assert_eq!(a.date, b.date);
                close(a.mean, b.mean, 1e-6, "mean");
                for (x, y) in a.quantiles.iter().zip(&b.quantiles) {
                    close(*x, *y, 1e-6, "quantile");
                }
            }
        }
    }
    let metrics = server.metrics_text().await;
    for method in ["Forecasting.Forecast", "Forecasting.ForecastBatch"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("mercator_requests_total")
                    && l.contains(&format!("method=\"{method}\""))
                    && l.contains("code=\"OK\"")),
            "{method} in metrics"
        );
    }
    // A stream's status comes in its trailers: both streams ended OK.
    let streams = r#"mercator_grpc_requests_total{code="OK",method="ForecastBatch",service="mercator.v1.Forecasting"} 2"#;
    assert!(metrics.lines().any(|l| l == streams), "{streams} missing");
    server.stop().await;
}

#[tokio::test]
async fn ets_bundle_answers_v2_with_the_same_numbers() {
    let server = TestServer::builder().demo().start().await;
    let want = expected("ets");
    let case = &want["series"][1];
    let key = numbers_key(&case["key"]);
    let history = numbers(&case["history"]);
    let one = |s: &str| bytes_raw(&[s.as_bytes()]);
    let response = server
        .v2()
        .await
        .model_infer(v2pb::ModelInferRequest {
            model_name: "demand_ets".into(),
            inputs: vec![
                input("sku_id", "BYTES", vec![1]),
                input("location_id", "BYTES", vec![1]),
                input("history", "FP64", vec![1, history.len() as i64]),
                input("last_date", "BYTES", vec![1]),
            ],
            raw_input_contents: vec![
                one(&key[0]),
                one(&key[1]),
                history.iter().flat_map(|v| v.to_le_bytes()).collect(),
                one(case["full_last_date"].as_str().expect("date")),
            ],
            ..Default::default()
        })
        .await
        .expect("v2")
        .into_inner();
    let mean: Vec<f64> = response.raw_output_contents[0]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
        .collect();
    for (h, m) in numbers(&case["from_full"]["mean"]).iter().enumerate() {
        close(mean[h], m.max(0.0), 1e-6, &format!("day {h}"));
    }
    server.stop().await;
}

fn field_of(status: &tonic::Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
        .unwrap_or_default()
}

#[tokio::test]
async fn bad_forecast_requests_are_named() {
    let server = TestServer::builder().demo().start().await;
    let mut client = client(&server).await;
    let good = || request("demand_ets", "SKU000", "berlin", 28);
    let inline = |values: Vec<f64>, last_date: &str| {
        Some(pb::History {
            values,
            last_date: last_date.into(),
        })
    };
    let cases: Vec<(&str, pb::ForecastRequest, Code, &str, &str)> = vec![
        (
            "horizon 0",
            pb::ForecastRequest {
                horizon_days: 0,
                ..good()
            },
            Code::InvalidArgument,
            "horizon_days",
            "at least 1",
        ),
        (
            "horizon over the server's maximum",
            pb::ForecastRequest {
                horizon_days: 367,
                ..good()
            },
            Code::InvalidArgument,
            "horizon_days",
            "maximum of 366",
        ),
        (
            "horizon over the net's",
            request("demand", "SKU000", "berlin", 29),
            Code::InvalidArgument,
            "horizon_days",
            "maximum of 28",
        ),
        (
            "quantile outside (0, 1)",
            pb::ForecastRequest {
                quantiles: vec![0.5, 1.5],
                ..good()
            },
            Code::InvalidArgument,
            "quantiles[1]",
            "not in (0, 1)",
        ),
        (
            "quantile 0",
            pb::ForecastRequest {
                quantiles: vec![0.0],
                ..good()
            },
            Code::InvalidArgument,
            "quantiles[0]",
            "not in (0, 1)",
        ),
        (
            "quantile NaN",
            pb::ForecastRequest {
                quantiles: vec![f64::NAN],
                ..good()
            },
            Code::InvalidArgument,
            "quantiles[0]",
            "not in (0, 1)",
        ),
        (
            "quantile beyond the net's levels",
            pb::ForecastRequest {
                quantiles: vec![0.99],
                ..request("demand", "SKU000", "berlin", 7)
            },
            Code::InvalidArgument,
            "quantiles[0]",
            "[0.05, 0.95]",
        ),
        (
            "unknown series",
            request("demand_ets", "SKU999", "berlin", 7),
            Code::NotFound,
            "",
            "SKU999/berlin",
        ),
        (
            "no SKU",
            request("demand_ets", "", "berlin", 7),
            Code::InvalidArgument,
            "series.sku_id",
            "SKU id",
        ),
        (
            "no location",
            request("demand_ets", "SKU000", "", 7),
            Code::InvalidArgument,
            "series.location_id",
            "location id",
        ),
        (
            "no series at all",
            pb::ForecastRequest {
                series: None,
                ..good()
            },
            Code::InvalidArgument,
            "series.sku_id",
            "SKU id",
        ),
        (
            "unknown model",
            request("nope", "SKU000", "berlin", 7),
            Code::NotFound,
            "",
            "'nope'",
        ),
        (
            "not a forecaster",
            request("churn", "SKU000", "berlin", 7),
            Code::FailedPrecondition,
            "",
            "not a forecaster",
        ),
        (
            "inline NaN",
            pb::ForecastRequest {
                history: inline(vec![1.0, f64::NAN], "2026-10-31"),
                ..good()
            },
            Code::InvalidArgument,
            "history.values[1]",
            "finite",
        ),
        (
            "inline empty",
            pb::ForecastRequest {
                history: inline(vec![], "2026-10-31"),
                ..good()
            },
            Code::InvalidArgument,
            "history.values",
            "at least one day",
        ),
        (
            "inline bad date",
            pb::ForecastRequest {
                history: inline(vec![1.0], "31.10.2026"),
                ..good()
            },
            Code::InvalidArgument,
            "history.last_date",
            "YYYY-MM-DD",
        ),
        (
            "inline too short for the net",
            pb::ForecastRequest {
                history: inline(vec![1.0; 10], "2026-10-31"),
                ..request("demand", "", "", 7)
            },
            Code::InvalidArgument,
            "history.values",
            "last 56",
        ),
        (
            "inline history before the ETS fit",
            pb::ForecastRequest {
                history: inline(vec![1.0; 60], "2026-09-01"),
                ..good()
            },
            Code::InvalidArgument,
            "history.last_date",
            "before 2026-10-03",
        ),
        (
            "inline history not reaching the fit",
            pb::ForecastRequest {
                history: inline(vec![1.0; 5], "2026-10-31"),
                ..good()
            },
            Code::InvalidArgument,
            "history.values",
            "28 are needed",
        ),
    ];
    for (what, req, code, field, needle) in cases {
        let status = client.forecast(req).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{what}: {}",
            status.message()
        );
        assert_eq!(field_of(&status), field, "{what}");
    }
    for (what, req, needle) in [
        (
            "empty batch",
            pb::ForecastBatchRequest {
                model_name: "demand".into(),
                horizon_days: 7,
                ..Default::default()
            },
            "at least one series",
        ),
        (
            "batch horizon 0",
            pb::ForecastBatchRequest {
                model_name: "demand".into(),
                series: vec![series("SKU000", "berlin").expect("id")],
                ..Default::default()
            },
            "at least 1",
        ),
        (
            "batch with a nameless series",
            pb::ForecastBatchRequest {
                model_name: "demand".into(),
                horizon_days: 7,
                series: vec![
                    series("SKU000", "berlin").expect("id"),
                    series("", "x").expect("id"),
                ],
                ..Default::default()
            },
            "series[1].sku_id",
        ),
    ] {
        let status = client.forecast_batch(req).await.expect_err(what);
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert!(
            status.message().contains(needle) || field_of(&status).contains(needle),
            "{what}: {} / {}",
            status.message(),
            field_of(&status)
        );
    }
    // The server still answers.
    client.forecast(good()).await.expect("still serving");
    server.stop().await;
}

#[tokio::test]
async fn batch_size_is_limited_by_configuration() {
    let server = TestServer::builder()
        .demo()
        .config(|c| c.limits.max_batch_series = 3)
        .start()
        .await;
    let mut client = client(&server).await;
    let status = client
        .forecast_batch(pb::ForecastBatchRequest {
            model_name: "demand".into(),
            horizon_days: 7,
            series: vec![series("SKU000", "berlin").expect("id"); 4],
            ..Default::default()
        })
        .await
        .expect_err("too many");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("maximum of 3"),
        "{}",
        status.message()
    );
    server.stop().await;
}

fn single_ets(name: &str) -> std::collections::BTreeMap<String, bytes::Bytes> {
    let dir = format!(
        "{}/../runtime/tests/fixtures/ets",
        env!("CARGO_MANIFEST_DIR")
    );
    let manifest = serde_json::json!({"kind": "ets", "weights": "ets.json",
        "inputs": [{"name": "history", "datatype": "FP64", "shape": [-1, -1]}],
        "outputs": [{"name": "mean", "datatype": "FP64", "shape": [-1, 28]}]});
    std::collections::BTreeMap::from([
        (
            "mercator.json".to_string(),
            bytes::Bytes::from(manifest.to_string()),
        ),
        (
            "ets.json".to_string(),
            bytes::Bytes::from(std::fs::read(format!("{dir}/{name}.ets.json")).expect("ets")),
        ),
    ])
}

#[tokio::test]
async fn single_series_ets_models_forecast_inline_histories() {
    let server = TestServer::builder()
        .model("additive", single_ets("aada"))
        .model("multiplicative", single_ets("aadm"))
        .start()
        .await;
    let mut client = client(&server).await;
    let dir = format!(
        "{}/../runtime/tests/fixtures/ets",
        env!("CARGO_MANIFEST_DIR")
    );
    for (model, fixture) in [("additive", "aada"), ("multiplicative", "aadm")] {
        let want: serde_json::Value = serde_json::from_slice(
            &std::fs::read(format!("{dir}/{fixture}.expected.json")).expect("expected"),
        )
        .expect("json");
        let got = client
            .forecast(pb::ForecastRequest {
                model_name: model.into(),
                horizon_days: 28,
                history: Some(pb::History {
                    values: numbers(&want["history"]),
                    last_date: "2026-05-20".into(),
                }),
                ..Default::default()
            })
            .await
            .expect("forecast")
            .into_inner();
        check_shape(&got.points, "2026-05-21", 3);
        for (p, m) in got.points.iter().zip(numbers(&want["forecast"])) {
            close(p.mean, m.max(0.0), 1e-6, model);
        }
        // No history section: the store cannot be asked.
        let status = client
            .forecast(request(model, "SKU000", "berlin", 7))
            .await
            .expect_err("no history binding");
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("inline"), "{}", status.message());
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_v2_forecaster_inputs_are_named() {
    let server = TestServer::builder().demo().start().await;
    let mut v2 = server.v2().await;
    let one = |s: &[u8]| bytes_raw(&[s]);
    let call = |sku: Vec<u8>, dates: Vec<u8>, date_rows: i64| v2pb::ModelInferRequest {
        model_name: "demand_ets".into(),
        inputs: vec![
            input("sku_id", "BYTES", vec![1]),
            input("location_id", "BYTES", vec![1]),
            input("history", "FP64", vec![1, 30]),
            input("last_date", "BYTES", vec![date_rows]),
        ],
        raw_input_contents: vec![
            sku,
            one(b"berlin"),
            [1.0f64; 30].iter().flat_map(|v| v.to_le_bytes()).collect(),
            dates,
        ],
        ..Default::default()
    };
    for (what, req, code, needle) in [
        (
            "bad UTF-8 key",
            call(one(&[0xff, 0xfe]), one(b"2026-10-31"), 1),
            Code::InvalidArgument,
            "sku_id",
        ),
        (
            "bad date",
            call(one(b"SKU000"), one(b"yesterday"), 1),
            Code::InvalidArgument,
            "not a YYYY-MM-DD date",
        ),
        (
            "dates for another number of rows",
            call(
                one(b"SKU000"),
                bytes_raw(&[b"2026-10-31", b"2026-10-31"]),
                2,
            ),
            Code::InvalidArgument,
            "batch size",
        ),
        (
            "unknown series",
            call(one(b"SKU999"), one(b"2026-10-31"), 1),
            Code::NotFound,
            "SKU999/berlin",
        ),
        (
            "history ending before the fit",
            call(one(b"SKU000"), one(b"2026-01-01"), 1),
            Code::InvalidArgument,
            "row 0",
        ),
    ] {
        let status = v2.model_infer(req).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(
            status.message().contains(needle),
            "{what}: {}",
            status.message()
        );
    }
    server.stop().await;
}

/// Every series of history.csv: (sku, location, daily units, last date).
fn histories() -> Vec<(String, String, Vec<f64>, String)> {
    std::fs::read_to_string(format!("{DEMAND}/history.csv"))
        .expect("history")
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let units = cells[2]
                .split(';')
                .map(|u| u.parse().expect("units"))
                .collect();
            (cells[0].into(), cells[1].into(), units, cells[3].into())
        })
        .collect()
}

#[tokio::test]
async fn forecasts_fill_drift_windows_and_doubled_sales_stand_out() {
    let server = TestServer::builder()
        .demo()
        .config(|c| {
            c.drift.window_samples = 200;
            c.drift.min_samples = 100;
            c.drift.interval_secs = 0.1;
        })
        .start()
        .await;
    let mut client = client(&server).await;
    let series_of = histories();
    let psi = |model: &str, role: &str, feature: &str| {
        format!(
            r#"mercator_drift_psi{{feature="{feature}",model="{model}",role="{role}",version="1"}}"#
        )
    };
    let columns = [
        ("input", "history_last_7d_mean"),
        ("prediction", "forecast_next_7d_mean"),
    ];
    // The store's histories are the data the shipped profiles were built on: no drift,
    // whatever horizon is asked (the summaries cover the first week).
    for model in ["demand", "demand_ets"] {
        let samples = format!(r#"mercator_drift_window_samples{{model="{model}",version="1"}}"#);
        // A batch whose chunk found the window busy (the evaluator copying it) is
        // skipped, not waited for: send it again until a full window was evaluated.
        let mut full = false;
        for _ in 0..5 {
            let mut stream = client
                .forecast_batch(pb::ForecastBatchRequest {
                    model_name: model.into(),
                    series: series_of
                        .iter()
                        .map(|(sku, loc, _, _)| series(sku, loc).expect("series"))
                        .collect(),
                    horizon_days: 14,
                    ..Default::default()
                })
                .await
                .expect("batch")
                .into_inner();
            while stream.message().await.expect("message").is_some() {}
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let text = server.metrics_text().await;
            if crate::harness::metric_value(&text, &samples) == Some(200.0) {
                full = true;
                break;
            }
        }
        assert!(full, "{model}: the window never held the 200 series");
        for (role, feature) in columns {
            let (v, _) = server.wait_for_metric(&psi(model, role, feature)).await;
            assert!(v < 0.1, "{model} {feature}: PSI {v} on its training data");
        }
    }
    // Sales doubled, sent inline: the window rolls over to them and both summaries move.
    for (sku, loc, units, last_date) in &series_of {
        client
            .forecast(pb::ForecastRequest {
                history: Some(pb::History {
                    values: units.iter().map(|u| u * 2.0).collect(),
                    last_date: last_date.clone(),
                }),
                ..request("demand_ets", sku, loc, 7)
            })
            .await
            .expect("forecast");
    }
    for (role, feature) in columns {
        let (v, text) = server
            .wait_for_metric_where(&psi("demand_ets", role, feature), |v| v > 0.2)
            .await;
        assert!(!text.contains("SKU000"), "series never become labels");
        eprintln!("doubled sales: {feature} PSI {v}");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_history_too_large_to_forecast_is_named_not_answered_with_infinities() {
    let server = TestServer::builder().demo().start().await;
    let mut client = client(&server).await;
    let key = ["SKU000".to_string(), "berlin".to_string()];
    let mut values = history_of(&key)
        .into_iter()
        .rev()
        .take(56)
        .rev()
        .collect::<Vec<_>>();
    let last = values.len() - 1;
    values[last] = 1e308;
    for model in ["demand", "demand_ets"] {
        let err = client
            .forecast(pb::ForecastRequest {
                history: Some(pb::History {
                    values: values.clone(),
                    last_date: "2026-10-31".into(),
                }),
                ..request(model, "SKU000", "berlin", 7)
            })
            .await
            .expect_err(model);
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{model}: {err:?}");
        assert!(
            err.message().contains("history.values") && err.message().contains("not finite"),
            "{model}: {err:?}"
        );
    }
    server.stop().await;
}
