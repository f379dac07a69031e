//! Bad requests get INVALID_ARGUMENT (or NOT_FOUND) with a message naming the input and
//! what was expected, plus a BadRequest field violation; the server keeps serving.

use mercator_proto::inference::{self as pb, InferTensorContents};
use serde_json::json;
use tonic_types::StatusExt;

use crate::harness::{TestServer, f32_bytes, fixture_model, input};

fn good() -> pb::ModelInferRequest {
    pb::ModelInferRequest {
        model_name: "strict".into(),
        inputs: vec![input("features", "FP32", vec![2, 8])],
        raw_input_contents: vec![f32_bytes(&[0.5; 16])],
        ..Default::default()
    }
}

#[tokio::test]
async fn each_bad_input_is_named() {
    let manifest = json!({"kind": "xgboost", "weights": "model.json", "max_batch_size": 4,
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8], "allow_nan": false}],
        "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1]}]});
    let server = TestServer::builder()
        .model("strict", fixture_model("binary_deep-v3", manifest))
        .start()
        .await;
    let mut client = server.v2().await;
    client
        .model_infer(good())
        .await
        .expect("the good request works");

    type Case = (
        &'static str,
        Box<dyn Fn(&mut pb::ModelInferRequest)>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "wrong datatype",
            Box::new(|r| {
                r.inputs[0].datatype = "FP64".into();
                r.raw_input_contents[0] = vec![0; 2 * 8 * 8];
            }),
            "inputs[features]",
            "datatype FP64 given, model expects FP32",
        ),
        (
            "unknown datatype",
            Box::new(|r| r.inputs[0].datatype = "FLOAT".into()),
            "inputs[features].datatype",
            "'FLOAT' is not a V2 datatype",
        ),
        (
            "wrong shape",
            Box::new(|r| {
                r.inputs[0].shape = vec![2, 7];
                r.raw_input_contents[0] = f32_bytes(&[0.5; 14]);
            }),
            "inputs[features]",
            "model expects [-1, 8]",
        ),
        (
            "wrong rank",
            Box::new(|r| r.inputs[0].shape = vec![16]),
            "inputs[features]",
            "model expects [-1, 8]",
        ),
        (
            "negative dimension",
            Box::new(|r| r.inputs[0].shape = vec![-2, 8]),
            "inputs[features].shape",
            "negative",
        ),
        (
            "missing input",
            Box::new(|r| {
                r.inputs.clear();
                r.raw_input_contents.clear();
            }),
            "inputs[features]",
            "input 'features' (FP32 [-1, 8]) is missing",
        ),
        (
            "extra input",
            Box::new(|r| {
                r.inputs.push(input("extra", "FP32", vec![2, 1]));
                r.raw_input_contents.push(f32_bytes(&[0.0; 2]));
            }),
            "inputs[extra]",
            "has no input 'extra'",
        ),
        (
            "input given twice",
            Box::new(|r| {
                r.inputs.push(input("features", "FP32", vec![2, 8]));
                r.raw_input_contents.push(f32_bytes(&[0.0; 16]));
            }),
            "inputs[features]",
            "given twice",
        ),
        (
            "raw bytes short",
            Box::new(|r| r.raw_input_contents[0].truncate(60)),
            "inputs[features]",
            "raw contents hold 60 bytes, but 16 FP32 elements need 64",
        ),
        (
            "raw bytes long",
            Box::new(|r| r.raw_input_contents[0].extend([0; 4])),
            "inputs[features]",
            "hold 68 bytes",
        ),
        (
            "raw entries miscounted",
            Box::new(|r| r.raw_input_contents.push(vec![])),
            "raw_input_contents",
            "2 raw entries for 1 inputs",
        ),
        (
            "raw mixed with contents",
            Box::new(|r| {
                r.inputs[0].contents = Some(InferTensorContents {
                    fp32_contents: vec![0.5; 16],
                    ..Default::default()
                });
            }),
            "inputs[features].contents",
            "not both",
        ),
        (
            "typed count wrong",
            Box::new(|r| {
                r.raw_input_contents.clear();
                r.inputs[0].contents = Some(InferTensorContents {
                    fp32_contents: vec![0.5; 15],
                    ..Default::default()
                });
            }),
            "inputs[features]",
            "holds 15 elements, the shape gives 16",
        ),
        (
            "typed field wrong",
            Box::new(|r| {
                r.raw_input_contents.clear();
                r.inputs[0].contents = Some(InferTensorContents {
                    fp64_contents: vec![0.5; 16],
                    ..Default::default()
                });
            }),
            "inputs[features]",
            "belongs in contents.fp32_contents",
        ),
        (
            "no data",
            Box::new(|r| r.raw_input_contents.clear()),
            "inputs[features]",
            "has no data",
        ),
        (
            "NaN forbidden",
            Box::new(|r| {
                let mut v = vec![0.5f32; 16];
                v[9] = f32::NAN;
                r.raw_input_contents[0] = f32_bytes(&v);
            }),
            "inputs[features]",
            "element 9 is NaN",
        ),
        (
            "batch over maximum",
            Box::new(|r| {
                r.inputs[0].shape = vec![5, 8];
                r.raw_input_contents[0] = f32_bytes(&[0.5; 40]);
            }),
            "inputs[features].shape",
            "batch of 5 rows exceeds the maximum of 4",
        ),
        (
            "unknown output",
            Box::new(|r| {
                r.outputs
                    .push(pb::model_infer_request::InferRequestedOutputTensor {
                        name: "score".into(),
                        ..Default::default()
                    });
            }),
            "outputs[score]",
            "has no output 'score'",
        ),
        (
            "huge shape",
            Box::new(|r| r.inputs[0].shape = vec![i64::MAX, 8]),
            "inputs[features].shape",
            "too large",
        ),
    ];
    for (what, mutate, field, needle) in cases {
        let mut req = good();
        mutate(&mut req);
        let status = client.model_infer(req).await.expect_err(what);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains(needle),
            "{what}: message {:?} lacks {needle:?}",
            status.message()
        );
        let violations = status
            .get_details_bad_request()
            .map(|b| b.field_violations)
            .unwrap_or_default();
        assert_eq!(
            violations.first().map(|v| v.field.as_str()),
            Some(field),
            "{what}: {violations:?}"
        );
    }
    client
        .model_infer(good())
        .await
        .expect("still serving after bad requests");
    server.stop().await;
}

#[tokio::test]
async fn bytes_inputs_are_bounds_checked_before_the_model_sees_them() {
    let manifest = json!({"kind": "xgboost", "weights": "model.json",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8]}],
        "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1]}]});
    let server = TestServer::builder()
        .model("strict", fixture_model("binary_deep-v3", manifest))
        .start()
        .await;
    let mut client = server.v2().await;
    let mut lying = 1_000_000u32.to_le_bytes().to_vec();
    lying.extend_from_slice(b"abc");
    let req = pb::ModelInferRequest {
        model_name: "strict".into(),
        inputs: vec![input("features", "BYTES", vec![1, 1])],
        raw_input_contents: vec![lying],
        ..Default::default()
    };
    let status = client
        .model_infer(req)
        .await
        .expect_err("lying length prefix");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("claims 1000000 bytes"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn the_server_batch_limit_applies_when_the_manifest_sets_none() {
    let manifest = json!({"kind": "xgboost", "weights": "model.json",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8]}],
        "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1]}]});
    let server = TestServer::builder()
        .model("strict", fixture_model("binary_deep-v3", manifest))
        .config(|c| c.limits.max_batch_size = 2)
        .start()
        .await;
    let mut client = server.v2().await;
    client.model_infer(good()).await.expect("two rows fit");
    let mut req = good();
    req.inputs[0].shape = vec![3, 8];
    req.raw_input_contents[0] = f32_bytes(&[0.5; 24]);
    let status = client
        .model_infer(req)
        .await
        .expect_err("three rows do not");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("maximum of 2"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_in_flight_limit_get_resource_exhausted() {
    let manifest = json!({"kind": "xgboost", "weights": "model.json", "max_batch_size": 400000,
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8]}],
        "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1]}]});
    let server = TestServer::builder()
        .model("strict", fixture_model("binary_deep-v3", manifest))
        .config(|c| c.limits.max_in_flight = 1)
        .start()
        .await;
    // A batch large enough to keep the only slot busy while small requests arrive.
    let rows = 100_000usize;
    let big = pb::ModelInferRequest {
        model_name: "strict".into(),
        inputs: vec![input("features", "FP32", vec![rows as i64, 8])],
        raw_input_contents: vec![f32_bytes(&vec![0.25; rows * 8])],
        ..Default::default()
    };
    let mut big_client = server.v2().await;
    let running = tokio::spawn(async move { big_client.model_infer(big).await.map(|_| ()) });
    // Wait until the big request holds the slot (as the in-flight gauge shows), so no
    // small request can take it first.
    while !server
        .metrics_text()
        .await
        .lines()
        .any(|l| l == "mercator_requests_in_flight 1")
    {
        assert!(
            !running.is_finished(),
            "the big request finished before it was seen in flight"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut client = server.v2().await;
    let refused = client.model_infer(good()).await;
    running
        .await
        .expect("join")
        .expect("the big request itself succeeds");
    let status = refused.expect_err("a request arriving while the slot is taken is refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("1 requests already in flight"),
        "{}",
        status.message()
    );
    client
        .model_infer(good())
        .await
        .expect("admitted again once the slot frees");
    server.stop().await;
}
