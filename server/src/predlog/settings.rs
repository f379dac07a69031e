//! `[prediction_log]`: where and how the log of every prediction is written (the
//! section's keys, which `config/` reads into the configuration).

use std::collections::BTreeMap;

use mercator_runtime::manifest::quality::Quality;
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
    /// The typed APIs are logged whole unless `sampling` says otherwise.
    pub v2_sampling: f64,
    /// The share logged per model (`churn = 0.5`) or per model and method
    /// (`"trees:ModelInfer" = 0.1`), over the manifest's `log_sampling`, over the
    /// defaults (every typed call, `v2_sampling` of V2 calls).
    pub sampling: BTreeMap<String, f64>,
    /// Where outcomes are kept: empty for `outcomes` beside the log (`<data_dir>/outcomes`
    /// for the default log; `s3://bucket/x/outcomes` for a log at `s3://bucket/x/predictions`).
    pub outcomes_url: String,
    /// Days of predictions live quality judges, back from now.
    pub quality_window_days: f64,
    /// Seconds between evaluations of live quality (0: only on demand).
    pub quality_every_secs: f64,
    /// How a model's predictions are judged, over its manifest's `quality` section:
    /// `[prediction_log.quality.churn] kind = "binary", window = "30d"`.
    pub quality: BTreeMap<String, Quality>,
}

impl PredictionLogConfig {
    /// Where outcomes are kept (see `outcomes_url`): a location [`super::open`] reads.
    pub fn outcomes_location(&self, data_dir: &std::path::Path) -> Result<String, String> {
        if !self.outcomes_url.is_empty() {
            return Ok(self.outcomes_url.clone());
        }
        if self.url.is_empty() {
            return Ok(data_dir.join("outcomes").display().to_string());
        }
        let trimmed = self.url.trim_end_matches('/');
        match trimmed.rsplit_once('/') {
            Some((parent, last)) if !last.is_empty() && !parent.ends_with('/') => {
                Ok(format!("{parent}/outcomes"))
            }
            _ => Err(format!(
                "prediction_log.outcomes_url: the log's url '{}' has no folder beside which outcomes can go: set outcomes_url",
                self.url
            )),
        }
    }
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
            sampling: BTreeMap::new(),
            outcomes_url: String::new(),
            quality_window_days: 30.0,
            quality_every_secs: 300.0,
            quality: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_go_beside_the_log_unless_placed() {
        let dir = std::path::Path::new("/data");
        let with = |url: &str, outcomes: &str| PredictionLogConfig {
            url: url.into(),
            outcomes_url: outcomes.into(),
            ..Default::default()
        };
        let at = |c: PredictionLogConfig| c.outcomes_location(dir);
        assert_eq!(at(with("", "")), Ok("/data/outcomes".into()));
        assert_eq!(
            at(with("s3://b/x/predictions/", "")),
            Ok("s3://b/x/outcomes".into())
        );
        assert_eq!(at(with("/var/log/p", "")), Ok("/var/log/outcomes".into()));
        assert_eq!(at(with("s3://b", "s3://c/o")), Ok("s3://c/o".into()));
        assert!(at(with("s3://b", "")).is_err());
    }
}
