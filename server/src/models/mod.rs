//! Loaded models: the live table the hot path reads, and the manager that fills it.

pub mod check;
pub mod manager;
pub mod routing;
pub mod table;

pub use check::BuildCheck;
pub use manager::ModelManager;
pub use routing::Placement;
pub use table::{LoadedModel, ModelEntry, ModelTable, Models, Routed};

/// Opens the registry `config` names, proving new versions with [`BuildCheck`] and
/// moving aliases under `[models]`' governance (protected aliases, approvals). Every
/// process opens it here: the server and each CLI command alike.
pub async fn open_registry(
    config: &crate::config::Config,
) -> anyhow::Result<mercator_registry::Registry> {
    use anyhow::Context;
    let artifacts = mercator_registry::ArtifactStore::open(&config.artifacts_url())
        .context("opening the artifact store")?;
    let registry = mercator_registry::Registry::open(
        &config.registry_url(),
        artifacts,
        std::sync::Arc::new(BuildCheck),
    )
    .await
    .context("opening the registry")?;
    Ok(registry.with_governance(config.models.governance()))
}
