//! Live quality (issue 31): the demo's predictions, logged, joined with outcomes pushed
//! over `Outcomes/Push` and loaded with `mercator outcomes load`, judged point in time.
//! AUC, Brier, log loss, WAPE, MAE and pinball equal scikit-learn's and numpy's on the
//! same numbers (computed by the test's Python) to 1e-9, in `GetQuality`, in
//! `mercator quality --json` and on `/metrics`; a prediction younger than its window is
//! not judged.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use mercator_proto::v1 as pb;
use pb::monitoring_client::MonitoringClient;
use pb::outcomes_client::OutcomesClient;

use crate::cli::ok;
use crate::harness::{TestServer, metric_value};
use crate::tritonclient::python;

/// The binary window: short, so the test sees predictions mature.
const WINDOW_SECS: f64 = 3.0;

fn timestamp(micros: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    })
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// scikit-learn's and numpy's numbers for `input`, by the test's Python.
fn reference(python: &std::path::Path, input: &serde_json::Value) -> BTreeMap<String, f64> {
    let script = r#"
import json, sys
import numpy as np
from sklearn.metrics import roc_auc_score, brier_score_loss, log_loss, mean_absolute_error, mean_pinball_loss
d = json.load(sys.stdin)
p, y = np.array(d["p"]), np.array(d["y"])
a, m = np.array(d["actual"]), np.array(d["mean"])
out = {"auc": roc_auc_score(y, p), "brier": brier_score_loss(y, p), "log_loss": log_loss(y, p),
       "wape": float(np.abs(a - m).sum() / np.abs(a).sum()), "mae": mean_absolute_error(a, m)}
for level, q in d["quantiles"].items():
    out["pinball_" + level] = mean_pinball_loss(a, np.array(q), alpha=float(level))
print(json.dumps(out))
"#;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python ran");
    assert!(out.status.success(), "reference failed");
    serde_json::from_slice(&out.stdout).expect("reference json")
}

async fn quality(server: &TestServer, model: &str) -> pb::GetQualityResponse {
    MonitoringClient::new(server.channel().await)
        .get_quality(pb::GetQualityRequest {
            model_name: model.into(),
            window_days: 0.0,
        })
        .await
        .expect("quality")
        .into_inner()
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9, "{what}: {got} vs {want}");
}

// The CLI and the reference run as blocking child processes: keep a worker for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_equals_the_reference_libraries_and_waits_for_maturity() {
    let Some(python) = python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON"
        );
        eprintln!("no Python with scikit-learn (set MERCATOR_PYTHON): skipped");
        return;
    };
    let server = TestServer::builder()
        .demo()
        .config(|c| {
            c.prediction_log.flush_secs = 0.05;
            c.prediction_log.quality_every_secs = 0.0;
            c.prediction_log.quality.insert(
                "churn".into(),
                mercator_runtime::manifest::quality::Quality {
                    kind: mercator_runtime::manifest::quality::QualityKind::Binary,
                    window: format!("{WINDOW_SECS}s"),
                },
            );
        })
        .start()
        .await;
    for model in ["churn", "demand", "intent"] {
        server.wait_for_ready(model).await;
    }
    let channel = server.channel().await;
    // Score 60 customers of the demo.
    let ids: Vec<String> = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/churn/customers.csv"),
    )
    .expect("customers")
    .lines()
    .skip(1)
    .take(60)
    .filter_map(|l| l.split(',').next().map(String::from))
    .collect();
    let scores = pb::churn_client::ChurnClient::new(channel.clone())
        .score(pb::ScoreRequest {
            customer_ids: ids.clone(),
            ..Default::default()
        })
        .await
        .expect("score")
        .into_inner()
        .scores;
    let scored_at = now_micros();
    // Every third customer churns a second after the score; one churns after the window
    // (still a 0); explicit stays (value 0) change nothing.
    let (mut p, mut y) = (Vec::new(), Vec::new());
    let mut outcomes = Vec::new();
    for (i, s) in scores.iter().enumerate() {
        let churns = i % 3 == 0;
        p.push(s.probability);
        y.push(u8::from(churns));
        let (time, value) = match (churns, i) {
            (true, _) => (scored_at + 1_000_000, 1.0),
            (false, 1) => (scored_at + 60_000_000, 1.0),
            _ => (scored_at + 500_000, 0.0),
        };
        outcomes.push(pb::Outcome {
            entity: s.customer_id.clone(),
            time: timestamp(time),
            value,
            label: String::new(),
        });
    }
    let mut client = OutcomesClient::new(channel.clone());
    let pushed = client
        .push(pb::PushOutcomesRequest {
            model_name: "churn".into(),
            outcomes: outcomes.clone(),
        })
        .await
        .expect("push");
    assert_eq!(pushed.into_inner().accepted, 60);
    // Pushing the same outcomes again changes nothing (idempotent on entity and time).
    client
        .push(pb::PushOutcomesRequest {
            model_name: "churn".into(),
            outcomes,
        })
        .await
        .expect("push again");
    // Younger than the window: logged, not judged.
    let young = loop {
        let q = quality(&server, "churn").await;
        if q.versions.first().is_some_and(|v| v.pending == 60) {
            break q;
        }
        assert!(
            now_micros() - scored_at < 2_000_000,
            "the rows did not arrive in time: {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(young.versions[0].judged, 0, "{young:?}");
    assert!(!young.versions[0].metrics.contains_key("auc"));

    // Forecasts: a week of SKU000 at berlin, its actuals loaded from a CSV by the CLI.
    let forecast = pb::forecasting_client::ForecastingClient::new(channel.clone())
        .forecast(pb::ForecastRequest {
            series: Some(pb::SeriesId {
                sku_id: "SKU000".into(),
                location_id: "berlin".into(),
            }),
            horizon_days: 7,
            ..Default::default()
        })
        .await
        .expect("forecast")
        .into_inner();
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("actuals.csv");
    let mut text = String::from("series,day,units\n");
    let mut actual = Vec::new();
    for (i, point) in forecast.points.iter().enumerate() {
        let units = (point.mean * (0.8 + 0.07 * i as f64)).round();
        actual.push(units);
        text.push_str(&format!("SKU000|berlin,{},{units}\n", point.date));
    }
    std::fs::write(&csv, text).expect("csv");
    let url = server.url();
    let loaded = tokio::task::spawn_blocking({
        let csv = csv.display().to_string();
        let url = url.clone();
        move || {
            ok(&[
                "outcomes",
                "load",
                "demand",
                &csv,
                "--entity-column",
                "series",
                "--time-column",
                "day",
                "--value-column",
                "units",
                "--server",
                &url,
            ])
        }
    })
    .await
    .expect("cli");
    assert!(loaded.contains("7 outcomes of demand loaded"), "{loaded}");

    // The references, on the numbers the server answered.
    let mut quantiles = serde_json::Map::new();
    for (k, level) in forecast.quantiles.iter().enumerate() {
        let q: Vec<f64> = forecast.points.iter().map(|pt| pt.quantiles[k]).collect();
        quantiles.insert(level.to_string(), q.into());
    }
    let want = reference(
        &python,
        &serde_json::json!({
            "p": p, "y": y, "actual": actual,
            "mean": forecast.points.iter().map(|pt| pt.mean).collect::<Vec<_>>(),
            "quantiles": quantiles,
        }),
    );

    // Matured: every score judged, the one churn past its window a 0.
    let wait = (scored_at + (WINDOW_SECS * 1e6) as i64 + 200_000 - now_micros()).max(0);
    tokio::time::sleep(Duration::from_micros(wait as u64)).await;
    let churn = quality(&server, "churn").await;
    assert_eq!(churn.kind, "binary");
    let [v] = churn.versions.as_slice() else {
        panic!("one version and route: {churn:?}");
    };
    assert_eq!(
        (v.model_version.as_str(), v.route.as_str()),
        ("1", "champion")
    );
    assert_eq!((v.judged, v.pending), (60, 0));
    for metric in ["auc", "brier", "log_loss"] {
        close(v.metrics[metric], want[metric], metric);
    }
    close(v.metrics["positive_rate"], 20.0 / 60.0, "positive_rate");
    assert_eq!(
        v.calibration.iter().map(|b| b.count).sum::<u64>(),
        60,
        "every judged score is in a bin"
    );
    let demand = quality(&server, "demand").await;
    let [d] = demand.versions.as_slice() else {
        panic!("one version and route: {demand:?}");
    };
    assert_eq!((d.judged, d.pending), (7, 0));
    for metric in want
        .keys()
        .filter(|k| k.starts_with("pinball") || *k == "wape" || *k == "mae")
    {
        close(d.metrics[metric], want[metric], metric);
    }
    assert!(d.metrics.contains_key("coverage"));

    // The same numbers on /metrics (the family the dashboard and alert read) and from
    // the CLI.
    let text = server.metrics_text().await;
    assert!(
        text.contains("# TYPE mercator_model_quality gauge"),
        "{text}"
    );
    for (model, metric, value) in [
        ("churn", "auc", want["auc"]),
        ("churn", "brier", want["brier"]),
        ("demand", "wape", want["wape"]),
    ] {
        let series = format!(
            r#"mercator_model_quality{{metric="{metric}",model="{model}",route="champion",version="1"}}"#
        );
        let got = metric_value(&text, &series).unwrap_or_else(|| panic!("{series}:\n{text}"));
        close(got, value, &series);
    }
    let png = dir.path().join("churn.png");
    let json = tokio::task::spawn_blocking({
        let png = png.display().to_string();
        move || {
            ok(&[
                "quality", "churn", "--json", "--plot", &png, "--server", &url,
            ])
        }
    })
    .await
    .expect("cli");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    let metrics = &json["versions"][0]["metrics"];
    for metric in ["auc", "brier", "log_loss"] {
        close(
            metrics[metric].as_f64().expect("number"),
            want[metric],
            metric,
        );
    }
    let drawn = std::fs::read(&png).expect("png");
    assert!(
        drawn.starts_with(b"\x89PNG") && drawn.len() > 10_000,
        "a picture"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intents_are_judged_by_the_confirmed_label_and_bad_outcomes_are_refused() {
    let server = TestServer::builder()
        .demo()
        .config(|c| c.prediction_log.flush_secs = 0.05)
        .start()
        .await;
    for model in ["intent", "churn"] {
        server.wait_for_ready(model).await;
    }
    let channel = server.channel().await;
    let mut intent = pb::intent_client::IntentClient::new(channel.clone());
    let mut labels = Vec::new();
    let mut right = 0;
    for (i, text) in [
        "where is my parcel",
        "i want a refund",
        "cancel my order please",
        "can i talk to a human",
    ]
    .iter()
    .enumerate()
    {
        let mut req = tonic::Request::new(pb::ClassifyRequest {
            text: text.as_bytes().to_vec(),
            ..Default::default()
        });
        let id = format!("msg-{i}");
        req.metadata_mut()
            .insert("x-request-id", id.parse().expect("id"));
        let answer = intent.classify(req).await.expect("classify").into_inner();
        // Half confirmed as the model said, half as something else.
        let label = if i % 2 == 0 {
            right += 1;
            answer.intents[0].intent.clone()
        } else {
            "something_else".to_string()
        };
        labels.push(pb::Outcome {
            entity: id,
            time: timestamp(now_micros()),
            value: 0.0,
            label,
        });
    }
    let mut outcomes = OutcomesClient::new(channel.clone());
    outcomes
        .push(pb::PushOutcomesRequest {
            model_name: "intent".into(),
            outcomes: labels,
        })
        .await
        .expect("push");
    let q = loop {
        let q = quality(&server, "intent").await;
        if q.versions.first().is_some_and(|v| v.judged == 4) {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(q.kind, "classification");
    close(
        q.versions[0].metrics["accuracy"],
        f64::from(right) / 4.0,
        "accuracy",
    );
    // Bad pushes name the field.
    let good = pb::Outcome {
        entity: "c1".into(),
        time: timestamp(0),
        value: 1.0,
        label: String::new(),
    };
    for (model, outcome, field) in [
        ("Bad Name", good.clone(), "model_name"),
        (
            "churn",
            pb::Outcome {
                time: None,
                ..good.clone()
            },
            "outcomes[0].time",
        ),
        (
            "churn",
            pb::Outcome {
                value: f64::NAN,
                ..good.clone()
            },
            "outcomes[0].value",
        ),
        (
            "churn",
            pb::Outcome {
                entity: String::new(),
                ..good.clone()
            },
            "outcomes[0].entity",
        ),
    ] {
        let e = outcomes
            .push(pb::PushOutcomesRequest {
                model_name: model.into(),
                outcomes: vec![outcome],
            })
            .await
            .expect_err(field);
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(e.message().contains(field), "{field}: {}", e.message());
    }
    // An unknown model, and a value a binary model cannot be judged by.
    let unknown_model = outcomes
        .push(pb::PushOutcomesRequest {
            model_name: "nobody".into(),
            outcomes: vec![good.clone()],
        })
        .await
        .expect_err("unknown model");
    assert_eq!(unknown_model.code(), tonic::Code::NotFound);
    let not_binary = outcomes
        .push(pb::PushOutcomesRequest {
            model_name: "churn".into(),
            outcomes: vec![
                good.clone(),
                pb::Outcome {
                    value: 2.0,
                    ..good.clone()
                },
            ],
        })
        .await
        .expect_err("a 2 for a binary model");
    assert_eq!(not_binary.code(), tonic::Code::InvalidArgument);
    assert!(
        not_binary.message().contains("outcomes[1].value"),
        "{}",
        not_binary.message()
    );
    let unknown = MonitoringClient::new(channel)
        .get_quality(pb::GetQualityRequest {
            model_name: "nobody".into(),
            window_days: 0.0,
        })
        .await
        .expect_err("unknown model");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    server.stop().await;
}
