//! The newer model kinds alone, one thread: the demo intent model (`text`: pipeline and
//! net) on 1 and 64 held-out utterances; an ETS forecast (140 days of history, 28
//! days ahead, 3 quantiles; exact and simulated intervals); a candle net (the `mlp`
//! parity fixture, 8 → 32 → 3) at batch 1 and 256; and the demo demand forecasters per
//! series: the ETS bundle (filtering the 28 days since its fit, then 28 days ahead) and
//! the neural forecaster one series at a time and 256 at once; and a replenishment
//! recommendation from each (lead time 8 ± 1.5 days, weekly review), with each total the
//! policy asks for forecast on its own against all read from one forecast.
//! `scripts/torch_intent.py` times PyTorch and the Python reference pipeline on the same
//! model and texts for comparison.

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mercator_runtime::forecast::{Series, parse_date};
use mercator_runtime::kinds::ets::Ets;
use mercator_runtime::replenish::{LeadTime, Situation, Target, recommend};
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
    candle_and_forecasters(&mut group);
    group.finish();
}

fn candle_and_forecasters(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let candle = root().join("runtime/tests/fixtures/candle");
    let net =
        Manifest::parse(&std::fs::read(candle.join("mlp_relu_softmax.json")).expect("manifest"))
            .expect("parse")
            .build(&std::fs::read(candle.join("mlp_relu_softmax.safetensors")).expect("weights"))
            .expect("build");
    let width = net.inputs()[0].shape[1] as usize;
    for n in [1usize, 256] {
        let x = Tensor::new(vec![n, width], TensorData::F32(vec![0.3; n * width])).expect("x");
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("candle_mlp_batch_{n}"), |b| {
            b.iter(|| std::hint::black_box(net.infer(std::slice::from_ref(&x), &[0])))
        });
    }
    let demand = root().join("examples/demand");
    let sales = std::fs::read_to_string(demand.join("history.csv")).expect("history");
    let rows: Vec<(Vec<String>, Vec<f64>)> = sales
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                vec![c[0].to_string(), c[1].to_string()],
                c[2].split(';').map(|v| v.parse().expect("units")).collect(),
            )
        })
        .collect();
    let last = parse_date("2026-10-31");
    let series: Vec<Series<'_>> = rows
        .iter()
        .cycle()
        .take(256)
        .map(|(key, values)| Series {
            key,
            values,
            last_date: last,
        })
        .collect();
    for (name, weights) in [("ets", "ets.json"), ("net", "model.safetensors")] {
        let dir = demand.join(name);
        let model = Manifest::parse(&std::fs::read(dir.join("mercator.json")).expect("manifest"))
            .expect("parse")
            .build(&std::fs::read(dir.join(weights)).expect("weights"))
            .expect("build");
        let f = model.forecaster().expect("forecaster");
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("demand_{name}_forecast_1_series"), |b| {
            b.iter(|| std::hint::black_box(f.forecast(&series[0], 28, &[0.1, 0.5, 0.9])))
        });
        group.throughput(Throughput::Elements(256));
        group.bench_function(format!("demand_{name}_forecast_256_series"), |b| {
            b.iter(|| std::hint::black_box(f.forecast_batch(&series, 28, &[0.1, 0.5, 0.9])))
        });
        let situation = Situation {
            on_hand: 40.0,
            backordered: 0.0,
            on_order: Vec::new(),
            lead_time: LeadTime::Normal { mean: 8.0, sd: 1.5 },
            review_days: 7,
            target: Target::CycleServiceLevel(0.95),
            pack_size: 1.0,
            min_order_quantity: 0.0,
            unit_cost: None,
        };
        let longest = (situation.lead_time.longest_days() + situation.review_days) as usize;
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("demand_{name}_recommend_each_total"), |b| {
            b.iter(|| {
                let mut each = |d: u32| f.total_demand(&series[0], d as usize);
                std::hint::black_box(recommend(&situation, &mut each))
            })
        });
        group.bench_function(format!("demand_{name}_recommend_shared_totals"), |b| {
            b.iter(|| {
                let mut shared = f.total_demands(&series[0], longest);
                let mut over = |d: u32| shared(d as usize);
                std::hint::black_box(recommend(&situation, &mut over))
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
