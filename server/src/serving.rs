//! The inference path, protocol-neutral: admit, resolve the version, decode, run, encode,
//! and count. The gRPC handlers only convert and call in here.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mercator_proto::inference as pb;
use tokio::sync::Semaphore;

use crate::error::{ServeError, code_name};
use crate::metrics::{Metrics, UNKNOWN};
use crate::models::{LoadedModel, Models};
use crate::v2;

/// Shared state of the serving path.
#[derive(Debug)]
pub struct Serving {
    /// The live model table.
    pub models: Arc<Models>,
    /// Metrics.
    pub metrics: Metrics,
    admission: Arc<Semaphore>,
    max_in_flight: usize,
    offload_min_rows: usize,
}

/// The `method` label of V2 inference.
pub const MODEL_INFER: &str = "ModelInfer";

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
        max_in_flight: usize,
        offload_min_rows: usize,
    ) -> Serving {
        Serving {
            models,
            metrics,
            admission: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            offload_min_rows,
        }
    }

    /// Answers a V2 `ModelInfer` request.
    pub async fn infer_v2(
        &self,
        req: pb::ModelInferRequest,
        obs: &mut Observation,
    ) -> Result<pb::ModelInferResponse, ServeError> {
        let _permit = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ServeError::Overloaded(self.max_in_flight))?;
        self.metrics.in_flight.inc();
        let result = self.infer_admitted(req, obs).await;
        self.metrics.in_flight.dec();
        result
    }

    async fn infer_admitted(
        &self,
        req: pb::ModelInferRequest,
        obs: &mut Observation,
    ) -> Result<pb::ModelInferResponse, ServeError> {
        let pb::ModelInferRequest {
            model_name,
            model_version,
            id,
            parameters: _,
            inputs,
            outputs,
            raw_input_contents,
        } = req;
        let loaded = self.models.resolve(&model_name, &model_version)?;
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
        inputs: Vec<pb::model_infer_request::InferInputTensor>,
        raw: Vec<Vec<u8>>,
        outputs: &[pb::model_infer_request::InferRequestedOutputTensor],
        id: String,
    ) -> Result<pb::ModelInferResponse, ServeError> {
        let t0 = Instant::now();
        let decoded = v2::decode_request(inputs, raw, outputs, loaded)?;
        let t1 = Instant::now();
        let rows = decoded.rows;
        let tensors = if rows >= self.offload_min_rows {
            // Large batches would hold the reactor for long: run them on the blocking pool.
            let model = Arc::clone(loaded);
            tokio::task::spawn_blocking(move || model.model.infer(&decoded.inputs, &decoded.wanted))
                .await
                .map_err(|e| ServeError::Internal(format!("inference task failed: {e}")))??
        } else {
            loaded.model.infer(&decoded.inputs, &decoded.wanted)?
        };
        let t2 = Instant::now();
        let specs = loaded.model.outputs();
        let wanted = outputs_in_order(outputs, specs);
        let mut response = pb::ModelInferResponse {
            model_name: loaded.name.clone(),
            model_version: loaded.version_label.clone(),
            id,
            ..Default::default()
        };
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
        Ok(response)
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
