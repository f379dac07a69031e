//! The drift gauges, by model, version, role and feature.

use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// The drift gauges.
#[derive(Debug, Clone)]
pub struct DriftMetrics {
    pub(super) psi: GaugeVec,
    pub(super) ks: GaugeVec,
    pub(super) js: GaugeVec,
    pub(super) null_shift: GaugeVec,
    pub(super) samples: IntGaugeVec,
    pub(super) evaluated: GaugeVec,
    /// Rows not added to a window because another request held it.
    pub skipped: IntCounterVec,
}

impl DriftMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<DriftMetrics> {
        let labels = &["model", "version", "role", "feature"];
        let gauge = |name: &str, help: &str| GaugeVec::new(Opts::new(name, help), labels);
        let m = DriftMetrics {
            psi: gauge(
                "mercator_drift_psi",
                "Population stability index of the live window against the version's training \
                 profile, by model, version, role (input or prediction) and feature.",
            )?,
            ks: gauge(
                "mercator_drift_ks_statistic",
                "Kolmogorov-Smirnov statistic of a numeric feature's live window against the \
                 training profile.",
            )?,
            js: gauge(
                "mercator_drift_js_distance",
                "Jensen-Shannon distance (base 2) of a categorical feature's live window against \
                 the training profile.",
            )?,
            null_shift: gauge(
                "mercator_drift_null_rate_shift",
                "Live null rate minus the training null rate.",
            )?,
            samples: IntGaugeVec::new(
                Opts::new(
                    "mercator_drift_window_samples",
                    "Rows in a version's drift window at the last evaluation.",
                ),
                &["model", "version"],
            )?,
            evaluated: GaugeVec::new(
                Opts::new(
                    "mercator_drift_last_evaluation_timestamp_seconds",
                    "When a version's drift window was last evaluated, in seconds since the epoch.",
                ),
                &["model", "version"],
            )?,
            skipped: IntCounterVec::new(
                Opts::new(
                    "mercator_drift_skipped_rows_total",
                    "Rows not added to a drift window because another request was adding to it.",
                ),
                &["model", "version"],
            )?,
        };
        registry.register(Box::new(m.psi.clone()))?;
        registry.register(Box::new(m.ks.clone()))?;
        registry.register(Box::new(m.js.clone()))?;
        registry.register(Box::new(m.null_shift.clone()))?;
        registry.register(Box::new(m.samples.clone()))?;
        registry.register(Box::new(m.evaluated.clone()))?;
        registry.register(Box::new(m.skipped.clone()))?;
        Ok(m)
    }
}
