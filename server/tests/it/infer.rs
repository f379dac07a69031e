//! Inference over V2 with the demo churn model and fixture models: numbers equal
//! xgboost's, versions resolve as documented, raw and typed contents both work.

use mercator_proto::inference::{self as pb, InferTensorContents};
use serde_json::json;
use tonic::codec::CompressionEncoding;

use crate::harness::{TestServer, churn_expected, f32_bytes, f32_from, fixture_model, input};

fn churn_request(rows: usize, values: &[f32]) -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "churn".into(),
        inputs: vec![input("features", "FP32", vec![rows as i64, 12])],
        raw_input_contents: vec![f32_bytes(values)],
        ..Default::default()
    }
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (f64::from(g) - w).abs() <= 1e-6,
            "{what}[{i}]: got {g}, xgboost {w}"
        );
    }
}

#[tokio::test]
async fn raw_contents_match_xgboost() {
    let server = TestServer::builder().churn().start().await;
    let expected = churn_expected();
    let mut client = server.v2().await;
    let mut req = churn_request(expected.rows, &expected.inputs);
    req.id = "req-42".into();
    let resp = client.model_infer(req).await.expect("infer").into_inner();
    assert_eq!(
        (
            resp.model_name.as_str(),
            resp.model_version.as_str(),
            resp.id.as_str()
        ),
        ("churn", "1", "req-42")
    );
    assert_eq!(resp.outputs.len(), 2);
    assert_eq!(resp.outputs[0].name, "churn_probability");
    assert_eq!(resp.outputs[0].datatype, "FP32");
    assert_eq!(resp.outputs[0].shape, vec![expected.rows as i64]);
    assert!(
        resp.outputs.iter().all(|o| o.contents.is_none()),
        "outputs travel as raw_output_contents"
    );
    assert_close(
        &f32_from(&resp.raw_output_contents[0]),
        &expected.probability,
        "probability",
    );
    assert_close(
        &f32_from(&resp.raw_output_contents[1]),
        &expected.margin,
        "margin",
    );
    server.stop().await;
}

#[tokio::test]
async fn typed_contents_and_requested_outputs() {
    let server = TestServer::builder().churn().start().await;
    let expected = churn_expected();
    let mut client = server.v2().await;
    let mut features = input("features", "FP32", vec![expected.rows as i64, 12]);
    features.contents = Some(InferTensorContents {
        fp32_contents: expected.inputs.clone(),
        ..Default::default()
    });
    let req = pb::ModelInferRequest {
        model_name: "churn".into(),
        model_version: "1".into(),
        inputs: vec![features],
        outputs: vec![pb::model_infer_request::InferRequestedOutputTensor {
            name: "churn_margin".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = client.model_infer(req).await.expect("infer").into_inner();
    assert_eq!(resp.outputs.len(), 1);
    assert_eq!(resp.outputs[0].name, "churn_margin");
    assert_close(
        &f32_from(&resp.raw_output_contents[0]),
        &expected.margin,
        "margin",
    );
    server.stop().await;
}

#[tokio::test]
async fn gzip_and_messages_over_four_mebibytes() {
    let manifest = json!({"kind": "xgboost", "weights": "model.json", "max_batch_size": 200000,
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 8]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]});
    let server = TestServer::builder()
        .model("reg", fixture_model("regression-v3", manifest))
        .start()
        .await;
    let rows = 150_000usize; // 150k x 8 x 4 bytes = 4.8 MB, over tonic's 4 MiB default
    let values: Vec<f32> = (0..rows * 8)
        .map(|i| ((i % 97) as f32 - 48.0) / 10.0)
        .collect();
    let req = pb::ModelInferRequest {
        model_name: "reg".into(),
        inputs: vec![input("x", "FP32", vec![rows as i64, 8])],
        raw_input_contents: vec![f32_bytes(&values)],
        ..Default::default()
    };
    let mut client = server
        .v2()
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Gzip);
    let resp = client
        .model_infer(req)
        .await
        .expect("large gzip request")
        .into_inner();
    let got = f32_from(&resp.raw_output_contents[0]);
    assert_eq!(got.len(), rows);
    // Rows repeat with period 97 * 8 / gcd(97, 8) elements, so row r equals row r + 97.
    assert_eq!(got[0], got[97]);
    assert!(got.iter().all(|v| v.is_finite()));
    server.stop().await;
}

#[tokio::test]
async fn several_input_datatypes_feed_one_model() {
    let single = json!({"kind": "xgboost", "weights": "model.json",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 8]}],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}]});
    let multi = json!({"kind": "xgboost", "weights": "model.json",
        "inputs": [{"name": "dense", "datatype": "FP64", "shape": [-1, 4]},
                   {"name": "counts", "datatype": "INT64", "shape": [-1, 2]},
                   {"name": "flag", "datatype": "UINT8", "shape": [-1, 1]},
                   {"name": "small", "datatype": "INT32", "shape": [-1, 1]}],
        "outputs": [{"name": "y", "datatype": "FP64", "shape": [-1, 1]}]});
    let server = TestServer::builder()
        .model("reg", fixture_model("regression-v3", single))
        .model("reg-multi", fixture_model("regression-v3", multi))
        .start()
        .await;
    let mut client = server.v2().await;
    let dense = [1.25f64, -0.5, 3.0, 0.75, -2.0, 0.1, 0.2, 0.3];
    let counts = [3i64, -1, 0, 2];
    let flag = [1u8, 0];
    let small = [-4i32, 7];
    let mut rows_f32 = Vec::new();
    for r in 0..2 {
        rows_f32.extend(dense[r * 4..r * 4 + 4].iter().map(|&v| v as f32));
        rows_f32.extend(counts[r * 2..r * 2 + 2].iter().map(|&v| v as f32));
        rows_f32.push(f32::from(flag[r]));
        rows_f32.push(small[r] as f32);
    }
    let want = client
        .model_infer(pb::ModelInferRequest {
            model_name: "reg".into(),
            inputs: vec![input("x", "FP32", vec![2, 8])],
            raw_input_contents: vec![f32_bytes(&rows_f32)],
            ..Default::default()
        })
        .await
        .expect("single")
        .into_inner();
    let want = f32_from(&want.raw_output_contents[0]);

    let mut typed = vec![
        input("small", "INT32", vec![2, 1]),
        input("dense", "FP64", vec![2, 4]),
        input("counts", "INT64", vec![2, 2]),
        input("flag", "UINT8", vec![2, 1]),
    ];
    typed[0].contents = Some(InferTensorContents {
        int_contents: small.to_vec(),
        ..Default::default()
    });
    typed[1].contents = Some(InferTensorContents {
        fp64_contents: dense.to_vec(),
        ..Default::default()
    });
    typed[2].contents = Some(InferTensorContents {
        int64_contents: counts.to_vec(),
        ..Default::default()
    });
    typed[3].contents = Some(InferTensorContents {
        uint_contents: flag.iter().map(|&f| u32::from(f)).collect(),
        ..Default::default()
    });
    let resp = client
        .model_infer(pb::ModelInferRequest {
            model_name: "reg-multi".into(),
            inputs: typed,
            ..Default::default()
        })
        .await
        .expect("multi typed")
        .into_inner();
    assert_eq!(resp.outputs[0].datatype, "FP64");
    assert_eq!(resp.outputs[0].shape, vec![2, 1]);
    let got: Vec<f64> = resp.raw_output_contents[0]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
        .collect();
    assert_eq!(got, want.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());

    let raw = pb::ModelInferRequest {
        model_name: "reg-multi".into(),
        inputs: vec![
            input("dense", "FP64", vec![2, 4]),
            input("counts", "INT64", vec![2, 2]),
            input("flag", "UINT8", vec![2, 1]),
            input("small", "INT32", vec![2, 1]),
        ],
        raw_input_contents: vec![
            dense.iter().flat_map(|v| v.to_le_bytes()).collect(),
            counts.iter().flat_map(|v| v.to_le_bytes()).collect(),
            flag.to_vec(),
            small.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ],
        ..Default::default()
    };
    let resp = client
        .model_infer(raw)
        .await
        .expect("multi raw")
        .into_inner();
    let got_raw: Vec<f64> = resp.raw_output_contents[0]
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8")))
        .collect();
    assert_eq!(got_raw, got);
    server.stop().await;
}

#[tokio::test]
async fn versions_resolve_and_unknowns_are_not_found() {
    let server = TestServer::builder().churn().start().await;
    let mut client = server.v2().await;
    let row = vec![0.0f32; 12];
    for (model, version, code) in [
        ("churn", "", tonic::Code::Ok),
        ("churn", "1", tonic::Code::Ok),
        ("churn", "champion", tonic::Code::Ok),
        ("churn", "2", tonic::Code::NotFound),
        ("churn", "challenger", tonic::Code::NotFound),
        ("nope", "", tonic::Code::NotFound),
    ] {
        let mut req = churn_request(1, &row);
        req.model_name = model.into();
        req.model_version = version.into();
        let got = client
            .model_infer(req)
            .await
            .map(|_| tonic::Code::Ok)
            .unwrap_or_else(|s| s.code());
        assert_eq!(got, code, "{model}@{version}");
        let ready = client
            .model_ready(pb::ModelReadyRequest {
                name: model.into(),
                version: version.into(),
            })
            .await
            .expect("ready")
            .into_inner()
            .ready;
        assert_eq!(ready, code == tonic::Code::Ok, "ready {model}@{version}");
    }
    let err = client
        .model_metadata(pb::ModelMetadataRequest {
            name: "nope".into(),
            version: String::new(),
        })
        .await
        .expect_err("unknown model");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(err.message().contains("nope"), "{}", err.message());
    // It says how a registered model gets served.
    assert!(
        err.message()
            .contains("`mercator models alias nope champion VERSION`"),
        "{}",
        err.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn health_metadata_config_and_statistics() {
    let server = TestServer::builder().churn().start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut client = server.v2().await;
    assert!(
        client
            .server_live(pb::ServerLiveRequest {})
            .await
            .expect("live")
            .into_inner()
            .live
    );
    let meta = client
        .server_metadata(pb::ServerMetadataRequest {})
        .await
        .expect("server metadata")
        .into_inner();
    assert_eq!(meta.name, "mercator");
    let meta = client
        .model_metadata(pb::ModelMetadataRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .expect("metadata")
        .into_inner();
    assert_eq!(meta.versions, vec!["1"]);
    assert_eq!(
        (
            meta.inputs[0].name.as_str(),
            meta.inputs[0].datatype.as_str()
        ),
        ("features", "FP32")
    );
    assert_eq!(meta.inputs[0].shape, vec![-1, 12]);
    let config = client
        .model_config(pb::ModelConfigRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .expect("config")
        .into_inner()
        .config
        .expect("config");
    assert_eq!(config.max_batch_size, 4096);
    assert_eq!(config.input[0].dims, vec![12]);
    assert_eq!(config.input[0].data_type, pb::DataType::TypeFp32 as i32);

    client
        .model_infer(churn_request(3, &[0.0; 36]))
        .await
        .expect("infer");
    client
        .model_infer(churn_request(3, &[0.0; 36]))
        .await
        .expect("infer");
    client
        .model_infer(churn_request(1, &[0.0; 12]))
        .await
        .expect("infer");
    let _ = client.model_infer(churn_request(2, &[0.0; 12])).await;
    let stats = client
        .model_statistics(pb::ModelStatisticsRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .expect("stats")
        .into_inner();
    let s = &stats.model_stats[0];
    assert_eq!((s.inference_count, s.execution_count), (7, 3));
    // Every phase is counted for every request computed (the failed one was not).
    let i = s.inference_stats.expect("inference stats");
    let count = |d: Option<pb::StatisticDuration>| d.map(|d| d.count);
    assert_eq!(count(i.success), Some(3));
    assert_eq!(count(i.fail), Some(1));
    for phase in [i.queue, i.compute_input, i.compute_infer, i.compute_output] {
        assert_eq!(count(phase), Some(3), "{i:?}");
    }
    assert!(i.compute_infer.is_some_and(|d| d.ns > 0), "{i:?}");
    // By batch size: two executions of 3 rows, one of 1.
    let batches: Vec<(u64, Option<u64>)> = s
        .batch_stats
        .iter()
        .map(|b| (b.batch_size, count(b.compute_infer)))
        .collect();
    assert_eq!(batches, vec![(1, Some(1)), (3, Some(2))]);
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_public_services() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = TestServer::builder().start().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = stream
        .message()
        .await
        .expect("message")
        .expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected {response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in [
        "inference.GRPCInferenceService",
        "mercator.v1.Registry",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
    server.stop().await;
}
