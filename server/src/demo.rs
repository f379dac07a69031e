//! The bundled demo: the churn model trained by `examples/churn/train_churn.py`, embedded
//! in the binary so `mercator serve --demo` works from anywhere, registered into an empty
//! registry on first run.

use std::collections::BTreeMap;

use bytes::Bytes;
use mercator_registry::{NewVersion, Registry, RegistryError};

const CHURN_MANIFEST: &[u8] = include_bytes!("../../examples/churn/mercator.json");
const CHURN_MODEL: &[u8] = include_bytes!("../../examples/churn/model.json");

/// Registers the demo models that the registry does not have yet, as `champion`.
pub async fn register_demo_models(registry: &Registry) -> Result<(), RegistryError> {
    match registry.get_model("churn").await {
        Ok(_) => {
            tracing::info!("demo model 'churn' already registered");
            return Ok(());
        }
        Err(RegistryError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let mut files = BTreeMap::new();
    files.insert(
        "mercator.json".to_string(),
        Bytes::from_static(CHURN_MANIFEST),
    );
    files.insert("model.json".to_string(), Bytes::from_static(CHURN_MODEL));
    let version = registry
        .register(NewVersion {
            model: "churn".into(),
            files,
            tags: BTreeMap::from([(
                "source".to_string(),
                "examples/churn/train_churn.py".to_string(),
            )]),
            alias: Some(mercator_registry::CHAMPION.into()),
            actor: "demo".into(),
            ..NewVersion::default()
        })
        .await?;
    tracing::info!(
        version = version.version,
        "registered the demo model 'churn' as champion"
    );
    Ok(())
}
