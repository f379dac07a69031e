//! The bundled demo: the churn model trained by `examples/churn/train_churn.py` with the
//! synthetic customers' features it was trained on, and the support chatbot's intent
//! model trained by `examples/intent/train_intent.py`, embedded in the binary so
//! `mercator serve --demo` works from anywhere; registered, applied and loaded on first run.

use std::collections::BTreeMap;

use bytes::Bytes;
use mercator_registry::{NewVersion, Registry, RegistryError};

const CHURN_MANIFEST: &[u8] = include_bytes!("../../examples/churn/mercator.json");
const CHURN_MODEL: &[u8] = include_bytes!("../../examples/churn/model.json");
const CHURN_FEATURES: &str = include_str!("../../examples/churn/features.toml");
const CUSTOMERS_CSV: &[u8] = include_bytes!("../../examples/churn/customers.csv");
const INTENT_MANIFEST: &[u8] = include_bytes!("../../examples/intent/mercator.json");
const INTENT_MODEL: &[u8] = include_bytes!("../../examples/intent/model.safetensors");
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

/// A bundled model: its name, its files, and the script that made them.
struct DemoModel {
    name: &'static str,
    files: [(&'static str, &'static [u8]); 2],
    source: &'static str,
}

/// Registers the demo models that the registry does not have yet, as `champion`.
pub async fn register_demo_models(registry: &Registry) -> Result<(), RegistryError> {
    let models = [
        DemoModel {
            name: "churn",
            files: [
                ("mercator.json", CHURN_MANIFEST),
                ("model.json", CHURN_MODEL),
            ],
            source: "examples/churn/train_churn.py",
        },
        DemoModel {
            name: "intent",
            files: [
                ("mercator.json", INTENT_MANIFEST),
                ("model.safetensors", INTENT_MODEL),
            ],
            source: "examples/intent/train_intent.py",
        },
    ];
    for DemoModel {
        name,
        files,
        source,
    } in models
    {
        match registry.get_model(name).await {
            Ok(_) => {
                tracing::info!(model = name, "demo model already registered");
                continue;
            }
            Err(RegistryError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let version = registry
            .register(NewVersion {
                model: name.into(),
                files: files
                    .into_iter()
                    .map(|(path, bytes)| (path.to_string(), Bytes::from_static(bytes)))
                    .collect(),
                tags: BTreeMap::from([("source".to_string(), source.to_string())]),
                alias: Some(mercator_registry::CHAMPION.into()),
                actor: "demo".into(),
                ..NewVersion::default()
            })
            .await?;
        tracing::info!(
            model = name,
            version = version.version,
            "registered a demo model as champion"
        );
    }
    Ok(())
}
