//! The Mercator server: gRPC services (KServe V2 and `mercator.v1`) over a live table of
//! models that the model manager keeps in step with the registry, Prometheus metrics, and
//! the `mercator` command line.
//!
//! Rooms, top to bottom (a module imports only from rooms below it; the fitness test
//! `architecture/tests/fitness.rs` holds the crate to that, and `docs/ARCHITECTURE.md` is the map):
//! - [`cli`], [`app`] (wiring), [`demo`];
//! - [`grpc`]: thin tonic adapters, one file per service;
//! - [`config`]: loaded and checked once, it hands each room below its settings;
//! - [`api`]: the typed commerce APIs (churn, intent, forecasting); [`v2`]: the V2 path;
//! - [`serving`]: admission, routing, compute, shadows, feature lookups;
//! - [`models`]: the model table, traffic routes and the manager that loads versions;
//! - [`monitor`]: metrics, drift windows, freshness;
//! - [`definitions`], [`error`], [`telemetry`]: leaves.
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
pub mod error;
pub mod grpc;
pub mod listen;
pub mod models;
pub mod monitor;
pub mod rest;
pub mod serving;
pub mod telemetry;
pub mod v2;
pub mod watch;

pub use app::App;
pub use config::Config;
