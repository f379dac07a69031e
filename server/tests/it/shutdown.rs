//! SIGTERM under load, on the real binary: requests the server accepted finish, requests
//! after it stopped accepting are refused (UNAVAILABLE), or never leave the client
//! (CANCELLED by the client's own connection, "connection closed", when the server's
//! GOAWAY beat them onto the wire), or are failed by the client on a stream the GOAWAY
//! says was not processed; a client may retry any of these elsewhere. None fails any
//! other way, and the process exits 0.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mercator_proto::inference as pb;
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use tonic::Code;

use crate::cli::ok;
use crate::harness::{CHURN_DIR, f32_bytes, input};

const CLIENTS: usize = 8;
const ROWS: usize = 2048;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_no_accepted_request() {
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mercator"))
        .args([
            "serve",
            "--data-dir",
            &data,
            "--grpc-addr",
            &addr,
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mercator serve");
    let url = format!("http://{addr}");
    let mut ready = false;
    for _ in 0..600 {
        if let Ok(mut c) = GrpcInferenceServiceClient::connect(url.clone()).await
            && c.server_ready(pb::ServerReadyRequest {})
                .await
                .is_ok_and(|r| r.into_inner().ready)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the server never became ready");

    // Batches big enough to run on the blocking pool, so some are in flight at SIGTERM.
    let request = pb::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("features", "FP32", vec![ROWS as i64, 12])],
        raw_input_contents: vec![f32_bytes(&vec![0.5; ROWS * 12])],
        ..Default::default()
    };
    let going = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = GrpcInferenceServiceClient::connect(url.clone())
            .await
            .expect("connect")
            .max_decoding_message_size(64 << 20);
        let (request, going) = (request.clone(), Arc::clone(&going));
        clients.push(tokio::spawn(async move {
            let mut done = 0u64;
            // Until the server refuses: after SIGTERM nothing new can succeed.
            while going.load(Ordering::Relaxed) {
                match client.model_infer(request.clone()).await {
                    Ok(r) => {
                        assert_eq!(r.get_ref().model_version, "1");
                        done += 1;
                    }
                    Err(status) => return (done, Some(status)),
                }
            }
            (done, None)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit = tokio::task::spawn_blocking(move || {
        for _ in 0..600 {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        None
    })
    .await
    .expect("wait");
    going.store(false, Ordering::Relaxed);
    let mut completed = 0;
    for c in clients {
        let (done, error) = c.await.expect("client");
        completed += done;
        if let Some(status) = error {
            // Two ways a client sees a request the server never took: the connection
            // closed before it went out, or it raced the server's graceful GOAWAY
            // (NO_ERROR): a stream above GOAWAY's last stream id was not processed
            // (RFC 9113, 6.8), and hyper fails it rather than retrying.
            let text = format!("{status:?}");
            let never_sent = (status.code() == Code::Cancelled
                && text.contains("connection closed"))
                || (text.contains("GoAway")
                    && text.contains("NO_ERROR")
                    && text.contains("Remote"));
            assert!(
                status.code() == Code::Unavailable || never_sent,
                "a request failed other than by refusal: {status:?}"
            );
        }
    }
    assert!(completed > 0, "no request completed before the signal");
    let exit = exit.expect("the server did not exit after SIGTERM");
    assert!(exit.success(), "exit status {exit:?}");
}
