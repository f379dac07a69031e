//! Event streams: Kafka topics consumed into Mercator, and events published back.
//!
//! Owns: `[streams]` ([`settings`]), reaching the brokers and this replica's share of
//! the partitions ([`connect`]), one partition's consumer with its offsets committed
//! after durable writes and its dead letters ([`consume`]), publishing to a topic
//! ([`publish`]), and the streams' metrics ([`metrics`]). Does not own what a message
//! becomes: the server's sinks turn it into feature rows or outcomes and decide what a
//! trigger does, through the [`consume::Sink`] and [`consume::Offsets`] traits, so this
//! crate builds beside the feature store rather than after it.
#![warn(missing_docs)]

pub mod connect;
pub mod consume;
pub mod metrics;
pub mod publish;
pub mod settings;

pub use consume::{Offsets, Partition, Rejection, Sink};
pub use metrics::StreamMetrics;
pub use publish::Publisher;
pub use settings::{SourceConfig, SourceKind, StreamsConfig, TriggerConfig};

/// What can go wrong talking to the brokers or keeping offsets.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// `[streams]` names something unusable (a file, a mechanism).
    #[error("{0}")]
    Config(String),
    /// The Kafka client failed.
    #[error("kafka: {0}")]
    Kafka(#[from] rskafka::client::error::Error),
    /// Publishing a record failed.
    #[error("publishing to {0}")]
    Publish(String),
    /// The sink could not write.
    #[error("writing: {0}")]
    Sink(String),
    /// The offsets could not be read or committed.
    #[error("offsets: {0}")]
    Offsets(String),
}

/// The rskafka client, for callers that hold one.
pub use rskafka::client::Client;
/// A record, as sinks decode it.
pub use rskafka::record::Record;
