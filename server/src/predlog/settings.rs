//! `[prediction_log]`: where and how the log of every prediction is written (the
//! section's keys, which `config/` reads into the configuration).

use serde::{Deserialize, Serialize};

/// `[prediction_log]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PredictionLogConfig {
    /// Whether predictions are logged.
    pub enabled: bool,
    /// Where: empty for `<data_dir>/predictions`, a local folder, or `s3://bucket/prefix`
    /// (`gs://`, `az://`). Files go under `model=<name>/date=<YYYY-MM-DD>/`.
    pub url: String,
    /// A file is written once this many rows wait…
    pub flush_rows: usize,
    /// …or this many seconds after the oldest waiting row arrived.
    pub flush_secs: f64,
    /// Calls that may wait to be written (a call is a row per instance); past it their
    /// rows are dropped and counted, so the log never holds a request up.
    pub queue_rows: usize,
    /// The share of V2 calls (`ModelInfer`, stream messages) logged, 0 to 1: a V2 batch
    /// logs a row per instance, which can cost more than its typed peers. Chosen by the
    /// request id, so a call is in or out wherever it is asked; each row records it.
    /// The typed APIs are always logged.
    pub v2_sampling: f64,
}

impl Default for PredictionLogConfig {
    fn default() -> Self {
        PredictionLogConfig {
            enabled: true,
            url: String::new(),
            flush_rows: 10_000,
            flush_secs: 5.0,
            queue_rows: 100_000,
            v2_sampling: 1.0,
        }
    }
}
