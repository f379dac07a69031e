//! The prediction log across the ends of a process, on the real binary: after SIGKILL
//! every file flushed before it is whole and readable (a file is put whole, never
//! appended), and after SIGTERM every row of every call the server answered is written
//! (the drain flushes the queue).

use std::process::{Child, Command};
use std::time::Duration;

use mercator_proto::inference as pb;
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use tonic::metadata::MetadataValue;

use crate::cli::ok;
use crate::harness::{CHURN_DIR, f32_bytes, free_port, input};
use crate::prediction_log::read_rows;

/// A served churn model in a fresh data folder, its prediction log set by `env`.
struct Served {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
    metrics: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(env: &[(&str, &str)]) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().display().to_string();
    ok(&[
        "models",
        "--data-dir",
        &data,
        "register",
        "churn",
        CHURN_DIR,
        "--alias",
        "champion",
    ]);
    let (grpc, metrics) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args([
            "serve",
            "--data-dir",
            &data,
            "--grpc-addr",
            &grpc,
            "--metrics-addr",
            &metrics,
        ])
        .env_remove("MERCATOR_CONFIG")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mercator serve");
    let served = Served {
        dir,
        child,
        url: format!("http://{grpc}"),
        metrics: format!("http://{metrics}/metrics"),
    };
    for _ in 0..600 {
        if let Ok(mut c) = GrpcInferenceServiceClient::connect(served.url.clone()).await
            && c.model_ready(pb::ModelReadyRequest {
                name: "churn".into(),
                version: String::new(),
            })
            .await
            .is_ok_and(|r| r.into_inner().ready)
        {
            return served;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server never became ready");
}

/// Scores `calls` requests of 4 rows, ids `<prefix>-<i>`.
async fn score(url: &str, prefix: &str, calls: usize) {
    let mut client = GrpcInferenceServiceClient::connect(url.to_string())
        .await
        .expect("connect");
    for i in 0..calls {
        let mut req = tonic::Request::new(pb::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![4, 12])],
            raw_input_contents: vec![f32_bytes(&[0.5; 48])],
            ..Default::default()
        });
        req.metadata_mut().insert(
            "x-request-id",
            MetadataValue::try_from(format!("{prefix}-{i}")).expect("id"),
        );
        client.model_infer(req).await.expect("infer");
    }
}

/// The rows written so far, as the server counts them.
async fn written(metrics: &str) -> f64 {
    let text = scrape(metrics).await;
    crate::harness::metric_value(
        &text,
        r#"mercator_prediction_log_rows_total{model="churn",outcome="written"}"#,
    )
    .unwrap_or(0.0)
}

pub(crate) async fn scrape(url: &str) -> String {
    // A plain HTTP/1.1 GET, as a scraper sends it.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("write");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read");
    body
}

fn ids(
    rows: &[crate::prediction_log::LoggedRow],
    prefix: &str,
) -> std::collections::BTreeSet<String> {
    rows.iter()
        .map(|(_, r)| r["request_id"].clone())
        .filter(|id| id.starts_with(prefix))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_every_flushed_file_is_whole() {
    let mut served = serve(&[("MERCATOR_PREDICTION_LOG__FLUSH_SECS", "0.1")]).await;
    score(&served.url, "flushed", 20).await;
    // Wait until the server says the 80 rows are written, then kill it outright.
    for _ in 0..200 {
        if written(&served.metrics).await >= 80.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(written(&served.metrics).await >= 80.0, "never flushed");
    served.child.kill().expect("SIGKILL");
    served.child.wait().expect("reaped");
    // Every file reads (read_rows fails on a torn one) and holds every flushed call.
    let rows = read_rows(&served.dir.path().join("predictions"));
    let want: std::collections::BTreeSet<String> =
        (0..20).map(|i| format!("flushed-{i}")).collect();
    assert_eq!(ids(&rows, "flushed"), want);
    assert_eq!(rows.len(), 80, "a row per instance, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_every_answered_call_is_written() {
    // Nothing would flush for an hour: only the drain writes these rows.
    let served = serve(&[
        ("MERCATOR_PREDICTION_LOG__FLUSH_SECS", "3600"),
        ("MERCATOR_PREDICTION_LOG__FLUSH_ROWS", "1000000"),
    ])
    .await;
    score(&served.url, "accepted", 25).await;
    assert_eq!(written(&served.metrics).await, 0.0, "nothing flushed yet");
    let pid = served.child.id().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let mut served = served;
    let status = tokio::task::spawn_blocking(move || {
        let status = served.child.wait().expect("exit");
        (status, served)
    })
    .await
    .expect("wait");
    let (status, served) = status;
    assert!(status.success(), "{status:?}");
    let rows = read_rows(&served.dir.path().join("predictions"));
    let want: std::collections::BTreeSet<String> =
        (0..25).map(|i| format!("accepted-{i}")).collect();
    assert_eq!(ids(&rows, "accepted"), want);
    assert_eq!(rows.len(), 100);
}
