//! The prediction log: a row for every instance of every prediction the serving envelope
//! answers (its request id, time, model, version, route, method, principal, entity,
//! outcome, latency and typed outputs: a churn score's probability, band and action, a
//! forecast day's mean and quantiles, an intent and its hand-off, an order), written as
//! Parquet under `model=<name>/date=<YYYY-MM-DD>/` (Hive partitioning: pandas, pyarrow,
//! DuckDB and Spark read the folder as it is). As Hive has it, the partition's values
//! are not repeated in the files: the model and the day of the call come from the path
//! (a forecast's own day is `forecast_date`), so no reader meets a column twice.
//!
//! It never holds a request up: rows go into a bounded queue with `try_send`; when the
//! queue is full they are dropped and counted (`mercator_prediction_log_rows_total
//! {model,outcome}`: `written`, `dropped_queue_full`, `dropped_store_error`). A writer
//! task ([`writer`]) flushes a file per model and day every `flush_rows` rows or
//! `flush_secs`, retrying a failed store with backoff; [`PredictionLog::close`] flushes
//! what is queued at shutdown.

mod columns;
mod settings;
mod writer;

use std::sync::Arc;

use prometheus::IntCounterVec;
use tokio::sync::mpsc;

pub use columns::{FeatureState, Seen, Source};
pub use settings::PredictionLogConfig;
pub use writer::{file_safe, open};

/// What one instance of a prediction answered, in typed columns (each API fills its own;
/// the rest stay null).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outputs {
    /// A churn probability, or the top intent's.
    pub probability: Option<f64>,
    /// A churn risk band.
    pub band: Option<String>,
    /// The top intent.
    pub intent: Option<String>,
    /// The runbook's or the intent's action.
    pub action: Option<String>,
    /// The runbook rule that chose the action.
    pub rule: Option<String>,
    /// Whether the customer is in the rule's control group (the action not taken).
    pub control: Option<bool>,
    /// The rule's experiment.
    pub experiment: Option<String>,
    /// The customer's uplift, from the runbook's uplift model.
    pub uplift: Option<f64>,
    /// Whether the conversation goes to a person.
    pub handoff: Option<bool>,
    /// A forecast day, `YYYY-MM-DD`.
    pub date: Option<String>,
    /// A forecast day's mean.
    pub mean: Option<f64>,
    /// A forecast day's quantiles, in the levels' order.
    pub quantiles: Option<Vec<f64>>,
    /// The levels of those quantiles (`0.1`, `0.9`, …).
    pub quantile_levels: Option<Vec<f64>>,
    /// A recommendation's order.
    pub order_quantity: Option<f64>,
    /// A recommendation's reorder point.
    pub reorder_point: Option<f64>,
}

/// One instance of an answered request (a customer of a score, a day of a forecast, a
/// row of a V2 batch): the entity it is about and what it answered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instance {
    /// The entity, when the instance names its own (a customer id).
    pub entity: Option<String>,
    /// The version that answered it, when instances of one call may differ (a split).
    pub version: Option<String>,
    /// What it answered.
    pub outputs: Outputs,
    /// Its inputs as the model saw them (and, for a raw tensor model, its outputs).
    pub seen: Option<Seen>,
}

/// One logged call: what its rows share, and its instances (a row each). The queue
/// carries calls, not rows, so a batch of 64 costs one send and no copies of what its
/// rows share.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The call's request id.
    pub request_id: Arc<str>,
    /// When the call arrived, microseconds since the epoch (UTC).
    pub time_micros: i64,
    /// The model.
    pub model: String,
    /// The version that answered ("" when none was resolved), unless an instance says.
    pub version: String,
    /// How the version was reached: `champion`, `split`, `pinned` or the alias asked for.
    pub route: String,
    /// The method (`ModelInfer`, `Churn.Score`, …).
    pub api: &'static str,
    /// The authenticated caller ("" without auth).
    pub principal: String,
    /// The entity the call was about ("" when none), unless an instance names its own.
    pub entity: String,
    /// The gRPC code's name (`OK`, `INVALID_ARGUMENT`, …).
    pub code: &'static str,
    /// The error's message ("" when OK).
    pub error: String,
    /// Time to answer, microseconds.
    pub latency_micros: i64,
    /// The share of calls logged (every row stands for 1/fraction calls).
    pub sampling_fraction: f64,
    /// Its instances: a row each (an error has one, with no outputs).
    pub instances: Vec<Instance>,
}

/// What the writer's queue carries.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "nearly every message is a call: boxing would cost an allocation per call"
)]
enum Message {
    /// A call's rows to write.
    Call(Call),
    /// Write everything queued before this, then say so.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Where rows go: a handle on the writer's queue (cheap to clone).
#[derive(Debug, Clone)]
pub struct PredictionLog {
    tx: mpsc::Sender<Message>,
    counted: IntCounterVec,
    v2_sampling: f64,
    sampling: Arc<std::collections::BTreeMap<String, f64>>,
}

impl PredictionLog {
    /// Starts the writer for `config` (its location resolved against `data_dir`), named
    /// `instance` in file names, counting rows on `counted`.
    pub fn start(
        config: &PredictionLogConfig,
        data_dir: &std::path::Path,
        instance: &str,
        counted: IntCounterVec,
    ) -> Result<PredictionLog, String> {
        let store = writer::open(&config.url, data_dir)?;
        let (tx, rx) = mpsc::channel(config.queue_rows.max(1));
        tokio::spawn(writer::run(
            store,
            rx,
            writer::Settings {
                instance: writer::file_safe(instance),
                flush_rows: config.flush_rows.max(1),
                flush_every: std::time::Duration::from_secs_f64(config.flush_secs.max(0.01)),
            },
            counted.clone(),
        ));
        Ok(PredictionLog {
            tx,
            counted,
            v2_sampling: config.v2_sampling.clamp(0.0, 1.0),
            sampling: Arc::new(config.sampling.clone()),
        })
    }

    /// The share of `model`'s `api` calls logged (the configuration's for the model and
    /// method, else for the model, else the manifest's `manifest`, else every typed call
    /// and `v2_sampling` of V2's), and whether the call `request_id` is among them (a
    /// stable hash of the id against the share, so replicas and retries agree).
    pub fn sampled(
        &self,
        model: &str,
        api: &str,
        manifest: Option<f64>,
        request_id: &str,
    ) -> Option<f64> {
        let configured = (!self.sampling.is_empty())
            .then(|| {
                self.sampling
                    .get(&format!("{model}:{api}"))
                    .or_else(|| self.sampling.get(model))
                    .copied()
            })
            .flatten();
        let fraction = configured
            .or(manifest)
            .unwrap_or(if api.starts_with("Model") {
                self.v2_sampling
            } else {
                1.0
            });
        if fraction >= 1.0 {
            return Some(1.0);
        }
        // xxHash64: well mixed even for ids that differ in their last character
        // ("req-1", "req-2", …), which FNV-1a's high bits are not.
        let hash = twox_hash::XxHash64::oneshot(0x6d65_7263_6174_6f72, request_id.as_bytes());
        let position = (hash >> 11) as f64 / (1u64 << 53) as f64;
        (position < fraction).then_some(fraction)
    }

    /// Queues `call`'s rows without waiting: dropped and counted when the queue is full.
    pub fn record(&self, call: Call) {
        if let Err(e) = self.tx.try_send(Message::Call(call)) {
            let (mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m)) = e;
            if let Message::Call(call) = m {
                self.counted
                    .with_label_values(&[&call.model, "dropped_queue_full"])
                    .inc_by(call.instances.len() as u64);
            }
        }
    }

    /// Writes everything queued so far (at shutdown, within the drain deadline).
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = written.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_logged_comes_from_the_method_then_the_model_then_the_manifest() {
        let (tx, _rx) = mpsc::channel(1);
        let counted =
            IntCounterVec::new(prometheus::Opts::new("n", "h"), &["a", "b"]).expect("counter");
        let log = PredictionLog {
            tx,
            counted,
            v2_sampling: 0.5,
            sampling: Arc::new(
                [
                    ("churn".to_string(), 0.25),
                    ("churn:Churn.Score".into(), 1.0),
                ]
                .into_iter()
                .collect(),
            ),
        };
        let share = |model, api, manifest| {
            (0..400)
                .filter_map(|i| log.sampled(model, api, manifest, &format!("id-{i}")))
                .collect::<Vec<f64>>()
        };
        assert_eq!(share("churn", "Churn.Score", Some(0.1)).len(), 400);
        let v2 = share("churn", "ModelInfer", Some(0.1));
        assert!(v2.iter().all(|&f| f == 0.25) && (60..140).contains(&v2.len()));
        let manifest = share("intent", "Intent.Classify", Some(0.1));
        assert!(manifest.iter().all(|&f| f == 0.1) && (20..70).contains(&manifest.len()));
        assert_eq!(share("intent", "Intent.Classify", None).len(), 400);
        let v2 = share("trees", "ModelInfer", None);
        assert!(v2.iter().all(|&f| f == 0.5) && (150..250).contains(&v2.len()));
        assert!(share("trees", "ModelInfer", Some(0.0)).is_empty());
    }
}
