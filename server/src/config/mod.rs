//! Configuration: one typed tree with a section per concern, layered without side effects.
//!
//! Priority, lowest first: built-in defaults < the TOML file (`--config`) <
//! `MERCATOR_<SECTION>__<KEY>` environment variables < command-line flags. Every key can be
//! set at each layer, e.g. `addr` under `[grpc]` in TOML, `MERCATOR_GRPC__ADDR`, or
//! `--grpc-addr`. The keys are the fields below; nothing else lists them. How the layers
//! are read, the old flat names (`grpc_addr`, `MERCATOR_GRPC_ADDR`) that still work for
//! one release, and where each value came from are in `layers.rs`.

mod check;
mod layers;
mod security;
mod server;
mod serving;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::predlog::PredictionLogConfig;
pub use layers::{Flag, Loaded, Setting};
pub use security::{AuthConfig, TlsConfig};
pub use server::ServerConfig;
pub use serving::ServingConfig;

/// Server configuration, one field per TOML section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// The process: its state directory, its name, its logs and its shutdown.
    pub server: ServerConfig,
    /// The gRPC listener (KServe V2 and `mercator.v1`).
    pub grpc: GrpcConfig,
    /// The HTTP listener for `GET /metrics`.
    pub metrics: MetricsConfig,
    /// The model registry and how often it is polled.
    pub registry: RegistryConfig,
    /// Where model files are stored.
    pub artifacts: ArtifactsConfig,
    /// The feature store's online store and offline history.
    pub features: FeaturesConfig,
    /// Which versions of each model are loaded.
    pub models: ModelsConfig,
    /// What one request may ask for.
    pub limits: LimitsConfig,
    /// How requests are computed.
    pub serving: ServingConfig,
    /// How drift windows are kept and judged.
    pub drift: DriftConfig,
    /// Who may call what.
    pub auth: AuthConfig,
    /// Certificates for both listeners, and client certificates (mTLS).
    pub tls: TlsConfig,
    /// `[prediction_log]`.
    pub prediction_log: PredictionLogConfig,
    /// `[streams]`: Kafka sources and triggers (the `mercator-streams` crate's section).
    pub streams: mercator_streams::StreamsConfig,
}

/// `[grpc]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrpcConfig {
    /// Listen address.
    pub addr: SocketAddr,
    /// The deadline of a call that sets none, and the longest any call may have (a
    /// caller's `grpc-timeout` can shorten it, not lengthen it), in seconds. It covers
    /// reading the request, so a stalled upload is dropped by then.
    pub request_timeout_secs: f64,
    /// HTTP/2 streams one connection may have open at once (`MAX_CONCURRENT_STREAMS`).
    pub max_concurrent_streams: u32,
    /// Largest header block a request may send, in bytes.
    pub max_header_list_bytes: u32,
    /// How often an idle connection is pinged, in seconds (0: never).
    pub keepalive_interval_secs: f64,
    /// How long a ping may go unanswered before the connection is closed, in seconds.
    pub keepalive_timeout_secs: f64,
    /// How long a connection may live, in seconds (0: forever); then it is asked to go
    /// away (clients reconnect), and closed `request_timeout_secs` later. Idle and
    /// silent connections end, and clients spread over replicas that came up since.
    pub max_connection_age_secs: f64,
    /// Request bytes all calls together may hold while they are being received; past
    /// it, a call is refused with RESOURCE_EXHAUSTED (stalled uploads cannot take the
    /// memory).
    pub max_buffered_request_bytes: usize,
    /// The same for the calls of one connection, so that one client's streams cannot
    /// take the whole of `max_buffered_request_bytes` from the others.
    pub max_buffered_request_bytes_per_connection: usize,
}

/// `[metrics]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Listen address of `GET /metrics`.
    pub addr: SocketAddr,
    /// With auth required, whether `/metrics` needs a bearer credential (of any scope);
    /// Prometheus sends one with `authorization: { credentials_file: … }`. On by default
    /// (the metrics name models, views and fields); `false` opens them.
    pub protect: bool,
}

/// `[registry]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// Database URL; empty means `sqlite://<data_dir>/registry.db`.
    pub url: String,
    /// How often the registry is polled for new versions and alias moves, in seconds.
    pub poll_interval_secs: f64,
    /// How long an instance may be silent before its load reports stop counting as
    /// serving (`mercator models show` marks it gone), in seconds; a running server
    /// refreshes them every quarter of this.
    pub instance_ttl_secs: f64,
}

/// `[artifacts]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ArtifactsConfig {
    /// Artifact store URL (`s3://…`, `gs://…`, `az://…`, a folder); empty means
    /// `<data_dir>/artifacts`.
    pub url: String,
}

/// `[features]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeaturesConfig {
    /// Online store: `embedded` (memory and a log under `<data_dir>/features`, one server
    /// process) or a `redis://host:port/db` URL (shared by many replicas); the feature
    /// store's `online::open` says which exist.
    pub online_store: String,
    /// Offline history (every pushed row, as Parquet): empty means
    /// `<data_dir>/features/offline`; or `s3://bucket/prefix`, `gs://…`, `az://…`, shared
    /// by many replicas.
    pub offline_store: String,
    /// Folders and bucket prefixes (`s3://bucket/prefix`) that `FeatureStore/LoadFile`
    /// may read from, besides `<data_dir>/features` and an object-store `offline_store`.
    /// Nothing else on the server's disk or in its buckets can be named by a client.
    pub load_roots: Vec<String>,
    /// How far past this server's clock a pushed or loaded event time may be, in
    /// seconds: a row stamped years ahead would win over every later push of its entity.
    pub max_future_skew_secs: f64,
    /// Working memory of `mercator features history` run against the store (no
    /// `--server`), in MiB: the point-in-time join spills to disk beyond it.
    pub history_memory_mb: u64,
}

/// `[models]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelsConfig {
    /// Aliases whose versions are loaded and served.
    pub serve_aliases: Vec<String>,
    /// Besides the aliased versions, the newest N ready versions of every model stay
    /// loaded (requests may name them by number; moving an alias to one is instant).
    pub keep_versions: usize,
    /// Versions always loaded, as `model@version` (e.g. a baseline kept for comparison).
    pub pinned_versions: Vec<String>,
    /// Aliases that registering a version cannot move without `models:promote`, and
    /// that `require_approval` covers.
    pub protected_aliases: Vec<String>,
    /// The four-eyes rule: a protected alias may point only at a version approved
    /// (`mercator models approve`) by a principal other than its registrant.
    pub require_approval: bool,
    /// Whether the server is ready (V2 `ServerReady`, `/v2/health/ready`, gRPC health)
    /// only while every served alias has a version that loads, as Triton's strict
    /// readiness: a replica that cannot answer for one of its models leaves rotation.
    /// `false`: ready once the initial loads finish, whatever failed.
    pub strict_readiness: bool,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest gRPC message accepted or sent, in bytes (tonic's default is 4 MiB).
    pub max_message_bytes: usize,
    /// Largest batch (first dimension) accepted when a manifest does not set its own.
    pub max_batch_size: usize,
    /// Requests allowed in flight at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_in_flight: usize,
    /// Longest forecast horizon any model may be asked for, in days (a model may allow
    /// fewer: a neural forecaster forecasts only as far as it was trained to).
    pub max_horizon_days: usize,
    /// Most series in one `Forecasting/ForecastBatch` call.
    pub max_batch_series: usize,
    /// Most days in a history sent inline with a forecast request.
    pub max_history_days: usize,
    /// Most rows in one `FeatureStore/Push` call (bigger loads: `LoadFile`, or several pushes).
    pub max_push_rows: usize,
    /// Largest file a client may send to `FeatureStore/LoadUpload`, in bytes (CSV streams
    /// through in constant memory; Parquet is spooled to `<data_dir>/tmp/uploads` first).
    pub max_upload_bytes: u64,
    /// Longest text `Intent/Classify` accepts, in bytes.
    pub max_text_bytes: usize,
    /// Most customers in one `Churn/Score` call (a model's own batch limit may be lower).
    pub max_score_customers: usize,
    /// Largest body a request without a credential may send while auth is required
    /// (health checks, open reflection; over REST, anything refused before its body is
    /// read), in bytes. All such bodies together hold at most 256 times this.
    pub max_unauthenticated_body_bytes: usize,
}

/// `[drift]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftConfig {
    /// Most rows a version's window holds (the oldest are dropped first).
    pub window_samples: usize,
    /// Oldest row a window holds, in seconds.
    pub window_secs: f64,
    /// Fewest values a feature's window needs before its drift is exported (so that
    /// small windows do not flap).
    pub min_samples: usize,
    /// How often windows are evaluated, in seconds.
    pub interval_secs: f64,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        GrpcConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8001)),
            request_timeout_secs: 120.0,
            max_concurrent_streams: 256,
            max_header_list_bytes: 16 * 1024,
            keepalive_interval_secs: 60.0,
            keepalive_timeout_secs: 20.0,
            max_connection_age_secs: 3600.0,
            max_buffered_request_bytes: 1024 * 1024 * 1024,
            max_buffered_request_bytes_per_connection: 256 * 1024 * 1024,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8002)),
            protect: true,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: String::new(),
            poll_interval_secs: 5.0,
            instance_ttl_secs: 60.0,
        }
    }
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        FeaturesConfig {
            online_store: "embedded".into(),
            offline_store: String::new(),
            load_roots: Vec::new(),
            max_future_skew_secs: mercator_features::DEFAULT_MAX_FUTURE_SKEW.as_secs_f64(),
            history_memory_mb: 256,
        }
    }
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig {
            serve_aliases: vec![mercator_registry::CHAMPION.to_string()],
            keep_versions: 0,
            pinned_versions: Vec::new(),
            protected_aliases: vec![mercator_registry::CHAMPION.to_string()],
            require_approval: false,
            strict_readiness: true,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_message_bytes: 64 * 1024 * 1024,
            max_batch_size: 4096,
            max_in_flight: 1024,
            max_horizon_days: 366,
            max_batch_series: 100_000,
            max_history_days: 36_600,
            max_push_rows: 100_000,
            max_upload_bytes: 4 * 1024 * 1024 * 1024,
            max_text_bytes: 16 * 1024,
            max_score_customers: 10_000,
            max_unauthenticated_body_bytes: 64 * 1024,
        }
    }
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            window_samples: 10_000,
            window_secs: 3600.0,
            min_samples: 500,
            interval_secs: 15.0,
        }
    }
}

/// A configuration that cannot be used; the process exits with status 64.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// The registry database URL, defaulting to SQLite under the data directory.
    pub fn registry_url(&self) -> String {
        if self.registry.url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("registry.db").display()
            )
        } else {
            self.registry.url.clone()
        }
    }

    /// The artifact store URL, defaulting to a folder under the data directory.
    pub fn artifacts_url(&self) -> String {
        if self.artifacts.url.is_empty() {
            self.server.data_dir.join("artifacts").display().to_string()
        } else {
            self.artifacts.url.clone()
        }
    }

    /// Where `LoadFile` may read: `<data_dir>/features`, an object-store offline history,
    /// and `features.load_roots`.
    pub fn load_roots(&self) -> Vec<String> {
        let mut roots = vec![self.server.data_dir.join("features").display().to_string()];
        if self.features.offline_store.contains("://") {
            roots.push(self.features.offline_store.clone());
        }
        roots.extend(self.features.load_roots.iter().cloned());
        roots
    }

    /// Where the offline history is: `features.offline_store`, else
    /// `<data_dir>/features/offline`.
    pub fn offline_location(&self) -> String {
        if self.features.offline_store.is_empty() {
            let dir = self.server.data_dir.join("features").join("offline");
            dir.display().to_string()
        } else {
            self.features.offline_store.clone()
        }
    }

    /// Opens the configured online store and offline history.
    pub async fn open_feature_backends(
        &self,
    ) -> mercator_features::Result<(
        std::sync::Arc<dyn mercator_features::online::OnlineStore>,
        mercator_features::offline::OfflineStore,
    )> {
        let dir = self.server.data_dir.join("features");
        let online =
            mercator_features::online::open(&self.features.online_store, &dir.join("online"))
                .await?;
        let offline = self.offline_location();
        let offline = tokio::task::spawn_blocking(move || {
            mercator_features::offline::OfflineStore::open(&offline)
        })
        .await
        .map_err(|e| mercator_features::FeatureError::Io(std::io::Error::other(e)))??;
        Ok((online, offline))
    }
}

impl GrpcConfig {
    /// The longest a call may take.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout_secs)
    }

    /// The keepalive ping interval, if any.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        (self.keepalive_interval_secs > 0.0)
            .then(|| Duration::from_secs_f64(self.keepalive_interval_secs))
    }

    /// The keepalive ping timeout.
    pub fn keepalive_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.keepalive_timeout_secs)
    }

    /// The longest a connection may live, if limited.
    pub fn max_connection_age(&self) -> Option<Duration> {
        (self.max_connection_age_secs > 0.0)
            .then(|| Duration::from_secs_f64(self.max_connection_age_secs))
    }
}

impl RegistryConfig {
    /// The poll interval.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_secs)
    }

    /// How long an instance may be silent and still count as serving.
    pub fn instance_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.instance_ttl_secs)
    }
}

impl ModelsConfig {
    /// The registry's rules on alias moves.
    pub fn governance(&self) -> mercator_registry::Governance {
        mercator_registry::Governance {
            protected_aliases: self.protected_aliases.clone(),
            require_approval: self.require_approval,
        }
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
                            "models.pinned_versions: '{p}' must be model@version, e.g. churn@3"
                        ))
                    })
            })
            .collect()
    }
}

impl LimitsConfig {
    /// The limits of forecasting requests.
    pub fn forecast(&self) -> crate::api::forecast::ForecastLimits {
        crate::api::forecast::ForecastLimits {
            max_horizon_days: self.max_horizon_days,
            max_batch_series: self.max_batch_series,
            max_history_days: self.max_history_days,
        }
    }
}

impl DriftConfig {
    /// The monitor's settings.
    pub fn settings(&self) -> crate::monitor::drift::DriftSettings {
        crate::monitor::drift::DriftSettings {
            window_samples: self.window_samples,
            window_age: Duration::from_secs_f64(self.window_secs),
            min_samples: self.min_samples,
            interval: Duration::from_secs_f64(self.interval_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::load(None, env, &[]).map(|l| l.config)
    }

    #[test]
    fn auth_none_only_on_loopback() {
        let err = load(&[("MERCATOR_GRPC__ADDR", "0.0.0.0:8001")]).expect_err("open on a network");
        assert!(
            err.to_string().contains("grpc.addr is 0.0.0.0:8001"),
            "{err}"
        );
        let err = load(&[("MERCATOR_METRICS__ADDR", "10.0.0.5:8002")]).expect_err("metrics too");
        assert!(err.to_string().contains("metrics.addr"), "{err}");
        assert!(
            load(&[("MERCATOR_GRPC__ADDR", "[::1]:8001")]).is_ok(),
            "IPv6 loopback"
        );
        let c = load(&[
            ("MERCATOR_GRPC__ADDR", "0.0.0.0:8001"),
            ("MERCATOR_METRICS__ADDR", "0.0.0.0:8002"),
            ("MERCATOR_AUTH__MODE", "required"),
        ])
        .expect("required on a network");
        assert!(c.auth.required());
        let err = load(&[("MERCATOR_AUTH__MODE", "maybe")]).expect_err("bad mode");
        assert!(err.to_string().contains("auth.mode"), "{err}");
        let err = load(&[("MERCATOR_AUTH__KEY_CACHE_SECS", "-1")]).expect_err("bad cache");
        assert!(err.to_string().contains("auth.key_cache_secs"), "{err}");
    }
}
