//! The inference path, protocol-neutral: admit, resolve the version, decode, run, encode,
//! and count. The gRPC handlers only convert and call in here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mercator_proto::inference as pb;
use tokio::sync::Semaphore;

use crate::error::{ServeError, code_name};
use crate::metrics::{Metrics, UNKNOWN};
use crate::models::{LoadedModel, Models, Placement, Routed};
use crate::v2;

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
    pub(crate) shadow_limit: crate::shadow::ShadowLimit,
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

/// The `method` label of V2 inference.
pub const MODEL_INFER: &str = "ModelInfer";

/// Response parameter listing (comma-separated) the rows of an entity-keyed request for
/// which the feature store had no value at all: their outputs come from defaults alone.
pub const ENTITIES_WITHOUT_FEATURES: &str = "entities_without_features";

/// Request parameter naming the entity a V2 request is about (e.g. a customer id), for
/// sticky traffic splits when the request sends feature values rather than entity keys.
pub const ENTITY_KEY: &str = "entity_key";

/// One request being timed; it learns which version answered once that is resolved.
#[derive(Debug)]
pub struct Observation {
    method: &'static str,
    model: Option<Arc<LoadedModel>>,
    started: Instant,
}

impl Observation {
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
        Serving {
            models,
            metrics,
            features,
            admission: Arc::new(Semaphore::new(limits.max_in_flight)),
            max_in_flight: limits.max_in_flight,
            offload_min_rows: limits.offload_min_rows,
            shadow_limit: crate::shadow::ShadowLimit::new(limits.max_shadow_in_flight),
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

    /// Answers a V2 `ModelInfer` request. A request that names no version follows the
    /// model's traffic split, placed by its entity: the `entity_key` parameter, or else
    /// the first row of the entity key inputs of a feature-backed model (a V2 answer
    /// names one version, so a batch goes whole to its first entity's route).
    pub async fn infer_v2(
        self: &Arc<Self>,
        req: pb::ModelInferRequest,
        obs: &mut Observation,
    ) -> Result<pb::ModelInferResponse, ServeError> {
        let _admitted = self.admit()?;
        let routed = self
            .models
            .route(&req.model_name, &req.model_version, |entry| {
                let key = self.v2_entity_key(entry, &req);
                Placement::of(&req.model_name, key.as_deref())
            })?;
        let copy = (!routed.shadows.is_empty()).then(|| req.clone());
        let answer = self.infer_on(&routed.live, req, obs).await?;
        if let Some(copy) = copy {
            self.shadow(
                MODEL_INFER,
                &routed.shadows,
                copy,
                &answer,
                async |serving, shadow, req| {
                    let mut obs = Observation::start(MODEL_INFER);
                    serving.infer_on(&shadow, req, &mut obs).await
                },
            );
        }
        Ok(answer.response)
    }

    /// The entity a V2 request is about, for routing: its `entity_key` parameter, or the
    /// first row of the entity key inputs the champion's bound inputs read.
    fn v2_entity_key(
        &self,
        entry: &crate::models::table::ModelEntry,
        req: &pb::ModelInferRequest,
    ) -> Option<String> {
        use pb::infer_parameter::ParameterChoice;
        match req
            .parameters
            .get(ENTITY_KEY)
            .and_then(|p| p.parameter_choice.as_ref())
        {
            Some(ParameterChoice::StringParam(key)) => return Some(key.clone()),
            Some(ParameterChoice::Int64Param(key)) => return Some(key.to_string()),
            Some(ParameterChoice::Uint64Param(key)) => return Some(key.to_string()),
            _ => {}
        }
        let champion = entry
            .aliases
            .get(mercator_registry::CHAMPION)
            .and_then(|v| entry.versions.get(v))?;
        let input = champion
            .manifest
            .inputs
            .iter()
            .find(|i| !i.features.is_empty())?;
        let join_keys = crate::lookup::join_keys(&self.features, input).ok()?;
        let parts = join_keys
            .iter()
            .map(|k| v2::first_bytes_element(&req.inputs, &req.raw_input_contents, k))
            .collect::<Option<Vec<String>>>()?;
        Some(parts.join(&crate::models::routing::KEY_SEPARATOR.to_string()))
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
            Ok(tokio::task::spawn_blocking(move || {
                model
                    .metrics
                    .queue
                    .observe(submitted.elapsed().as_secs_f64());
                let started = Instant::now();
                let out = run(&model, &inputs, &wanted);
                model
                    .metrics
                    .compute
                    .observe(started.elapsed().as_secs_f64());
                out
            })
            .await
            .map_err(|e| ServeError::Internal(format!("inference task failed: {e}")))??)
        } else {
            let started = Instant::now();
            let out = run(loaded, &inputs, &wanted);
            loaded
                .metrics
                .compute
                .observe(started.elapsed().as_secs_f64());
            Ok(out?)
        }
    }

    /// For a feature-backed model and a request that sends entity keys instead of the
    /// bound inputs: the bound inputs read from the store (by input position), and the
    /// indexes of rows the store had nothing for. Otherwise nothing.
    async fn entity_inputs(
        &self,
        loaded: &LoadedModel,
        inputs: &mut Vec<pb::model_infer_request::InferInputTensor>,
        raw: &mut Vec<Vec<u8>>,
    ) -> Result<(Vec<Option<mercator_runtime::Tensor>>, Vec<usize>), ServeError> {
        let manifest = &loaded.manifest;
        let bound = |i: &mercator_runtime::manifest::InputManifest| !i.features.is_empty();
        if !manifest.is_feature_backed()
            || inputs
                .iter()
                .any(|r| manifest.inputs.iter().any(|m| bound(m) && m.name == r.name))
        {
            return Ok((Vec::new(), Vec::new()));
        }
        let mut prefilled = vec![None; manifest.inputs.len()];
        let mut empty_rows = Vec::new();
        let mut keys_by_entity: Vec<(Vec<String>, Vec<Vec<String>>)> = Vec::new();
        let now = chrono::Utc::now().timestamp_micros();
        for (slot, input) in manifest.inputs.iter().enumerate().filter(|(_, i)| bound(i)) {
            let join_keys = crate::lookup::join_keys(&self.features, input)?;
            let keys = match keys_by_entity.iter().find(|(k, _)| *k == join_keys) {
                Some((_, keys)) => keys.clone(),
                None => match v2::take_entity_keys(inputs, raw, &join_keys)? {
                    Some(keys) => {
                        keys_by_entity.push((join_keys, keys.clone()));
                        keys
                    }
                    // Neither the bound input nor its keys: decoding names what is missing.
                    None => return Ok((Vec::new(), Vec::new())),
                },
            };
            let rows =
                crate::lookup::read_rows(&self.features, &self.metrics, loaded, input, &keys, now)
                    .await?;
            empty_rows.extend(
                rows.rows
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| !r.any_present)
                    .map(|(i, _)| i),
            );
            prefilled[slot] = Some(rows.tensor(input.datatype, |_| true)?);
        }
        empty_rows.sort_unstable();
        empty_rows.dedup();
        Ok((prefilled, empty_rows))
    }

    /// Answers a V2 request on `loaded`, the version it was routed to.
    async fn infer_on(
        &self,
        loaded: &Arc<LoadedModel>,
        req: pb::ModelInferRequest,
        obs: &mut Observation,
    ) -> Result<V2Answer, ServeError> {
        let pb::ModelInferRequest {
            model_name: _,
            model_version: _,
            id,
            parameters: _,
            inputs,
            outputs,
            raw_input_contents,
        } = req;
        let loaded = Arc::clone(loaded);
        obs.resolved(&loaded);
        let started = Instant::now();
        let result = self
            .run(&loaded, inputs, raw_input_contents, &outputs, id)
            .await;
        let stats = &loaded.stats;
        match &result {
            Ok(_) => stats.success.add(started.elapsed()),
            Err(_) => stats.fail.add(started.elapsed()),
        }
        result
    }

    async fn run(
        &self,
        loaded: &Arc<LoadedModel>,
        mut inputs: Vec<pb::model_infer_request::InferInputTensor>,
        mut raw: Vec<Vec<u8>>,
        outputs: &[pb::model_infer_request::InferRequestedOutputTensor],
        id: String,
    ) -> Result<V2Answer, ServeError> {
        let t0 = Instant::now();
        let (prefilled, empty_rows) = self.entity_inputs(loaded, &mut inputs, &mut raw).await?;
        let decoded = v2::decode_request(inputs, raw, outputs, loaded, prefilled)?;
        let t1 = Instant::now();
        let rows = decoded.rows;
        let tensors = self
            .compute(loaded, decoded.inputs, decoded.wanted, rows)
            .await?;
        let t2 = Instant::now();
        let specs = loaded.model.outputs();
        let wanted = outputs_in_order(outputs, specs);
        let mut response = pb::ModelInferResponse {
            model_name: loaded.name.clone(),
            model_version: loaded.version_label.clone(),
            id,
            ..Default::default()
        };
        if !empty_rows.is_empty() {
            // V2 has no per-row status: name the rows scored on defaults alone.
            let rows: Vec<String> = empty_rows.iter().map(usize::to_string).collect();
            response.parameters.insert(
                ENTITIES_WITHOUT_FEATURES.into(),
                pb::InferParameter {
                    parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(
                        rows.join(","),
                    )),
                },
            );
        }
        for (tensor, name) in tensors.iter().zip(wanted) {
            response
                .outputs
                .push(pb::model_infer_response::InferOutputTensor {
                    name,
                    datatype: tensor.dtype().as_str().to_string(),
                    shape: tensor.shape.iter().map(|&d| d as i64).collect(),
                    ..Default::default()
                });
            response
                .raw_output_contents
                .push(v2::encode_raw(&tensor.data));
        }
        let stats = &loaded.stats;
        stats.compute_input.add(t1 - t0);
        stats.compute_infer.add(t2 - t1);
        stats.compute_output.add(t2.elapsed());
        stats
            .inference_count
            .fetch_add(rows as u64, Ordering::Relaxed);
        stats.execution_count.fetch_add(1, Ordering::Relaxed);
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        stats.last_inference_ms.store(now_ms, Ordering::Relaxed);
        loaded.metrics.rows.inc_by(rows as u64);
        Ok(V2Answer { response, tensors })
    }
}

/// A V2 response and the tensors it encodes (kept for shadow comparisons).
#[derive(Debug)]
pub struct V2Answer {
    /// The response.
    pub response: pb::ModelInferResponse,
    /// Its outputs, decoded.
    pub tensors: Vec<mercator_runtime::Tensor>,
}

impl crate::shadow::Predicts for V2Answer {
    /// Every numeric output value, and every BYTES output element, in output order.
    fn predictions(&self) -> crate::shadow::Predictions {
        use mercator_runtime::TensorData;
        let mut p = crate::shadow::Predictions::default();
        for t in &self.tensors {
            match &t.data {
                TensorData::Bytes(b) => p
                    .labels
                    .extend(b.iter().map(|e| String::from_utf8_lossy(e).into_owned())),
                other => p.values.extend(other.to_f64()),
            }
        }
        p
    }
}

/// Names of the outputs a request gets back, in order: those it asked for, or all.
fn outputs_in_order(
    asked: &[pb::model_infer_request::InferRequestedOutputTensor],
    specs: &[mercator_runtime::TensorSpec],
) -> Vec<String> {
    if asked.is_empty() {
        specs.iter().map(|s| s.name.clone()).collect()
    } else {
        asked.iter().map(|o| o.name.clone()).collect()
    }
}
