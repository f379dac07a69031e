//! The newer model kinds alone, one thread: the demo intent model (`text`: pipeline and
//! net) on 1 and 64 held-out utterances, and an ETS forecast (140 days of history, 28
//! days ahead, 3 quantiles; exact and simulated intervals).
//! `scripts/torch_intent.py` times PyTorch and the Python reference pipeline on the same
//! model and texts for comparison.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mercator_runtime::kinds::ets::Ets;
use mercator_runtime::{Manifest, Tensor, TensorData};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn heldout_texts(n: usize) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(root().join("examples/intent/heldout.csv")).expect("csv");
    let mut reader = csv_lines(&text);
    (0..n)
        .map(|_| reader.next().expect("enough rows").into_bytes())
        .collect()
}

/// The text column of a two-column CSV (quoted when it holds commas).
fn csv_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines().skip(1).map(|line| {
        let (t, _) = line.rsplit_once(',').expect("two columns");
        t.trim_matches('"').replace("\"\"", "\"")
    })
}

fn bench(c: &mut Criterion) {
    let dir = root().join("examples/intent");
    let manifest = Manifest::parse(&std::fs::read(dir.join("mercator.json")).expect("manifest"))
        .expect("parse");
    let model = manifest
        .build(&std::fs::read(dir.join("model.safetensors")).expect("weights"))
        .expect("build");
    let mut group = c.benchmark_group("kinds");
    for n in [1usize, 64] {
        let texts = Tensor::new(vec![n], TensorData::Bytes(heldout_texts(n))).expect("texts");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("intent_{n}_texts"), |b| {
            b.iter(|| std::hint::black_box(model.infer(std::slice::from_ref(&texts), &[0])))
        });
    }
    let ets_dir = root().join("runtime/tests/fixtures/ets");
    for name in ["aada", "aadm"] {
        let ets =
            Ets::from_json(&std::fs::read(ets_dir.join(format!("{name}.ets.json"))).expect("ets"))
                .expect("parse");
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(ets_dir.join(format!("{name}.expected.json"))).expect("expected"),
        )
        .expect("json");
        let history: Vec<f64> = expected["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("ets_{name}_forecast_28d"), |b| {
            b.iter(|| std::hint::black_box(ets.forecast(&history, 28, &[0.1, 0.5, 0.9])))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
