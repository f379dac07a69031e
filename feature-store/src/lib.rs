//! The feature store.
//!
//! Owns: entities and feature views (typed fields, TTL) and their compatibility rules;
//! the online store holding each entity's latest values; the offline store holding every
//! row ever written, and point-in-time retrieval over it. Does not own: the gRPC edge or
//! the CLI (the server's), or model inputs (the runtime's).
#![warn(missing_docs)]

pub mod columns;
pub mod definitions;
pub mod definitions_store;
mod error;
pub mod grpc;
pub mod historical;
pub mod ingest;
pub mod json_row;
pub mod object_env;
pub mod offline;
pub mod online;
pub mod pit;
mod store;
pub mod table;
pub mod training;
pub mod value;

pub use definitions::{Definitions, Entity, FeatureView, Field};
pub use error::{FeatureError, Result};
pub use store::{ApplyOptions, DEFAULT_MAX_FUTURE_SKEW, DEFINITIONS_FILE, FeatureStore};
pub use value::{FieldType, Status, Value};
