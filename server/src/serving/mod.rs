//! The serving core, protocol-neutral: the envelope every prediction passes ([`call`]:
//! admission, routing, the run, shadows, observation), compute and its placement, over
//! domain types (tensors in, tensors out). The V2 path (`crate::v2`) and the typed APIs
//! (`crate::api`) call in here; nothing here knows a wire format.

pub mod call;
pub mod lookup;
pub mod place;
pub mod shadow;

pub use call::{CallContext, Ending, Method, Opened, ShadowPolicy, Target};

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::error::{ServeError, code_name};
use crate::models::{LoadedModel, Models, Placement, Routed};
use crate::monitor::names::MODEL_INFER;
use crate::monitor::{Metrics, UNKNOWN};
use shadow::Shadows;

/// Shared state of the serving path.
#[derive(Debug)]
pub struct Serving {
    /// The live model table.
    pub models: Arc<Models>,
    /// Metrics.
    pub metrics: Metrics,
    /// The feature store, for models whose inputs are bound to features.
    pub features: Arc<mercator_features::FeatureStore>,
    admission: Arc<Semaphore>,
    max_in_flight: usize,
    offload_min_rows: usize,
    /// Copies of live requests sent to shadow versions.
    pub shadows: Shadows,
    /// Where every prediction is logged, when the log is on.
    pub log: Option<crate::predlog::PredictionLog>,
}

/// How much the serving path takes on (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Batches of at least this many rows run on the blocking pool.
    pub offload_min_rows: usize,
    /// Shadow runs in flight at once.
    pub max_shadow_in_flight: usize,
}

/// A request admitted past the in-flight limit; counted in flight until dropped.
#[derive(Debug)]
pub struct Admitted {
    _permit: tokio::sync::OwnedSemaphorePermit,
    in_flight: prometheus::IntGauge,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

/// One request being timed; it learns which version answered once that is resolved.
#[derive(Debug)]
pub struct Observation {
    method: &'static str,
    model: Option<Arc<LoadedModel>>,
    started: Instant,
}

impl Observation {
    /// The method being timed.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Starts timing a request to `method`.
    pub fn start(method: &'static str) -> Observation {
        Observation {
            method,
            model: None,
            started: Instant::now(),
        }
    }

    /// Names the model version that answered (only known ones become labels).
    pub fn resolved(&mut self, model: &Arc<LoadedModel>) {
        self.model = Some(Arc::clone(model));
    }

    /// The version that answered, once known.
    pub fn version(&self) -> Option<&Arc<LoadedModel>> {
        self.model.as_ref()
    }

    /// Time since the request started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records the outcome.
    pub fn finish(self, metrics: &Metrics, code: tonic::Code) {
        let seconds = self.started.elapsed().as_secs_f64();
        if let (Some(m), tonic::Code::Ok, MODEL_INFER) = (&self.model, code, self.method) {
            m.metrics.infer_ok.inc();
            m.metrics.infer_duration.observe(seconds);
            return;
        }
        let (model, version) = self.model.as_ref().map_or((UNKNOWN, UNKNOWN), |m| {
            (m.name.as_str(), m.version_label.as_str())
        });
        metrics
            .requests
            .with_label_values(&[model, version, self.method, code_name(code)])
            .inc();
        metrics
            .request_duration
            .with_label_values(&[model, version, self.method])
            .observe(seconds);
    }
}

impl Serving {
    /// The serving path over `models`.
    pub fn new(
        models: Arc<Models>,
        metrics: Metrics,
        features: Arc<mercator_features::FeatureStore>,
        limits: Limits,
    ) -> Serving {
        let shadows = Shadows::new(limits.max_shadow_in_flight, metrics.shadow.clone());
        Serving {
            models,
            metrics,
            features,
            admission: Arc::new(Semaphore::new(limits.max_in_flight)),
            max_in_flight: limits.max_in_flight,
            offload_min_rows: limits.offload_min_rows,
            shadows,
            log: None,
        }
    }

    /// Routes a request for model `name`: the version it names, or, when it names none,
    /// the model's traffic split, placed by `entity_key` when there is one (the same
    /// entity always lands on the same route) and at random otherwise.
    pub fn route(
        &self,
        name: &str,
        version: &str,
        entity_key: Option<&str>,
    ) -> Result<Routed, ServeError> {
        self.models
            .route(name, version, |_| Placement::of(name, entity_key))
    }

    /// Admits a request, or refuses it when `max_in_flight` are already running.
    pub fn admit(&self) -> Result<Admitted, ServeError> {
        let permit = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServeError::Overloaded(self.max_in_flight))?;
        self.metrics.in_flight.inc();
        Ok(Admitted {
            _permit: permit,
            in_flight: self.metrics.in_flight.clone(),
        })
    }

    /// Runs a model on decoded inputs: inline, or on the blocking pool for batches of
    /// at least `offload_min_rows` (they would hold the reactor for long).
    pub async fn compute(
        &self,
        loaded: &Arc<LoadedModel>,
        inputs: Vec<mercator_runtime::Tensor>,
        wanted: Vec<usize>,
        rows: usize,
    ) -> Result<Vec<mercator_runtime::Tensor>, ServeError> {
        Ok(self.compute_timed(loaded, inputs, wanted, rows).await?.0)
    }

    /// [`Serving::compute`], and how long the request waited for a blocking thread or
    /// in the version's batching queue (zero when computed inline): Triton's `queue`
    /// statistic.
    pub async fn compute_timed(
        &self,
        loaded: &Arc<LoadedModel>,
        inputs: Vec<mercator_runtime::Tensor>,
        wanted: Vec<usize>,
        rows: usize,
    ) -> Result<(Vec<mercator_runtime::Tensor>, Duration), ServeError> {
        if let Some(batcher) = &loaded.batcher {
            return batcher.submit(inputs, wanted, rows).await;
        }
        let run =
            move |model: &LoadedModel, inputs: &[mercator_runtime::Tensor], wanted: &[usize]| {
                let outputs = model.model.infer(inputs, wanted)?;
                if let Some(drift) = &model.drift {
                    drift.observe(inputs, wanted, &outputs, rows);
                }
                Ok::<_, mercator_runtime::RuntimeError>(outputs)
            };
        loaded.metrics.batch_rows.observe(rows as f64);
        if rows >= self.offload_min_rows {
            let model = Arc::clone(loaded);
            let submitted = Instant::now();
            let (out, queued) = tokio::task::spawn_blocking(move || {
                let queued = submitted.elapsed();
                model.metrics.queue.observe(queued.as_secs_f64());
                let started = Instant::now();
                let out = run(&model, &inputs, &wanted);
                model
                    .metrics
                    .compute
                    .observe(started.elapsed().as_secs_f64());
                (out, queued)
            })
            .await
            .map_err(|e| ServeError::Internal(format!("inference task failed: {e}")))?;
            Ok((out?, queued))
        } else {
            let started = Instant::now();
            let out = run(loaded, &inputs, &wanted);
            loaded
                .metrics
                .compute
                .observe(started.elapsed().as_secs_f64());
            Ok((out?, Duration::ZERO))
        }
    }
}
