//! Publishing to a topic (dead letters, interventions): a record goes to the partition
//! its key hashes to, so one customer's events stay in order; partition clients are made
//! once and kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rskafka::client::Client;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;
use tokio::sync::Mutex;

use crate::StreamError;

/// A producer for one topic.
#[derive(Debug)]
pub struct Publisher {
    client: Arc<Client>,
    topic: String,
    partitions: Mutex<Option<Known>>,
}

/// The topic's partitions and the clients made for them so far.
type Known = (Vec<i32>, HashMap<i32, Arc<PartitionClient>>);

impl Publisher {
    /// Publishes to `topic` through `client`.
    pub fn new(client: Arc<Client>, topic: &str) -> Publisher {
        Publisher {
            client,
            topic: topic.to_string(),
            partitions: Mutex::new(None),
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Publishes one record keyed by `key` and waits for the broker's acknowledgement;
    /// its offset.
    pub async fn publish(
        &self,
        key: &[u8],
        value: Vec<u8>,
        headers: BTreeMap<String, Vec<u8>>,
    ) -> Result<i64, StreamError> {
        let client = self.partition_for(key).await?;
        let record = Record {
            key: Some(key.to_vec()),
            value: Some(value),
            headers,
            timestamp: chrono::Utc::now(),
        };
        let result = client
            .produce(vec![record], Compression::NoCompression)
            .await;
        match result {
            Ok(offsets) => offsets
                .first()
                .copied()
                .ok_or_else(|| StreamError::Publish(format!("{}: no offset", self.topic))),
            Err(e) => {
                // The partition may have moved or the topic been recreated: look again.
                *self.partitions.lock().await = None;
                Err(StreamError::Publish(format!("{}: {e}", self.topic)))
            }
        }
    }

    async fn partition_for(&self, key: &[u8]) -> Result<Arc<PartitionClient>, StreamError> {
        let mut known = self.partitions.lock().await;
        if known.is_none() {
            let list = crate::connect::partitions(&self.client, &self.topic)
                .await?
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    StreamError::Publish(format!("topic '{}' does not exist", self.topic))
                })?;
            *known = Some((list, HashMap::new()));
        }
        let Some((list, clients)) = known.as_mut() else {
            return Err(StreamError::Publish("no partitions".into()));
        };
        let slot = (twox_hash::XxHash64::oneshot(0, key) % list.len() as u64) as usize;
        let partition = list[slot];
        if let Some(c) = clients.get(&partition) {
            return Ok(Arc::clone(c));
        }
        let c = Arc::new(
            self.client
                .partition_client(self.topic.clone(), partition, UnknownTopicHandling::Error)
                .await
                .map_err(|e| StreamError::Publish(format!("{}: {e}", self.topic)))?,
        );
        clients.insert(partition, Arc::clone(&c));
        Ok(c)
    }
}
