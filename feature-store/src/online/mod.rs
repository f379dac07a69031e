//! The online store: each entity's latest feature values, for serving.

mod codec;
pub mod embedded;
mod wal;

pub use embedded::{EmbeddedStore, Feature, PushRow, WriteOutcome};
