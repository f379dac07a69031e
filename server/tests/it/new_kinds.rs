//! Candle nets and ETS forecasters registered like any model and called over V2
//! `ModelInfer`: PyTorch's and statsmodels' numbers come back, for float features, token
//! ids and series histories.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::Bytes;
use mercator_proto::inference as pb;

use crate::harness::{TestServer, f32_from, input};

fn fixture(name: &str) -> (BTreeMap<String, Bytes>, serde_json::Value) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/candle");
    let read = |f: String| Bytes::from(std::fs::read(dir.join(&f)).expect("fixture"));
    let files = BTreeMap::from([
        ("mercator.json".to_string(), read(format!("{name}.json"))),
        (
            "model.safetensors".to_string(),
            read(format!("{name}.safetensors")),
        ),
    ]);
    let expected =
        serde_json::from_slice(&read(format!("{name}.expected.json"))).expect("expected");
    (files, expected)
}

fn rows(v: &serde_json::Value) -> Vec<Vec<f64>> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn candle_nets_serve_pytorch_numbers_over_v2() {
    let (mlp, mlp_expected) = fixture("mlp_relu_softmax");
    let (bag, bag_expected) = fixture("embedding_bag_mean");
    let server = TestServer::builder()
        .model("mlp", mlp)
        .model("bag", bag)
        .start()
        .await;
    let mut client = server.v2().await;
    for (model, expected, datatype, width) in [
        ("mlp", &mlp_expected, "FP32", 8),
        ("bag", &bag_expected, "INT64", 6),
    ] {
        let x = rows(&expected["input"]);
        let raw: Vec<u8> = x
            .iter()
            .flatten()
            .flat_map(|&v| {
                if datatype == "FP32" {
                    (v as f32).to_le_bytes().to_vec()
                } else {
                    (v as i64).to_le_bytes().to_vec()
                }
            })
            .collect();
        let name = if datatype == "FP32" { "x" } else { "ids" };
        let response = client
            .model_infer(pb::ModelInferRequest {
                model_name: model.into(),
                inputs: vec![input(name, datatype, vec![x.len() as i64, width])],
                raw_input_contents: vec![raw],
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{model}: {e}"))
            .into_inner();
        assert_eq!(response.model_version, "1");
        let got = f32_from(&response.raw_output_contents[0]);
        let want: Vec<f64> = rows(&expected["output"]).into_iter().flatten().collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() <= 1e-5, "{model}: {g} vs {w}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn ets_forecasts_serve_statsmodels_numbers_over_v2() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/ets");
    let manifest = serde_json::json!({"kind": "ets", "weights": "ets.json",
        "inputs": [{"name": "history", "datatype": "FP64", "shape": [-1, -1]}],
        "outputs": [{"name": "mean", "datatype": "FP64", "shape": [-1, 28]},
                    {"name": "quantiles", "datatype": "FP64", "shape": [-1, 28, 3]}],
        "quantiles": [0.1, 0.5, 0.9]});
    let files = BTreeMap::from([
        (
            "mercator.json".to_string(),
            Bytes::from(manifest.to_string()),
        ),
        (
            "ets.json".to_string(),
            Bytes::from(std::fs::read(dir.join("aada.ets.json")).expect("artifact")),
        ),
    ]);
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("aada.expected.json")).expect("expected"))
            .expect("json");
    let server = TestServer::builder().model("demand", files).start().await;
    let history: Vec<f64> = expected["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    let response = server
        .v2()
        .await
        .model_infer(pb::ModelInferRequest {
            model_name: "demand".into(),
            inputs: vec![input("history", "FP64", vec![1, history.len() as i64])],
            raw_input_contents: vec![history.iter().flat_map(|v| v.to_le_bytes()).collect()],
            ..Default::default()
        })
        .await
        .expect("forecast")
        .into_inner();
    let f64s = |b: &[u8]| -> Vec<f64> {
        b.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()
    };
    let mean = f64s(&response.raw_output_contents[0]);
    let quantiles = f64s(&response.raw_output_contents[1]);
    assert_eq!(response.outputs[1].shape, vec![1, 28, 3]);
    let want = |path: &serde_json::Value| -> Vec<f64> {
        path.as_array()
            .expect("array")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect()
    };
    let (lower, upper) = (
        want(&expected["intervals"]["0.2"]["lower"]),
        want(&expected["intervals"]["0.2"]["upper"]),
    );
    for (h, m) in want(&expected["forecast"]).iter().enumerate() {
        assert!((mean[h] - m).abs() <= 1e-6 * m.abs(), "step {h}");
        assert!((quantiles[3 * h] - lower[h]).abs() <= 1e-6 * lower[h].abs());
        assert!(
            (quantiles[3 * h + 1] - m).abs() <= 1e-6 * m.abs(),
            "median = mean"
        );
        assert!((quantiles[3 * h + 2] - upper[h]).abs() <= 1e-6 * upper[h].abs());
    }
    server.stop().await;
}

#[tokio::test]
async fn text_pipelines_classify_utf8_over_v2() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/text");
    let read = |f: &str| Bytes::from(std::fs::read(dir.join(f)).expect("fixture"));
    let files = BTreeMap::from([
        ("mercator.json".to_string(), read("intent.json")),
        ("model.safetensors".to_string(), read("intent.safetensors")),
    ]);
    let expected: serde_json::Value =
        serde_json::from_slice(&read("intent.expected.json")).expect("json");
    let server = TestServer::builder().model("intent", files).start().await;
    let texts: Vec<&str> = expected["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| t.as_str().expect("text"))
        .collect();
    let raw: Vec<u8> = texts
        .iter()
        .flat_map(|t| (t.len() as u32).to_le_bytes().into_iter().chain(t.bytes()))
        .collect();
    let mut client = server.v2().await;
    let response = client
        .model_infer(pb::ModelInferRequest {
            model_name: "intent".into(),
            inputs: vec![input("text", "BYTES", vec![texts.len() as i64])],
            raw_input_contents: vec![raw],
            ..Default::default()
        })
        .await
        .expect("classify")
        .into_inner();
    let got = f32_from(&response.raw_output_contents[0]);
    let want: Vec<f64> = rows(&expected["probabilities"])
        .into_iter()
        .flatten()
        .collect();
    for (g, w) in got.iter().zip(&want) {
        assert!((f64::from(*g) - w).abs() <= 1e-5, "{g} vs {w}");
    }
    let status = client
        .model_infer(pb::ModelInferRequest {
            model_name: "intent".into(),
            inputs: vec![input("text", "BYTES", vec![1])],
            raw_input_contents: vec![[2u32.to_le_bytes().as_slice(), &[0xff, 0xfe]].concat()],
            ..Default::default()
        })
        .await
        .expect_err("not UTF-8");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("not UTF-8"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn intent_classify_ranks_maps_actions_and_hands_off() {
    use mercator_proto::v1::{ClassifyRequest, intent_client::IntentClient};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../runtime/tests/fixtures/text");
    let read = |f: &str| Bytes::from(std::fs::read(dir.join(f)).expect("fixture"));
    let files = BTreeMap::from([
        ("mercator.json".to_string(), read("intent.json")),
        ("model.safetensors".to_string(), read("intent.safetensors")),
    ]);
    let plain = crate::harness::fixture_model(
        "binary_deep-v3",
        serde_json::json!({"kind": "xgboost", "weights": "model.json",
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 8]}],
            "outputs": [{"name": "probability", "datatype": "FP32", "shape": [-1]}]}),
    );
    let server = TestServer::builder()
        .model("intent", files)
        .model("plain", plain)
        .start()
        .await;
    let mut client = IntentClient::new(server.channel().await);
    let ask = |text: &[u8]| ClassifyRequest {
        text: text.to_vec(),
        session_id: "s-1".into(),
        ..Default::default()
    };
    let sure = client
        .classify(ask("cancel order 4821 now!!!".as_bytes()))
        .await
        .expect("classify")
        .into_inner();
    assert_eq!(sure.intents[0].intent, "cancel_order");
    assert!(sure.intents[0].probability > 0.8);
    assert_eq!(sure.intents.len(), 4, "all intents by default");
    assert!(
        sure.intents
            .windows(2)
            .all(|w| w[0].probability >= w[1].probability)
    );
    assert_eq!(
        (sure.action.as_str(), sure.handoff),
        ("open_cancellation", false)
    );
    assert_eq!(
        (sure.session_id.as_str(), sure.model_version.as_str()),
        ("s-1", "1")
    );

    let human = client
        .classify(ask("I want to talk to a HUMAN 😡😡".as_bytes()))
        .await
        .expect("classify")
        .into_inner();
    assert_eq!(human.intents[0].intent, "talk_to_human");
    assert_eq!(
        (human.handoff, human.handoff_reason.as_str()),
        (true, "requested")
    );
    assert_eq!(human.action, "transfer_to_agent");

    let mut unsure = ask("Café crème & ﬁne print".as_bytes());
    unsure.top_k = 2;
    let unsure = client
        .classify(unsure)
        .await
        .expect("classify")
        .into_inner();
    assert_eq!(unsure.intents.len(), 2);
    assert!(unsure.intents[0].probability < 0.5);
    assert_eq!(
        (unsure.handoff, unsure.handoff_reason.as_str()),
        (true, "low_confidence")
    );

    for (req, code, needle) in [
        (
            ask(&[0xff, 0xfe]),
            tonic::Code::InvalidArgument,
            "not valid UTF-8",
        ),
        (
            ask("x".repeat(501).as_bytes()),
            tonic::Code::InvalidArgument,
            "at most 500",
        ),
        (
            ClassifyRequest {
                model_name: "plain".into(),
                ..ask(b"hello")
            },
            tonic::Code::FailedPrecondition,
            "cannot classify intents",
        ),
        (
            ClassifyRequest {
                model_name: "nope".into(),
                ..ask(b"hello")
            },
            tonic::Code::NotFound,
            "'nope'",
        ),
    ] {
        let status = client.classify(req).await.expect_err(needle);
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(needle), "{}", status.message());
    }
    let metrics = server.metrics_text().await;
    assert!(metrics.contains(r#"method="Intent.Classify",model="intent",version="1"} 3"#));
    server.stop().await;
}

#[tokio::test]
async fn the_demo_intent_model_classifies_as_pytorch_did() {
    use mercator_proto::v1::{ClassifyRequest, intent_client::IntentClient};
    let server = TestServer::builder().demo().start().await;
    server.wait_for_champion("churn", "1").await;
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/intent/expected.json"),
        )
        .expect("expected"),
    )
    .expect("json");
    let labels: Vec<String> = {
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/intent/mercator.json"),
            )
            .expect("manifest"),
        )
        .expect("json");
        serde_json::from_value(m["labels"].clone()).expect("labels")
    };
    let mut client = IntentClient::new(server.channel().await);
    let probabilities = rows(&expected["probabilities"]);
    for (i, text) in expected["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .enumerate()
    {
        let text = text.as_str().expect("text");
        let got = client
            .classify(ClassifyRequest {
                text: text.as_bytes().to_vec(),
                ..Default::default()
            })
            .await
            .expect("classify")
            .into_inner();
        for score in &got.intents {
            let k = labels
                .iter()
                .position(|l| *l == score.intent)
                .expect("label");
            assert!(
                (score.probability - probabilities[i][k]).abs() <= 1e-5,
                "{text}: {} {} vs {}",
                score.intent,
                score.probability,
                probabilities[i][k]
            );
        }
    }
    server.stop().await;
}
