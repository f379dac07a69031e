//! Shadow traffic: a copy of a live request runs on a shadow version after the caller has
//! been answered, off the caller's path. Its answer is discarded; its latency, its errors
//! and how its predictions differ from the live answer's go to metrics, so a candidate
//! can be judged on real traffic before it takes any.
//!
//! Shadow runs are bounded by their own limit: when that many are running, further
//! copies are dropped (and counted) rather than queued, so a slow shadow never slows or
//! overloads live serving.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use tokio::sync::Semaphore;

use crate::error::{ServeError, code_name};
use crate::models::LoadedModel;
use crate::serving::Serving;

/// Buckets for predicted values: probabilities in tenths, then forecast-sized numbers.
const PREDICTION_BUCKETS: &[f64] = &[
    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0,
    1000.0,
];

/// Buckets for |live − shadow|: from rounding noise to a different answer.
const DIFFERENCE_BUCKETS: &[f64] = &[
    1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 10.0, 100.0,
];

/// What an answer is compared on: its predicted numbers and its labels, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// Predicted numbers (probabilities, forecast means, output values).
    pub values: Vec<f64>,
    /// Predicted labels (risk bands, top intents, BYTES outputs).
    pub labels: Vec<String>,
}

/// An answer whose predictions a shadow's can be compared with.
pub trait Predicts {
    /// Its predictions.
    fn predictions(&self) -> Predictions;
}

/// The shadow metrics.
#[derive(Debug, Clone)]
pub struct ShadowMetrics {
    /// Shadow runs by model, shadow version, method and gRPC code.
    pub requests: IntCounterVec,
    /// Shadow run latency.
    pub duration: HistogramVec,
    /// Copies not run because the shadow limit was reached.
    pub dropped: IntCounterVec,
    /// Predicted values of the compared answers, by model, shadow version and `role`
    /// (`live` or `shadow`): the same requests, so the two distributions compare.
    pub predictions: HistogramVec,
    /// |live − shadow| per compared value.
    pub difference: HistogramVec,
    /// Compared labels, by whether they agree.
    pub labels: IntCounterVec,
}

impl ShadowMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<ShadowMetrics> {
        let m = ShadowMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "mercator_shadow_requests_total",
                    "Copies of live requests run on a shadow version, by model, shadow version, \
                     method and code.",
                ),
                &["model", "version", "method", "code"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_shadow_request_duration_seconds",
                    "Time a shadow version took to answer a copied request, in seconds.",
                )
                .buckets(crate::metrics::LATENCY_BUCKETS.to_vec()),
                &["model", "version", "method"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "mercator_shadow_dropped_total",
                    "Copies of live requests not run because max_shadow_in_flight were \
                     running, by model and shadow version.",
                ),
                &["model", "version"],
            )?,
            predictions: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_shadow_prediction_value",
                    "Predicted values on shadowed requests, by model, shadow version and role \
                     (live: the answer the caller got; shadow: the discarded one).",
                )
                .buckets(PREDICTION_BUCKETS.to_vec()),
                &["model", "version", "role"],
            )?,
            difference: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_shadow_prediction_abs_difference",
                    "Absolute difference between the live and the shadow prediction, per \
                     predicted value, by model and shadow version.",
                )
                .buckets(DIFFERENCE_BUCKETS.to_vec()),
                &["model", "version"],
            )?,
            labels: IntCounterVec::new(
                Opts::new(
                    "mercator_shadow_labels_total",
                    "Predicted labels compared between live and shadow, by model, shadow \
                     version and whether they agree.",
                ),
                &["model", "version", "agree"],
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        registry.register(Box::new(m.dropped.clone()))?;
        registry.register(Box::new(m.predictions.clone()))?;
        registry.register(Box::new(m.difference.clone()))?;
        registry.register(Box::new(m.labels.clone()))?;
        Ok(m)
    }

    /// Records one comparison of a shadow's predictions with the live ones.
    fn compare(&self, model: &str, version: &str, live: &Predictions, theirs: &Predictions) {
        let labels = [model, version];
        let observe = |role: &str, values: &[f64]| {
            let h = self
                .predictions
                .with_label_values(&[labels[0], labels[1], role]);
            values.iter().for_each(|v| h.observe(*v));
        };
        observe("live", &live.values);
        observe("shadow", &theirs.values);
        let difference = self.difference.with_label_values(&labels);
        for (a, b) in live.values.iter().zip(&theirs.values) {
            difference.observe((a - b).abs());
        }
        let agreed = live
            .labels
            .iter()
            .zip(&theirs.labels)
            .filter(|(a, b)| a == b)
            .count();
        let compared = live.labels.len().min(theirs.labels.len());
        let count = |agree: &str, n: usize| {
            if n > 0 {
                self.labels
                    .with_label_values(&[labels[0], labels[1], agree])
                    .inc_by(n as u64);
            }
        };
        count("true", agreed);
        count("false", compared - agreed);
    }
}

/// The limit on shadow runs in flight.
#[derive(Debug)]
pub struct ShadowLimit {
    slots: Arc<Semaphore>,
}

impl ShadowLimit {
    /// At most `max_in_flight` shadow runs at once.
    pub fn new(max_in_flight: usize) -> ShadowLimit {
        ShadowLimit {
            slots: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl Serving {
    /// Sends a copy of `request`, which `live` answered, to each of `shadows`: `run`
    /// answers it on one shadow version, in a task of its own, after the caller has had
    /// the live answer. Never fails and never waits: copies past the limit are dropped.
    pub fn shadow<Req, Resp, F, Fut>(
        self: &Arc<Self>,
        method: &'static str,
        shadows: &[Arc<LoadedModel>],
        request: Req,
        live: &Resp,
        run: F,
    ) where
        Req: Clone + Send + 'static,
        Resp: Predicts,
        F: Fn(Arc<Serving>, Arc<LoadedModel>, Req) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Resp, ServeError>> + Send,
    {
        if shadows.is_empty() {
            return;
        }
        let live = Arc::new(live.predictions());
        for shadow in shadows {
            let Ok(permit) = Arc::clone(&self.shadow_limit.slots).try_acquire_owned() else {
                self.metrics
                    .shadow
                    .dropped
                    .with_label_values(&[&shadow.name, &shadow.version_label])
                    .inc();
                continue;
            };
            let (serving, shadow, request, live, run) = (
                Arc::clone(self),
                Arc::clone(shadow),
                request.clone(),
                Arc::clone(&live),
                run.clone(),
            );
            tokio::spawn(async move {
                let _permit = permit;
                let started = Instant::now();
                let result = run(Arc::clone(&serving), Arc::clone(&shadow), request).await;
                let metrics = &serving.metrics.shadow;
                let labels = [shadow.name.as_str(), shadow.version_label.as_str(), method];
                metrics
                    .duration
                    .with_label_values(&labels)
                    .observe(started.elapsed().as_secs_f64());
                let code = match result {
                    Ok(answer) => {
                        metrics.compare(labels[0], labels[1], &live, &answer.predictions());
                        tonic::Code::Ok
                    }
                    Err(e) => {
                        let status = tonic::Status::from(e);
                        tracing::debug!(
                            model = %shadow.name,
                            version = shadow.version,
                            error = %status.message(),
                            "shadow run failed"
                        );
                        status.code()
                    }
                };
                metrics
                    .requests
                    .with_label_values(&[labels[0], labels[1], method, code_name(code)])
                    .inc();
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_count_agreeing_labels_and_differences() {
        let registry = Registry::new();
        let m = ShadowMetrics::register(&registry).expect("metrics");
        m.compare(
            "churn",
            "2",
            &Predictions {
                values: vec![0.2, 0.5],
                labels: vec!["low".into(), "high".into()],
            },
            &Predictions {
                values: vec![0.25, 0.5],
                labels: vec!["low".into(), "medium".into()],
            },
        );
        let diff = m.difference.with_label_values(&["churn", "2"]);
        assert_eq!(diff.get_sample_count(), 2);
        assert!((diff.get_sample_sum() - 0.05).abs() < 1e-12);
        let agree = |a| m.labels.with_label_values(&["churn", "2", a]).get();
        assert_eq!((agree("true"), agree("false")), (1, 1));
        let live = m.predictions.with_label_values(&["churn", "2", "live"]);
        assert!((live.get_sample_sum() - 0.7).abs() < 1e-12);
    }
}
