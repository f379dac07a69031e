//! Configuration: one typed tree, layered without side effects.
//!
//! Priority, lowest first: built-in defaults < the TOML file (`--config`) <
//! `MERCATOR_<KEY>` environment variables < command-line flags. Every key below can be set
//! at each layer, e.g. `grpc_addr` in TOML, `MERCATOR_GRPC_ADDR`, or `--grpc-addr`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Where embedded state lives (SQLite registry, local artifacts).
    pub data_dir: PathBuf,
    /// gRPC listen address (KServe V2 and `mercator.v1`).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address for `GET /metrics`.
    pub metrics_addr: SocketAddr,
    /// Registry database URL; empty means `sqlite://<data_dir>/registry.db`.
    pub registry_url: String,
    /// Artifact store URL; empty means `file://<data_dir>/artifacts`.
    pub artifacts_url: String,
    /// Online feature store: `embedded` (memory and a log under `<data_dir>/features`,
    /// one server process) or a `redis://host:port/db` URL (shared by many replicas).
    pub online_store: String,
    /// Offline feature history (every pushed row, as Parquet): empty means
    /// `<data_dir>/features/offline`; or `s3://bucket/prefix`, `gs://…`, `az://…`, shared
    /// by many replicas.
    pub offline_store: String,
    /// Largest gRPC message accepted or sent, in bytes (tonic's default is 4 MiB).
    pub max_message_bytes: usize,
    /// Largest batch (first dimension) accepted when a manifest does not set its own.
    pub max_batch_size: usize,
    /// Requests allowed in flight at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Batches with at least this many rows run on the blocking pool instead of inline.
    /// On the demo churn model (200 trees) 1,024 rows take about 1.6 ms; smaller batches
    /// measured faster inline than with the hop to another thread (docs/BENCHMARKS.md).
    pub offload_min_rows: usize,
    /// Shadow runs (copies of live requests sent to a model's shadow routes) allowed at
    /// once; further copies are dropped and counted, never queued, so shadows cannot slow
    /// live serving down.
    pub max_shadow_in_flight: usize,
    /// Most rows a version's drift window holds (the oldest are dropped first).
    pub drift_window_samples: usize,
    /// Oldest row a drift window holds, in seconds.
    pub drift_window_secs: f64,
    /// Fewest values a feature's window needs before its drift is exported (so that
    /// small windows do not flap).
    pub drift_min_samples: usize,
    /// How often drift windows are evaluated, in seconds.
    pub drift_interval_secs: f64,
    /// Longest forecast horizon any model may be asked for, in days (a model may allow
    /// fewer: a neural forecaster forecasts only as far as it was trained to).
    pub max_horizon_days: usize,
    /// Most series in one `Forecasting/ForecastBatch` call.
    pub max_batch_series: usize,
    /// This server's name in the registry's load reports (`mercator models show`); empty
    /// means the `HOSTNAME` environment variable (a pod's name on Kubernetes), or
    /// `mercator`.
    pub instance_name: String,
    /// Besides the aliased versions, the newest N ready versions of every model stay
    /// loaded (requests may name them by number; moving an alias to one is instant).
    pub keep_versions: usize,
    /// Versions always loaded, as `model@version` (e.g. a baseline kept for comparison).
    pub pinned_versions: Vec<String>,
    /// Aliases whose versions are loaded and served.
    pub serve_aliases: Vec<String>,
    /// How often the registry is polled for new versions and alias moves, in seconds.
    pub poll_interval_secs: f64,
    /// How long in-flight requests may take to finish on shutdown, in seconds.
    pub shutdown_grace_secs: f64,
    /// Log format: `text` or `json`.
    pub log_format: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./mercator-data"),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 8001)),
            metrics_addr: SocketAddr::from(([127, 0, 0, 1], 8002)),
            registry_url: String::new(),
            artifacts_url: String::new(),
            online_store: "embedded".into(),
            offline_store: String::new(),
            max_message_bytes: 64 * 1024 * 1024,
            max_batch_size: 4096,
            max_in_flight: 1024,
            offload_min_rows: 1024,
            max_shadow_in_flight: 32,
            drift_window_samples: 10_000,
            drift_window_secs: 3600.0,
            drift_min_samples: 500,
            drift_interval_secs: 15.0,
            max_horizon_days: 366,
            max_batch_series: 100_000,
            instance_name: String::new(),
            keep_versions: 0,
            pinned_versions: Vec::new(),
            serve_aliases: vec![mercator_registry::CHAMPION.to_string()],
            poll_interval_secs: 5.0,
            shutdown_grace_secs: 30.0,
            log_format: "text".into(),
        }
    }
}

/// A configuration that cannot be used; the process exits with status 64.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Loads the layers. `env` is the process environment (injected so tests need not
    /// touch the real one) and `overrides` the keys set by command-line flags.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: BTreeMap<&'static str, figment::value::Value>,
    ) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("MERCATOR_")
                    .map(|k| (k.to_ascii_lowercase(), v))
            })
            .filter(|(k, _)| KEYS.contains(&k.as_str()))
            .collect();
        figment = figment.merge(Serialized::defaults(env_values(&env)?));
        for (key, value) in overrides {
            figment = figment.merge(Serialized::default(key, value));
        }
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_message_bytes", self.max_message_bytes),
            ("max_batch_size", self.max_batch_size),
            ("max_in_flight", self.max_in_flight),
            ("max_horizon_days", self.max_horizon_days),
            ("max_batch_series", self.max_batch_series),
            ("drift_window_samples", self.drift_window_samples),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError(format!("{key} must be greater than 0")));
            }
        }
        for (key, value) in [
            ("drift_window_secs", self.drift_window_secs),
            ("drift_interval_secs", self.drift_interval_secs),
        ] {
            if !(value > 0.0 && value.is_finite() && value < 1e9) {
                return Err(ConfigError(format!(
                    "{key} must be a positive number of seconds"
                )));
            }
        }
        if !(self.poll_interval_secs > 0.0 && self.poll_interval_secs.is_finite()) {
            return Err(ConfigError(
                "poll_interval_secs must be a positive number".into(),
            ));
        }
        if !(self.shutdown_grace_secs >= 0.0 && self.shutdown_grace_secs.is_finite()) {
            return Err(ConfigError(
                "shutdown_grace_secs must be zero or positive".into(),
            ));
        }
        let store = self.online_store.as_str();
        if !mercator_features::online::is_backend(store) {
            return Err(ConfigError(format!(
                "online_store '{store}' must be {}",
                mercator_features::online::BACKENDS
            )));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError(format!(
                "log_format '{}' must be text or json",
                self.log_format
            )));
        }
        for alias in &self.serve_aliases {
            mercator_registry::model::check_name("serve_aliases", alias)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        self.pinned()?;
        Ok(())
    }

    /// `pinned_versions` parsed: (model, version) pairs.
    pub fn pinned(&self) -> Result<Vec<(String, u64)>, ConfigError> {
        self.pinned_versions
            .iter()
            .map(|p| {
                p.split_once('@')
                    .and_then(|(m, v)| Some((m.to_string(), v.parse::<u64>().ok()?)))
                    .filter(|(m, v)| !m.is_empty() && *v > 0)
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "pinned_versions: '{p}' must be model@version, e.g. churn@3"
                        ))
                    })
            })
            .collect()
    }

    /// The registry database URL, defaulting to SQLite under the data directory.
    pub fn registry_url(&self) -> String {
        if self.registry_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("registry.db").display()
            )
        } else {
            self.registry_url.clone()
        }
    }

    /// The artifact store URL, defaulting to a folder under the data directory.
    pub fn artifacts_url(&self) -> String {
        if self.artifacts_url.is_empty() {
            self.data_dir.join("artifacts").display().to_string()
        } else {
            self.artifacts_url.clone()
        }
    }

    /// Opens the configured online store and offline history.
    pub async fn open_feature_backends(
        &self,
    ) -> mercator_features::Result<(
        std::sync::Arc<dyn mercator_features::online::OnlineStore>,
        mercator_features::offline::OfflineStore,
    )> {
        let dir = self.data_dir.join("features");
        let online =
            mercator_features::online::open(&self.online_store, &dir.join("online")).await?;
        let offline = if self.offline_store.is_empty() {
            dir.join("offline").display().to_string()
        } else {
            self.offline_store.clone()
        };
        let offline = tokio::task::spawn_blocking(move || {
            mercator_features::offline::OfflineStore::open(&offline)
        })
        .await
        .map_err(|e| mercator_features::FeatureError::Io(std::io::Error::other(e)))??;
        Ok((online, offline))
    }

    /// This server's name in load reports: `instance_name`, else `$HOSTNAME`, else
    /// `mercator`.
    pub fn instance(&self) -> String {
        if !self.instance_name.is_empty() {
            return self.instance_name.clone();
        }
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "mercator".into())
    }

    /// The limits of forecasting requests.
    pub fn forecast_limits(&self) -> crate::api::forecast::ForecastLimits {
        crate::api::forecast::ForecastLimits {
            max_horizon_days: self.max_horizon_days,
            max_batch_series: self.max_batch_series,
        }
    }

    /// How drift windows are kept and judged.
    pub fn drift(&self) -> crate::monitor::drift::DriftSettings {
        crate::monitor::drift::DriftSettings {
            window_samples: self.drift_window_samples,
            window_age: Duration::from_secs_f64(self.drift_window_secs),
            min_samples: self.drift_min_samples,
            interval: Duration::from_secs_f64(self.drift_interval_secs),
        }
    }

    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_secs)
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
}

/// Every configuration key, as accepted after the `MERCATOR_` prefix.
const KEYS: &[&str] = &[
    "data_dir",
    "grpc_addr",
    "metrics_addr",
    "registry_url",
    "artifacts_url",
    "online_store",
    "offline_store",
    "max_message_bytes",
    "max_batch_size",
    "max_in_flight",
    "offload_min_rows",
    "max_shadow_in_flight",
    "drift_window_samples",
    "drift_window_secs",
    "drift_min_samples",
    "drift_interval_secs",
    "max_horizon_days",
    "max_batch_series",
    "instance_name",
    "keep_versions",
    "pinned_versions",
    "serve_aliases",
    "poll_interval_secs",
    "shutdown_grace_secs",
    "log_format",
];

/// Environment values are text. Each is parsed the way figment parses env values (so
/// numbers become numbers), except the lists `serve_aliases` and `pinned_versions`,
/// comma-separated.
fn env_values(env: &BTreeMap<String, String>) -> Result<figment::value::Dict, ConfigError> {
    let mut dict = figment::value::Dict::new();
    for (k, v) in env {
        let value = if k == "serve_aliases" || k == "pinned_versions" {
            figment::value::Value::from(
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>(),
            )
        } else {
            let parsed: figment::value::Value = v
                .parse()
                .map_err(|_| ConfigError(format!("MERCATOR_{}: bad value", k.to_uppercase())))?;
            parsed
        };
        dict.insert(k.clone(), value);
    }
    Ok(dict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.toml");
        std::fs::write(&file, "grpc_addr = \"127.0.0.1:9001\"\nmax_batch_size = 10\nmetrics_addr = \"127.0.0.1:9002\"\n").unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("MERCATOR_MAX_BATCH_SIZE", "20"),
                ("MERCATOR_SERVE_ALIASES", "champion, challenger"),
                ("OTHER", "x"),
            ]),
            BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(c.grpc_addr.port(), 9001);
        assert_eq!(c.max_batch_size, 20);
        assert_eq!(c.serve_aliases, vec!["champion", "challenger"]);
        let mut flags = BTreeMap::new();
        flags.insert(
            "metrics_addr",
            figment::value::Value::from("127.0.0.1:9100"),
        );
        let c = Config::load(
            Some(&file),
            env(&[("MERCATOR_METRICS_ADDR", "127.0.0.1:9003")]),
            flags,
        )
        .unwrap();
        assert_eq!(c.metrics_addr.port(), 9100);
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(
            Config::load(
                None,
                env(&[("MERCATOR_MAX_BATCH_SIZE", "0")]),
                BTreeMap::new()
            )
            .is_err()
        );
        assert!(
            Config::load(
                None,
                env(&[("MERCATOR_GRPC_ADDR", "nowhere")]),
                BTreeMap::new()
            )
            .is_err()
        );
        assert!(
            Config::load(
                None,
                env(&[("MERCATOR_LOG_FORMAT", "xml")]),
                BTreeMap::new()
            )
            .is_err()
        );
        assert!(Config::load(Some(Path::new("/no/such.toml")), env(&[]), BTreeMap::new()).is_err());
        for bad in ["churn", "churn@x", "@3", "churn@0"] {
            let err = Config::load(
                None,
                env(&[("MERCATOR_PINNED_VERSIONS", bad)]),
                BTreeMap::new(),
            )
            .expect_err(bad);
            assert!(err.to_string().contains("model@version"), "{bad}: {err}");
        }
        let c = Config::load(
            None,
            env(&[("MERCATOR_PINNED_VERSIONS", "churn@3, intent@1")]),
            BTreeMap::new(),
        )
        .expect("pinned");
        assert_eq!(
            c.pinned().expect("parsed"),
            [("churn".to_string(), 3), ("intent".to_string(), 1)]
        );
    }
}
