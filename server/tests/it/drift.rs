//! Live drift on the demo churn model (which ships its training profile): customers
//! scored by id, whose features the store fills in, look like the training data (PSI
//! under 0.1 everywhere); a stream whose return rate has doubled makes `return_rate`, and
//! among the inputs only it, stand out; the window rolls by count.

use std::time::Duration;

use mercator_proto::inference as v2;
use mercator_proto::v1::churn_client::ChurnClient;
use mercator_proto::v1::monitoring_client::MonitoringClient;
use mercator_proto::v1::{self as pb};

use crate::harness::{CHURN_DIR, TestServer, f32_bytes, input};

const WINDOW: usize = 1200;

/// Training rows `range` of customers.csv: (id, 12 features, NaN for empty).
fn customers(range: std::ops::Range<usize>) -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string(format!("{CHURN_DIR}/customers.csv")).expect("csv");
    text.lines()
        .skip(1)
        .skip(range.start)
        .take(range.len())
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let values = cells[1..13]
                .iter()
                .map(|c| c.parse::<f32>().unwrap_or(f32::NAN))
                .collect();
            (cells[0].to_string(), values)
        })
        .collect()
}

/// Every `mercator_drift_psi` input series of churn@1: feature → PSI.
fn input_psi(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with("mercator_drift_psi{") && l.contains(r#"role="input""#))
        .filter_map(|l| {
            let feature = l.split(r#"feature=""#).nth(1)?.split('"').next()?;
            let value = l.rsplit(' ').next()?.parse().ok()?;
            Some((feature.to_string(), value))
        })
        .collect()
}

/// The input PSIs once a full window's return_rate has moved past 0.2 (or the last seen
/// after 400 tries, for the caller's assertions to report).
async fn shifted_psi(server: &TestServer) -> std::collections::BTreeMap<String, f64> {
    let mut psi = Default::default();
    for _ in 0..400 {
        psi = input_psi(&evaluated(server, WINDOW).await);
        if psi.get("return_rate").is_some_and(|v| *v > 0.2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    psi
}

/// The demo churn model's inputs, each scored once a full window is evaluated.
const INPUTS: usize = 12;

/// Waits for an evaluation of a window of `rows` that scores every input. (A scrape
/// can fall between two evaluations' writes, and an earlier, smaller window may have
/// scored only the inputs with enough non-null values.)
async fn evaluated(server: &TestServer, rows: usize) -> String {
    let want = format!(r#"mercator_drift_window_samples{{model="churn",version="1"}} {rows}"#);
    for _ in 0..400 {
        let text = server.metrics_text().await;
        if text.lines().any(|l| l == want) && input_psi(&text).len() == INPUTS {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no evaluation of {rows} rows:\n{}",
        server.metrics_text().await
    );
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_doubled_return_rate_stands_out_and_training_like_traffic_does_not() {
    let server = TestServer::builder()
        .demo()
        .config(|c| {
            c.drift.window_samples = WINDOW;
            c.drift.min_samples = 500;
            c.drift.interval_secs = 0.1;
        })
        .start()
        .await;
    // No window yet: nothing exported, so an alert cannot fire on nothing.
    assert!(input_psi(&server.metrics_text().await).is_empty());

    // Training-like: customers scored by id, the store fills in their features.
    let mut churn = ChurnClient::new(server.channel().await);
    let unshifted = customers(0..WINDOW);
    for chunk in unshifted.chunks(100) {
        churn
            .score(pb::ScoreRequest {
                customer_ids: chunk.iter().map(|(id, _)| id.clone()).collect(),
                ..Default::default()
            })
            .await
            .expect("score");
    }
    let text = evaluated(&server, WINDOW).await;
    let psi = input_psi(&text);
    eprintln!("training-like PSI: {psi:?}");
    assert_eq!(psi.len(), INPUTS, "{psi:?}");
    for (feature, value) in &psi {
        assert!(
            *value < 0.1,
            "{feature} drifts on training-like traffic: {value}"
        );
    }
    assert!(
        text.contains(r#"mercator_drift_psi{feature="churn_probability",model="churn",role="prediction",version="1"}"#),
        "the prediction is scored too"
    );

    // The return rate doubles (other customers, sent as feature rows over V2).
    let mut client = server.v2().await;
    let shifted = customers(WINDOW..2 * WINDOW);
    for chunk in shifted.chunks(100) {
        let rows: Vec<f32> = chunk
            .iter()
            .flat_map(|(_, v)| {
                let mut v = v.clone();
                v[4] *= 2.0;
                v
            })
            .collect();
        client
            .model_infer(v2::ModelInferRequest {
                model_name: "churn".into(),
                inputs: vec![input("features", "FP32", vec![chunk.len() as i64, 12])],
                raw_input_contents: vec![f32_bytes(&rows)],
                ..Default::default()
            })
            .await
            .expect("infer");
    }
    // The window has rolled over to the shifted rows only: wait for PSI to move.
    let psi = shifted_psi(&server).await;
    let top = psi
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(f, _)| f.clone());
    eprintln!("shifted PSI: {psi:?}");
    crate::metrics::promtool_check(&server.metrics_text().await);
    assert_eq!(top.as_deref(), Some("return_rate"), "{psi:?}");
    assert!(psi["return_rate"] > 0.2, "{psi:?}");
    for (feature, value) in psi.iter().filter(|(f, _)| *f != "return_rate") {
        assert!(*value < 0.1, "{feature} drifts though unshifted: {value}");
    }

    // The same through gRPC and the CLI: the inputs ranked, return_rate on top.
    let mut monitoring = MonitoringClient::new(server.channel().await);
    let resp = monitoring
        .get_drift(pb::GetDriftRequest {
            model_name: "churn".into(),
            model_version: "champion".into(),
        })
        .await
        .expect("drift")
        .into_inner();
    let [v] = resp.versions.as_slice() else {
        panic!("one version: {resp:?}")
    };
    assert!(v.profiled && v.samples == WINDOW as u64 && v.min_samples == 500);
    let first_input = v.features.iter().find(|f| !f.prediction).expect("inputs");
    assert_eq!(first_input.name, "return_rate");
    let psis: Vec<f64> = v.features.iter().filter_map(|f| f.psi).collect();
    assert!(psis.windows(2).all(|w| w[0] >= w[1]), "ranked: {psis:?}");
    let url = server.url();
    let out = crate::cli::ok(&["drift", "churn", "--server", &url]);
    let first = out
        .lines()
        .find(|l| l.contains(" input "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(first.starts_with("return_rate"), "{out}");

    // Bad requests, and a model without a profile.
    for (model, code) in [
        ("", tonic::Code::InvalidArgument),
        ("nope", tonic::Code::NotFound),
    ] {
        let status = monitoring
            .get_drift(pb::GetDriftRequest {
                model_name: model.into(),
                ..Default::default()
            })
            .await
            .expect_err(model);
        assert_eq!(status.code(), code, "{status:?}");
    }
    // Every demo model ships a profile: register one without.
    server
        .registry_client()
        .await
        .register_version(pb::RegisterVersionRequest {
            alias: "champion".into(),
            ..crate::lifecycle::upload("plain")
        })
        .await
        .expect("register a model without a profile");
    server.wait_for_champion("plain", "1").await;
    let plain = monitoring
        .get_drift(pb::GetDriftRequest {
            model_name: "plain".into(),
            ..Default::default()
        })
        .await
        .expect("plain")
        .into_inner();
    assert!(!plain.versions.is_empty() && plain.versions.iter().all(|v| !v.profiled));
    server.stop().await;
}

/// Runs `examples/drift/shifted_traffic.py` against `server`.
fn send(python: &std::path::Path, server: &TestServer, extra: &[&str]) {
    // A quarter more rows than the window holds: a request that meets the evaluator
    // copying the window has its rows skipped (by design, counted), and the window must
    // still fill.
    let rows = (WINDOW + WINDOW / 4).to_string();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/drift/shifted_traffic.py"
    );
    let out = std::process::Command::new(python)
        .arg(script)
        .args(["--url", &server.grpc.to_string(), "--rows", &rows])
        .args(extra)
        .output()
        .expect("run the script");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// The script runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shifted_traffic_script_makes_exactly_the_shifted_feature_stand_out() {
    let Some(python) = crate::tritonclient::python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON with tritonclient installed"
        );
        eprintln!("no Python with tritonclient (set MERCATOR_PYTHON): skipped");
        return;
    };
    let server = TestServer::builder()
        .demo()
        .config(|c| {
            c.drift.window_samples = WINDOW;
            c.drift.interval_secs = 0.1;
        })
        .start()
        .await;
    send(&python, &server, &[]);
    let psi = input_psi(&evaluated(&server, WINDOW).await);
    assert_eq!(psi.len(), INPUTS);
    assert!(psi.values().all(|v| *v < 0.1), "unshifted: {psi:?}");

    send(
        &python,
        &server,
        &["--offset", &WINDOW.to_string(), "--shift", "return_rate=2"],
    );
    let psi = shifted_psi(&server).await;
    assert!(psi["return_rate"] > 0.2, "{psi:?}");
    for (feature, value) in psi.iter().filter(|(f, _)| *f != "return_rate") {
        assert!(
            *value < 0.1,
            "{feature} stands out though unshifted: {value}"
        );
    }
    server.stop().await;
}

/// A version's drift window survives its version being unloaded and loaded again: with
/// only `champion` served, a promote unloads version 1 and a rollback loads it back, and
/// its window still holds the rows it saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drift_window_survives_promote_and_rollback() {
    let files = crate::harness::read_dir_files(
        std::path::Path::new(CHURN_DIR),
        &["mercator.json", "model.json", "profile.json"],
    );
    let server = TestServer::builder()
        .model("churn", files.clone())
        .config(|c| c.drift.interval_secs = 0.1)
        .start()
        .await;
    let mut v2c = server.v2().await;
    let rows = 40;
    for (_, values) in customers(0..rows) {
        v2c.model_infer(v2::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![1, 12])],
            raw_input_contents: vec![f32_bytes(&values)],
            ..Default::default()
        })
        .await
        .expect("infer");
    }
    let monitoring = MonitoringClient::new(server.channel().await);
    let samples = |version: &'static str| {
        let mut monitoring = monitoring.clone();
        async move {
            monitoring
                .get_drift(pb::GetDriftRequest {
                    model_name: "churn".into(),
                    model_version: version.into(),
                })
                .await
                .ok()
                .and_then(|r| r.into_inner().versions.first().map(|v| v.samples))
                .unwrap_or(0)
        }
    };
    let mut seen = 0;
    for _ in 0..200 {
        seen = samples("1").await;
        if seen >= rows as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, rows as u64, "version 1's window holds its rows");

    // Promote version 2 (version 1 is unloaded), then roll back (it is loaded again).
    let v2 = server
        .registry
        .register(mercator_registry::NewVersion {
            model: "churn".into(),
            files,
            ..Default::default()
        })
        .await
        .expect("register v2");
    server
        .registry
        .promote("churn", v2.version, "test", "promote")
        .await
        .expect("promote");
    server.wait_for_champion("churn", "2").await;
    assert_eq!(samples("1").await, 0, "version 1 is no longer served");
    server
        .registry
        .rollback_alias("churn", "champion", "test", "roll back")
        .await
        .expect("rollback");
    server.wait_for_champion("churn", "1").await;
    let mut back = 0;
    for _ in 0..200 {
        back = samples("1").await;
        if back >= rows as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // Its 40 rows, plus the calls wait_for_champion made to see version 1 answer (a new
    // window would hold only those).
    assert!(
        back >= rows as u64,
        "the window came back with version 1: {back} samples"
    );
    server.stop().await;
}
