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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mercator_registry::{Registry, VersionSelector};
use mercator_runtime::drift::{Columns, PROFILE_FILE, Profile};
use mercator_runtime::manifest::MANIFEST_FILE;
use mercator_runtime::{Manifest, Tensor};
use tokio::sync::Notify;

use crate::error::ServeError;
use crate::metrics::Metrics;
use crate::models::routing::Routes;
use crate::models::table::{LoadedModel, ModelEntry, ModelTable, Models, Stats, VersionMetrics};

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
    drift: crate::drift::DriftSettings,
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
    pub drift: crate::drift::DriftSettings,
}

/// Versions loaded besides those the served aliases point at.
#[derive(Debug, Clone, Default)]
pub struct VersionPolicy {
    /// The newest N ready versions of every model.
    pub keep_newest: usize,
    /// These (model, version) pairs.
    pub pinned: Vec<(String, u64)>,
}

/// One entry of the repository index: a model version and whether it serves here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Model name.
    pub name: String,
    /// Version number ("" for a model with no version to serve).
    pub version: String,
    /// Whether it is loaded and serving.
    pub ready: bool,
    /// Why not, when not.
    pub reason: String,
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
                    if !self.models.is_ready() {
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

    /// Every registered model's versions as this server sees them: the ones it serves
    /// (ready), the ones a served alias points at that failed to load, and models it
    /// serves nothing of, with the reason.
    pub async fn index(&self) -> Result<Vec<IndexEntry>, ServeError> {
        let listing = self.registry.list_models().await?;
        let table = self.models.snapshot();
        let failures = self.failures();
        let unloaded = self.unloaded.lock().map(|u| u.clone()).unwrap_or_default();
        let mut index = Vec::new();
        for model in listing {
            let served = table.models.get(&model.name);
            for version in served.iter().flat_map(|e| e.versions.keys()) {
                index.push(IndexEntry {
                    name: model.name.clone(),
                    version: version.to_string(),
                    ready: true,
                    reason: String::new(),
                });
            }
            for ((_, version), f) in
                failures.range((model.name.clone(), 0)..=(model.name.clone(), u64::MAX))
            {
                index.push(IndexEntry {
                    name: model.name.clone(),
                    version: version.to_string(),
                    ready: false,
                    reason: f.message.clone(),
                });
            }
            if served.is_none() && !index.iter().any(|e| e.name == model.name) {
                index.push(IndexEntry {
                    name: model.name.clone(),
                    version: String::new(),
                    ready: false,
                    reason: if unloaded.contains(&model.name) {
                        "unloaded".into()
                    } else {
                        format!(
                            "no version behind the served aliases ({})",
                            self.aliases.join(", ")
                        )
                    },
                });
            }
        }
        Ok(index)
    }

    /// One pass: read the aliases, load what is missing, swap if anything changed.
    pub async fn reconcile(&self) -> Result<(), ServeError> {
        let _one = self.reconciling.lock().await;
        let unloaded = self.unloaded.lock().map(|u| u.clone()).unwrap_or_default();
        let listing = self.registry.list_models().await?;
        let current = self.models.snapshot();
        let mut next = ModelTable::default();
        let mut wanted = std::collections::BTreeSet::new();
        for model in listing.into_iter().filter(|m| !unloaded.contains(&m.name)) {
            let mut entry = ModelEntry::default();
            // The configured aliases, and every alias the model's traffic split names.
            let served = |name: &String| {
                self.aliases.contains(name) || model.traffic.iter().any(|r| r.alias == *name)
            };
            for alias in model.aliases.iter().filter(|a| served(&a.name)) {
                wanted.insert((model.name.clone(), alias.version));
                let existing = current
                    .models
                    .get(&model.name)
                    .and_then(|e| e.versions.get(&alias.version))
                    .cloned();
                let loaded = match existing.or_else(|| entry.versions.get(&alias.version).cloned())
                {
                    Some(l) => Some(l),
                    None => self.load_if_due(&model.name, alias.version).await,
                };
                // A version that cannot be loaded does not take the alias away: the version
                // served before keeps answering until the new one loads.
                let served = loaded.map(|l| (alias.version, l)).or_else(|| {
                    let previous = current.models.get(&model.name)?;
                    let number = *previous.aliases.get(&alias.name)?;
                    Some((number, Arc::clone(previous.versions.get(&number)?)))
                });
                if let Some((number, loaded)) = served {
                    entry.versions.insert(number, loaded);
                    entry.aliases.insert(alias.name.clone(), number);
                }
            }
            for number in self.extra_versions(&model).await? {
                wanted.insert((model.name.clone(), number));
                if entry.versions.contains_key(&number) {
                    continue;
                }
                let existing = current
                    .models
                    .get(&model.name)
                    .and_then(|e| e.versions.get(&number))
                    .cloned();
                let loaded = match existing {
                    Some(l) => Some(l),
                    None => self.load_if_due(&model.name, number).await,
                };
                if let Some(l) = loaded {
                    entry.versions.insert(number, l);
                }
            }
            entry.routes = Routes::resolve(
                &model.traffic,
                |alias| entry.aliases.get(alias).copied(),
                entry.aliases.get(mercator_registry::CHAMPION).copied(),
            );
            if !entry.versions.is_empty() {
                next.models.insert(model.name.clone(), entry);
            }
        }
        self.forget_failures_except(&wanted);
        if !same_table(&current, &next) {
            for (name, entry) in &next.models {
                tracing::info!(model = %name, aliases = ?entry.aliases, live = ?entry.routes.live, shadow = ?entry.routes.shadow, "serving");
            }
            self.metrics.loaded_versions.reset();
            for (name, entry) in &next.models {
                self.metrics
                    .loaded_versions
                    .with_label_values(&[name.as_str()])
                    .set(entry.versions.len() as i64);
            }
            self.models.store(next);
        }
        Ok(())
    }

    /// The versions the policy keeps loaded for `model` besides the aliased ones: its
    /// newest ready ones, and the pinned ones.
    async fn extra_versions(
        &self,
        model: &mercator_registry::model::ModelSummary,
    ) -> Result<Vec<u64>, ServeError> {
        let mut extra: Vec<u64> = self
            .policy
            .pinned
            .iter()
            .filter(|(name, _)| *name == model.name)
            .map(|(_, v)| *v)
            .collect();
        if self.policy.keep_newest > 0 {
            let (_, versions) = self.registry.get_model(&model.name).await?;
            extra.extend(
                versions
                    .iter()
                    .rev()
                    .filter(|v| v.status == mercator_registry::model::VersionStatus::Ready)
                    .take(self.policy.keep_newest)
                    .map(|v| v.version),
            );
        }
        extra.sort_unstable();
        extra.dedup();
        Ok(extra)
    }

    /// Drops the failures of versions no served alias points at any more (the alias moved
    /// on, or the model was unloaded): they are no longer failing to be served.
    fn forget_failures_except(&self, wanted: &std::collections::BTreeSet<(String, u64)>) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        failures.retain(|(model, version), f| {
            let keep = wanted.contains(&(model.clone(), *version));
            if !keep {
                let _ = self.metrics.load_failing.remove_label_values(&[
                    model,
                    &version.to_string(),
                    f.reason,
                ]);
            }
            keep
        });
    }

    async fn load_if_due(&self, model: &str, version: u64) -> Option<Arc<LoadedModel>> {
        let key = (model.to_string(), version);
        let previous = self.failures.lock().ok().and_then(|f| f.get(&key).cloned());
        if previous
            .as_ref()
            .is_some_and(|f| Instant::now() < f.retry_at)
        {
            return None;
        }
        let artifact = self.fingerprint(model, version).await;
        if let Some(p) = &previous
            && p.artifact.is_some()
            && p.artifact == artifact
        {
            // The same files would fail the same way: look again later.
            let checks = p.checks + 1;
            if let Ok(mut f) = self.failures.lock()
                && let Some(failure) = f.get_mut(&key)
            {
                failure.checks = checks;
                failure.retry_at = Instant::now() + self.backoff(p.attempts + checks);
            }
            return None;
        }
        let started = Instant::now();
        let result = self.load(model, version).await;
        self.metrics
            .model_load_duration
            .with_label_values(&[model])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(loaded) => {
                self.metrics
                    .model_loads
                    .with_label_values(&[model, "ok"])
                    .inc();
                let recovered = self.failures.lock().ok().and_then(|mut f| f.remove(&key));
                if let Some(failure) = recovered {
                    let _ = self.metrics.load_failing.remove_label_values(&[
                        model,
                        &version.to_string(),
                        failure.reason,
                    ]);
                }
                self.report(model, version, None).await;
                tracing::info!(
                    model,
                    version,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "loaded model version"
                );
                Some(Arc::new(loaded))
            }
            Err(e) => {
                if let LoadError::Registry(e) = &e {
                    self.count_storage_error("fetch", e);
                }
                let reason = e.reason();
                self.metrics
                    .model_loads
                    .with_label_values(&[model, reason])
                    .inc();
                let attempts = previous.as_ref().map_or(1, |p| p.attempts + 1);
                let backoff = self.backoff(attempts);
                tracing::error!(model, version, reason, error = %e, attempts, "model version failed to load");
                let failure = LoadFailure {
                    message: e.to_string(),
                    reason,
                    attempts,
                    checks: 0,
                    retry_at: Instant::now() + backoff,
                    artifact: artifact.filter(|_| e.is_in_the_files()),
                };
                if let Some(earlier) = &previous
                    && earlier.reason != reason
                {
                    let _ = self.metrics.load_failing.remove_label_values(&[
                        model,
                        &version.to_string(),
                        earlier.reason,
                    ]);
                }
                self.metrics
                    .load_failing
                    .with_label_values(&[model, &version.to_string(), reason])
                    .set(1);
                self.report(model, version, Some(&failure)).await;
                if let Ok(mut f) = self.failures.lock() {
                    f.insert(key, failure);
                }
                None
            }
        }
    }

    /// The wait after `n` failed attempts and checks: the poll interval, doubling, at
    /// most [`MAX_BACKOFF`].
    fn backoff(&self, n: u32) -> Duration {
        self.poll_interval
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .min(MAX_BACKOFF)
    }

    /// What object storage says about a version's files now (`None` if it cannot say).
    async fn fingerprint(
        &self,
        model: &str,
        version: u64,
    ) -> Option<mercator_registry::artifacts::Fingerprint> {
        let record = self
            .registry
            .get_version(model, &VersionSelector::Number(version))
            .await
            .ok()?;
        match self.registry.artifacts().fingerprint(&record).await {
            Ok(f) => Some(f),
            Err(e) => {
                self.count_storage_error("head", &e);
                None
            }
        }
    }

    /// Counts `e` in `mercator_object_store_errors_total` if object storage caused it.
    fn count_storage_error(&self, operation: &str, e: &mercator_registry::RegistryError) {
        if matches!(e, mercator_registry::RegistryError::Storage(_)) {
            self.metrics
                .object_store_errors
                .with_label_values(&[operation])
                .inc();
        }
    }

    /// Records a load attempt in the registry, so `mercator models show` tells whether
    /// the version serves here and, if not, why. A registry that cannot take the report
    /// changes nothing about serving.
    async fn report(&self, model: &str, version: u64, failure: Option<&LoadFailure>) {
        let report = mercator_registry::LoadReport {
            model: model.to_string(),
            version,
            instance: self.instance.clone(),
            loaded: failure.is_none(),
            reason: failure.map(|f| f.reason.to_string()).unwrap_or_default(),
            message: failure.map(|f| f.message.clone()).unwrap_or_default(),
            attempts: failure.map_or(0, |f| f.attempts),
            at: chrono::Utc::now(),
        };
        if let Err(e) = self.registry.report_load(&report).await {
            self.metrics
                .registry_errors
                .with_label_values(&["report"])
                .inc();
            tracing::warn!(model, version, error = %e, "cannot record the load in the registry");
        }
    }

    /// Fetches, verifies, builds and warms up one version.
    async fn load(&self, model: &str, version: u64) -> Result<LoadedModel, LoadError> {
        let record = self
            .registry
            .get_version(model, &VersionSelector::Number(version))
            .await?;
        let files = self.registry.fetch_artifacts(&record).await?;
        let manifest_bytes = files
            .get(MANIFEST_FILE)
            .ok_or_else(|| LoadError::Manifest(format!("{MANIFEST_FILE} is missing")))?;
        let manifest =
            Manifest::parse(manifest_bytes).map_err(|e| LoadError::Manifest(e.to_string()))?;
        let weights = files.get(&manifest.weights).cloned().ok_or_else(|| {
            LoadError::Manifest(format!("weights file '{}' is missing", manifest.weights))
        })?;
        let max_batch_size = if manifest.max_batch_size > 0 {
            manifest.max_batch_size as usize
        } else {
            self.default_max_batch
        };
        let (name, model_name) = (model.to_string(), model.to_string());
        let metrics = VersionMetrics::new(&self.metrics, model, &version.to_string());
        let drift = match files.get(PROFILE_FILE) {
            Some(bytes) => {
                let columns = Columns::of(&manifest);
                let profile = Profile::parse(bytes, &columns)
                    .map_err(|e| LoadError::Manifest(e.to_string()))?;
                let skipped = self
                    .metrics
                    .drift
                    .skipped
                    .with_label_values(&[model, &version.to_string()]);
                Some(crate::drift::Monitor::new(
                    &columns,
                    &profile,
                    &self.drift,
                    skipped,
                ))
            }
            None => None,
        };
        // Building parses the whole artifact: off the reactor.
        tokio::task::spawn_blocking(move || -> Result<LoadedModel, LoadError> {
            let built = manifest
                .build(&weights)
                .map_err(|e| LoadError::Build(e.to_string()))?;
            warm_up(&manifest, built.as_ref()).map_err(|e| LoadError::WarmUp(e.to_string()))?;
            Ok(LoadedModel {
                name,
                version,
                version_label: version.to_string(),
                manifest,
                model: built,
                max_batch_size,
                stats: Stats::default(),
                metrics,
                intent: std::sync::OnceLock::new(),
                history: std::sync::OnceLock::new(),
                drift,
            })
        })
        .await
        .map_err(|e| LoadError::Build(format!("loader task of {model_name} failed: {e}")))?
    }
}

/// Runs the manifest's warm-up samples through the model; without any, one row of zeros
/// (forecasters a series of their own).
fn warm_up(
    manifest: &Manifest,
    model: &dyn mercator_runtime::Model,
) -> mercator_runtime::Result<()> {
    let wanted: Vec<usize> = (0..model.outputs().len()).collect();
    let samples = manifest.warmup_samples()?;
    if !samples.is_empty() {
        return samples
            .iter()
            .try_for_each(|inputs| model.infer(inputs, &wanted).map(|_| ()));
    }
    // A forecaster's inputs are a real series (zeros would be refused): it warms itself.
    if let Some(forecaster) = model.forecaster() {
        return forecaster.warm_up();
    }
    let inputs = model
        .inputs()
        .iter()
        .map(|spec| {
            Tensor::zeros(
                spec.datatype,
                spec.shape
                    .iter()
                    .map(|&d| if d < 0 { 1 } else { d as usize })
                    .collect(),
            )
        })
        .collect::<mercator_runtime::Result<Vec<_>>>()?;
    model.infer(&inputs, &wanted).map(|_| ())
}

fn same_table(a: &ModelTable, b: &ModelTable) -> bool {
    a.models.len() == b.models.len()
        && a.models.iter().zip(&b.models).all(|((na, ea), (nb, eb))| {
            na == nb
                && ea.aliases == eb.aliases
                && ea.routes == eb.routes
                && ea.versions.len() == eb.versions.len()
                && ea
                    .versions
                    .values()
                    .zip(eb.versions.values())
                    .all(|(x, y)| Arc::ptr_eq(x, y))
        })
}

/// Why a version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the registry or the artifacts failed (including checksum mismatches).
    #[error(transparent)]
    Registry(#[from] mercator_registry::RegistryError),
    /// The manifest is missing or invalid.
    #[error("bad manifest: {0}")]
    Manifest(String),
    /// The model could not be built from its weights.
    #[error("build failed: {0}")]
    Build(String),
    /// The warm-up inference failed.
    #[error("warm-up failed: {0}")]
    WarmUp(String),
}

impl LoadError {
    /// Whether the files themselves cause it, so the same files would fail again.
    pub fn is_in_the_files(&self) -> bool {
        match self {
            LoadError::Registry(e) => matches!(e, mercator_registry::RegistryError::Integrity(_)),
            LoadError::Manifest(_) | LoadError::Build(_) | LoadError::WarmUp(_) => true,
        }
    }

    /// A stable tag for the `result` label of load metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LoadError::Registry(e) => e.reason(),
            LoadError::Manifest(_) => "manifest",
            LoadError::Build(_) => "build",
            LoadError::WarmUp(_) => "warm_up",
        }
    }
}
