//! One reconcile pass: read the served aliases and traffic splits, load what is missing
//! (retrying failures with backoff, and files that failed only once they change), report
//! each attempt, and swap in the new table only if it differs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mercator_registry::VersionSelector;
use mercator_registry::model::VersionStatus;

use crate::error::ServeError;
use crate::models::routing::Routes;
use crate::models::table::{LoadedModel, ModelEntry, ModelTable};

use super::load::LoadError;
use super::{LoadFailure, MAX_BACKOFF, ModelManager};

/// Earlier versions tried, newest first, when an alias's version cannot be loaded at
/// start (each failure is remembered and retried with backoff like any other).
const FALLBACK_TRIES: usize = 3;

impl ModelManager {
    /// One pass: read the aliases, load what is missing, swap if anything changed.
    pub async fn reconcile(&self) -> Result<(), ServeError> {
        let _one = self.reconciling.lock().await;
        let unloaded = self.unloaded.lock().map(|u| u.clone()).unwrap_or_default();
        let listing = self.registry.list_models().await?;
        let current = self.models.snapshot();
        let mut next = ModelTable::default();
        let mut wanted = std::collections::BTreeSet::new();
        let mut unservable = std::collections::BTreeMap::new();
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
                let mut served = loaded.map(|l| (alias.version, l)).or_else(|| {
                    let previous = current.models.get(&model.name)?;
                    let number = *previous.aliases.get(&alias.name)?;
                    Some((number, Arc::clone(previous.versions.get(&number)?)))
                });
                // Nothing served before (a start): the same rule, from the registry.
                if served.is_none() {
                    served = self.fallback(&model.name, &alias.name, alias.version).await;
                }
                if let Some((number, _)) = &served {
                    wanted.insert((model.name.clone(), *number));
                } else {
                    let why = self
                        .failures()
                        .get(&(model.name.clone(), alias.version))
                        .map_or_else(|| "not loaded".to_string(), |f| f.message.clone());
                    unservable.insert(
                        format!("{}@{}", model.name, alias.name),
                        format!("version {}: {why}", alias.version),
                    );
                }
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
        self.models.set_unservable(unservable);
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

    /// When an alias's version cannot be loaded and nothing was served for it before
    /// (this server just started): the newest earlier ready version that loads, so a
    /// corrupted champion does not leave its model unserved after a restart. Its load
    /// report says it is serving; the failed version's says why it is not.
    async fn fallback(
        &self,
        model: &str,
        alias: &str,
        below: u64,
    ) -> Option<(u64, Arc<LoadedModel>)> {
        let (_, versions) = self.registry.get_model(model).await.ok()?;
        let mut earlier: Vec<u64> = versions
            .iter()
            .filter(|v| v.version < below && v.status == VersionStatus::Ready)
            .map(|v| v.version)
            .collect();
        earlier.sort_unstable_by(|a, b| b.cmp(a));
        for number in earlier.into_iter().take(FALLBACK_TRIES) {
            if let Some(loaded) = self.load_if_due(model, number).await {
                tracing::warn!(
                    model,
                    alias,
                    version = below,
                    serving = number,
                    "the aliased version cannot be loaded: serving the newest earlier one that does"
                );
                return Some((number, loaded));
            }
        }
        None
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
            seen_at: chrono::Utc::now(),
        };
        if let Err(e) = self.registry.report_load(&report).await {
            self.metrics
                .registry_errors
                .with_label_values(&["report"])
                .inc();
            tracing::warn!(model, version, error = %e, "cannot record the load in the registry");
        }
    }
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
