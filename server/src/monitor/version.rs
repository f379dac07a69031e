//! The series one loaded version updates on every request, resolved once when it loads.

use super::names::MODEL_INFER;

/// The metric series a successful inference on one version updates, looked up once when
/// the version loads: a `with_label_values` lookup on every request would hash the labels
/// and take the metric family's lock on the hot path.
#[derive(Debug, Clone)]
pub struct VersionMetrics {
    /// `mercator_requests_total{method="ModelInfer",code="OK"}` of this version.
    pub infer_ok: prometheus::IntCounter,
    /// `mercator_request_duration_seconds{method="ModelInfer"}` of this version.
    pub infer_duration: prometheus::Histogram,
    /// `mercator_inferred_rows_total` of this version.
    pub rows: prometheus::IntCounter,
    /// `mercator_batch_rows` of this version: rows per model execution.
    pub batch_rows: prometheus::Histogram,
    /// `mercator_request_phase_duration_seconds{phase="compute"}`: model execution.
    pub compute: prometheus::Histogram,
    /// `…{phase="queue"}`: waiting for a blocking-pool thread (offloaded batches) or in
    /// the dynamic-batching queue.
    pub queue: prometheus::Histogram,
    /// `mercator_batch_queue_depth` of this version.
    pub queue_depth: prometheus::IntGauge,
    /// `…{phase="feature_lookup"}`: reading the request's online features.
    pub feature_lookup: prometheus::Histogram,
    /// `…{phase="explain"}`: contributions for churn reasons and the runbook.
    pub explain: prometheus::Histogram,
}

impl VersionMetrics {
    /// Resolves the series of `model` version `version`.
    pub fn new(metrics: &super::Metrics, model: &str, version: &str) -> VersionMetrics {
        VersionMetrics {
            infer_ok: metrics
                .requests
                .with_label_values(&[model, version, MODEL_INFER, "OK"]),
            infer_duration: metrics.request_duration.with_label_values(&[
                model,
                version,
                MODEL_INFER,
            ]),
            rows: metrics.inferred_rows.with_label_values(&[model, version]),
            batch_rows: metrics.batch_rows.with_label_values(&[model, version]),
            compute: metrics
                .phase_duration
                .with_label_values(&[model, version, "compute"]),
            queue: metrics
                .phase_duration
                .with_label_values(&[model, version, "queue"]),
            queue_depth: metrics
                .batch_queue_depth
                .with_label_values(&[model, version]),
            feature_lookup: metrics.phase_duration.with_label_values(&[
                model,
                version,
                "feature_lookup",
            ]),
            explain: metrics
                .phase_duration
                .with_label_values(&[model, version, "explain"]),
        }
    }
}
