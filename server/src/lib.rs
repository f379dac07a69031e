//! The Mercator server: gRPC services (KServe V2 and `mercator.v1`) over a live table of
//! models that the model manager keeps in step with the registry, Prometheus metrics, and
//! the `mercator` command line.
//!
//! Owns: wiring, the serving path, the V2 wire codec, the model table and manager,
//! metrics, configuration and the CLI. The math lives in `mercator-runtime`, the records
//! and artifacts in `mercator-registry`.
#![warn(missing_docs)]

pub mod app;
pub mod churn;
pub mod cli;
pub mod config;
pub mod definitions;
pub mod demo;
pub mod drift;
pub mod error;
pub mod forecast;
pub mod freshness;
pub mod grpc;
pub mod intent;
pub mod lookup;
pub mod metrics;
pub mod models;
pub mod profiling;
pub mod serving;
pub mod shadow;
pub mod telemetry;
pub mod v2;

pub use app::App;
pub use config::Config;
