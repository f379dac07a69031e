//! A Kafka producer and consumer for the stream tests, on the broker `scripts/kafka.sh`
//! starts (Tansu, a Kafka-protocol broker) through rskafka, as a backend would produce.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;

/// The broker's address, or `None` (skipped) outside CI when it is not running.
pub fn broker() -> Option<String> {
    match std::env::var("MERCATOR_TEST_KAFKA") {
        Ok(b) => Some(b),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set MERCATOR_TEST_KAFKA"
            );
            eprintln!("MERCATOR_TEST_KAFKA unset: skipped");
            None
        }
    }
}

/// A topic name no other test uses.
pub fn topic(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub struct Kafka {
    pub client: Arc<Client>,
}

impl Kafka {
    pub async fn connect(broker: &str) -> Kafka {
        // A broker that is not there fails the test within a minute rather than hang it.
        let client = ClientBuilder::new(vec![broker.to_string()])
            .backoff_config(rskafka::BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
                deadline: Some(Duration::from_secs(60)),
            })
            .build()
            .await
            .expect("connect to the test broker");
        Kafka {
            client: Arc::new(client),
        }
    }

    pub async fn create(&self, topic: &str, partitions: i32) {
        self.client
            .controller_client()
            .expect("controller")
            .create_topic(topic, partitions, 1, 5_000)
            .await
            .expect("create topic");
    }

    /// Produces `value` with `key` to `partition`; its offset once acknowledged.
    pub async fn produce(&self, topic: &str, partition: i32, key: &str, value: &str) -> i64 {
        let client = self
            .client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let record = Record {
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: BTreeMap::new(),
            timestamp: chrono::Utc::now(),
        };
        client
            .produce(vec![record], Compression::NoCompression)
            .await
            .expect("produce")[0]
    }

    /// Every record of `partition` so far (up to the fetch's high watermark).
    pub async fn read_all(&self, topic: &str, partition: i32) -> Vec<Record> {
        let client = self
            .client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let mut out = Vec::new();
        let mut next = 0;
        loop {
            let (records, high_watermark) = client
                .fetch_records(next, 1..1_000_000, 100)
                .await
                .expect("fetch");
            let from = next;
            for r in records.into_iter().filter(|r| r.offset >= from) {
                next = r.offset + 1;
                out.push(r.record);
            }
            if next >= high_watermark {
                return out;
            }
        }
    }

    /// The high watermark a fetch reports: the offset the next record gets.
    pub async fn high_watermark(&self, topic: &str, partition: i32) -> i64 {
        let client = self
            .client
            .partition_client(topic, partition, UnknownTopicHandling::Retry)
            .await
            .expect("partition client");
        let earliest = client
            .get_offset(OffsetAt::Earliest)
            .await
            .expect("earliest");
        client
            .fetch_records(earliest, 1..1_000_000, 100)
            .await
            .expect("fetch")
            .1
    }
}

/// Waits until `done` holds, polling every 20 ms, for up to `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < until {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The `q` quantile of `v` (nearest rank), for reports.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
