//! Command-line interface: `mercator serve` and `mercator models …`.

pub mod drift;
pub mod features;
pub mod models;
pub mod profile;
pub mod profiling;
mod table;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// gRPC model serving for commerce: demand forecasts, churn scores and chatbot intents.
#[derive(Debug, Parser)]
#[command(name = "mercator", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve models over gRPC (KServe V2 and mercator.v1) and metrics over HTTP.
    Serve(ServeArgs),
    /// Register, list, show, alias and archive model versions.
    Models(models::ModelsArgs),
    /// Apply and list feature definitions.
    Features(features::FeaturesArgs),
    /// Build a model's training profile (the reference for drift).
    Profile(profile::ProfileArgs),
    /// Show a running server's drift of a model's versions, features ranked by PSI.
    Drift(drift::DriftArgs),
}

/// Where configuration comes from; shared by every command.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "MERCATOR_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for embedded state (SQLite registry, local artifacts) [default: ./mercator-data].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// `mercator serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration sources.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// gRPC listen address [default: 127.0.0.1:8001].
    #[arg(long)]
    pub grpc_addr: Option<String>,
    /// Metrics (HTTP) listen address [default: 127.0.0.1:8002].
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Register the bundled demo models into an empty registry before serving.
    #[arg(long)]
    pub demo: bool,
}

impl ConfigArgs {
    /// Loads the configuration with these flags (and `extra` flag values) on top.
    pub fn load(&self, extra: &[(&'static str, Option<&String>)]) -> Result<Config, ConfigError> {
        let mut overrides = BTreeMap::new();
        if let Some(dir) = &self.data_dir {
            overrides.insert(
                "data_dir",
                figment::value::Value::from(dir.display().to_string()),
            );
        }
        for (key, value) in extra {
            if let Some(v) = value {
                overrides.insert(*key, figment::value::Value::from(v.as_str()));
            }
        }
        Config::load(self.config.as_deref(), std::env::vars(), overrides)
    }
}
