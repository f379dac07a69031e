//! The model manager: reconciles the model table with the registry.
//!
//! For every model, the versions behind the served aliases (the configured ones and those
//! its traffic split names) are loaded: fetched from object storage, every file checked
//! against the sha256 the registry recorded, built, and warmed up (the manifest's samples,
//! or one row of zeros) so the first request pays no lazy set-up. Only then does the new
//! table replace the old one. A version that fails to load is logged, counted and
//! reported; the rest keep serving. It is tried again only once its files in object
//! storage change (checked with backoff), or, after a storage or registry outage, with
//! backoff. If the registry cannot be read, the current table stays as it is.
//!
//! - [`reconcile`]: one pass over the registry, with backoff and load reports;
//! - [`load`]: fetching, verifying, building and warming up one version;
//! - [`index`]: the repository index of Triton's repository extension;
//! - here: the manager, its settings and its loop, and explicit loads and unloads.

mod index;
mod load;
mod reconcile;
mod windows;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mercator_registry::Registry;
use tokio::sync::Notify;

use crate::error::ServeError;
use crate::models::table::Models;
use crate::monitor::Metrics;

pub use index::IndexEntry;
pub use load::LoadError;

/// Longest wait before looking again at a version that failed to load.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A version that failed to load, and when to try again.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    /// Why, in words.
    pub message: String,
    /// Stable reason tag.
    pub reason: &'static str,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Checks of the artifact since the last attempt that found it unchanged.
    pub checks: u32,
    /// No retry (or check) before this instant.
    pub retry_at: Instant,
    /// For a failure that the files themselves cause (checksum, manifest, build, warm-up):
    /// what object storage said about them just before the attempt. The version is tried
    /// again only once that changes (someone re-uploaded the files); until then the
    /// check is repeated with backoff. `None` for failures worth retrying as they are
    /// (storage or registry unreachable).
    pub artifact: Option<mercator_registry::artifacts::Fingerprint>,
}

/// Loads and swaps model versions as the registry's aliases say.
#[derive(Debug)]
pub struct ModelManager {
    registry: Registry,
    models: Arc<Models>,
    metrics: Metrics,
    aliases: Vec<String>,
    default_max_batch: usize,
    poll_interval: Duration,
    failures: Mutex<BTreeMap<(String, u64), LoadFailure>>,
    wake: Notify,
    /// This server's name in the registry's load reports.
    instance: String,
    /// Models unloaded through Triton's repository extension: not served here until a
    /// load asks for them again (this instance only; the registry is not changed).
    unloaded: Mutex<std::collections::BTreeSet<String>>,
    /// One reconcile at a time (the poll loop and explicit loads and unloads).
    reconciling: tokio::sync::Mutex<()>,
    /// Which versions to keep loaded besides the aliased ones.
    policy: VersionPolicy,
    drift: crate::monitor::drift::DriftSettings,
    batching: Batching,
    /// Drift windows, kept across unloads of their version.
    windows: windows::Windows,
}

/// What the manager serves and how it follows the registry (from the configuration).
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// Aliases whose versions are served.
    pub aliases: Vec<String>,
    /// Largest batch when a manifest sets none.
    pub default_max_batch: usize,
    /// How often the registry is read.
    pub poll_interval: Duration,
    /// This server's name in the registry's load reports.
    pub instance: String,
    /// Versions loaded besides the aliased ones.
    pub policy: VersionPolicy,
    /// How drift windows are kept.
    pub drift: crate::monitor::drift::DriftSettings,
    /// Dynamic batching by model, over the manifests' sections.
    pub batching: Batching,
}

/// How the manager sets up versions' batching queues (from the configuration).
#[derive(Debug, Clone, Default)]
pub struct Batching {
    /// `[serving.batching]`: by model name.
    pub overrides: BTreeMap<String, crate::batching::Override>,
}

/// Versions loaded besides those the served aliases point at.
#[derive(Debug, Clone, Default)]
pub struct VersionPolicy {
    /// The newest N ready versions of every model.
    pub keep_newest: usize,
    /// These (model, version) pairs.
    pub pinned: Vec<(String, u64)>,
}

impl ModelManager {
    /// A manager for `models`, serving what `settings` say.
    pub fn new(
        registry: Registry,
        models: Arc<Models>,
        metrics: Metrics,
        settings: ManagerSettings,
    ) -> ModelManager {
        let ManagerSettings {
            aliases,
            default_max_batch,
            poll_interval,
            instance,
            policy,
            drift,
            batching,
        } = settings;
        ModelManager {
            registry,
            models,
            metrics,
            aliases,
            default_max_batch,
            poll_interval,
            failures: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            instance,
            unloaded: Mutex::new(std::collections::BTreeSet::new()),
            reconciling: tokio::sync::Mutex::new(()),
            policy,
            drift,
            batching,
            windows: windows::Windows::default(),
        }
    }

    /// Asks for a reconcile now (after a registration or an alias move).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Versions that failed to load, with the reason.
    pub fn failures(&self) -> BTreeMap<(String, u64), LoadFailure> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Reconciles until `shutdown` resolves: once at start (then the server is ready),
    /// then on every poll interval or wake-up.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let result = self.reconcile().await;
            self.metrics.registry_up.set(i64::from(result.is_ok()));
            if result.is_err() {
                self.metrics
                    .registry_errors
                    .with_label_values(&["reconcile"])
                    .inc();
            }
            self.models.set_registry_reachable(result.is_ok());
            match result {
                Ok(()) => {
                    if !self.models.loads_finished() {
                        tracing::info!(
                            versions = self.models.snapshot().all().count(),
                            "initial model loads finished"
                        );
                        self.models.set_ready(true);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "registry unreachable; serving the current model table")
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.poll_interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// Stops serving `model` here until [`ModelManager::load_model`] asks for it again.
    pub async fn unload_model(&self, model: &str) -> Result<(), ServeError> {
        self.registry.get_model(model).await?;
        if let Ok(mut u) = self.unloaded.lock() {
            u.insert(model.to_string());
        }
        self.reconcile().await
    }

    /// Serves `model` here again (after an unload), retrying a failed version at once;
    /// returns when its aliased versions are loaded, or the reason one is not.
    pub async fn load_model(&self, model: &str) -> Result<(), ServeError> {
        self.registry.get_model(model).await?;
        if let Ok(mut u) = self.unloaded.lock() {
            u.remove(model);
        }
        if let Ok(mut f) = self.failures.lock() {
            f.iter_mut()
                .filter(|((name, _), _)| name == model)
                .for_each(|(_, failure)| {
                    // Asked for explicitly: try the files again even if they did not change.
                    failure.retry_at = Instant::now();
                    failure.artifact = None;
                });
        }
        self.reconcile().await?;
        let failed: Vec<String> = self
            .failures()
            .into_iter()
            .filter(|((name, _), _)| name == model)
            .map(|((_, version), f)| format!("version {version}: {}", f.message))
            .collect();
        if !failed.is_empty() {
            return Err(ServeError::FailedPrecondition(format!(
                "model '{model}' failed to load: {}",
                failed.join("; ")
            )));
        }
        if self.models.snapshot().models.contains_key(model) {
            Ok(())
        } else {
            Err(ServeError::FailedPrecondition(format!(
                "model '{model}' has no version behind the aliases this server serves"
            )))
        }
    }
}
