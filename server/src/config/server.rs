//! `[server]`: the process as a whole — where its data lives, how it logs and stops, and
//! how many connections each listener holds and for how long (`listen/limit.rs`).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Where embedded state lives (SQLite registry, local artifacts, embedded features).
    pub data_dir: PathBuf,
    /// This server's name in the registry's load reports (`mercator models show`); empty
    /// means the `HOSTNAME` environment variable (a pod's name on Kubernetes), or
    /// `mercator`.
    pub instance_name: String,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// How long in-flight requests may take to finish on shutdown, in seconds.
    pub shutdown_grace_secs: f64,
    /// Connections each listener (gRPC, HTTP) holds at once; 0: sized from the process's
    /// descriptor limit (raised to its hard limit at start), leaving a quarter for the
    /// stores. At the cap, the connection quiet the longest makes room for a newcomer.
    pub max_connections_per_listener: usize,
    /// How long an HTTP/1.1 request's headers may take to arrive, in seconds.
    pub header_read_timeout_secs: f64,
    /// How long a connection may send and receive nothing before it is closed, in
    /// seconds (0: never). gRPC keepalive pings count as traffic.
    pub idle_timeout_secs: f64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            data_dir: PathBuf::from("./mercator-data"),
            instance_name: String::new(),
            log_format: "text".into(),
            shutdown_grace_secs: 30.0,
            max_connections_per_listener: 0,
            header_read_timeout_secs: 10.0,
            idle_timeout_secs: 300.0,
        }
    }
}

impl ServerConfig {
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

    /// How long a quiet connection is kept (`None`: for ever).
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_secs > 0.0).then(|| Duration::from_secs_f64(self.idle_timeout_secs))
    }

    /// How long an HTTP/1.1 request's headers may take.
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_timeout_secs)
    }

    /// Connections per listener, when configured (`None`: sized from the descriptor
    /// limit by the listeners).
    pub fn max_connections(&self) -> Option<usize> {
        (self.max_connections_per_listener > 0).then_some(self.max_connections_per_listener)
    }

    /// How long a shutdown waits for requests in flight.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
}
