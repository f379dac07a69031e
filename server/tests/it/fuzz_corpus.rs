//! A short fuzz pass on every test run: each fuzz target (`fuzz/src/lib.rs`, the code the
//! libFuzzer binaries run) on every committed corpus input, then on seeded mutations of
//! them (bit flips, byte changes, inserted and cut ranges, splices of two inputs, numbers
//! at their edges). Not coverage-guided: that needs the instrumented build
//! (`scripts/fuzz.sh`), which costs more than CI's budget; this keeps every input the
//! long runs found, and a few thousand new ones, going through the current code.
//!
//! The seed changes from run to run and is printed; a panic names the target, the seed
//! and where it saved the input. `MERCATOR_FUZZ_SEED` replays a run,
//! `MERCATOR_FUZZ_MUTATIONS` sets the mutations per target.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

const DEFAULT_MUTATIONS: usize = 20_000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/corpus/{target}"));
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.expect("a corpus entry").path()).expect("a corpus file"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "the {target} corpus is empty");
    inputs
}

/// Edges that parsers get wrong: zero, signs, the widths' limits.
const EDGES: [&[u8]; 8] = [
    &[0],
    &[0xff],
    &[0x7f],
    &[0x80],
    &[0xff, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0x7f],
    &[0, 0, 0, 0x80],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
];

/// One to four changes to an input from the corpus.
fn mutate(rng: &mut fastrand::Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = corpus[rng.usize(..corpus.len())].clone();
    for _ in 0..rng.usize(1..=4) {
        let at = rng.usize(..=data.len());
        match rng.u8(..7) {
            0 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] ^= 1 << rng.u8(..8);
            }
            1 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] = rng.u8(..);
            }
            2 => {
                let byte = rng.u8(..);
                data.splice(at..at, std::iter::repeat_n(byte, rng.usize(1..=16)));
            }
            3 => {
                let end = (at + rng.usize(1..=64)).min(data.len());
                data.drain(at..end);
            }
            4 => data.truncate(at),
            5 => {
                let other = &corpus[rng.usize(..corpus.len())];
                let from = rng.usize(..=other.len());
                data.splice(at..at, other[from..].iter().copied());
            }
            _ => {
                let edge = EDGES[rng.usize(..EDGES.len())];
                let end = (at + edge.len()).min(data.len());
                data.splice(at..end, edge.iter().copied());
            }
        }
    }
    data
}

fn run(name: &str, target: fn(&[u8])) {
    let corpus = corpus(name);
    let seed = std::env::var("MERCATOR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mutations = std::env::var("MERCATOR_FUZZ_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_MUTATIONS);
    let mut rng = fastrand::Rng::with_seed(seed);
    let inputs = corpus
        .iter()
        .cloned()
        .chain((0..mutations).map(|_| mutate(&mut rng, &corpus)));
    for (i, input) in inputs.enumerate() {
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            let saved = std::env::temp_dir().join(format!("mercator-fuzz-{name}-{seed}-{i}"));
            std::fs::write(&saved, &input).expect("save the crashing input");
            panic!(
                "fuzz target {name} panicked on input {i} (MERCATOR_FUZZ_SEED={seed}); \
                 saved to {} — replay with scripts/fuzz.sh or this test",
                saved.display()
            );
        }
    }
    eprintln!(
        "fuzz {name}: {} corpus inputs and {mutations} mutations (seed {seed}), no panic",
        corpus.len()
    );
}

macro_rules! fuzz_tests {
    ($($target:ident),*) => {$(
        #[test]
        fn $target() {
            run(stringify!($target), targets::$target);
        }
    )*};
}

fuzz_tests!(
    manifest,
    artifacts,
    definitions,
    csv_cell,
    jwt,
    v2_request,
    rest_json,
    rest_binary
);

#[test]
fn every_target_has_a_test_and_a_corpus() {
    let tested = [
        "manifest",
        "artifacts",
        "definitions",
        "csv_cell",
        "jwt",
        "v2_request",
        "rest_json",
        "rest_binary",
    ];
    let listed: Vec<&str> = targets::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, tested);
    for name in tested {
        assert!(!corpus(name).is_empty());
    }
}

/// The V2 seeds (`fuzz/make_v2_seeds.py`) reach the models: all but the one made to be
/// refused get an answer, so mutations start from requests that go deep.
#[test]
fn the_v2_seeds_reach_inference() {
    let seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/v2_request"),
    )
    .expect("the v2_request corpus")
    .map(|e| e.expect("an entry").path())
    .filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
    })
    .map(|p| (p.display().to_string(), std::fs::read(&p).expect("a seed")))
    .collect();
    assert_eq!(seeds.len(), 9, "the seeds fuzz/make_v2_seeds.py writes");
    let refused: Vec<&str> = seeds
        .iter()
        .filter(|(_, s)| !targets::v2_request_infers(s))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        refused.len(),
        1,
        "only the FP64 seed is refused: {refused:?}"
    );
}
