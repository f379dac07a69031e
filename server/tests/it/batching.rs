//! Dynamic batching over gRPC: requests from several callers merged into one execution
//! and split back in order, each caller's answer equal to the unbatched model's; a
//! request whose deadline passed leaves the queue uncomputed; a full queue refuses with
//! RESOURCE_EXHAUSTED; a version swapped out while requests wait answers every one of
//! them itself. The demo intent net (a `text` model) with a `dynamic_batching` section,
//! beside the same files without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use mercator_proto::inference as pb;
use mercator_proto::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use mercator_proto::v1 as reg;
use tonic::transport::Channel;

use crate::harness::{TestServer, bytes_raw, f32_from, input, metric_value, read_dir_files};

const INTENT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/intent");

/// The intent model's files, with `batching` as its `dynamic_batching` section (or none).
fn intent(batching: Option<serde_json::Value>) -> BTreeMap<String, Bytes> {
    let mut files = read_dir_files(
        Path::new(INTENT_DIR),
        &["mercator.json", "model.safetensors"],
    );
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&files["mercator.json"]).expect("manifest");
    if let Some(b) = batching {
        manifest["dynamic_batching"] = b;
    }
    files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
    files
}

const TEXTS: [&str; 8] = [
    "where is my parcel",
    "I want to cancel my order",
    "my coupon code is not working",
    "can I talk to a person please",
    "the package arrived broken",
    "how do I return these shoes",
    "is the blue jacket in stock",
    "my card was charged twice",
];

fn request(model: &str, version: &str, texts: &[&str]) -> pb::ModelInferRequest {
    let elements: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
    pb::ModelInferRequest {
        model_name: model.into(),
        model_version: version.into(),
        inputs: vec![input("text", "BYTES", vec![texts.len() as i64])],
        raw_input_contents: vec![bytes_raw(&elements)],
        ..Default::default()
    }
}

/// The probabilities and the version that answered.
async fn infer(
    mut client: GrpcInferenceServiceClient<Channel>,
    req: pb::ModelInferRequest,
) -> Result<(Vec<f32>, Vec<i64>, String), tonic::Status> {
    let r = client.model_infer(req).await?.into_inner();
    Ok((
        f32_from(&r.raw_output_contents[0]),
        r.outputs[0].shape.clone(),
        r.model_version,
    ))
}

async fn metric(server: &TestServer, series: &str) -> f64 {
    metric_value(&server.metrics_text().await, series).unwrap_or(0.0)
}

/// Executions of version 1 of `model` so far, and the rows they held.
async fn executions(server: &TestServer, model: &str) -> (f64, f64) {
    let text = server.metrics_text().await;
    let series =
        |part: &str| format!("mercator_batch_rows_{part}{{model=\"{model}\",version=\"1\"}}");
    let value = |part| metric_value(&text, &series(part)).unwrap_or(0.0);
    (value("count"), value("sum"))
}

/// Waits until `n` requests wait in the queue of `model` version `version`.
async fn queued(server: &TestServer, model: &str, version: &str, n: f64) {
    server
        .wait_for_metric_where(
            &format!("mercator_batch_queue_depth{{model=\"{model}\",version=\"{version}\"}}"),
            |v| v == n,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_requests_get_their_own_rows_in_order() {
    // A batch runs when it holds 16 rows (the delay is far longer than the test).
    let section =
        serde_json::json!({"max_batch_size": 16, "max_queue_delay_microseconds": 10_000_000});
    let server = TestServer::builder()
        .model("batched", intent(Some(section)))
        .model("plain", intent(None))
        .start()
        .await;
    // Requests of 1, 2, 3, 4, 5 and 1 texts: 16 rows, one batch.
    let sizes = [1usize, 2, 3, 4, 5, 1];
    let parts: Vec<Vec<&str>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|k| TEXTS[(i + k) % TEXTS.len()]).collect())
        .collect();
    let mut calls = Vec::new();
    for texts in &parts {
        let req = request("batched", "", texts);
        calls.push(tokio::spawn(infer(server.v2().await, req)));
    }
    for (texts, call) in parts.iter().zip(calls) {
        let (got, shape, version) = call.await.expect("task").expect("batched answer");
        let (want, want_shape, _) = infer(server.v2().await, request("plain", "", texts))
            .await
            .expect("plain answer");
        assert_eq!(version, "1");
        assert_eq!(shape, want_shape, "{texts:?}");
        assert_eq!(shape[0], texts.len() as i64);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6, "{texts:?}: {got:?} vs {want:?}");
        }
    }
    assert_eq!(executions(&server, "batched").await, (1.0, 16.0));

    // A request larger than max_batch_size runs alone, whole.
    let big: Vec<&str> = (0..20).map(|i| TEXTS[i % TEXTS.len()]).collect();
    let (got, shape, _) = infer(server.v2().await, request("batched", "", &big))
        .await
        .expect("a big request");
    let (want, _, _) = infer(server.v2().await, request("plain", "", &big))
        .await
        .expect("plain");
    assert_eq!(shape, [20, 12]);
    assert!(got.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-6));
    assert_eq!(executions(&server, "batched").await, (2.0, 36.0));

    // Triton's model configuration says how the model batches.
    let config = server
        .v2()
        .await
        .model_config(pb::ModelConfigRequest {
            name: "batched".into(),
            version: String::new(),
        })
        .await
        .expect("config")
        .into_inner()
        .config
        .expect("a config");
    let b = config.dynamic_batching.expect("dynamic batching");
    assert_eq!(b.max_queue_delay_microseconds, 10_000_000);
    assert_eq!(b.default_queue_policy.map(|p| p.max_queue_size), Some(1024));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_requests_leave_the_queue_uncomputed() {
    let section =
        serde_json::json!({"max_batch_size": 4, "max_queue_delay_microseconds": 10_000_000});
    // The server's deadline (not the client's, which would cancel the call itself).
    let server = TestServer::builder()
        .model("batched", intent(Some(section)))
        .config(|c| c.grpc.request_timeout_secs = 0.3)
        .start()
        .await;
    let err = server
        .v2()
        .await
        .model_infer(request("batched", "", &TEXTS[..1]))
        .await
        .expect_err("its deadline passes while it waits");
    assert_eq!(err.code(), tonic::Code::DeadlineExceeded, "{err:?}");

    // Four more fill a batch of four: the expired request is not in it.
    let mut calls = Vec::new();
    for text in &TEXTS[..4] {
        let req = request("batched", "", &[text]);
        calls.push(tokio::spawn(infer(server.v2().await, req)));
    }
    for call in calls {
        call.await.expect("task").expect("answered");
    }
    assert_eq!(executions(&server, "batched").await, (1.0, 4.0));
    let depth = "mercator_batch_queue_depth{model=\"batched\",version=\"1\"}";
    assert_eq!(metric(&server, depth).await, 0.0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_with_resource_exhausted() {
    let section = serde_json::json!({
        "max_batch_size": 64, "max_queue_delay_microseconds": 1_000_000, "max_queue_size": 2,
    });
    let server = TestServer::builder()
        .model("batched", intent(Some(section)))
        .start()
        .await;
    let mut waiting = Vec::new();
    for i in 0..2 {
        let req = request("batched", "", &TEXTS[i..=i]);
        waiting.push(tokio::spawn(infer(server.v2().await, req)));
    }
    queued(&server, "batched", "1", 2.0).await;
    let err = infer(server.v2().await, request("batched", "", &TEXTS[..1]))
        .await
        .expect_err("the queue is full");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(
        err.message()
            .contains("batching queue of model 'batched' version 1 is full"),
        "{err:?}"
    );
    for call in waiting {
        call.await
            .expect("task")
            .expect("the queued requests are answered");
    }
    // The refusal held no place: the queue takes requests again.
    infer(server.v2().await, request("batched", "", &TEXTS[..1]))
        .await
        .expect("answered after the queue drained");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_swapped_out_answers_what_it_queued() {
    // Requests would wait 10 s for a batch of 64; their callers wait 8 s at most. Only the
    // swap flushing the retired version's queue answers them in time.
    let section =
        serde_json::json!({"max_batch_size": 64, "max_queue_delay_microseconds": 10_000_000});
    let server = TestServer::builder()
        .model("intent", intent(Some(section.clone())))
        .config(|c| c.models.keep_versions = 0)
        .start()
        .await;
    let mut registry = server.registry_client().await;
    registry
        .register_version(crate::lifecycle::upload_files(
            "intent",
            intent(Some(section)),
        ))
        .await
        .expect("register version 2");
    let mut calls = Vec::new();
    for i in 0..8 {
        let mut client = server.v2().await;
        let mut req = tonic::Request::new(request("intent", "", &TEXTS[i..=i]));
        req.set_timeout(Duration::from_secs(8));
        calls.push(tokio::spawn(async move {
            let r = client.model_infer(req).await?.into_inner();
            Ok::<_, tonic::Status>((f32_from(&r.raw_output_contents[0]), r.model_version))
        }));
    }
    queued(&server, "intent", "1", 8.0).await;
    registry
        .set_alias(reg::SetAliasRequest {
            model: "intent".into(),
            alias: "champion".into(),
            version: 2,
            reason: "swap under a full queue".into(),
            actor: "test".into(),
        })
        .await
        .expect("move the champion");
    for (i, call) in calls.into_iter().enumerate() {
        let (probabilities, version) = call.await.expect("task").expect("no request lost");
        assert_eq!(version, "1", "request {i} was queued at version 1");
        assert_eq!(probabilities.len(), 12);
    }
    // And version 1 has left the table.
    let mut client = server.v2().await;
    let gone = client
        .model_ready(pb::ModelReadyRequest {
            name: "intent".into(),
            version: "1".into(),
        })
        .await;
    assert!(gone.is_err() || !gone.expect("ready").into_inner().ready);
    server.stop().await;
}

const NET_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demand/net");

fn net(batching: Option<serde_json::Value>) -> BTreeMap<String, Bytes> {
    let mut files = read_dir_files(Path::new(NET_DIR), &["mercator.json", "model.safetensors"]);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&files["mercator.json"]).expect("manifest");
    if let Some(b) = batching {
        manifest["dynamic_batching"] = b;
    }
    files.insert("mercator.json".into(), Bytes::from(manifest.to_string()));
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_of_several_callers_share_one_execution() {
    use mercator_proto::v1::forecasting_client::ForecastingClient;
    let section =
        serde_json::json!({"max_batch_size": 6, "max_queue_delay_microseconds": 10_000_000});
    let server = TestServer::builder()
        .model("net_batched", net(Some(section)))
        .model("net", net(None))
        .start()
        .await;
    let request = |model: &str, i: usize| reg::ForecastRequest {
        model_name: model.into(),
        horizon_days: 28,
        quantiles: vec![0.1, 0.5, 0.9],
        history: Some(reg::History {
            values: (0..120)
                .map(|d| {
                    20.0 + i as f64 * 3.0
                        + 5.0 * ((d % 7) as f64 / 7.0 * std::f64::consts::TAU).sin()
                })
                .collect(),
            last_date: "2026-10-31".into(),
        }),
        ..Default::default()
    };
    let mut calls = Vec::new();
    for i in 0..6 {
        let mut client = ForecastingClient::new(server.channel().await);
        let req = request("net_batched", i);
        calls.push(tokio::spawn(async move { client.forecast(req).await }));
    }
    let mut client = ForecastingClient::new(server.channel().await);
    for (i, call) in calls.into_iter().enumerate() {
        let got = call
            .await
            .expect("task")
            .expect("batched forecast")
            .into_inner();
        let want = client
            .forecast(request("net", i))
            .await
            .expect("plain forecast")
            .into_inner();
        assert_eq!(got.points.len(), 28);
        assert_eq!(got.points, want.points, "series {i}");
    }
    assert_eq!(executions(&server, "net_batched").await, (1.0, 6.0));
    server.stop().await;
}
