//! The model table: which versions are loaded and which alias points where.
//!
//! The hot path reads it through `ArcSwap::load` (no lock, no await) and clones an
//! `Arc<LoadedModel>`; the manager builds a whole new table and swaps it in. A request
//! that resolved a version keeps it alive until it finishes, even if a swap removes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use mercator_runtime::{Manifest, Model};

use crate::error::ServeError;

/// A model version loaded, verified and warmed up.
#[derive(Debug)]
pub struct LoadedModel {
    /// Model name.
    pub name: String,
    /// Version number.
    pub version: u64,
    /// `version` as text, for responses and metric labels.
    pub version_label: String,
    /// Its manifest.
    pub manifest: Manifest,
    /// The runnable model.
    pub model: Box<dyn Model>,
    /// Largest batch a request may carry.
    pub max_batch_size: usize,
    /// Counters for Triton's `ModelStatistics`.
    pub stats: Stats,
    /// Metric handles for this version, resolved at load time.
    pub metrics: VersionMetrics,
    /// Its intent settings (labels, actions, hand-off), parsed on the first
    /// `Intent/Classify` and kept: the request path does not re-read the manifest.
    pub intent: std::sync::OnceLock<Result<crate::intent::IntentManifest, String>>,
    /// Where its sales history lives in the feature store, for forecasters; parsed on
    /// the first forecast and kept.
    pub history: std::sync::OnceLock<Result<Option<crate::forecast::HistoryBinding>, String>>,
    /// Its drift window, when it was registered with a training profile.
    pub drift: Option<crate::drift::Monitor>,
}

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
    /// `…{phase="queue"}`: waiting for a blocking-pool thread (offloaded batches).
    pub queue: prometheus::Histogram,
    /// `…{phase="feature_lookup"}`: reading the request's online features.
    pub feature_lookup: prometheus::Histogram,
}

impl VersionMetrics {
    /// Resolves the series of `model` version `version`.
    pub fn new(metrics: &crate::metrics::Metrics, model: &str, version: &str) -> VersionMetrics {
        VersionMetrics {
            infer_ok: metrics.requests.with_label_values(&[
                model,
                version,
                crate::serving::MODEL_INFER,
                "OK",
            ]),
            infer_duration: metrics.request_duration.with_label_values(&[
                model,
                version,
                crate::serving::MODEL_INFER,
            ]),
            rows: metrics.inferred_rows.with_label_values(&[model, version]),
            batch_rows: metrics.batch_rows.with_label_values(&[model, version]),
            compute: metrics
                .phase_duration
                .with_label_values(&[model, version, "compute"]),
            queue: metrics
                .phase_duration
                .with_label_values(&[model, version, "queue"]),
            feature_lookup: metrics.phase_duration.with_label_values(&[
                model,
                version,
                "feature_lookup",
            ]),
        }
    }
}

/// Cumulative per-version statistics, in Triton's terms.
#[derive(Debug, Default)]
pub struct Stats {
    /// Successful requests and their total time.
    pub success: Tally,
    /// Failed requests and their total time.
    pub fail: Tally,
    /// Input decoding.
    pub compute_input: Tally,
    /// Model execution.
    pub compute_infer: Tally,
    /// Output encoding.
    pub compute_output: Tally,
    /// Rows inferred.
    pub inference_count: AtomicU64,
    /// Model executions.
    pub execution_count: AtomicU64,
    /// Milliseconds since the epoch of the last inference.
    pub last_inference_ms: AtomicU64,
}

/// A count and a total duration in nanoseconds.
#[derive(Debug, Default)]
pub struct Tally {
    /// Number of events.
    pub count: AtomicU64,
    /// Their total duration, in nanoseconds.
    pub ns: AtomicU64,
}

impl Tally {
    /// Adds one event.
    pub fn add(&self, d: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// (count, ns).
    pub fn get(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.ns.load(Ordering::Relaxed),
        )
    }
}

/// The loaded versions of one model and the aliases that point at them.
#[derive(Debug, Default, Clone)]
pub struct ModelEntry {
    /// Loaded versions by number.
    pub versions: BTreeMap<u64, Arc<LoadedModel>>,
    /// Alias → version, for the aliases being served.
    pub aliases: BTreeMap<String, u64>,
    /// How requests that name no version are split over the versions.
    pub routes: crate::models::routing::Routes,
}

/// A snapshot of everything loaded.
#[derive(Debug, Default, Clone)]
pub struct ModelTable {
    /// Models by name.
    pub models: BTreeMap<String, ModelEntry>,
}

impl ModelTable {
    /// Finds the version a request asks for: empty means the `champion` alias, a number
    /// that version, anything else an alias name.
    pub fn resolve(&self, name: &str, version: &str) -> Result<Arc<LoadedModel>, ServeError> {
        let entry = self
            .models
            .get(name)
            .ok_or_else(|| ServeError::ModelNotFound(name.to_string()))?;
        let not_found = || ServeError::VersionNotFound {
            model: name.to_string(),
            version: version.to_string(),
        };
        let number = if version.is_empty() {
            *entry
                .aliases
                .get(mercator_registry::CHAMPION)
                .ok_or_else(not_found)?
        } else if let Ok(n) = version.parse::<u64>() {
            n
        } else {
            *entry.aliases.get(version).ok_or_else(not_found)?
        };
        entry.versions.get(&number).cloned().ok_or_else(not_found)
    }

    /// Every loaded version.
    pub fn all(&self) -> impl Iterator<Item = &Arc<LoadedModel>> {
        self.models.values().flat_map(|e| e.versions.values())
    }
}

/// The live table plus readiness.
#[derive(Debug)]
pub struct Models {
    table: ArcSwap<ModelTable>,
    ready: tokio::sync::watch::Sender<bool>,
    registry_reachable: tokio::sync::watch::Sender<bool>,
}

impl Default for Models {
    fn default() -> Self {
        Models {
            table: ArcSwap::default(),
            ready: tokio::sync::watch::Sender::new(false),
            registry_reachable: tokio::sync::watch::Sender::new(true),
        }
    }
}

impl Models {
    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<ModelTable> {
        self.table.load_full()
    }

    /// Resolves a model version in the current snapshot.
    pub fn resolve(&self, name: &str, version: &str) -> Result<Arc<LoadedModel>, ServeError> {
        self.table.load().resolve(name, version)
    }

    /// Routes a request in the current snapshot (see [`ModelTable::route`]).
    pub fn route(
        &self,
        name: &str,
        version: &str,
        placement: impl FnOnce(&ModelEntry) -> crate::models::routing::Placement,
    ) -> Result<crate::models::routing::Routed, ServeError> {
        self.table.load().route(name, version, placement)
    }

    /// Replaces the table.
    pub fn store(&self, table: ModelTable) {
        self.table.store(Arc::new(table));
    }

    /// Whether the initial loads have finished.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Marks the initial loads finished (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    /// Records whether the last read of the registry worked.
    pub fn set_registry_reachable(&self, reachable: bool) {
        self.registry_reachable.send_if_modified(|r| {
            let changed = *r != reachable;
            *r = reachable;
            changed
        });
    }

    /// Follows whether the registry is reachable (for health reporting).
    pub fn registry_reachable(&self) -> tokio::sync::watch::Receiver<bool> {
        self.registry_reachable.subscribe()
    }

    /// Resolves once the initial loads have finished.
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|ready| *ready).await;
    }
}
