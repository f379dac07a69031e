//! Dynamic batching: requests from different callers to one model version merged into
//! one model execution, and the answers split back to each caller in order.
//!
//! It pays where a model's fixed cost per execution dominates its cost per row (a candle
//! net runs a few matrix products whatever the batch; at one row most of the time is the
//! call). Trees gain nothing and stay inline unless a manifest asks.
//!
//! Each batched version has one [`Batcher`]: a queue, bounded by `max_queue_size`
//! (one more request is refused with RESOURCE_EXHAUSTED), and one worker task
//! (`worker.rs`) that forms batches as Triton's dynamic batcher does. A request never waits
//! longer than `max_queue_delay` beyond the batch in execution; one whose caller went away
//! (its deadline passed: the deadline layer answered DEADLINE_EXCEEDED and dropped it) is
//! dropped from the queue, never computed.
//!
//! The batcher belongs to the loaded version: a request routed to a version is answered
//! by it even when a swap unloads the version while the request waits (the queue and its
//! worker live until the last request holding the version is answered).

mod run;
mod settings;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mercator_runtime::forecast::Forecast;
use mercator_runtime::{Model, Tensor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::error::ServeError;
use crate::monitor::VersionMetrics;
use crate::monitor::drift::Monitor;

pub use settings::{Override, Settings};

/// What a model version runs with, for the worker.
#[derive(Debug)]
pub struct Runner {
    /// The model.
    pub model: Arc<dyn Model>,
    /// Its drift window, fed with every executed batch.
    pub drift: Option<Arc<Monitor>>,
    /// Its metric handles.
    pub metrics: VersionMetrics,
}

/// What a queued request asks for.
#[derive(Debug)]
enum Work {
    /// `Model::infer` on checked inputs (batch-major), with these outputs.
    Infer {
        inputs: Vec<Tensor>,
        wanted: Vec<usize>,
    },
    /// One series forecast (a forecaster's `forecast_batch` runs many at once).
    Forecast(SeriesJob),
}

/// One series to forecast, owned, with what the forecast is for.
#[derive(Debug)]
pub struct SeriesJob {
    /// Key parts (e.g. SKU and location).
    pub key: Vec<String>,
    /// Daily history, oldest first.
    pub values: Vec<f64>,
    /// The date of the last value.
    pub last_date: Option<chrono::NaiveDate>,
    /// Days ahead.
    pub horizon: usize,
    /// Quantile levels, checked.
    pub quantiles: Vec<f64>,
}

/// A request's result.
#[derive(Debug)]
enum Output {
    Infer(Vec<Tensor>),
    Forecast(Forecast),
}

/// One request in the queue.
#[derive(Debug)]
struct Job {
    work: Work,
    rows: usize,
    enqueued: Instant,
    reply: oneshot::Sender<Done>,
    /// Its place in the bounded queue, given back when its batch starts.
    slot: Option<OwnedSemaphorePermit>,
}

/// What the worker's queue carries.
#[derive(Debug)]
enum Message {
    /// A request.
    Job(Job),
    /// Stop waiting for requests to join (the version left the table).
    Flush,
}

/// A request's answer: its result, and how long it waited in the queue.
#[derive(Debug)]
struct Done {
    output: mercator_runtime::Result<Output>,
    queued: Duration,
}

/// A version's queue; dropping it lets its worker finish what is queued and stop.
#[derive(Debug)]
pub struct Batcher {
    jobs: std::sync::mpsc::Sender<Message>,
    slots: Arc<Semaphore>,
    settings: Settings,
    depth: prometheus::IntGauge,
    model: String,
    version: String,
}

impl Batcher {
    /// Starts the worker thread of version `version` of `model`.
    pub fn start(
        model: &str,
        version: &str,
        runner: Runner,
        settings: Settings,
    ) -> std::io::Result<Batcher> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let depth = runner.metrics.queue_depth.clone();
        std::thread::Builder::new()
            .name(format!("batch-{model}@{version}"))
            .spawn(move || worker::Worker::new(queue, runner, settings).run())?;
        Ok(Batcher {
            jobs,
            slots: Arc::new(Semaphore::new(settings.max_queue)),
            settings,
            depth,
            model: model.to_string(),
            version: version.to_string(),
        })
    }

    /// The settings it batches with.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Stops waiting for requests to join: what is queued runs at once, and so does
    /// anything queued later. For a version leaving the table, whose queue no new caller
    /// reaches.
    pub fn flush(&self) {
        let _ = self.jobs.send(Message::Flush);
    }

    /// Queues one inference (its inputs checked, `rows` rows) and waits for its outputs
    /// and the time it spent queued.
    pub async fn submit(
        &self,
        inputs: Vec<Tensor>,
        wanted: Vec<usize>,
        rows: usize,
    ) -> Result<(Vec<Tensor>, Duration), ServeError> {
        let done = self.queue(Work::Infer { inputs, wanted }, rows).await?;
        match done.output? {
            Output::Infer(outputs) => Ok((outputs, done.queued)),
            Output::Forecast(_) => Err(ServeError::Internal(
                "a forecast answered an inference".into(),
            )),
        }
    }

    /// Queues one series forecast and waits for it. The outer error is the queue's
    /// (full, stopped); the inner one the forecaster's, for the caller to word.
    pub async fn forecast(
        &self,
        series: SeriesJob,
    ) -> Result<mercator_runtime::Result<Forecast>, ServeError> {
        let done = self.queue(Work::Forecast(series), 1).await?;
        Ok(done.output.and_then(|o| match o {
            Output::Forecast(f) => Ok(f),
            Output::Infer(_) => Err(mercator_runtime::RuntimeError::Signature(
                "an inference answered a forecast".into(),
            )),
        }))
    }

    async fn queue(&self, work: Work, rows: usize) -> Result<Done, ServeError> {
        let slot =
            Arc::clone(&self.slots)
                .try_acquire_owned()
                .map_err(|_| ServeError::QueueFull {
                    model: self.model.clone(),
                    version: self.version.clone(),
                    waiting: self.settings.max_queue,
                })?;
        let (reply, answer) = oneshot::channel();
        self.depth.inc();
        let job = Job {
            work,
            rows,
            enqueued: Instant::now(),
            reply,
            slot: Some(slot),
        };
        if self.jobs.send(Message::Job(job)).is_err() {
            self.depth.dec();
            return Err(ServeError::Internal(
                "the batching worker has stopped".into(),
            ));
        }
        answer
            .await
            .map_err(|_| ServeError::Internal("the batching worker dropped a request".into()))
    }
}
