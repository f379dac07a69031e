//! Command-line interface: `mercator serve`, `mercator models …` and the other commands.

pub mod call;
pub mod config;
pub mod drift;
pub mod experiments;
pub mod features;
mod history;
pub mod infer;
pub mod kb;
pub mod keys;
mod load;
mod merge;
pub mod models;
pub mod outcomes;
mod plot;
pub mod profile;
pub mod profiling;
pub mod progress;
pub mod quality;
pub mod recommend;
pub mod remote;
mod spark;
mod table;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, Flag, Loaded};

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
    /// Show the effective configuration and where each value came from.
    Config(config::ConfigCommandArgs),
    /// Create, list and revoke API keys.
    Keys(keys::KeysArgs),
    /// Score customers by id with a churn model (a running server reads their features).
    Score(call::ScoreArgs),
    /// Classify a chatbot message with an intent model.
    Classify(call::ClassifyArgs),
    /// Forecast a SKU at a location with a demand forecaster.
    Forecast(call::ForecastArgs),
    /// Recommend a replenishment order for a SKU at a location (a running server reads
    /// its sales and forecasts its demand).
    Recommend(recommend::RecommendArgs),
    /// Call any model with a V2 inference request written as JSON.
    Infer(infer::InferArgs),
    /// Load ground truth (churned, actual sales, confirmed intents) for live quality.
    Outcomes(outcomes::OutcomesArgs),
    /// Report a churn model's runbook experiments: treated against control, the uplift
    /// with its interval and p-value.
    Experiments(experiments::ExperimentsArgs),
    /// Build a knowledge base from a file of passages with a served encoder, and
    /// register it (promoted and rolled back like a model).
    Kb(kb::KbArgs),
    /// Show a running server's live quality of a model: its predictions judged against
    /// the outcomes, per version and route (`--plot` draws it).
    Quality(quality::QualityArgs),
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

impl ServeArgs {
    /// The flags of `serve` that set configuration keys.
    pub fn flags(&self) -> Vec<Flag> {
        let mut flags = Vec::new();
        if let Some(addr) = &self.grpc_addr {
            flags.push(Flag {
                key: "grpc.addr",
                name: "--grpc-addr",
                value: addr.clone(),
            });
        }
        if let Some(addr) = &self.metrics_addr {
            flags.push(Flag {
                key: "metrics.addr",
                name: "--metrics-addr",
                value: addr.clone(),
            });
        }
        flags
    }
}

impl ConfigArgs {
    /// Loads the configuration for a command whose logging is already set up: its
    /// warnings (old key names, unknown keys) are logged here.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let loaded = self.layered(Vec::new())?;
        loaded.warn();
        Ok(loaded.config)
    }

    /// Loads the configuration with these flags and `extra` (a command's own flags) on
    /// top, keeping the warnings and each value's source.
    pub fn layered(&self, mut extra: Vec<Flag>) -> Result<Loaded, ConfigError> {
        if let Some(dir) = &self.data_dir {
            extra.insert(
                0,
                Flag {
                    key: "server.data_dir",
                    name: "--data-dir",
                    value: dir.display().to_string(),
                },
            );
        }
        Config::load(self.config.as_deref(), std::env::vars(), &extra)
    }
}
