//! perf_analyzer as its docs show it, against the demo churn model: over gRPC, over HTTP
//! and over a gRPC stream, in count-window mode, with no `-x` (it finds the version from
//! `ModelStatistics`, which must be complete and true for it to). The binary and its
//! libraries come from `scripts/perf_analyzer.sh` (`MERCATOR_PERF_ANALYZER`,
//! `MERCATOR_PERF_ANALYZER_LIBS`).

use std::process::Command;

use crate::harness::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perf_analyzer_runs_as_written_over_grpc_http_and_a_stream() {
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
    server.wait_for_ready("churn").await;
    let grpc = server.grpc.to_string();
    let http = server.metrics.to_string();
    let runs: [(&str, &[&str]); 3] = [
        ("grpc", &["-i", "grpc", "-u", &grpc]),
        ("http", &["-i", "http", "-u", &http]),
        ("stream", &["-i", "grpc", "-u", &grpc, "--streaming"]),
    ];
    for (name, protocol) in runs {
        let binary = binary.clone();
        let libs = libs.clone();
        let args: Vec<String> = protocol.iter().map(|a| a.to_string()).collect();
        // perf_analyzer blocks: off the runtime the server runs on.
        let out = tokio::task::spawn_blocking(move || {
            Command::new(&binary)
                .env("LD_LIBRARY_PATH", &libs)
                .args(["-m", "churn"])
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
            out.status.success(),
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
