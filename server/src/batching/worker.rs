//! A version's batching worker: forms batches from its queue, runs them, and answers each
//! request with its own rows.
//!
//! The batch is the longest run of compatible requests at the head of the queue (same
//! outputs asked for, same types and inner dimensions) that fits in `max_rows`; a request
//! larger than `max_rows` runs alone. The worker runs it as soon as it is full, or has
//! reached a preferred size with nothing more queued, or its oldest request has waited
//! `delay`; with no delay (the default) it takes what queued while the last batch ran.
//! Requests are never reordered: an incompatible one ends the batch and starts the next.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Notify, mpsc};

use super::{Done, Job, Runner, Settings, run};

/// The worker of one version's queue.
pub(super) struct Worker {
    queue: mpsc::UnboundedReceiver<Job>,
    runner: Arc<Runner>,
    settings: Settings,
    pending: VecDeque<Job>,
    flush: Arc<Notify>,
}

impl Worker {
    pub(super) fn new(
        queue: mpsc::UnboundedReceiver<Job>,
        runner: Runner,
        settings: Settings,
        flush: Arc<Notify>,
    ) -> Worker {
        Worker {
            queue,
            runner: Arc::new(runner),
            settings,
            pending: VecDeque::new(),
            flush,
        }
    }

    /// Serves the queue until its batcher is dropped and every queued request answered.
    pub(super) async fn run(mut self) {
        let mut open = true;
        loop {
            if self.pending.is_empty() {
                if !open {
                    return;
                }
                match self.queue.recv().await {
                    Some(job) => self.pending.push_back(job),
                    None => return,
                }
            }
            open = self.gather(open).await;
            let batch = self.take();
            if !batch.is_empty() {
                self.execute(batch).await;
            }
        }
    }

    /// Moves what is queued now into `pending`; false once the queue is closed.
    fn drain(&mut self) -> bool {
        loop {
            match self.queue.try_recv() {
                Ok(job) => self.pending.push_back(job),
                Err(mpsc::error::TryRecvError::Empty) => return true,
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
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
    async fn gather(&mut self, mut open: bool) -> bool {
        loop {
            if open {
                open = self.drain();
            }
            self.prune();
            let Some(oldest) = self.pending.front().map(|j| j.enqueued) else {
                return open;
            };
            let (rows, full) = self.head();
            if full || !open || (self.settings.preferred.as_slice().contains(&(rows as u32))) {
                return open;
            }
            let wait =
                tokio::time::timeout_at((oldest + self.settings.delay).into(), self.queue.recv());
            tokio::select! {
                biased;
                () = self.flush.notified() => {
                    self.settings.delay = std::time::Duration::ZERO;
                    self.settings.preferred = Default::default();
                }
                got = wait => match got {
                    Ok(Some(job)) => self.pending.push_back(job),
                    Ok(None) => open = false,
                    Err(_) => return open,
                },
            }
        }
    }

    /// The head batch's rows and requests, and whether it can take no more.
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

    /// Runs a batch (inline, or on the blocking pool when large) and answers each
    /// request.
    async fn execute(&self, mut batch: Vec<Job>) {
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
        let answers = if rows >= self.settings.offload_min_rows {
            let runner = Arc::clone(&self.runner);
            let (answers, back) = match tokio::task::spawn_blocking(move || {
                let answers = run::compute(&runner, &batch);
                (answers, batch)
            })
            .await
            {
                Ok(done) => done,
                Err(e) => {
                    tracing::error!(error = %e, "a batch's task failed");
                    return; // the replies were dropped: each caller gets an internal error
                }
            };
            batch = back;
            answers
        } else {
            run::compute(&self.runner, &batch)
        };
        metrics.compute.observe(started.elapsed().as_secs_f64());
        for ((job, output), queued) in batch.into_iter().zip(answers).zip(queued) {
            let _ = job.reply.send(Done { output, queued });
        }
    }
}
