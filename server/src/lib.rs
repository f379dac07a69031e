//! The Mercator server: gRPC services (KServe V2 and `mercator.v1`) over a live table of
//! models that the model manager keeps in step with the registry, Prometheus metrics, and
//! the `mercator` command line.
//!
//! Rooms, top to bottom (a module imports only from rooms below it; the fitness test
//! `architecture/tests/fitness.rs` holds the crate to that, and `docs/ARCHITECTURE.md` is the map):
//! - [`cli`] (the `mercator` commands), [`app`] (wiring);
//! - [`listen`]: the two listeners and their connections; [`rest`]: V2 over HTTP;
//! - [`grpc`]: one adapter per service, converting protobuf to domain types; [`streams`]:
//!   Kafka sources into the feature store and outcomes, and post-purchase triggers;
//!   [`definitions`]: opening the registry and the feature store;
//! - [`config`]: loaded and checked once, it hands each room below its settings;
//! - [`api`]: the typed commerce APIs (churn, intent, forecasting, inventory) in domain
//!   types; [`v2`]: the V2 path;
//! - [`serving`]: the envelope every prediction passes (admission, routing, the run,
//!   shadows, observation), compute and its placement, feature lookups;
//! - [`models`]: the model table, traffic routes and the manager that loads versions;
//! - [`auth`]: who is calling and what they may do; [`batching`]: dynamic batching;
//! - [`monitor`]: metrics, drift windows, freshness; [`predlog`]: the prediction log (a
//!   row per prediction, Parquet, never blocking);
//! - [`descriptors`], [`error`], [`telemetry`], [`watch`], [`demo`]: leaves.
//!
//! The math lives in `mercator-runtime`, the records and artifacts in `mercator-registry`,
//! the features in `mercator-features`.
#![warn(missing_docs)]

pub mod api;
pub mod app;
pub mod auth;
pub mod batching;
pub mod cli;
pub mod config;
pub mod definitions;
pub mod demo;
pub mod descriptors;
pub mod entry;
pub mod error;
pub mod grpc;
pub mod listen;
pub mod models;
pub mod monitor;
pub mod predlog;
pub mod quality;
pub mod rest;
pub mod serving;
pub mod streams;
pub mod telemetry;
pub mod v2;
pub mod watch;

pub use app::App;
pub use config::Config;
