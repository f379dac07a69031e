//! `/metrics`: the families exist with bounded labels, count what happened, and pass
//! `promtool check metrics` (required in CI, skipped where promtool is absent).

use mercator_proto::inference as pb;

use crate::harness::{TestServer, f32_bytes, input};

#[tokio::test]
async fn metrics_count_requests_and_pass_promtool() {
    let server = TestServer::builder().churn().start().await;
    let mut client = server.v2().await;
    let ok = pb::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("features", "FP32", vec![2, 12])],
        raw_input_contents: vec![f32_bytes(&[1.0; 24])],
        ..Default::default()
    };
    for _ in 0..3 {
        client.model_infer(ok.clone()).await.expect("infer");
    }
    let mut bad = ok.clone();
    bad.inputs[0].shape = vec![2, 11];
    client.model_infer(bad).await.expect_err("bad shape");
    let mut unknown = ok.clone();
    unknown.model_name = "customer-C100234".into();
    client
        .model_infer(unknown)
        .await
        .expect_err("unknown model");

    let text = server.metrics_text().await;
    for line in [
        r#"mercator_requests_total{code="OK",method="ModelInfer",model="churn",version="1"} 3"#,
        r#"mercator_requests_total{code="INVALID_ARGUMENT",method="ModelInfer",model="churn",version="1"} 1"#,
        r#"mercator_requests_total{code="NOT_FOUND",method="ModelInfer",model="_unknown",version="_unknown"} 1"#,
        r#"mercator_request_duration_seconds_count{method="ModelInfer",model="churn",version="1"} 4"#,
        r#"mercator_inferred_rows_total{model="churn",version="1"} 6"#,
        r#"mercator_model_loads_total{model="churn",result="ok"} 1"#,
        r#"mercator_loaded_model_versions{model="churn"} 1"#,
        r#"mercator_model_load_duration_seconds_count{model="churn"} 1"#,
        "mercator_requests_in_flight 0",
        r#"mercator_batch_rows_count{model="churn",version="1"} 3"#,
        r#"mercator_batch_rows_bucket{model="churn",version="1",le="2"} 3"#,
        r#"mercator_batch_rows_bucket{model="churn",version="1",le="1"} 0"#,
        r#"mercator_request_phase_duration_seconds_count{model="churn",phase="compute",version="1"} 3"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(
        !text.contains("C100234"),
        "request values must never become labels"
    );

    promtool_check(&text);
    server.stop().await;
}

/// `promtool check metrics` on an exposition text: required in CI, skipped elsewhere
/// when promtool is absent.
pub fn promtool_check(text: &str) {
    match which("promtool") {
        Some(promtool) => {
            let mut child = std::process::Command::new(promtool)
                .args(["check", "metrics"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn promtool");
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("promtool");
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must install promtool (Debian package prometheus)"
            );
            eprintln!("promtool not installed: exposition format not checked");
        }
    }
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

#[tokio::test]
async fn every_grpc_call_is_counted_by_service_method_and_code() {
    let server = TestServer::builder().churn().start().await;
    let mut v2 = server.v2().await;
    v2.server_live(pb::ServerLiveRequest {})
        .await
        .expect("live");
    v2.model_metadata(pb::ModelMetadataRequest {
        name: "nope".into(),
        version: String::new(),
    })
    .await
    .expect_err("unknown model");
    server
        .registry_client()
        .await
        .list_models(mercator_proto::v1::ListModelsRequest {})
        .await
        .expect("list models");
    // A path no service has: counted, under a bounded label.
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.expect("ready");
    let err = raw
        .unary::<(), (), _>(
            tonic::Request::new(()),
            "/customer.C100234/Steal".parse().expect("path"),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no such method");
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    let text = server.metrics_text().await;
    for line in [
        r#"mercator_grpc_requests_total{code="OK",method="ServerLive",service="inference.GRPCInferenceService"} 1"#,
        r#"mercator_grpc_requests_total{code="NOT_FOUND",method="ModelMetadata",service="inference.GRPCInferenceService"} 1"#,
        r#"mercator_grpc_requests_total{code="OK",method="ListModels",service="mercator.v1.Registry"} 1"#,
        r#"mercator_grpc_requests_total{code="UNIMPLEMENTED",method="_unknown",service="_unknown"} 1"#,
        r#"mercator_grpc_request_duration_seconds_count{method="ListModels",service="mercator.v1.Registry"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    assert!(!text.contains("C100234"), "paths never become labels");
    promtool_check(&text);
    server.stop().await;
}

#[tokio::test]
async fn offloaded_batches_count_their_queue_time() {
    let server = TestServer::builder()
        .churn()
        .config(|c| c.serving.offload_min_rows = 1)
        .start()
        .await;
    let mut client = server.v2().await;
    client
        .model_infer(pb::ModelInferRequest {
            model_name: "churn".into(),
            inputs: vec![input("features", "FP32", vec![1, 12])],
            raw_input_contents: vec![f32_bytes(&[1.0; 12])],
            ..Default::default()
        })
        .await
        .expect("infer");
    let text = server.metrics_text().await;
    for phase in ["queue", "compute"] {
        let line = format!(
            r#"mercator_request_phase_duration_seconds_count{{model="churn",phase="{phase}",version="1"}} 1"#
        );
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
    server.stop().await;
}
