//! The shadow series: how copies of live requests run on shadow versions fared, and how
//! their predictions compare with the live answers. The runner is `serving::shadow`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::names::{DIFFERENCE_BUCKETS, LATENCY_BUCKETS, PREDICTION_BUCKETS};

/// What an answer is compared on: its predicted numbers and its labels, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    /// Predicted numbers (probabilities, forecast means, output values).
    pub values: Vec<f64>,
    /// Predicted labels (risk bands, top intents, BYTES outputs).
    pub labels: Vec<String>,
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
                .buckets(LATENCY_BUCKETS.to_vec()),
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
    pub fn compare(&self, model: &str, version: &str, live: &Predictions, theirs: &Predictions) {
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
