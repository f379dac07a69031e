//! Monitoring: every Prometheus series the server exports, the drift windows and their
//! evaluation, and feature freshness. A leaf of the crate: it imports only `error`, so
//! every other room may record into it.
//!
//! Owns: metric names, help, labels and buckets ([`names`]), the per-version handles
//! resolved at load ([`VersionMetrics`]), shadow comparisons, gRPC call counts, drift and
//! freshness.
//!
//! Everything is registered on an injected `prometheus::Registry` (tests build their
//! own). Names are in base units with `_total` counters; labels are bounded: `model` and
//! `version` only ever take names the registry knows (unknown ones become `_unknown`),
//! `method` comes from a fixed list, and `code` from the gRPC code set.

pub mod calls;
pub mod drift;
pub mod freshness;
pub mod names;
pub mod shadow;
mod version;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

pub use names::UNKNOWN;
use names::{BATCH_BUCKETS, LATENCY_BUCKETS, LOAD_BUCKETS};
pub use version::VersionMetrics;

/// The server's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests by model, version, method and gRPC code.
    pub requests: IntCounterVec,
    /// Request latency by model, version and method.
    pub request_duration: HistogramVec,
    /// Rows inferred, by model and version.
    pub inferred_rows: IntCounterVec,
    /// Model loads by model and result (`ok` or a failure reason).
    pub model_loads: IntCounterVec,
    /// Model load duration by model.
    pub model_load_duration: HistogramVec,
    /// Versions loaded, by model.
    pub loaded_versions: IntGaugeVec,
    /// Requests in flight.
    pub in_flight: prometheus::IntGauge,
    /// `mercator_model_load_failing{model,version,reason}`: 1 while a served alias points
    /// at a version that cannot be loaded (the one before keeps serving).
    pub load_failing: IntGaugeVec,
    /// `mercator_registry_up`: 1 when the last read of the registry worked, 0 while the
    /// server serves its last known model table without it.
    pub registry_up: prometheus::IntGauge,
    /// `mercator_tls_certificate_expiry_seconds`: when the certificate being served
    /// expires, as a Unix time (absent without TLS); the alert compares it with `time()`.
    pub tls_expiry: prometheus::IntGauge,
    /// `mercator_registry_errors_total{operation}`: failed registry calls of the model
    /// manager (`reconcile`: reading aliases and versions; `report`: recording a load).
    pub registry_errors: IntCounterVec,
    /// `mercator_object_store_errors_total{operation}`: failed calls to the artifact
    /// store (`fetch`: reading a version's files; `head`: checking whether they changed;
    /// `register`: writing a new version's files). A missing file is not counted: it is
    /// an integrity failure of the version.
    pub object_store_errors: IntCounterVec,
    /// Online feature lookup latency (one request's lookups, all views).
    pub feature_lookup_duration: prometheus::Histogram,
    /// Feature values read, by view, field and status (present, missing, expired).
    pub feature_values: IntCounterVec,
    /// Rows per model execution, by model and version.
    pub batch_rows: HistogramVec,
    /// Time in each phase of a request (`feature_lookup`: reading online features;
    /// `queue`: waiting for a blocking-pool thread or in the dynamic-batching queue;
    /// `compute`: model execution; `explain`: contributions for churn reasons), by model,
    /// version and phase.
    pub phase_duration: HistogramVec,
    /// Requests waiting in a version's dynamic-batching queue.
    pub batch_queue_depth: IntGaugeVec,
    /// Churn customers given an action by their model's runbook, by model, version and
    /// action (the manifest's runbook bounds the actions).
    pub interventions: IntCounterVec,
    /// Churn customers a rule matched but held out as its control group (told the action
    /// that would be taken, given none), by model, version and action.
    pub intervention_controls: IntCounterVec,
    /// Replenishment recommendations, by forecaster, version and outcome (order,
    /// no_order, needs_approval).
    pub recommendations: IntCounterVec,
    /// Shadow traffic: runs, latency, and how shadow predictions compare with live ones.
    pub shadow: shadow::ShadowMetrics,
    /// Drift of each version's live window against its training profile.
    pub drift: drift::DriftMetrics,
    /// Age of the newest value of each feature view.
    pub freshness: freshness::FreshnessMetrics,
    /// Every gRPC call, by service, method and code.
    pub calls: calls::CallMetrics,
    /// `mercator_http_refused_total{reason}`: REST requests refused before their body
    /// was read or while it arrived (`unauthenticated`, `too_large`, `timeout`,
    /// `over_budget`, `bad_body`), which never become gRPC calls.
    pub http_refused: IntCounterVec,
    /// `mercator_prediction_log_rows_total{model,outcome}`: prediction log rows by what
    /// became of them (`written`, `dropped_queue_full`, `dropped_store_error`).
    pub prediction_log_rows: IntCounterVec,
    /// `mercator_model_quality{model,version,route,metric}`: live quality, the prediction
    /// log judged against outcomes (`auc`, `brier`, `wape`, `accuracy`, `judged`, …).
    pub model_quality: prometheus::GaugeVec,
    /// `mercator_intervention_uplift{model,rule,action}` and its 95% interval's
    /// `_lower` and `_upper`: an experiment's treated outcome rate minus its control's.
    pub uplift: [prometheus::GaugeVec; 3],
    /// The stream sources' and triggers' series (`mercator_stream_*`).
    pub streams: mercator_streams::StreamMetrics,
}

impl Metrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "mercator_requests_total",
                    "gRPC requests handled, by model, version, method and code.",
                ),
                &["model", "version", "method", "code"],
            )?,
            request_duration: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_request_duration_seconds",
                    "Time to answer a request, in seconds.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["model", "version", "method"],
            )?,
            inferred_rows: IntCounterVec::new(
                Opts::new(
                    "mercator_inferred_rows_total",
                    "Rows (batch entries) inferred, by model and version.",
                ),
                &["model", "version"],
            )?,
            model_loads: IntCounterVec::new(
                Opts::new(
                    "mercator_model_loads_total",
                    "Model version loads, by model and result (ok or failure reason).",
                ),
                &["model", "result"],
            )?,
            model_load_duration: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_model_load_duration_seconds",
                    "Time to fetch, verify, build and warm up a model version, in seconds.",
                )
                .buckets(LOAD_BUCKETS.to_vec()),
                &["model"],
            )?,
            loaded_versions: IntGaugeVec::new(
                Opts::new(
                    "mercator_loaded_model_versions",
                    "Model versions loaded and ready to serve, by model.",
                ),
                &["model"],
            )?,
            load_failing: IntGaugeVec::new(
                Opts::new(
                    "mercator_model_load_failing",
                    "Model versions a served alias points at that failed to load (1 while \
                     failing), by model, version and reason.",
                ),
                &["model", "version", "reason"],
            )?,
            prediction_log_rows: IntCounterVec::new(
                Opts::new(
                    "mercator_prediction_log_rows_total",
                    "Prediction log rows by model and outcome (written, dropped_queue_full, \
                     dropped_store_error).",
                ),
                &["model", "outcome"],
            )?,
            model_quality: prometheus::GaugeVec::new(
                Opts::new(
                    "mercator_model_quality",
                    "Live quality per model, version and route: the prediction log judged \
                     against outcomes (auc, brier, log_loss, wape, mae, coverage, pinball_<q>, \
                     accuracy, handoff_precision, handoff_recall; judged and pending counts).",
                ),
                &["model", "version", "route", "metric"],
            )?,
            uplift: [
                ("mercator_intervention_uplift", "the difference"),
                (
                    "mercator_intervention_uplift_lower",
                    "the lower bound of its 95% interval",
                ),
                (
                    "mercator_intervention_uplift_upper",
                    "the upper bound of its 95% interval",
                ),
            ]
            .map(|(name, what)| {
                prometheus::GaugeVec::new(
                    Opts::new(
                        name,
                        format!(
                            "A runbook experiment's treated outcome rate minus its control \
                             group's, by model, rule and action: {what} (Newcombe)."
                        ),
                    ),
                    &["model", "rule", "action"],
                )
            })
            .into_iter()
            .collect::<prometheus::Result<Vec<_>>>()?
            .try_into()
            .map_err(|_| prometheus::Error::Msg("three uplift gauges".into()))?,
            http_refused: IntCounterVec::new(
                Opts::new(
                    "mercator_http_refused_total",
                    "REST requests refused before or while their body was read, by reason.",
                ),
                &["reason"],
            )?,
            tls_expiry: prometheus::IntGauge::new(
                "mercator_tls_certificate_expiry_seconds",
                "When the TLS certificate being served expires, in seconds since the Unix epoch.",
            )?,
            registry_up: prometheus::IntGauge::new(
                "mercator_registry_up",
                "Whether the last read of the model registry worked (0: serving the last \
                 known models without it).",
            )?,
            registry_errors: IntCounterVec::new(
                Opts::new(
                    "mercator_registry_errors_total",
                    "Failed calls to the model registry by the model manager, by operation \
                     (reconcile, report).",
                ),
                &["operation"],
            )?,
            object_store_errors: IntCounterVec::new(
                Opts::new(
                    "mercator_object_store_errors_total",
                    "Failed calls to the artifact object store, by operation (fetch, head, \
                     register).",
                ),
                &["operation"],
            )?,
            in_flight: prometheus::IntGauge::new(
                "mercator_requests_in_flight",
                "Inference requests being handled now.",
            )?,
            feature_lookup_duration: prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "mercator_feature_lookup_duration_seconds",
                    "Time to read a request's online features, in seconds.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )?,
            feature_values: IntCounterVec::new(
                Opts::new(
                    "mercator_feature_values_total",
                    "Online feature values read, by view, field and status (present, missing, expired).",
                ),
                &["view", "field", "status"],
            )?,
            batch_rows: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_batch_rows",
                    "Rows per model execution, by model and version.",
                )
                .buckets(BATCH_BUCKETS.to_vec()),
                &["model", "version"],
            )?,
            phase_duration: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_request_phase_duration_seconds",
                    "Time in one phase of a request, in seconds: feature_lookup (reading the \
                     online features), queue (waiting for a blocking-pool thread or in the \
                     dynamic-batching queue), compute (model execution) or explain \
                     (contributions for churn reasons).",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["model", "version", "phase"],
            )?,
            batch_queue_depth: IntGaugeVec::new(
                Opts::new(
                    "mercator_batch_queue_depth",
                    "Requests waiting in a version's dynamic-batching queue, by model and version.",
                ),
                &["model", "version"],
            )?,
            interventions: IntCounterVec::new(
                Opts::new(
                    "mercator_churn_interventions_total",
                    "Scored customers given an action by the model's runbook, by model, version and action.",
                ),
                &["model", "version", "action"],
            )?,
            intervention_controls: IntCounterVec::new(
                Opts::new(
                    "mercator_churn_intervention_controls_total",
                    "Scored customers a runbook rule matched but held out as its control group, \
                     by model, version and action.",
                ),
                &["model", "version", "action"],
            )?,
            recommendations: IntCounterVec::new(
                Opts::new(
                    "mercator_recommendations_total",
                    "Replenishment recommendations, by forecaster model, version and outcome (order, no_order, needs_approval).",
                ),
                &["model", "version", "outcome"],
            )?,
            shadow: shadow::ShadowMetrics::register(registry)?,
            drift: drift::DriftMetrics::register(registry)?,
            freshness: freshness::FreshnessMetrics::register(registry)?,
            calls: calls::CallMetrics::register(registry)?,
            streams: mercator_streams::StreamMetrics::register(registry)?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.request_duration.clone()))?;
        registry.register(Box::new(m.inferred_rows.clone()))?;
        registry.register(Box::new(m.model_loads.clone()))?;
        registry.register(Box::new(m.model_load_duration.clone()))?;
        registry.register(Box::new(m.loaded_versions.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        registry.register(Box::new(m.interventions.clone()))?;
        registry.register(Box::new(m.intervention_controls.clone()))?;
        registry.register(Box::new(m.recommendations.clone()))?;
        registry.register(Box::new(m.load_failing.clone()))?;
        registry.register(Box::new(m.registry_up.clone()))?;
        registry.register(Box::new(m.http_refused.clone()))?;
        registry.register(Box::new(m.prediction_log_rows.clone()))?;
        registry.register(Box::new(m.model_quality.clone()))?;
        for gauge in &m.uplift {
            registry.register(Box::new(gauge.clone()))?;
        }
        registry.register(Box::new(m.registry_errors.clone()))?;
        registry.register(Box::new(m.object_store_errors.clone()))?;
        registry.register(Box::new(m.feature_lookup_duration.clone()))?;
        registry.register(Box::new(m.feature_values.clone()))?;
        registry.register(Box::new(m.batch_rows.clone()))?;
        registry.register(Box::new(m.phase_duration.clone()))?;
        registry.register(Box::new(m.batch_queue_depth.clone()))?;
        Ok(m)
    }
}

/// Renders the registry in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let families = registry.gather();
    prometheus::TextEncoder::new()
        .encode_to_string(&families)
        .unwrap_or_else(|e| format!("# encoding error: {e}\n"))
}
