//! The tree runtime alone: rows per second on 10,000 rows of the demo churn model, one
//! thread. `scripts/xgboost_inplace_predict.py` measures xgboost's own `inplace_predict`
//! on the same model and rows for comparison.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mercator_benches::{CHURN_FEATURES, churn_dir, churn_rows};
use mercator_runtime::kinds::xgboost::{OutputValue, XgbModel};
use mercator_runtime::{DType, TensorSpec};

fn bench(c: &mut Criterion) {
    let json = std::fs::read(churn_dir().join("model.json")).expect("model");
    let spec = |name: &str, shape: Vec<i64>| TensorSpec {
        name: name.into(),
        datatype: DType::F32,
        shape,
        allow_nan: true,
    };
    let model = XgbModel::load(
        &json,
        vec![spec("features", vec![-1, CHURN_FEATURES as i64])],
        vec![spec("p", vec![-1])],
        vec![OutputValue::Prediction],
    )
    .expect("load");
    let rows = 10_000;
    let x = churn_rows(rows).expect("rows");
    let mut group = c.benchmark_group("trees");
    group.throughput(Throughput::Elements(rows as u64));
    group.bench_function("churn_predict_10k_rows", |b| {
        b.iter(|| std::hint::black_box(model.predict(&x)))
    });
    let one = &x[..CHURN_FEATURES];
    group.throughput(Throughput::Elements(1));
    group.bench_function("churn_predict_1_row", |b| {
        b.iter(|| std::hint::black_box(model.predict(one)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
