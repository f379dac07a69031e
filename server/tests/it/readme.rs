//! The README's command blocks, run against the demo as a reader would run them, their
//! printed answers checked against what the README says they print
//! (`tests/python/readme_test.py`; every block runs or says why not).

use std::path::PathBuf;
use std::process::Command;

use crate::harness::TestServer;
use crate::tritonclient::python;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_runs_as_written_on_the_demo() {
    let Some(python) = python() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must provide MERCATOR_PYTHON"
        );
        eprintln!("no Python with tritonclient (set MERCATOR_PYTHON): skipped");
        return;
    };
    // The demo as `serve --demo` serves it: the intent model on all-MiniLM-L6-v2.
    let Some(builder) = TestServer::builder().demo_encoder() else {
        eprintln!("all-MiniLM-L6-v2 not fetched (examples/intent/fetch_encoder.py): skipped");
        return;
    };
    // Drift is evaluated often, so the README's drift table appears within its retry.
    let server = builder
        .config(|c| c.drift.interval_secs = 0.5)
        .start()
        .await;
    for model in ["churn", "intent", "demand", "demand_ets"] {
        server.wait_for_ready(model).await;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let args = [
        root.join("server/tests/python/readme_test.py")
            .display()
            .to_string(),
        root.join("README.md").display().to_string(),
        server.grpc.to_string(),
        server.metrics.to_string(),
        env!("CARGO_BIN_EXE_mercator").to_string(),
        server.data_dir.path().display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .args(&args)
            .output()
            .expect("run python")
    })
    .await
    .expect("readme task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "README test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    server.stop().await;
}
