//! One partition's consumer: fetch, decode, send what cannot be read to the dead-letter
//! topic, write the rest durably through the [`Sink`], then commit the offset after the
//! last message handled. Nothing is skipped: a write or commit that fails is retried with
//! backoff until it works or the server stops, so the committed offset only ever follows
//! durable rows (at least once). A restart resumes at the committed offset and delivers
//! again at most the messages handled since, which the sinks write idempotently.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rskafka::client::Client;
use rskafka::client::error::{Error as KafkaError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::record::{Record, RecordAndOffset};
use tokio::sync::watch;

use crate::StreamError;
use crate::metrics::StreamMetrics;
use crate::publish::Publisher;
use crate::settings::Start;

/// A message that cannot become a row, and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The message's field at fault (`value` when it is not a JSON object at all).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Where a source's rows go: the feature store's write path, or the outcome store.
#[async_trait::async_trait]
pub trait Sink: Send + Sync + 'static {
    /// A decoded message.
    type Row: Send + Sync + 'static;

    /// Whether messages can be read now: an error (a view not applied yet) is not the
    /// messages' fault, so the consumer waits and asks again rather than refuse them.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }

    /// Reads one message; a refusal names the field.
    fn decode(&self, record: &Record) -> Result<Self::Row, Rejection>;

    /// Writes rows durably, idempotently per (entity, event time): once this returns
    /// `Ok`, a crash loses none of them, and writing them again changes nothing.
    async fn write(&self, rows: &[Self::Row]) -> Result<(), String>;
}

/// Where each partition's progress is kept (the registry database).
#[async_trait::async_trait]
pub trait Offsets: Send + Sync + 'static {
    /// The next offset `source` consumes from `partition` of `topic`, if committed.
    async fn load(&self, source: &str, topic: &str, partition: i32) -> Result<Option<i64>, String>;

    /// Commits `next` as that offset.
    async fn commit(
        &self,
        source: &str,
        topic: &str,
        partition: i32,
        next: i64,
    ) -> Result<(), String>;
}

/// What one partition's consumer needs.
pub struct Partition<S: Sink, O: Offsets> {
    /// The source's name.
    pub source: String,
    /// Its topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The shared client.
    pub client: Arc<Client>,
    /// Where rows go.
    pub sink: Arc<S>,
    /// Where offsets are kept.
    pub offsets: Arc<O>,
    /// The dead-letter topic, if any.
    pub dead_letters: Option<Arc<Publisher>>,
    /// Where to start without an offset.
    pub start: Start,
    /// Most bytes per fetch.
    pub fetch_max_bytes: i32,
    /// Longest wait of a fetch at the partition's end, in ms.
    pub fetch_max_wait_ms: i32,
    /// The metrics.
    pub metrics: StreamMetrics,
}

const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl<S: Sink, O: Offsets> Partition<S, O> {
    /// Consumes until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Backoff::default();
        let client = loop {
            let made = self
                .client
                .partition_client(
                    self.topic.clone(),
                    self.partition,
                    UnknownTopicHandling::Retry,
                )
                .await;
            match made {
                Ok(c) => break c,
                Err(e) => self.retry(&mut backoff, "connect", &e, &mut stop).await,
            }
            if *stop.borrow() {
                return;
            }
        };
        let mut next = loop {
            match self.first_offset(&client).await {
                Ok(n) => break n,
                Err(e) => self.retry(&mut backoff, "fetch", &e, &mut stop).await,
            }
            if *stop.borrow() {
                return;
            }
        };
        tracing::info!(source = %self.source, topic = %self.topic, partition = self.partition,
            offset = next, "consuming");
        let lag = self
            .metrics
            .lag
            .with_label_values(&[self.source.as_str(), &self.partition.to_string()]);
        while !*stop.borrow() {
            let fetch = client.fetch_records(next, 1..self.fetch_max_bytes, self.fetch_max_wait_ms);
            let fetched = tokio::select! {
                _ = stop.changed() => break,
                f = fetch => f,
            };
            let (records, high_watermark) = match fetched {
                Ok(f) => f,
                Err(KafkaError::ServerError {
                    protocol_error: ProtocolError::OffsetOutOfRange,
                    ..
                }) => {
                    // Retention removed what was next: resume at the oldest kept.
                    match client.get_offset(OffsetAt::Earliest).await {
                        Ok(earliest) if earliest > next => {
                            tracing::warn!(source = %self.source, partition = self.partition,
                                from = next, to = earliest,
                                "offset out of range: messages expired before they were read");
                            next = earliest;
                        }
                        Ok(_) => {}
                        Err(e) => self.retry(&mut backoff, "fetch", &e, &mut stop).await,
                    }
                    continue;
                }
                Err(e) => {
                    self.retry(&mut backoff, "fetch", &e, &mut stop).await;
                    continue;
                }
            };
            // A compressed batch may start before the offset asked for.
            let records: Vec<RecordAndOffset> =
                records.into_iter().filter(|r| r.offset >= next).collect();
            if !records.is_empty()
                && let Err(e) = self.sink.ready()
            {
                lag.set((high_watermark - next).max(0));
                self.retry(&mut backoff, "write", &StreamError::Sink(e), &mut stop)
                    .await;
                continue;
            }
            backoff = Backoff::default();
            if let Some(last) = records.last() {
                let after = last.offset + 1;
                if !self.handle(records, &mut stop).await {
                    break;
                }
                if !self.commit(after, &mut stop).await {
                    break;
                }
                next = after;
            }
            lag.set((high_watermark - next).max(0));
        }
        tracing::info!(source = %self.source, partition = self.partition, "stopped consuming");
    }

    /// The committed offset, or where `start` says.
    async fn first_offset(&self, client: &PartitionClient) -> Result<i64, StreamError> {
        let committed = self
            .offsets
            .load(&self.source, &self.topic, self.partition)
            .await
            .map_err(StreamError::Offsets)?;
        if let Some(n) = committed {
            return Ok(n);
        }
        match self.start {
            Start::Earliest => client
                .get_offset(OffsetAt::Earliest)
                .await
                .map_err(StreamError::Kafka),
            // The high watermark a fetch reports is the next offset to be produced (some
            // brokers answer ListOffsets(latest) wrongly; the fetch's is always right).
            Start::Latest => {
                let earliest = client
                    .get_offset(OffsetAt::Earliest)
                    .await
                    .map_err(StreamError::Kafka)?;
                let (_, high_watermark) = client
                    .fetch_records(earliest, 1..self.fetch_max_bytes, 100)
                    .await
                    .map_err(StreamError::Kafka)?;
                Ok(high_watermark)
            }
        }
    }

    /// Decodes a fetch, sends the bad messages to the dead-letter topic and writes the
    /// rest; false if stopped before it was done.
    async fn handle(
        &self,
        records: Vec<RecordAndOffset>,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let mut rows = Vec::with_capacity(records.len());
        let mut bad = Vec::new();
        for r in &records {
            match self.sink.decode(&r.record) {
                Ok(row) => rows.push(row),
                Err(why) => bad.push((r, why)),
            }
        }
        let source = self.source.as_str();
        for (r, why) in &bad {
            tracing::warn!(source, partition = self.partition, offset = r.offset,
                field = %why.field, "bad message: {}", why.message);
            let Some(dlq) = &self.dead_letters else {
                continue;
            };
            let mut backoff = Backoff::default();
            loop {
                match dlq
                    .publish(
                        r.record.key.as_deref().unwrap_or_default(),
                        r.record.value.clone().unwrap_or_default(),
                        self.headers(r, why),
                    )
                    .await
                {
                    Ok(_) => break,
                    Err(e) => self.retry(&mut backoff, "dead_letter", &e, stop).await,
                }
                if *stop.borrow() {
                    return false;
                }
            }
        }
        self.metrics
            .messages
            .with_label_values(&[source, "bad"])
            .inc_by(bad.len() as u64);
        if rows.is_empty() {
            return true;
        }
        let mut backoff = Backoff::default();
        loop {
            let started = Instant::now();
            match self.sink.write(&rows).await {
                Ok(()) => {
                    self.metrics
                        .write_seconds
                        .with_label_values(&[source])
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics
                        .messages
                        .with_label_values(&[source, "written"])
                        .inc_by(rows.len() as u64);
                    return true;
                }
                Err(e) => {
                    self.retry(&mut backoff, "write", &StreamError::Sink(e), stop)
                        .await;
                }
            }
            if *stop.borrow() {
                return false;
            }
        }
    }

    /// The dead letter's headers: where the message came from and why it was refused,
    /// after Kafka Connect's `__connect.errors.*` convention (the value is unchanged).
    fn headers(&self, r: &RecordAndOffset, why: &Rejection) -> BTreeMap<String, Vec<u8>> {
        let mut h = r.record.headers.clone();
        let mut put = |k: &str, v: String| h.insert(format!("mercator.error.{k}"), v.into_bytes());
        put("field", why.field.clone());
        put("message", why.message.clone());
        put("source", self.source.clone());
        put("topic", self.topic.clone());
        put("partition", self.partition.to_string());
        put("offset", r.offset.to_string());
        h
    }

    /// Commits `next`, retrying; false if stopped first.
    async fn commit(&self, next: i64, stop: &mut watch::Receiver<bool>) -> bool {
        let mut backoff = Backoff::default();
        loop {
            match self
                .offsets
                .commit(&self.source, &self.topic, self.partition, next)
                .await
            {
                Ok(()) => return true,
                Err(e) => {
                    self.retry(&mut backoff, "commit", &StreamError::Offsets(e), stop)
                        .await;
                }
            }
            if *stop.borrow() {
                return false;
            }
        }
    }

    /// Counts and logs a failure, then waits the next backoff (or until stopped).
    async fn retry(
        &self,
        backoff: &mut Backoff,
        stage: &'static str,
        error: &(dyn std::fmt::Display + Sync),
        stop: &mut watch::Receiver<bool>,
    ) {
        self.metrics
            .errors
            .with_label_values(&[self.source.as_str(), stage])
            .inc();
        let wait = backoff.next();
        tracing::warn!(source = %self.source, partition = self.partition, stage,
            retry_in_ms = wait.as_millis() as u64, "{error}");
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Doubling waits from 100 ms up to 10 s.
#[derive(Debug, Default)]
struct Backoff(u32);

impl Backoff {
    fn next(&mut self) -> Duration {
        let wait = Duration::from_millis(100).saturating_mul(1 << self.0.min(7));
        self.0 += 1;
        wait.min(MAX_BACKOFF)
    }
}
