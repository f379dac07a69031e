//! Opening the stores from the configuration: the registry (`open_registry`), and the
//! feature store with its definitions, which are kept in the registry database so that
//! every replica serves the same entities and views: an apply on any replica (or from
//! the CLI) is a new revision there, and the others pick it up when they next poll.

use mercator_features::definitions_store::{Applied, DefinitionsStore};
use mercator_features::{FeatureError, FeatureStore};
use mercator_registry::{Registry, RegistryError};

/// [`DefinitionsStore`] over the registry.
#[derive(Debug, Clone)]
pub struct RegistryDefinitions {
    registry: Registry,
    actor: String,
}

impl RegistryDefinitions {
    /// Definitions in `registry`; applies are recorded as made by `actor`.
    pub fn new(registry: Registry, actor: impl Into<String>) -> RegistryDefinitions {
        RegistryDefinitions {
            registry,
            actor: actor.into(),
        }
    }
}

fn feature_error(e: RegistryError) -> FeatureError {
    match e {
        RegistryError::FailedPrecondition(m) => FeatureError::Conflict(m),
        other => FeatureError::Unavailable(format!("registry (feature definitions): {other}")),
    }
}

#[tonic::async_trait]
impl DefinitionsStore for RegistryDefinitions {
    async fn load(&self) -> mercator_features::Result<Option<(u64, String)>> {
        self.registry
            .feature_definitions()
            .await
            .map_err(feature_error)
    }

    async fn save(
        &self,
        expected: Option<u64>,
        toml: &str,
        applied: &Applied,
    ) -> mercator_features::Result<u64> {
        let actor = if applied.actor.is_empty() {
            &self.actor
        } else {
            &applied.actor
        };
        self.registry
            .save_feature_definitions(expected, toml, actor, &applied.changes)
            .await
            .map_err(feature_error)
    }
}

/// Opens the feature store with its definitions in the registry. A data directory from
/// before definitions moved there has them in `features/definitions.toml`: they are
/// imported once, when the registry has none.
pub async fn open_feature_store(
    config: &crate::config::Config,
    registry: &Registry,
    actor: &str,
) -> mercator_features::Result<std::sync::Arc<FeatureStore>> {
    let store = RegistryDefinitions::new(registry.clone(), actor);
    let legacy = config
        .server
        .data_dir
        .join("features")
        .join(mercator_features::DEFINITIONS_FILE);
    if store.load().await?.is_none()
        && let Ok(toml) = std::fs::read_to_string(&legacy)
    {
        mercator_features::Definitions::from_toml(&toml)?;
        match store.save(None, &toml, &Applied::default()).await {
            Ok(_) | Err(FeatureError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(file = %legacy.display(), "imported feature definitions into the registry");
    }
    let (online, offline) = config.open_feature_backends().await?;
    Ok(std::sync::Arc::new(
        FeatureStore::open_shared(std::sync::Arc::new(store), online, offline)
            .await?
            .with_max_future_skew(std::time::Duration::from_secs_f64(
                config.features.max_future_skew_secs,
            )),
    ))
}

/// Opens the registry `config` names, proving new versions with [`crate::models::BuildCheck`] and
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
        std::sync::Arc::new(crate::models::BuildCheck),
    )
    .await
    .context("opening the registry")?;
    Ok(registry.with_governance(config.models.governance()))
}

/// The credential checker, when auth is required (with JWTs when a JWKS is configured).
pub fn open_verifier(
    config: &crate::config::Config,
    registry: &Registry,
) -> anyhow::Result<Option<std::sync::Arc<crate::auth::Verifier>>> {
    if !config.auth.required() {
        return Ok(None);
    }
    let jwt = match config.auth.jwt() {
        Some(settings) => {
            Some(crate::auth::jwt::JwtVerifier::start(settings).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    Ok(Some(std::sync::Arc::new(crate::auth::Verifier::new(
        registry.clone(),
        config.auth.key_cache(),
        jwt,
    ))))
}

/// The definitions as JSON: what `features list --json` prints.
pub fn definitions_json(defs: &mercator_proto::v1::ListDefinitionsResponse) -> serde_json::Value {
    serde_json::json!({
        "entities": defs.entities.iter().map(|e| serde_json::json!({
            "name": e.name,
            "join_keys": e.join_keys,
        })).collect::<Vec<_>>(),
        "feature_views": defs.feature_views.iter().map(|v| serde_json::json!({
            "name": v.name,
            "entity": v.entity,
            "ttl_seconds": (v.ttl_seconds > 0).then_some(v.ttl_seconds),
            "fields": v.fields.iter().map(|f| serde_json::json!({
                "name": f.name,
                "type": f.r#type,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
