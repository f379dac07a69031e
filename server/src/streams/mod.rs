//! Event streams into the server: each `[[streams.sources]]` topic is consumed, partition
//! by partition, into a feature view or a model's outcomes (`sink.rs`), and each
//! `[[streams.triggers]]` rule scores the customers a source wrote and publishes the
//! runbook's intervention (`trigger.rs`). The Kafka side (the client, offsets committed
//! after durable writes, dead letters, this replica's share of the partitions) is the
//! `mercator-streams` crate's; this room decides what a message becomes.

pub mod sink;
pub mod trigger;

use std::sync::Arc;
use std::time::Duration;

use mercator_streams::{Partition, Publisher, SourceConfig, SourceKind, StreamsConfig};
use tokio::sync::watch;

use crate::quality::Judge;
use crate::serving::Serving;
use sink::{FeatureSink, OutcomeSink, RegistryOffsets};
use trigger::Trigger;

/// How often a source's topic is listed again, for partitions added since.
const RELIST: Duration = Duration::from_secs(30);

/// What the streams need from the server.
pub struct Wiring {
    /// The serving path (triggers score through it; its feature store takes the rows).
    pub serving: Arc<Serving>,
    /// Where offsets are kept.
    pub registry: mercator_registry::Registry,
    /// Where outcomes go, when the prediction log is on.
    pub judge: Option<Arc<Judge>>,
    /// This instance's name (recorded with each committed offset).
    pub instance: String,
}

/// Starts consuming every source (nothing when none is configured). Connecting is
/// retried in the background, so a broker that is down delays the streams, not the
/// server.
pub fn start(config: &StreamsConfig, wiring: Wiring, stop: watch::Receiver<bool>) {
    if !config.enabled() {
        return;
    }
    let config = config.clone();
    tokio::spawn(async move {
        let mut stop_wait = stop.clone();
        let client = loop {
            match mercator_streams::connect::connect(&config).await {
                Ok(c) => break Arc::new(c),
                Err(e) => {
                    wiring
                        .serving
                        .metrics
                        .streams
                        .errors
                        .with_label_values(&["", "connect"])
                        .inc();
                    tracing::warn!("streams: cannot reach the brokers ({e}); retrying in 5 s");
                    tokio::select! {
                        _ = stop_wait.changed() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        };
        let host = std::env::var("HOSTNAME").ok();
        let Some(index) = config.replica_index(host.as_deref()) else {
            tracing::warn!(
                host = host.as_deref().unwrap_or(""),
                replicas = config.replicas,
                "streams: this pod's ordinal is not below streams.replicas; consuming nothing"
            );
            return;
        };
        tracing::info!(replicas = config.replicas, index, "streams: connected");
        let wiring = Arc::new(wiring);
        let offsets = Arc::new(RegistryOffsets {
            registry: wiring.registry.clone(),
            instance: wiring.instance.clone(),
        });
        for source in &config.sources {
            let triggers = triggers(&config, source, &wiring, &client);
            let run = Source {
                config: config.clone(),
                source: source.clone(),
                client: Arc::clone(&client),
                offsets: Arc::clone(&offsets),
                index,
            };
            match source.kind {
                SourceKind::Features => {
                    let features = Arc::clone(&wiring.serving.features);
                    let sink = Arc::new(FeatureSink::new(features, source, triggers));
                    tokio::spawn(run.supervise(
                        sink,
                        wiring.serving.metrics.streams.clone(),
                        stop.clone(),
                    ));
                }
                SourceKind::Outcomes => {
                    let sink = Arc::new(OutcomeSink::new(wiring.judge.clone(), source));
                    tokio::spawn(run.supervise(
                        sink,
                        wiring.serving.metrics.streams.clone(),
                        stop.clone(),
                    ));
                }
            }
        }
    });
}

/// The triggers fired by `source`'s writes.
fn triggers(
    config: &StreamsConfig,
    source: &SourceConfig,
    wiring: &Wiring,
    client: &Arc<mercator_streams::Client>,
) -> Vec<Arc<Trigger>> {
    config
        .triggers
        .iter()
        .filter(|t| t.source == source.name)
        .filter_map(|t| {
            let cooldown = mercator_streams::settings::cooldown(&t.cooldown).ok()?;
            Some(Arc::new(Trigger {
                config: t.clone(),
                cooldown,
                publisher: Arc::new(Publisher::new(Arc::clone(client), &t.topic)),
                serving: Arc::clone(&wiring.serving),
                metrics: wiring.serving.metrics.streams.clone(),
            }))
        })
        .collect()
}

/// One source: lists its topic's partitions now and then and consumes the ones that
/// are this replica's.
struct Source {
    config: StreamsConfig,
    source: SourceConfig,
    client: Arc<mercator_streams::Client>,
    offsets: Arc<RegistryOffsets>,
    index: u32,
}

impl Source {
    async fn supervise<S: mercator_streams::Sink>(
        self,
        sink: Arc<S>,
        metrics: mercator_streams::StreamMetrics,
        stop: watch::Receiver<bool>,
    ) {
        let dead_letters = (!self.source.dead_letter_topic.is_empty()).then(|| {
            Arc::new(Publisher::new(
                Arc::clone(&self.client),
                &self.source.dead_letter_topic,
            ))
        });
        let mut running = std::collections::BTreeSet::new();
        let mut stop_wait = stop.clone();
        loop {
            let listed_now =
                mercator_streams::connect::partitions(&self.client, &self.source.topic).await;
            let listed = matches!(listed_now, Ok(Some(_)));
            match listed_now {
                Ok(Some(all)) => {
                    let mine =
                        mercator_streams::connect::assigned(all, self.config.replicas, self.index);
                    for partition in mine.into_iter().filter(|p| running.insert(*p)) {
                        let consumer = Partition {
                            source: self.source.name.clone(),
                            topic: self.source.topic.clone(),
                            partition,
                            client: Arc::clone(&self.client),
                            sink: Arc::clone(&sink),
                            offsets: Arc::clone(&self.offsets),
                            dead_letters: dead_letters.clone(),
                            start: self.config.start(),
                            fetch_max_bytes: self.config.fetch_max_bytes,
                            fetch_max_wait_ms: self.config.fetch_max_wait_ms,
                            metrics: metrics.clone(),
                        };
                        tokio::spawn(consumer.run(stop.clone()));
                    }
                }
                Ok(None) => {
                    tracing::warn!(source = %self.source.name, topic = %self.source.topic,
                        "streams: the topic does not exist (yet)");
                }
                Err(e) => {
                    metrics
                        .errors
                        .with_label_values(&[self.source.name.as_str(), "connect"])
                        .inc();
                    tracing::warn!(source = %self.source.name, "streams: listing partitions: {e}");
                }
            }
            // Until the topic is listed, look again soon; then now and then.
            let wait = if running.is_empty() && !listed {
                Duration::from_secs(2)
            } else {
                RELIST
            };
            tokio::select! {
                _ = stop_wait.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
