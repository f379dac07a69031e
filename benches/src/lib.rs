//! Shared helpers for Mercator's benchmarks: the demo churn model and its data.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

pub mod noop;

/// Folder of the demo churn model.
pub fn churn_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/churn")
}

/// Number of features of the churn model.
pub const CHURN_FEATURES: usize = 12;

/// The first `rows` customers' features from `examples/churn/customers.csv`, row-major,
/// empty cells as NaN — the same rows `scripts/xgboost_inplace_predict.py` reads.
pub fn churn_rows(rows: usize) -> anyhow::Result<Vec<f32>> {
    let text = std::fs::read_to_string(churn_dir().join("customers.csv"))?;
    let mut out = Vec::with_capacity(rows * CHURN_FEATURES);
    for line in text.lines().skip(1).take(rows) {
        let cells: Vec<&str> = line.split(',').collect();
        anyhow::ensure!(cells.len() == CHURN_FEATURES + 2, "bad row: {line}");
        for cell in &cells[1..=CHURN_FEATURES] {
            out.push(if cell.is_empty() {
                f32::NAN
            } else {
                cell.parse()?
            });
        }
    }
    anyhow::ensure!(
        out.len() == rows * CHURN_FEATURES,
        "customers.csv has fewer than {rows} rows"
    );
    Ok(out)
}
