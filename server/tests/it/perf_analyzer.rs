//! perf_analyzer as its docs show it, against every demo model: over gRPC and over HTTP
//! (churn over a gRPC stream too), in count-window mode, with no `-x` (it finds the
//! version from `ModelStatistics`, which must be complete and true for it to).
//!
//! - `churn` and `intent` with perf_analyzer's own random data: it builds each row from
//!   the per-row shape in the model metadata, so a text input must be advertised as
//!   `[-1, 1]` (Triton's batched BYTES shape), not `[-1]`; for churn it fills both the
//!   features and the advertised `customer_id`.
//! - `churn` by id alone, and the forecasters, with `--input-data` (a forecaster's date
//!   and series keys cannot be random strings; its history has a dynamic length).
//!
//! The binary and its libraries come from `scripts/perf_analyzer.sh`
//! (`MERCATOR_PERF_ANALYZER`, `MERCATOR_PERF_ANALYZER_LIBS`).

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::TestServer;

const DEMAND_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demand");

/// perf_analyzer's `--input-data` file for a forecaster: one series of the committed
/// expectations, each input with its per-row shape (`[1]` for the one-element ones).
fn forecast_input_data(model: &str) -> Value {
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DEMAND_DIR}/{model}/expected.json"))
            .expect("read expected.json"),
    )
    .expect("expected.json");
    let series = &expected["series"][0];
    let history = series["history"].as_array().expect("history").clone();
    let last_date = series
        .get("last_date")
        .or_else(|| series.get("full_last_date"))
        .expect("a last date");
    let mut row = json!({
        "history": { "content": history, "shape": [history.len()] },
        "last_date": { "content": [last_date], "shape": [1] },
    });
    if model == "ets" {
        row["sku_id"] = json!({ "content": [series["key"][0]], "shape": [1] });
        row["location_id"] = json!({ "content": [series["key"][1]], "shape": [1] });
    }
    json!({ "data": [row] })
}

fn write(dir: &Path, name: &str, data: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data.to_string()).expect("write input data");
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_analyzer_drives_every_demo_model_over_grpc_and_http() {
    let Some(binary) = std::env::var_os("MERCATOR_PERF_ANALYZER") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PERF_ANALYZER (scripts/perf_analyzer.sh)"
        );
        eprintln!("no perf_analyzer (eval \"$(scripts/perf_analyzer.sh)\"): skipped");
        return;
    };
    let libs = std::env::var("MERCATOR_PERF_ANALYZER_LIBS").unwrap_or_default();
    let server = TestServer::builder().demo().start().await;
    for model in ["churn", "intent", "demand", "demand_ets"] {
        server.wait_for_ready(model).await;
    }
    let files = tempfile::tempdir().expect("tempdir");
    let by_id = write(
        files.path(),
        "churn_by_id.json",
        &json!({ "data": [
            { "customer_id": { "content": ["C100042"], "shape": [1] } },
            { "customer_id": { "content": ["C109603"], "shape": [1] } },
        ] }),
    );
    let net = write(files.path(), "demand.json", &forecast_input_data("net"));
    let ets = write(files.path(), "demand_ets.json", &forecast_input_data("ets"));
    let grpc = server.grpc.to_string();
    let http = server.metrics.to_string();
    let mut runs: Vec<(String, Vec<String>)> = Vec::new();
    for (model, data) in [
        ("churn", None),
        ("churn", Some(&by_id)),
        ("intent", None),
        ("demand", Some(&net)),
        ("demand_ets", Some(&ets)),
    ] {
        for (protocol, url) in [("grpc", &grpc), ("http", &http)] {
            let mut args = vec!["-m", model, "-i", protocol, "-u", url];
            if let Some(file) = data {
                args.extend(["--input-data", file]);
            }
            runs.push((
                format!("{model} {protocol} {data:?}"),
                args.into_iter().map(String::from).collect(),
            ));
        }
    }
    runs.push((
        "churn stream".into(),
        ["-m", "churn", "-i", "grpc", "-u", &grpc, "--streaming"]
            .map(String::from)
            .to_vec(),
    ));
    for (name, args) in runs {
        let binary = binary.clone();
        let libs = libs.clone();
        // perf_analyzer blocks: off the runtime the server runs on.
        let out = tokio::task::spawn_blocking(move || {
            Command::new(&binary)
                .env("LD_LIBRARY_PATH", &libs)
                .args(&args)
                // A test of the protocol, not a measurement: on a loaded CI machine the
                // windows need not agree within perf_analyzer's default 10%.
                .args([
                    "--measurement-mode",
                    "count_windows",
                    "--measurement-request-count",
                    "50",
                    "--stability-percentage",
                    "1000",
                ])
                .output()
                .expect("run perf_analyzer")
        })
        .await
        .expect("perf_analyzer task");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stdout.contains("had error"),
            "perf_analyzer ({name}) exited {:?}:\n{stdout}\n{stderr}",
            out.status.code()
        );
        // The server side of its report comes from ModelStatistics.
        let server_side = stdout
            .split_once("  Server: ")
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("no server statistics ({name}):\n{stdout}"));
        assert!(
            server_side.contains("Successful request count: "),
            "{stdout}"
        );
        assert!(server_side.contains("queue "), "{stdout}");
        assert!(
            stdout.contains("Inferences/Second vs. Client Average Batch Latency"),
            "{stdout}"
        );
    }
    server.stop().await;
}
