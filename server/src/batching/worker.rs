//! A version's batching worker: a thread of its own that forms batches from the queue,
//! runs them, and answers each request with its own rows.
//!
//! The batch is the longest run of compatible requests at the head of the queue (same
//! outputs asked for, same types and inner dimensions) that fits in `max_rows`; a request
//! larger than `max_rows` runs alone. The worker runs it as soon as it is full, or has
//! reached a preferred size with nothing more queued, or its oldest request has waited
//! `delay`; with no delay (the default) it takes what queued while the last batch ran.
//! Requests are never reordered: an incompatible one ends the batch and starts the next.
//!
//! The delay is a most, not a rule: a request waits for company only while requests
//! arrive closer together than half the delay (the mean gap between arrivals, weighted
//! to the recent ones), so that waiting is expected to bring at least two more. A lone
//! caller's requests, further apart than that, run at once instead of each paying the
//! whole delay for companions that do not come. (At the bare delay, a serial caller whose
//! calls take about as long as the delay kept tipping into waiting: measured.)
//!
//! A thread rather than a task: delays are typically tens to hundreds of microseconds,
//! and the async runtime's timers tick in milliseconds (a 200 µs delay measured as 1–2
//! ms). A blocking receive with a timeout waits to the microsecond; and the batches run
//! here, off the threads that serve connections.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use super::{Done, Job, Message, Runner, Settings, run};

/// The worker of one version's queue.
pub(super) struct Worker {
    queue: Receiver<Message>,
    runner: Runner,
    settings: Settings,
    pending: VecDeque<Job>,
    /// When the last request arrived, and the mean gap between arrivals (µs, weighted
    /// to the recent ones).
    last_arrival: Option<Instant>,
    mean_gap_us: f64,
}

/// Weight of the newest gap in the mean.
const GAP_WEIGHT: f64 = 0.2;

impl Worker {
    pub(super) fn new(queue: Receiver<Message>, runner: Runner, settings: Settings) -> Worker {
        Worker {
            queue,
            runner,
            settings,
            pending: VecDeque::new(),
            last_arrival: None,
            // Until arrivals say otherwise, company is expected: the first requests
            // wait as configured.
            mean_gap_us: 0.0,
        }
    }

    /// Serves the queue until its batcher is dropped and every queued request answered.
    pub(super) fn run(mut self) {
        let mut open = true;
        loop {
            if self.pending.is_empty() {
                if !open {
                    return;
                }
                match self.queue.recv() {
                    Ok(message) => self.accept(message),
                    Err(_) => return,
                }
                continue;
            }
            open = self.gather(open);
            let batch = self.take();
            if !batch.is_empty() {
                self.execute(batch);
            }
        }
    }

    fn accept(&mut self, message: Message) {
        match message {
            Message::Job(job) => {
                if let Some(last) = self.last_arrival {
                    let gap = job.enqueued.saturating_duration_since(last).as_secs_f64() * 1e6;
                    self.mean_gap_us += GAP_WEIGHT * (gap - self.mean_gap_us);
                }
                self.last_arrival = Some(job.enqueued);
                self.pending.push_back(job);
            }
            // The version left the table: nothing new will join its requests.
            Message::Flush => {
                self.settings.delay = Duration::ZERO;
                self.settings.preferred = Default::default();
            }
        }
    }

    /// Takes in what is queued now; false once the queue is closed.
    fn drain(&mut self) -> bool {
        loop {
            match self.queue.try_recv() {
                Ok(message) => self.accept(message),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Drops requests whose callers went away (deadline passed, or cancelled).
    fn prune(&mut self) {
        let before = self.pending.len();
        self.pending.retain(|job| !job.reply.is_closed());
        let gone = before - self.pending.len();
        if gone > 0 {
            self.runner.metrics.queue_depth.sub(gone as i64);
            tracing::debug!(gone, "requests dropped from the batching queue");
        }
    }

    /// Waits until the batch at the head of the queue should run; returns whether the
    /// queue is still open.
    fn gather(&mut self, mut open: bool) -> bool {
        loop {
            if open {
                open = self.drain();
            }
            self.prune();
            let Some(oldest) = self.pending.front().map(|j| j.enqueued) else {
                return open;
            };
            let (rows, full) = self.head();
            if full || !open || self.settings.preferred.as_slice().contains(&(rows as u32)) {
                return open;
            }
            let delay = self.settings.delay;
            if self.mean_gap_us > delay.as_secs_f64() * 1e6 / 2.0 {
                return open; // fewer than two companions expected within the delay
            }
            let left = (oldest + delay).saturating_duration_since(Instant::now());
            if left.is_zero() {
                return open;
            }
            match self.queue.recv_timeout(left) {
                Ok(message) => self.accept(message),
                Err(RecvTimeoutError::Timeout) => return open,
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
    }

    /// The head batch's rows, and whether it can take no more.
    fn head(&self) -> (usize, bool) {
        let mut jobs = self.pending.iter();
        let Some(first) = jobs.next() else {
            return (0, false);
        };
        let mut rows = first.rows;
        for job in jobs {
            if !run::compatible(first, job) || rows + job.rows > self.settings.max_rows {
                return (rows, true);
            }
            rows += job.rows;
        }
        (rows, rows >= self.settings.max_rows)
    }

    /// Takes the head batch out of the queue.
    fn take(&mut self) -> Vec<Job> {
        let mut batch: Vec<Job> = Vec::new();
        let mut rows = 0;
        while let Some(job) = self.pending.front() {
            let fits = match batch.first() {
                None => true,
                Some(first) => {
                    run::compatible(first, job) && rows + job.rows <= self.settings.max_rows
                }
            };
            if !fits {
                break;
            }
            rows += job.rows;
            if let Some(job) = self.pending.pop_front() {
                batch.push(job);
            }
        }
        batch
    }

    /// Runs a batch and answers each request.
    fn execute(&self, mut batch: Vec<Job>) {
        let started = Instant::now();
        let metrics = &self.runner.metrics;
        let rows: usize = batch.iter().map(|j| j.rows).sum();
        metrics.queue_depth.sub(batch.len() as i64);
        metrics.batch_rows.observe(rows as f64);
        let mut queued = Vec::with_capacity(batch.len());
        for job in &mut batch {
            job.slot = None;
            let waited = started.saturating_duration_since(job.enqueued);
            metrics.queue.observe(waited.as_secs_f64());
            queued.push(waited);
        }
        let answers = run::compute(&self.runner, &batch);
        metrics.compute.observe(started.elapsed().as_secs_f64());
        for ((job, output), queued) in batch.into_iter().zip(answers).zip(queued) {
            let _ = job.reply.send(Done { output, queued });
        }
    }
}
