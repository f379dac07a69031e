//! The text pipeline gives the Python reference's tokens and ids exactly and PyTorch's
//! probabilities to 1e-5, on held-out texts with accents, emoji, full-width forms,
//! ligatures, Greek final sigma, CJK, punctuation only, empty and very long input
//! (`tests/fixtures/text/make_fixtures.py`). Non-UTF-8 and over-long texts are refused.

use std::path::PathBuf;

use mercator_runtime::kinds::text::{TextSpec, tokens};
use mercator_runtime::{Manifest, RuntimeError, Tensor, TensorData};

fn read(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/text");
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn expected() -> serde_json::Value {
    serde_json::from_slice(&read("intent.expected.json")).expect("json")
}

fn texts(e: &serde_json::Value) -> Vec<String> {
    e["texts"]
        .as_array()
        .expect("texts")
        .iter()
        .map(|t| t.as_str().expect("text").to_string())
        .collect()
}

#[test]
fn tokens_and_ids_match_python() {
    let e = expected();
    let manifest = Manifest::parse(&read("intent.json")).expect("manifest");
    let spec: TextSpec = serde_json::from_value(manifest.extra["text"].clone()).expect("spec");
    for (i, text) in texts(&e).iter().enumerate() {
        let want_tokens: Vec<String> =
            serde_json::from_value(e["tokens"][i].clone()).expect("tokens");
        assert_eq!(tokens(text), want_tokens, "tokens of {text:?}");
        let want_ids: Vec<i64> = serde_json::from_value(e["ids"][i].clone()).expect("ids");
        assert_eq!(spec.ids(text), want_ids, "ids of {text:?}");
    }
}

#[test]
fn probabilities_match_pytorch() {
    let e = expected();
    let manifest = Manifest::parse(&read("intent.json")).expect("manifest");
    let model = manifest.build(&read("intent.safetensors")).expect("build");
    let batch: Vec<Vec<u8>> = texts(&e).into_iter().map(String::into_bytes).collect();
    let n = batch.len();
    let out = model
        .infer(
            &[Tensor::new(vec![n], TensorData::Bytes(batch)).expect("texts")],
            &[0],
        )
        .expect("infer");
    let TensorData::F32(got) = &out[0].data else {
        panic!("FP32")
    };
    let want: Vec<f64> = e["probabilities"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|r| {
            r.as_array()
                .expect("row")
                .iter()
                .map(|x| x.as_f64().expect("p"))
        })
        .collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!((f64::from(*g) - w).abs() <= 1e-5, "[{i}] {g} vs {w}");
    }
}

#[test]
fn bad_texts_are_invalid_input() {
    let manifest = Manifest::parse(&read("intent.json")).expect("manifest");
    let model = manifest.build(&read("intent.safetensors")).expect("build");
    for (bytes, needle) in [
        (vec![0xff, 0xfe], "row 0 is not UTF-8"),
        ("x".repeat(501).into_bytes(), "at most 500"),
    ] {
        match model.infer(
            &[Tensor::new(vec![1], TensorData::Bytes(vec![bytes])).expect("t")],
            &[0],
        ) {
            Err(RuntimeError::InvalidInput { input, message }) => {
                assert_eq!(input, "text");
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }
}
