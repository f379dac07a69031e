//! Loading one version: its files fetched and checked against the registry's sha256,
//! the manifest and its typed sections parsed, the drift window set up from its profile,
//! the model built off the reactor and warmed up.

use std::sync::Arc;

use mercator_registry::VersionSelector;
use mercator_runtime::drift::{Columns, PROFILE_FILE, Profile};
use mercator_runtime::manifest::MANIFEST_FILE;
use mercator_runtime::{Manifest, Tensor};

use crate::batching::{Batcher, Override, Runner, Settings};
use crate::models::table::{LoadedModel, Stats};
use crate::monitor::VersionMetrics;

use super::ModelManager;

impl ModelManager {
    /// Fetches, verifies, builds and warms up one version.
    pub(super) async fn load(&self, model: &str, version: u64) -> Result<LoadedModel, LoadError> {
        let record = self
            .registry
            .get_version(model, &VersionSelector::Number(version))
            .await?;
        let files = self.registry.fetch_artifacts(&record).await?;
        let manifest_bytes = files
            .get(MANIFEST_FILE)
            .ok_or_else(|| LoadError::Manifest(format!("{MANIFEST_FILE} is missing")))?;
        let (manifest, sections) = Manifest::parse_with_sections(manifest_bytes)
            .map_err(|e| LoadError::Manifest(e.to_string()))?;
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
                Some(self.windows.get_or_make(model, version, || {
                    Arc::new(crate::monitor::drift::Monitor::new(
                        &columns,
                        &profile,
                        &self.drift,
                        skipped,
                    ))
                }))
            }
            None => None,
        };
        let batching = self.batching_of(model, &manifest, &sections);
        // Building parses the whole artifact: off the reactor.
        let (built, manifest) = tokio::task::spawn_blocking(move || -> Result<_, LoadError> {
            let built = manifest
                .build_with(&weights, &|name| files.get(name).map(|b| b.to_vec()))
                .map_err(|e| LoadError::Build(e.to_string()))?;
            warm_up(&manifest, built.as_ref()).map_err(|e| LoadError::WarmUp(e.to_string()))?;
            Ok((Arc::<dyn mercator_runtime::Model>::from(built), manifest))
        })
        .await
        .map_err(|e| LoadError::Build(format!("loader task of {model_name} failed: {e}")))??;
        let version_label = version.to_string();
        let batcher = batching.and_then(|b| {
            let runner = Runner {
                model: Arc::clone(&built),
                drift: drift.clone(),
                metrics: metrics.clone(),
            };
            let settings = Settings::of(&b, max_batch_size);
            Batcher::start(&name, &version_label, runner, settings)
                .inspect_err(|e| {
                    tracing::error!(model = %name, version, error = %e, "cannot start the batching thread: serving unbatched");
                })
                .ok()
        });
        Ok(LoadedModel {
            name,
            version,
            version_label,
            logged_features: LoadedModel::logged_features_of(&manifest),
            manifest,
            model: built,
            max_batch_size,
            stats: Stats::new(max_batch_size),
            metrics,
            sections,
            drift,
            batcher,
        })
    }

    /// The batching a version of `model` gets: its manifest's section changed by the
    /// configuration's. Settings that do not fit the model are logged and the version
    /// served unbatched (its files are fine; the configuration is what is wrong).
    fn batching_of(
        &self,
        model: &str,
        manifest: &Manifest,
        sections: &mercator_runtime::manifest::sections::Sections,
    ) -> Option<mercator_runtime::manifest::batching::DynamicBatching> {
        let over = self.batching.overrides.get(model);
        match Override::resolve(over, manifest, sections.batching) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(
                    model,
                    error = %e,
                    "[serving.batching.{model}] does not fit the model: serving it unbatched"
                );
                None
            }
        }
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
