//! The `encoder` kind against the Python libraries that made its fixture
//! (`tests/fixtures/encoder/make_fixtures.py`: a tiny random BERT saved by transformers,
//! a WordPiece tokenizer trained by `tokenizers`, a scikit-learn head): the token ids
//! equal the transformers tokenizer's (accents, emoji, CJK, whitespace, a 360-word text
//! cut at the maximum length), the embeddings sentence-transformers' to 1e-4 with cosine
//! ≥ 0.99999 (mean pooling normalised, CLS pooling raw), the head's probabilities to 1e-5.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mercator_runtime::manifest::Manifest;
use mercator_runtime::{Model, Tensor, TensorData};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    mean_normalized: Vec<Vec<f32>>,
    cls: Vec<Vec<f32>>,
    probabilities: Vec<Vec<f32>>,
    sklearn_probabilities: Vec<Vec<f64>>,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/encoder")
}

fn expected() -> Expected {
    serde_json::from_slice(&std::fs::read(dir().join("expected.json")).expect("expected"))
        .expect("expected.json")
}

/// The fixture's manifest, edited by `edit`, built from its folder.
fn build(edit: impl FnOnce(&mut serde_json::Value)) -> mercator_runtime::Result<Box<dyn Model>> {
    let folder = dir().join("tiny");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("mercator.json")).expect("manifest"))
            .expect("json");
    edit(&mut doc);
    let manifest = Manifest::parse(doc.to_string().as_bytes())?;
    let files: BTreeMap<String, Vec<u8>> = std::fs::read_dir(&folder)
        .expect("folder")
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("file"))
        })
        .collect();
    manifest.build_with(&files[&manifest.weights], &|name| files.get(name).cloned())
}

fn texts(e: &Expected) -> Tensor {
    let rows: Vec<Vec<u8>> = e.texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    Tensor::new(vec![rows.len()], TensorData::Bytes(rows)).expect("tensor")
}

fn f32s(t: &Tensor) -> &[f32] {
    match &t.data {
        TensorData::F32(v) => v,
        other => panic!("not FP32: {other:?}"),
    }
}

fn close_vectors(got: &[f32], want: &[Vec<f32>], tolerance: f32, what: &str) {
    let width = want[0].len();
    for (r, (g, w)) in got.chunks_exact(width).zip(want).enumerate() {
        for (c, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= tolerance,
                "{what} row {r} col {c}: {a} vs {b}"
            );
        }
        let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let cosine = dot / (norm(g) * norm(w)).max(1e-12);
        assert!(cosine >= 0.99999, "{what} row {r}: cosine {cosine}");
    }
}

#[test]
fn token_ids_equal_the_python_tokenizers() {
    let e = expected();
    // The concrete model, for its tokenizer.
    let folder = dir().join("tiny");
    let manifest = Manifest::parse(&std::fs::read(folder.join("mercator.json")).expect("manifest"))
        .expect("manifest");
    let read = |name: &str| std::fs::read(folder.join(name)).ok();
    let concrete = mercator_runtime::kinds::encoder::EncoderModel::load(
        mercator_runtime::kinds::encoder::EncoderSpec::from_manifest(&manifest.extra)
            .expect("spec"),
        &std::fs::read(folder.join(&manifest.weights)).expect("weights"),
        &read,
        manifest.input_specs(),
        manifest.output_specs(),
    )
    .expect("loads");
    for (text, want) in e.texts.iter().zip(&e.ids) {
        assert_eq!(
            &concrete.token_ids(text).expect("ids"),
            want,
            "ids of {text:?}"
        );
    }
    assert!(
        e.ids.iter().any(|ids| ids.len() == 24),
        "the long text is cut at max_length"
    );
}

#[test]
fn embeddings_and_head_equal_sentence_transformers_and_sklearn() {
    let e = expected();
    let model = build(|_| {}).expect("builds");
    let names: Vec<&str> = model.outputs().iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["probabilities", "embedding"]);
    let out = model.infer(&[texts(&e)], &[1, 0]).expect("infers");
    close_vectors(f32s(&out[0]), &e.mean_normalized, 1e-4, "mean, normalised");
    close_vectors(f32s(&out[1]), &e.probabilities, 1e-5, "head");
    let classes = e.sklearn_probabilities[0].len();
    for (row, want) in f32s(&out[1])
        .chunks_exact(classes)
        .zip(&e.sklearn_probabilities)
    {
        for (g, w) in row.iter().zip(want) {
            assert!(
                (f64::from(*g) - w).abs() <= 1e-5,
                "predict_proba {g} vs {w}"
            );
        }
    }
    // One text at a time gives the same as the batch (padding is masked out).
    let one = model
        .infer(
            &[Tensor::new(
                vec![1],
                TensorData::Bytes(vec![e.texts[1].as_bytes().to_vec()]),
            )
            .expect("tensor")],
            &[1],
        )
        .expect("infers");
    close_vectors(f32s(&one[0]), &e.mean_normalized[1..2], 1e-5, "alone");
    // CLS pooling without normalisation.
    let cls = build(|m| {
        m["encoder"]["pooling"] = "cls".into();
        m["encoder"]["normalize"] = false.into();
        m["encoder"]
            .as_object_mut()
            .expect("section")
            .remove("head");
        m.as_object_mut().expect("manifest").remove("labels");
        m["outputs"] =
            serde_json::json!([{"name": "embedding", "datatype": "FP32", "shape": [-1, 32]}]);
    })
    .expect("a CLS encoder");
    let out = cls.infer(&[texts(&e)], &[0]).expect("infers");
    close_vectors(f32s(&out[0]), &e.cls, 1e-4, "cls");
}

#[test]
fn bad_encoders_and_inputs_are_named() {
    let refused = |edit: &dyn Fn(&mut serde_json::Value), says: &str| {
        let err = build(edit).expect_err(says).to_string();
        assert!(err.contains(says), "{err} should say {says}");
    };
    refused(
        &|m| m["encoder"]["tokenizer"] = "nope.json".into(),
        "encoder.tokenizer names 'nope.json'",
    );
    refused(
        &|m| m["encoder"]["max_length"] = 65.into(),
        "exceeds the model's 64 positions",
    );
    refused(
        &|m| m["encoder"]["pooling"] = "max".into(),
        "encoder: unknown variant `max`",
    );
    refused(
        &|m| m["outputs"][1]["shape"] = serde_json::json!([-1, 31]),
        "must have shape [-1, 32]",
    );
    refused(
        &|m| m["encoder"]["config"] = "head.safetensors".into(),
        "not a BERT config",
    );
    refused(
        &|m| m["encoder"]["head"]["layers"][0]["weight"] = "w".into(),
        "encoder.head",
    );
    refused(&|m| m["inputs"][0]["datatype"] = "FP32".into(), "BYTES");
    let model = build(|m| m["encoder"]["max_chars"] = 10.into()).expect("builds");
    let err = model
        .infer(
            &[Tensor::new(
                vec![2],
                TensorData::Bytes(vec![b"short".to_vec(), vec![b'x'; 11]]),
            )
            .expect("tensor")],
            &[0],
        )
        .expect_err("too long");
    assert!(err.to_string().contains("row 1 has 11 characters"), "{err}");
    let err = model
        .infer(
            &[Tensor::new(vec![1], TensorData::Bytes(vec![vec![0xff, 0xfe]])).expect("tensor")],
            &[0],
        )
        .expect_err("not UTF-8");
    assert!(err.to_string().contains("row 0 is not UTF-8"), "{err}");
}
