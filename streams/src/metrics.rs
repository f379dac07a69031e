//! The streams' Prometheus series. Labels are bounded: `source` and `trigger` are names
//! from the configuration, `partition` a partition of a configured topic, and `stage` and
//! `outcome` come from fixed lists.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

const WRITE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The streams' metrics.
#[derive(Debug, Clone)]
pub struct StreamMetrics {
    /// `mercator_stream_lag{source,partition}`: messages between the partition's high
    /// watermark and the next one this replica will consume.
    pub lag: IntGaugeVec,
    /// `mercator_stream_messages_total{source,outcome}`: messages consumed, by `written`
    /// (their rows are durable) and `bad` (sent to the dead-letter topic).
    pub messages: IntCounterVec,
    /// `mercator_stream_write_seconds{source}`: how long a fetch's rows took to write.
    pub write_seconds: HistogramVec,
    /// `mercator_stream_errors_total{source,stage}`: failures that are retried (`fetch`,
    /// `write`, `commit`, `dead_letter`, `connect`).
    pub errors: IntCounterVec,
    /// `mercator_stream_triggers_total{trigger,outcome}`: what each triggered re-score
    /// did (`published`, `no_action`, `control`, `cooldown`, `not_scored`, `failed`).
    pub triggers: IntCounterVec,
    /// `mercator_stream_trigger_seconds{trigger}`: from the event's write to the
    /// intervention's acknowledgement by the broker.
    pub trigger_seconds: HistogramVec,
}

impl StreamMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<StreamMetrics> {
        let m = StreamMetrics {
            lag: IntGaugeVec::new(
                Opts::new(
                    "mercator_stream_lag",
                    "Messages between a source partition's high watermark and the next one \
                     this replica consumes.",
                ),
                &["source", "partition"],
            )?,
            messages: IntCounterVec::new(
                Opts::new(
                    "mercator_stream_messages_total",
                    "Messages consumed from stream sources, by outcome (written, bad).",
                ),
                &["source", "outcome"],
            )?,
            write_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_stream_write_seconds",
                    "Time to write one fetch's rows durably, by source.",
                )
                .buckets(WRITE_BUCKETS.to_vec()),
                &["source"],
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "mercator_stream_errors_total",
                    "Retried failures of stream sources, by stage (connect, fetch, write, \
                     commit, dead_letter).",
                ),
                &["source", "stage"],
            )?,
            triggers: IntCounterVec::new(
                Opts::new(
                    "mercator_stream_triggers_total",
                    "Triggered re-scores by outcome (published, no_action, control, \
                     cooldown, not_scored, failed).",
                ),
                &["trigger", "outcome"],
            )?,
            trigger_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_stream_trigger_seconds",
                    "From a triggering row's write to its intervention's acknowledgement.",
                )
                .buckets(WRITE_BUCKETS.to_vec()),
                &["trigger"],
            )?,
        };
        registry.register(Box::new(m.lag.clone()))?;
        registry.register(Box::new(m.messages.clone()))?;
        registry.register(Box::new(m.write_seconds.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.triggers.clone()))?;
        registry.register(Box::new(m.trigger_seconds.clone()))?;
        Ok(m)
    }
}
