//! Connections a hostile client opens and never uses (issue 28): thousands of idle and
//! half-sent sockets on both listeners of the real binary, run with a small descriptor
//! limit, must leave health answering and the log quiet.

use std::net::SocketAddr;
use std::time::Duration;

use mercator_proto::inference as v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::free_port;

/// A child process killed when dropped (a failing test leaves no server behind).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_sockets_leave_health_answering_and_the_log_quiet() {
    // This test holds thousands of sockets: it raises its own descriptor limit, and
    // puts it back at the end.
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("limit");
    if soft < 8192 {
        rlimit::setrlimit(rlimit::Resource::NOFILE, hard.min(16384), hard).expect("raise");
    }
    // The server as its own process with 512 descriptors (hard limit too), log captured.
    let dir = tempfile::tempdir().expect("dir");
    let (grpc, http_port) = (free_port(), free_port());
    let log = dir.path().join("server.log");
    let mut child = Killed(
        std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "ulimit -n 512 && exec '{}' serve > '{}' 2>&1",
                env!("CARGO_BIN_EXE_mercator"),
                log.display()
            ))
            .env("MERCATOR_SERVER__DATA_DIR", dir.path().join("data"))
            .env("MERCATOR_SERVER__HEADER_READ_TIMEOUT_SECS", "2")
            .env("MERCATOR_GRPC__ADDR", format!("127.0.0.1:{grpc}"))
            .env("MERCATOR_METRICS__ADDR", format!("127.0.0.1:{http_port}"))
            .spawn()
            .expect("start the server"),
    );
    let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
    let live = format!("GET /v2/health/live HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
    let mut up = false;
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(http).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "the server never listened: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let lines_before = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .count();

    // 2,000 sockets on each listener: half a header on HTTP, nothing at all on gRPC.
    let mut idle = Vec::new();
    for _ in 0..2000 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(http).await {
            let _ = s
                .write_all(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")
                .await;
            idle.push(s);
        }
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", grpc)).await {
            idle.push(s);
        }
    }
    assert!(idle.len() > 3000, "only {} sockets opened", idle.len());
    // Once they have been quiet a moment, a probe takes the place of one of them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for _ in 0..3 {
        let (status, raw) = crate::hardening::http(http, &live, b"").await;
        assert_eq!(status, 200, "REST health with the listener full: {raw}");
        let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{grpc}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .expect("gRPC connects with the listener full");
        let answer = v2::grpc_inference_service_client::GrpcInferenceServiceClient::new(channel)
            .server_live(v2::ServerLiveRequest {})
            .await
            .expect("gRPC health with the listener full");
        assert!(answer.into_inner().live);
    }
    // The half-sent headers are closed within the header timeout (2 s here); the
    // server is still up, and it wrote a handful of lines, not one per refusal.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut first = tokio::net::TcpStream::connect(http).await.expect("connect");
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a header");
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(10), first.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "a half-sent header was never closed"
    );
    assert!(
        child.0.try_wait().expect("wait").is_none(),
        "the server died"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let written = text.lines().count() - lines_before;
    assert!(written < 40, "{written} log lines:\n{text}");
    drop(idle);
    drop(child);
    let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, soft, hard);
}

/// The resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Starts `count` REST uploads of `size` bytes that send all but the last byte, each on
/// its own connection, and keeps them open.
async fn stall_uploads(
    addr: SocketAddr,
    count: usize,
    size: usize,
    token: Option<&str>,
) -> Vec<tokio::task::JoinHandle<tokio::net::TcpStream>> {
    (0..count)
        .map(|_| {
            let auth = token
                .map(|t| format!("Authorization: Bearer {t}\r\n"))
                .unwrap_or_default();
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                let head = format!(
                    "POST /v2/models/churn/infer HTTP/1.1\r\nHost: x\r\n{auth}\
                     Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes()).await;
                let chunk = vec![b' '; 1 << 20];
                let mut left = size - 1;
                while left > 0 {
                    let n = left.min(chunk.len());
                    let sent =
                        tokio::time::timeout(Duration::from_secs(2), s.write_all(&chunk[..n]))
                            .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                    left -= n;
                }
                s
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_leave_the_memory_within_the_budget() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_mercator");
    let made = std::process::Command::new(bin)
        .args(["keys", "--data-dir"])
        .arg(&data)
        .args(["create", "loader", "--scope", "infer", "--json"])
        .output()
        .expect("make a key");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&made.stdout).expect("json");
    let token = created["secret"].as_str().expect("secret").to_string();
    let (grpc, http_port) = (free_port(), free_port());
    let budget = 256u64 << 20;
    let child = Killed(
        std::process::Command::new(bin)
            .arg("serve")
            .env("MERCATOR_SERVER__DATA_DIR", &data)
            .env("MERCATOR_AUTH__MODE", "required")
            .env(
                "MERCATOR_GRPC__MAX_BUFFERED_REQUEST_BYTES",
                budget.to_string(),
            )
            .env("MERCATOR_GRPC__ADDR", format!("127.0.0.1:{grpc}"))
            .env("MERCATOR_METRICS__ADDR", format!("127.0.0.1:{http_port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the server"),
    );
    let pid = child.0.id();
    let http: SocketAddr = ([127, 0, 0, 1], http_port).into();
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(http).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = rss(pid);
    // 32 uploads of 60 MB without a credential: answered 401 from their headers.
    let anonymous = stall_uploads(http, 32, 60 << 20, None).await;
    let mut held = Vec::new();
    for task in anonymous {
        held.push(task.await.expect("upload"));
    }
    let after_anonymous = rss(pid);
    assert!(
        after_anonymous < before + (64 << 20),
        "credential-less uploads grew the server from {before} to {after_anonymous} bytes"
    );
    // 32 keyed uploads of 60 MB: what is buffered stays within the 256 MiB budget (the
    // rest are refused with 429), plus a fixed overhead.
    let keyed = stall_uploads(http, 32, 60 << 20, Some(&token)).await;
    for task in keyed {
        held.push(task.await.expect("upload"));
    }
    let after_keyed = rss(pid);
    assert!(
        after_keyed < before + budget + (96 << 20),
        "keyed uploads grew the server from {before} to {after_keyed} bytes (budget {budget})"
    );
    println!(
        "resident: {} MB at start, {} MB after 32 credential-less 60 MB uploads, {} MB after \
         32 keyed ones (budget {} MB)",
        before >> 20,
        after_anonymous >> 20,
        after_keyed >> 20,
        budget >> 20
    );
    drop(held);
    drop(child);
}
