//! TreeSHAP's cost per row in the runtime, for `benches/scripts/shap_cost.py`, which
//! trains the model, writes the rows and times xgboost's own `pred_contribs` on them in
//! the same run:
//!
//!     shap_cost MODEL.json ROWS.f32 FEATURES
//!
//! ROWS.f32 holds the rows as little-endian float32, row after row. Prints the best of
//! five passes over all rows, one thread, in microseconds per row.

use std::time::Instant;

use anyhow::Context;
use mercator_runtime::kinds::xgboost::{OutputValue, XgbModel};
use mercator_runtime::{DType, TensorSpec};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, rows, features] = args.as_slice() else {
        anyhow::bail!("usage: shap_cost MODEL.json ROWS.f32 FEATURES");
    };
    let features: usize = features.parse().context("FEATURES")?;
    let json = std::fs::read(model).context("model")?;
    let spec = |name: &str, shape: Vec<i64>| TensorSpec {
        name: name.into(),
        datatype: DType::F32,
        shape,
        allow_nan: true,
    };
    let model = XgbModel::load(
        &json,
        vec![spec("features", vec![-1, features as i64])],
        vec![spec("margin", vec![-1])],
        vec![OutputValue::Margin],
    )?;
    let x: Vec<f32> = std::fs::read(rows)
        .context("rows")?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let n = x.len() / features.max(1);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(model.contributions(&x)?);
        best = best.min(t.elapsed().as_secs_f64());
    }
    println!("{:.3}", best / n as f64 * 1e6);
    Ok(())
}
