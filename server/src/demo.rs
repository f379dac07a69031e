//! The bundled demo: the churn model trained by `examples/churn/train_churn.py` and the
//! synthetic customers' features it was trained on, embedded in the binary so
//! `mercator serve --demo` works from anywhere; registered, applied and loaded on first run.

use std::collections::BTreeMap;

use bytes::Bytes;
use mercator_registry::{NewVersion, Registry, RegistryError};

const CHURN_MANIFEST: &[u8] = include_bytes!("../../examples/churn/mercator.json");
const CHURN_MODEL: &[u8] = include_bytes!("../../examples/churn/model.json");
const CHURN_FEATURES: &str = include_str!("../../examples/churn/features.toml");
const CUSTOMERS_CSV: &[u8] = include_bytes!("../../examples/churn/customers.csv");
/// The demo's feature view.
pub const CHURN_VIEW: &str = "customer_churn";

/// Applies the demo feature definitions and loads the customers' features, unless the
/// view already exists. Rows are stamped with the load time (the CSV has no event time).
pub async fn load_demo_features(
    store: std::sync::Arc<mercator_features::FeatureStore>,
) -> anyhow::Result<()> {
    if store.definitions().0.views.contains_key(CHURN_VIEW) {
        tracing::info!("demo features already loaded");
        return Ok(());
    }
    store.apply(CHURN_FEATURES, false).await?;
    let options = mercator_features::ingest::LoadOptions {
        default_event_time_micros: Some(chrono::Utc::now().timestamp_micros()),
        ignore_unknown_columns: true,
        ..Default::default()
    };
    let report =
        mercator_features::ingest::load_csv(&store, CHURN_VIEW, CUSTOMERS_CSV, &options).await?;
    tracing::info!(rows = report.rows, "loaded the demo customers' features");
    Ok(())
}

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
