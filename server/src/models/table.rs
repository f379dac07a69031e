//! The model table: which versions are loaded and which alias points where.
//!
//! The hot path reads it through `ArcSwap::load` (no lock, no await) and clones an
//! `Arc<LoadedModel>`; the manager builds a whole new table and swaps it in. A request
//! that resolved a version keeps it alive until it finishes, even if a swap removes it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use mercator_runtime::manifest::sections::Sections;
use mercator_runtime::{Manifest, Model};

use crate::error::ServeError;
use crate::models::routing::{Placement, Routes};
pub use crate::models::stats::{Stats, Tally};
use crate::monitor::drift::{Monitor, Watched};

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
    /// The runnable model (shared with its batching worker, when it has one).
    pub model: Arc<dyn Model>,
    /// Largest batch a request may carry.
    pub max_batch_size: usize,
    /// Counters for Triton's `ModelStatistics`.
    pub stats: Stats,
    /// Metric handles for this version, resolved at load time.
    pub metrics: crate::monitor::VersionMetrics,
    /// Its manifest's typed sections (intent settings, history binding, risk bands),
    /// parsed and checked at load: the request path does not re-read the manifest.
    pub sections: Sections,
    /// Its drift window, when it was registered with a training profile.
    pub drift: Option<Arc<Monitor>>,
    /// Its dynamic-batching queue, when its manifest or the configuration asks for one:
    /// requests are then computed there, merged with other callers'.
    pub batcher: Option<crate::batching::Batcher>,
    /// Per input, its bound features' names (`view:field`), shared by every row the
    /// prediction log keeps of this version (so a logged call copies none).
    pub logged_features: Vec<Arc<[String]>>,
}

impl LoadedModel {
    /// The names [`LoadedModel::logged_features`] holds for `manifest`.
    pub fn logged_features_of(manifest: &Manifest) -> Vec<Arc<[String]>> {
        manifest
            .inputs
            .iter()
            .map(|i| i.features.iter().map(|b| b.feature.clone()).collect())
            .collect()
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
    pub routes: Routes,
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

    /// The loaded versions that keep a drift window, for the drift evaluator.
    pub fn watched(&self) -> Vec<Watched> {
        self.all()
            .filter_map(|m| {
                Some(Watched {
                    model: m.name.clone(),
                    version: m.version,
                    version_label: m.version_label.clone(),
                    monitor: Arc::clone(m.drift.as_ref()?),
                })
            })
            .collect()
    }

    /// Routes a request for `name`: a request naming a version (number or alias) gets
    /// exactly that and no shadow; one naming none follows the model's split, placed by
    /// `placement` of the model's entry (only called when the model has a split).
    pub fn route(
        &self,
        name: &str,
        version: &str,
        placement: impl FnOnce(&ModelEntry) -> Placement,
    ) -> Result<Routed, ServeError> {
        let entry = self.models.get(name);
        let routes = entry.map(|e| &e.routes);
        if !version.is_empty() || routes.is_none_or(Routes::is_empty) {
            return Ok(Routed {
                live: self.resolve(name, version)?,
                shadows: Vec::new(),
            });
        }
        let (Some(entry), Some(routes)) = (entry, routes) else {
            return Err(ServeError::ModelNotFound(name.to_string()));
        };
        let at = placement(entry);
        let live = match routes.live_version(at) {
            Some(v) => entry.versions.get(&v).cloned().ok_or_else(|| {
                ServeError::Internal(format!("route of model '{name}' to unloaded version {v}"))
            })?,
            None => self.resolve(name, version)?,
        };
        let shadows = routes
            .shadow_versions(at, live.version)
            .filter_map(|v| entry.versions.get(&v).cloned())
            .collect();
        Ok(Routed { live, shadows })
    }
}

/// The version that answers a request, and those that get a copy of it.
#[derive(Debug, Clone)]
pub struct Routed {
    /// Answers.
    pub live: Arc<LoadedModel>,
    /// Get a copy; their answers are measured and discarded.
    pub shadows: Vec<Arc<LoadedModel>>,
}

/// Wakes when what [`Models::is_ready`] reads changes.
#[derive(Debug)]
pub struct ReadinessWatch {
    ready: tokio::sync::watch::Receiver<bool>,
    unservable: tokio::sync::watch::Receiver<BTreeMap<String, String>>,
}

impl ReadinessWatch {
    /// Resolves at the next change; `false` once nothing can change any more.
    pub async fn changed(&mut self) -> bool {
        tokio::select! {
            r = self.ready.changed() => r.is_ok(),
            r = self.unservable.changed() => r.is_ok(),
        }
    }
}

/// The live table plus readiness.
#[derive(Debug)]
pub struct Models {
    table: ArcSwap<ModelTable>,
    ready: tokio::sync::watch::Sender<bool>,
    registry_reachable: tokio::sync::watch::Sender<bool>,
    /// Served aliases that no version answers for (the aliased one and every fallback
    /// failed to load), each with why; while any is, the server is not ready.
    unservable: tokio::sync::watch::Sender<BTreeMap<String, String>>,
    /// Whether those keep the server unready (`[models] strict_readiness`).
    strict: std::sync::atomic::AtomicBool,
}

impl Default for Models {
    fn default() -> Self {
        Models {
            table: ArcSwap::default(),
            ready: tokio::sync::watch::Sender::new(false),
            registry_reachable: tokio::sync::watch::Sender::new(true),
            unservable: tokio::sync::watch::Sender::new(BTreeMap::new()),
            strict: std::sync::atomic::AtomicBool::new(true),
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
        placement: impl FnOnce(&ModelEntry) -> Placement,
    ) -> Result<Routed, ServeError> {
        self.table.load().route(name, version, placement)
    }

    /// Replaces the table.
    pub fn store(&self, table: ModelTable) {
        let old = self.table.swap(Arc::new(table));
        // A version leaving the table runs what its batching queue holds now, rather than
        // waiting for others to join requests no new caller can reach.
        let now = self.table.load();
        for (name, entry) in &old.models {
            for (number, loaded) in &entry.versions {
                let kept = now
                    .models
                    .get(name)
                    .and_then(|e| e.versions.get(number))
                    .is_some_and(|n| Arc::ptr_eq(n, loaded));
                if let (false, Some(batcher)) = (kept, &loaded.batcher) {
                    batcher.flush();
                }
            }
        }
    }

    /// Whether the server is ready: the initial loads have finished and (with strict
    /// readiness, the default) every served alias has a version answering for it, as
    /// Triton's strict readiness: a probe takes a replica that cannot answer for one of
    /// its models out of rotation.
    pub fn is_ready(&self) -> bool {
        let strict = self.strict.load(std::sync::atomic::Ordering::Relaxed);
        *self.ready.borrow() && (!strict || self.unservable.borrow().is_empty())
    }

    /// Sets whether served aliases without a loadable version keep the server unready.
    pub fn set_strict_readiness(&self, strict: bool) {
        self.strict
            .store(strict, std::sync::atomic::Ordering::Relaxed);
    }

    /// Records the served aliases no version answers for (`model@alias` → why).
    pub fn set_unservable(&self, unservable: BTreeMap<String, String>) {
        self.unservable.send_if_modified(|now| {
            if *now == unservable {
                return false;
            }
            if unservable.is_empty() {
                tracing::info!("every served alias has a version again: ready");
            } else {
                tracing::warn!(
                    ?unservable,
                    "not ready: served aliases without a loadable version"
                );
            }
            *now = unservable;
            true
        });
    }

    /// Marks the initial loads finished (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    /// Whether the initial loads have finished.
    pub fn loads_finished(&self) -> bool {
        *self.ready.borrow()
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

    /// A watch on readiness ([`Models::is_ready`]), for health reporting: read the state
    /// after making it, then wait for [`ReadinessWatch::changed`].
    pub fn watch_readiness(&self) -> ReadinessWatch {
        ReadinessWatch {
            ready: self.ready.subscribe(),
            unservable: self.unservable.subscribe(),
        }
    }

    /// Resolves once the initial loads have finished (whether or not every alias loaded).
    pub async fn wait_ready(&self) {
        let mut rx = self.ready.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|ready| *ready).await;
    }
}
