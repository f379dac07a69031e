//! What V2 clients are told about a model's inputs (issue 29, items 1 and 3): a
//! one-element row is advertised as Triton's `[-1, 1]` and read in either shape, and a
//! feature-backed model advertises its entity key (`customer_id`) as an optional input
//! that replaces the bound features, in gRPC and REST metadata and in ModelConfig.

use mercator_proto::inference as v2;
use v2::infer_parameter::ParameterChoice;

use crate::harness::{TestServer, bytes_raw, f32_bytes, f32_from, input};
use crate::rest::http;

fn parameter(t: &v2::model_metadata_response::TensorMetadata, key: &str) -> Option<String> {
    match t.parameters.get(key)?.parameter_choice.as_ref()? {
        ParameterChoice::StringParam(s) => Some(s.clone()),
        _ => None,
    }
}

fn keys(ids: &[&str], shape: Vec<i64>) -> (v2::model_infer_request::InferInputTensor, Vec<u8>) {
    let elements: Vec<&[u8]> = ids.iter().map(|s| s.as_bytes()).collect();
    (input("customer_id", "BYTES", shape), bytes_raw(&elements))
}

fn request(
    inputs: Vec<(v2::model_infer_request::InferInputTensor, Vec<u8>)>,
) -> v2::ModelInferRequest {
    let (inputs, raw) = inputs.into_iter().unzip();
    v2::ModelInferRequest {
        model_name: "churn".into(),
        inputs,
        raw_input_contents: raw,
        ..Default::default()
    }
}

#[tokio::test]
async fn metadata_advertises_scoring_by_id_and_triton_row_shapes() {
    let server = TestServer::builder().demo().start().await;
    server.wait_for_ready("churn").await;
    server.wait_for_ready("intent").await;
    let mut client = server.v2().await;
    let meta = client
        .model_metadata(v2::ModelMetadataRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .expect("metadata")
        .into_inner();
    let names: Vec<&str> = meta.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["features", "customer_id"]);
    let key = &meta.inputs[1];
    assert_eq!(
        (key.datatype.as_str(), key.shape.as_slice()),
        ("BYTES", &[-1, 1][..])
    );
    assert_eq!(parameter(key, "replaces").as_deref(), Some("features"));
    assert_eq!(
        parameter(&meta.inputs[0], "entity_keys").as_deref(),
        Some("customer_id")
    );
    let config = client
        .model_config(v2::ModelConfigRequest {
            name: "churn".into(),
            version: String::new(),
        })
        .await
        .expect("config")
        .into_inner()
        .config
        .expect("config");
    let inputs: Vec<(&str, &[i64], bool)> = config
        .input
        .iter()
        .map(|i| (i.name.as_str(), i.dims.as_slice(), i.optional))
        .collect();
    assert_eq!(
        inputs,
        [
            ("features", &[12][..], true),
            ("customer_id", &[1][..], true)
        ]
    );

    // REST says the same, parameters included.
    let rest = http(server.metrics, "GET", "/v2/models/churn", None, "").await;
    assert_eq!(rest.status, 200, "{:?}", rest.body);
    assert_eq!(rest.body["inputs"][1]["name"], "customer_id");
    assert_eq!(rest.body["inputs"][1]["shape"], serde_json::json!([-1, 1]));
    assert_eq!(rest.body["inputs"][1]["parameters"]["replaces"], "features");
    let rest = http(server.metrics, "GET", "/v2/models/churn/config", None, "").await;
    assert_eq!(rest.body["input"][1]["optional"], true, "{:?}", rest.body);
    let rest = http(server.metrics, "GET", "/v2/models/intent", None, "").await;
    assert_eq!(rest.body["inputs"][0]["shape"], serde_json::json!([-1, 1]));
    let rest = http(server.metrics, "GET", "/v2/models/intent/config", None, "").await;
    assert_eq!(rest.body["input"][0]["dims"], serde_json::json!([1]));

    // A client that builds its request from the metadata: keys shaped [n, 1].
    let ids = ["C100042", "C109603"];
    let by_id = |shape| request(vec![keys(&ids, shape)]);
    let flat = client.model_infer(by_id(vec![2])).await.expect("[n]");
    let column = client.model_infer(by_id(vec![2, 1])).await.expect("[n, 1]");
    let p = f32_from(&column.get_ref().raw_output_contents[0]);
    assert_eq!(p, f32_from(&flat.get_ref().raw_output_contents[0]));
    assert_eq!(p.len(), 2);

    // Keys sent with the features (as perf_analyzer's random data does): the features
    // are used as sent; the keys are checked, not looked up.
    let features = (
        input("features", "FP32", vec![1, 12]),
        f32_bytes(&[1.0; 12]),
    );
    let alone = client
        .model_infer(request(vec![features.clone()]))
        .await
        .expect("features");
    let both = client
        .model_infer(request(vec![
            features.clone(),
            keys(&["C100042"], vec![1, 1]),
        ]))
        .await
        .expect("features and key");
    assert_eq!(
        f32_from(&both.get_ref().raw_output_contents[0]),
        f32_from(&alone.get_ref().raw_output_contents[0])
    );
    assert_ne!(
        f32_from(&both.get_ref().raw_output_contents[0])[0],
        p[0],
        "the features sent, not C100042's"
    );
    let mut bad = keys(&["C100042"], vec![1, 1]);
    bad.1 = bytes_raw(&[&[0xff]]);
    let status = client
        .model_infer(request(vec![features, bad]))
        .await
        .expect_err("a bad key with the features");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("customer_id"),
        "{}",
        status.message()
    );

    // A text sent as [n, 1] (intent's advertised shape) is read as [n].
    let texts: [&[u8]; 2] = [b"where is my parcel", b"my coupon code is not working"];
    let text = |shape| v2::ModelInferRequest {
        model_name: "intent".into(),
        inputs: vec![input("text", "BYTES", shape)],
        raw_input_contents: vec![bytes_raw(&texts)],
        ..Default::default()
    };
    let flat = client.model_infer(text(vec![2])).await.expect("[n]");
    let column = client.model_infer(text(vec![2, 1])).await.expect("[n, 1]");
    assert_eq!(
        f32_from(&flat.get_ref().raw_output_contents[0]),
        f32_from(&column.get_ref().raw_output_contents[0])
    );
    let status = client
        .model_infer(text(vec![1, 2]))
        .await
        .expect_err("[1, 2] texts");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    server.stop().await;
}
