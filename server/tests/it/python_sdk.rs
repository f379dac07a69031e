//! The Python package (`python/`), as a user installs it: its stubs are current, its
//! exporters' folders register with the CLI and serve their training library's numbers,
//! and its client answers from the demo models (`python/tests/end_to_end.py`).

use std::path::PathBuf;
use std::process::Command;

use crate::harness::TestServer;
use crate::tritonclient::python;

fn has_package(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import mercator.export, xgboost, statsmodels, torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_package_exports_register_and_call() {
    let Some(python) = python().filter(has_package) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install the mercator package and python/requirements-test.txt"
        );
        eprintln!("no Python with the mercator package and its test requirements: skipped");
        return;
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let stubs = Command::new(&python)
        .arg(root.join("python/generate_stubs.py"))
        .arg("--check")
        .output()
        .expect("run generate_stubs");
    assert!(
        stubs.status.success(),
        "{}{}",
        String::from_utf8_lossy(&stubs.stdout),
        String::from_utf8_lossy(&stubs.stderr)
    );

    let server = TestServer::builder().demo().start().await;
    for model in ["churn", "intent", "demand", "demand_ets"] {
        server.wait_for_ready(model).await;
    }
    let script = root.join("python/tests/end_to_end.py");
    let grpc = server.grpc.to_string();
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .arg(&grpc)
            .arg(env!("CARGO_BIN_EXE_mercator"))
            .arg(&url)
            .output()
            .expect("run python")
    })
    .await
    .expect("python task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{stdout}");
    assert!(
        out.status.success(),
        "python package test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("python package: 11 passed, 0 failed"),
        "{stdout}"
    );
    server.stop().await;
}
