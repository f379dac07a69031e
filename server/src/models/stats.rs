//! A loaded version's cumulative statistics in Triton's terms (`ModelStatistics`):
//! requests that succeeded and failed, time queued for a compute thread, time decoding,
//! computing and encoding, and the same three per batch size. All counters are atomics:
//! the hot path takes no lock. Batch sizes are counted in segments of [`SEGMENT`] sizes,
//! each allocated the first time one of its sizes is seen, up to the version's largest
//! batch, so a version served at three batch sizes holds three segments at most.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Cumulative per-version statistics.
#[derive(Debug)]
pub struct Stats {
    /// Successful requests and their total time.
    pub success: Tally,
    /// Failed requests and their total time.
    pub fail: Tally,
    /// Time waiting for a compute thread (zero for a batch computed inline).
    pub queue: Tally,
    /// Input decoding (with the feature store's reads for requests sent entity keys).
    pub compute_input: Tally,
    /// Model execution.
    pub compute_infer: Tally,
    /// Output encoding.
    pub compute_output: Tally,
    /// The three compute phases by batch size.
    pub batches: BatchStats,
    /// Rows inferred.
    pub inference_count: AtomicU64,
    /// Model executions.
    pub execution_count: AtomicU64,
    /// Milliseconds since the epoch of the last inference.
    pub last_inference_ms: AtomicU64,
}

impl Stats {
    /// Empty statistics for a version taking batches of up to `max_batch` rows.
    pub fn new(max_batch: usize) -> Stats {
        Stats {
            success: Tally::default(),
            fail: Tally::default(),
            queue: Tally::default(),
            compute_input: Tally::default(),
            compute_infer: Tally::default(),
            compute_output: Tally::default(),
            batches: BatchStats::new(max_batch),
            inference_count: AtomicU64::new(0),
            execution_count: AtomicU64::new(0),
            last_inference_ms: AtomicU64::new(0),
        }
    }
}

/// A count and a total duration in nanoseconds.
#[derive(Debug, Default)]
pub struct Tally {
    /// Number of events.
    pub count: AtomicU64,
    /// Their total duration, in nanoseconds.
    pub ns: AtomicU64,
}

impl Tally {
    /// Adds one event.
    pub fn add(&self, d: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.ns.fetch_add(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// (count, ns).
    pub fn get(&self) -> (u64, u64) {
        (
            self.count.load(Ordering::Relaxed),
            self.ns.load(Ordering::Relaxed),
        )
    }
}

/// Batch sizes per segment.
pub const SEGMENT: usize = 64;

/// One batch size's compute phases: input, infer, output.
#[derive(Debug, Default)]
pub struct BatchTally(pub [Tally; 3]);

/// The compute phases by batch size.
#[derive(Debug)]
pub struct BatchStats {
    segments: Box<[OnceLock<Box<[BatchTally]>>]>,
    largest: usize,
}

impl BatchStats {
    /// Room for batch sizes 1 to `max_batch`.
    pub fn new(max_batch: usize) -> BatchStats {
        let segments = (max_batch.max(1)).div_ceil(SEGMENT);
        BatchStats {
            segments: (0..segments).map(|_| OnceLock::new()).collect(),
            largest: max_batch,
        }
    }

    /// Counts one execution of `rows` rows (ignored outside 1 to the largest batch).
    pub fn record(&self, rows: usize, phases: [Duration; 3]) {
        let Some(at) = rows.checked_sub(1).filter(|_| rows <= self.largest) else {
            return;
        };
        let Some(segment) = self.segments.get(at / SEGMENT) else {
            return;
        };
        let sizes = segment.get_or_init(|| (0..SEGMENT).map(|_| BatchTally::default()).collect());
        if let Some(tally) = sizes.get(at % SEGMENT) {
            for (t, d) in tally.0.iter().zip(phases) {
                t.add(d);
            }
        }
    }

    /// Every batch size seen, smallest first, with its three phases' (count, ns).
    pub fn seen(&self) -> Vec<(u64, [(u64, u64); 3])> {
        let mut out = Vec::new();
        for (s, segment) in self.segments.iter().enumerate() {
            let Some(sizes) = segment.get() else { continue };
            for (i, tally) in sizes.iter().enumerate() {
                let phases = [tally.0[0].get(), tally.0[1].get(), tally.0[2].get()];
                if phases[0].0 > 0 {
                    out.push(((s * SEGMENT + i + 1) as u64, phases));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_are_counted_exactly_and_only_in_range() {
        let stats = BatchStats::new(200);
        let ms = Duration::from_millis;
        stats.record(1, [ms(1), ms(2), ms(3)]);
        stats.record(1, [ms(1), ms(2), ms(3)]);
        stats.record(130, [ms(5), ms(5), ms(5)]);
        stats.record(0, [ms(9); 3]);
        stats.record(201, [ms(9); 3]);
        let seen = stats.seen();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(
            seen[0],
            (1, [(2, 2_000_000), (2, 4_000_000), (2, 6_000_000)])
        );
        assert_eq!(seen[1].0, 130);
        assert_eq!(seen[1].1[1], (1, 5_000_000));
    }
}
