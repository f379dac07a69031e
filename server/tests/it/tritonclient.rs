//! The real Python client, `tritonclient` from PyPI, over gRPC and over V2 REST, against
//! a server whose models were registered with the `mercator` CLI. The Python side lives in
//! `tests/python/tritonclient_test.py`; its interpreter comes from `MERCATOR_PYTHON`
//! (the test script sets it to a virtualenv with tritonclient installed).

use std::path::PathBuf;
use std::process::Command;

use crate::cli::ok;
use crate::harness::{CHURN_DIR, FIXTURES, TestServer};

pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MERCATOR_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

// The CLI runs as a blocking child process: keep a second worker free for the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritonclient_gets_correct_predictions() {
    let Some(python) = python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON with tritonclient installed"
        );
        eprintln!("no Python with tritonclient (set MERCATOR_PYTHON): skipped");
        return;
    };
    let server = TestServer::builder()
        // The server reads the churn features from the examples folder.
        .config(|c| c.features.load_roots = vec![CHURN_DIR.into()])
        .start()
        .await;
    let url = server.url();
    ok(&[
        "models", "--server", &url, "register", "churn", CHURN_DIR, "--alias", "champion",
    ]);
    ok(&[
        "models",
        "--server",
        &url,
        "register",
        "reg",
        &format!("{FIXTURES}/regression-v3.model.json"),
        "--alias",
        "champion",
    ]);
    let multi = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        format!("{FIXTURES}/regression-v3.model.json"),
        multi.path().join("model.json"),
    )
    .expect("copy");
    let manifest = serde_json::json!({"kind": "xgboost", "weights": "model.json",
        "inputs": [{"name": "dense", "datatype": "FP64", "shape": [-1, 4]},
                   {"name": "counts", "datatype": "INT64", "shape": [-1, 2]},
                   {"name": "flag", "datatype": "UINT8", "shape": [-1, 1]},
                   {"name": "half", "datatype": "FP16", "shape": [-1, 1]}],
        "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1]}]});
    std::fs::write(multi.path().join("mercator.json"), manifest.to_string()).expect("manifest");
    ok(&[
        "models",
        "--server",
        &url,
        "register",
        "reg-multi",
        &multi.path().display().to_string(),
        "--alias",
        "champion",
    ]);
    let demand = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/demand");
    for (name, dir) in [("demand", "net"), ("demand_ets", "ets")] {
        ok(&[
            "models",
            "--server",
            &url,
            "register",
            name,
            &demand.join(dir).display().to_string(),
            "--alias",
            "champion",
        ]);
    }
    for model in ["churn", "reg", "reg-multi"] {
        server.wait_for_champion(model, "1").await;
    }
    for model in ["demand", "demand_ets"] {
        server.wait_for_ready(model).await;
    }
    // The churn model's features, for calls by customer id.
    ok(&[
        "features",
        "--server",
        &url,
        "apply",
        &format!("{CHURN_DIR}/features.toml"),
    ]);
    let now = chrono::Utc::now().to_rfc3339();
    ok(&[
        "features",
        "--server",
        &url,
        "load",
        "customer_churn",
        &format!("{CHURN_DIR}/customers.csv"),
        "--event-time",
        &now,
        "--ignore-unknown-columns",
    ]);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/tritonclient_test.py");
    // The same tests over gRPC and over V2 REST on the HTTP listener.
    for (protocol, addr) in [("grpc", server.grpc), ("http", server.metrics)] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(protocol)
            .arg(addr.to_string())
            .arg(format!("{CHURN_DIR}/expected.json"))
            .arg(format!("{FIXTURES}/regression-v3.expected.json"))
            .arg(&demand)
            .output()
            .expect("run python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "tritonclient {protocol} test failed:\n{stdout}\n{stderr}"
        );
        print!("{stdout}");
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
        let mut must_run = vec![
            "test_infer_by_customer_id",
            "test_forecasters_over_v2",
            "test_model_repository",
        ];
        must_run.push(if protocol == "http" {
            "test_plain_http_json"
        } else {
            "test_stream_infer"
        });
        for test in must_run {
            assert!(stdout.contains(&format!("ok   {test}")), "{stdout}");
        }
    }
    // KServe's own clients: REST (JSON and binary tensors) and gRPC.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/kserve_test.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(server.metrics.to_string())
        .arg(server.grpc.to_string())
        .arg(format!("{CHURN_DIR}/expected.json"))
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kserve test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("kserve: 3 passed, 0 failed"), "{stdout}");
    server.stop().await;
}
