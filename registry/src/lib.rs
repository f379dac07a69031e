//! The model registry.
//!
//! Owns: models, their immutable numbered versions (files with sha256 and size, manifest,
//! tags, metrics, who and when), aliases and the append-only history of their moves, and
//! the audit log, stored in SQL (SQLite by default, PostgreSQL to scale out); and the
//! artifacts themselves in object storage (`object_store`: local folder, S3, GCS, Azure).
//! Does not own: model kinds (a new version's files are proven by the [`VersionCheck`]
//! the server injects, so the registry compiles without the runtime), loading models for serving (the server does that from what this crate
//! returns) or the gRPC handlers (the server's), though the wire conversions live in
//! [`grpc`] so they sit next to the types they convert.
#![warn(missing_docs)]

pub mod artifacts;
pub mod check;
mod error;
pub mod governance;
pub mod grpc;
pub mod keys;
pub mod model;
mod service;
mod store;

pub use artifacts::ArtifactStore;
pub use check::{Checked, MANIFEST_FILE, VersionCheck};
pub use error::{RegistryError, Result};
pub use governance::{Approval, Governance};
pub use keys::ApiKey;
pub use model::{CHAMPION, LoadReport, ModelVersion, NewVersion, PREVIOUS, VersionSelector};
pub use service::Registry;
pub use store::Backend;
