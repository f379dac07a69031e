//! Knowledge-base search at 100,000 passages of 384 dimensions (all-MiniLM-L6-v2's
//! width): one query's exact cosine scan and its best 5, one thread, and the memory the
//! embeddings take. Random unit vectors stand in for passages (the scan's cost does not
//! depend on their values); the knowledge base is built through the same `version_files`
//! and loader `mercator kb load` and the server use.

use criterion::{Criterion, criterion_group, criterion_main};
use mercator_runtime::kinds::kb::{KbSpec, KnowledgeBase, Passage, Searcher, version_files};
use mercator_runtime::{DType, TensorSpec};

const PASSAGES: usize = 100_000;
const DIM: usize = 384;

fn knowledge_base() -> KnowledgeBase {
    // A fixed linear congruential sequence: the same vectors every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let mut embeddings: Vec<f32> = (0..PASSAGES * DIM).map(|_| next()).collect();
    for row in embeddings.chunks_exact_mut(DIM) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        row.iter_mut().for_each(|v| *v /= norm);
    }
    let passages: Vec<Passage> = (0..PASSAGES)
        .map(|i| Passage {
            id: format!("p{i}"),
            title: String::new(),
            text: format!("passage {i}"),
            url: String::new(),
        })
        .collect();
    let spec = KbSpec {
        passages: "passages.jsonl".into(),
        encoder: "intent".into(),
        encoder_version: "1".into(),
    };
    let (_, files) = version_files(&passages, &embeddings, DIM, &spec, 5).expect("files");
    let file = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
    };
    let io = |name: &str, datatype: DType, shape: Vec<i64>| TensorSpec {
        name: name.into(),
        datatype,
        shape,
        allow_nan: false,
    };
    KnowledgeBase::load(
        spec,
        &file("embeddings.safetensors").expect("weights"),
        &file("passages.jsonl").expect("passages"),
        vec![io("query", DType::F32, vec![-1, DIM as i64])],
        vec![io("scores", DType::F32, vec![-1, 5])],
    )
    .expect("loads")
}

fn search(c: &mut Criterion) {
    let kb = knowledge_base();
    println!(
        "{PASSAGES} passages x {DIM} dimensions: {:.1} MB of embeddings",
        (PASSAGES * DIM * 4) as f64 / 1e6
    );
    let query: Vec<f32> = (0..DIM).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect();
    c.bench_function("kb_search_100k_x_384_top5", |b| {
        b.iter(|| kb.search(std::hint::black_box(&query), 5).expect("search"))
    });
}

criterion_group!(benches, search);
criterion_main!(benches);
