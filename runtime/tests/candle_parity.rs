//! Candle nets give PyTorch's outputs: small nets trained and exported by
//! `tests/fixtures/candle/make_fixtures.py` (safetensors weights, the manifest listing
//! the layers, held-out inputs and PyTorch's outputs in eval mode) must match to 1e-5.
//! Also: bad weights, bad layer lists and bad ids are refused with clear errors.

use std::path::PathBuf;

use mercator_runtime::{Manifest, RuntimeError, Tensor, TensorData};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/candle")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn manifest(name: &str) -> Manifest {
    Manifest::parse(&read(&format!("{name}.json"))).expect("manifest")
}

struct Expected {
    input: Vec<Vec<f64>>,
    output: Vec<Vec<f64>>,
}

fn expected(name: &str) -> Expected {
    let v: serde_json::Value =
        serde_json::from_slice(&read(&format!("{name}.expected.json"))).expect("json");
    let matrix = |key: &str| -> Vec<Vec<f64>> {
        v[key]
            .as_array()
            .expect(key)
            .iter()
            .map(|r| {
                r.as_array()
                    .expect("row")
                    .iter()
                    .map(|x| x.as_f64().expect("number"))
                    .collect()
            })
            .collect()
    };
    Expected {
        input: matrix("input"),
        output: matrix("output"),
    }
}

fn input_tensor(m: &Manifest, rows: &[Vec<f64>]) -> Tensor {
    let shape = vec![rows.len(), rows[0].len()];
    let flat = rows.iter().flatten();
    let data = match m.inputs[0].datatype {
        mercator_runtime::DType::I64 => TensorData::I64(flat.map(|&x| x as i64).collect()),
        _ => TensorData::F32(flat.map(|&x| x as f32).collect()),
    };
    Tensor::new(shape, data).expect("tensor")
}

#[test]
fn nets_match_pytorch() {
    for name in [
        "mlp_relu_softmax",
        "layernorm_gelu_sigmoid",
        "tanh_gelu_regression",
        "embedding_bag_mean",
        "embedding_bag_sum",
    ] {
        let m = manifest(name);
        let model = m
            .build(&read(&format!("{name}.safetensors")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.kind(), "candle");
        let want = expected(name);
        let out = model
            .infer(&[input_tensor(&m, &want.input)], &[0])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let TensorData::F32(got) = &out[0].data else {
            panic!("{name}: not FP32")
        };
        let want: Vec<f64> = want.output.into_iter().flatten().collect();
        assert_eq!(got.len(), want.len(), "{name}");
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (f64::from(*g) - w).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-5, "{name}: max abs difference {worst}");
        // The batch does not change a row's answer.
        let one = model
            .infer(&[input_tensor(&m, &expected(name).input[3..4])], &[0])
            .expect("one row");
        let width = got.len() / 32;
        let TensorData::F32(single) = &one[0].data else {
            panic!("FP32")
        };
        assert_eq!(&single[..], &got[3 * width..4 * width], "{name}");
    }
}

#[test]
fn an_empty_batch_gives_empty_outputs() {
    let m = manifest("mlp_relu_softmax");
    let model = m
        .build(&read("mlp_relu_softmax.safetensors"))
        .expect("build");
    let out = model
        .infer(
            &[Tensor::new(vec![0, 8], TensorData::F32(vec![])).expect("empty")],
            &[0],
        )
        .expect("infer");
    assert_eq!(out[0].shape, vec![0, 3]);
}

#[test]
fn bad_ids_are_invalid_input() {
    let m = manifest("embedding_bag_mean");
    let model = m
        .build(&read("embedding_bag_mean.safetensors"))
        .expect("build");
    let ids = Tensor::new(vec![1, 6], TensorData::I64(vec![1, 2, 50, 0, 0, 0])).expect("ids");
    match model.infer(&[ids], &[0]) {
        Err(RuntimeError::InvalidInput { input, message }) => {
            assert_eq!(input, "ids");
            assert!(
                message.contains("id 50 is outside the vocabulary of 50"),
                "{message}"
            );
        }
        other => panic!("expected InvalidInput, got {other:?}"),
    }
    // Negative ids are skipped like padding.
    let padded = Tensor::new(vec![1, 6], TensorData::I64(vec![3, -1, -1, 0, 0, 0])).expect("ids");
    let plain = Tensor::new(vec![1, 6], TensorData::I64(vec![3, 0, 0, 0, 0, 0])).expect("ids");
    assert_eq!(
        model.infer(&[padded], &[0]).expect("padded")[0],
        model.infer(&[plain], &[0]).expect("plain")[0]
    );
}

/// A change to a manifest.
type Edit = Box<dyn Fn(&mut serde_json::Value)>;

#[test]
fn bad_nets_are_refused_when_they_load() {
    let weights = read("mlp_relu_softmax.safetensors");
    let base: serde_json::Value =
        serde_json::from_slice(&read("mlp_relu_softmax.json")).expect("json");
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "a tensor the file lacks",
            Box::new(|m| m["layers"][0]["weight"] = "nope.weight".into()),
            "'nope.weight'",
        ),
        (
            "layers out of order",
            Box::new(|m| {
                let layers = m["layers"].as_array_mut().expect("layers");
                layers.swap(0, 3);
            }),
            "has shape [3, 16], the net needs [3, 8]",
        ),
        (
            "wrong output width",
            Box::new(|m| m["outputs"][0]["shape"] = serde_json::json!([-1, 4])),
            "ends with 3 features",
        ),
        (
            "unknown layer",
            Box::new(|m| m["layers"][1]["type"] = "swish".into()),
            "layers",
        ),
        (
            "no layers",
            Box::new(|m| {
                m.as_object_mut().expect("object").remove("layers");
            }),
            "lists its 'layers'",
        ),
        (
            "embedding bag not first",
            Box::new(|m| {
                m["layers"].as_array_mut().expect("layers").insert(
                    2,
                    serde_json::json!({"type": "embedding_bag", "weight": "fc2.weight"}),
                )
            }),
            "can only be the first layer",
        ),
    ];
    for (what, change, needle) in cases {
        let mut json = base.clone();
        change(&mut json);
        let err = Manifest::parse(json.to_string().as_bytes())
            .and_then(|m| m.build(&weights))
            .expect_err(what)
            .to_string();
        assert!(err.contains(needle), "{what}: {err}");
    }
    let m = manifest("mlp_relu_softmax");
    assert!(m.build(b"not safetensors").is_err(), "garbage weights");
}
