//! The V2 inference path: a `ModelInferRequest` routed (by its entity when it has one),
//! its entity keys turned into features for a feature-backed model, decoded at this edge,
//! computed on the serving core, encoded, counted in Triton's statistics, and copied to
//! the model's shadows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mercator_proto::inference as pb;

use super::request::{decode_request, first_bytes_element, take_entity_keys};
use super::tensors::encode_raw;
use crate::error::ServeError;
use crate::models::routing::KEY_SEPARATOR;
use crate::models::{LoadedModel, ModelEntry};
use crate::monitor::names::{MODEL_INFER, MODEL_STREAM_INFER};
use crate::serving::shadow::{Predictions, Predicts};
use crate::serving::{CallContext, Method, Serving, ShadowPolicy, Target, lookup};

/// Response parameter listing (comma-separated) the rows of an entity-keyed request for
/// which the feature store had no value at all: their outputs come from defaults alone.
pub const ENTITIES_WITHOUT_FEATURES: &str = "entities_without_features";

/// Request parameter naming the entity a V2 request is about (e.g. a customer id), for
/// sticky traffic splits when the request sends feature values rather than entity keys.
pub const ENTITY_KEY: &str = "entity_key";

/// V2 inference as the envelope runs it: a unary `ModelInfer`, or one message of a
/// `ModelStreamInfer` (`STREAM`, its own `method` label; its shadow runs count as
/// `ModelInfer`'s, as they always have).
#[derive(Debug, Clone, Copy)]
pub struct Infer<const STREAM: bool>;

impl<const STREAM: bool> Method for Infer<STREAM> {
    type Request = pb::ModelInferRequest;
    type Answer = V2Answer;
    const NAME: &'static str = if STREAM {
        MODEL_STREAM_INFER
    } else {
        MODEL_INFER
    };
    const SHADOWS: ShadowPolicy = ShadowPolicy::Mirror;
    const SHADOW_NAME: &'static str = MODEL_INFER;

    /// One instance per row of the batch, with its features (a feature-backed model's,
    /// with their missing and expired flags) or its input tensors' rows, and its output
    /// tensors' rows.
    fn instances(&self, answer: &V2Answer) -> Vec<crate::predlog::Instance> {
        let rows = answer
            .tensors
            .first()
            .and_then(|t| t.shape.first().copied())
            .unwrap_or(1)
            .max(1);
        (0..rows)
            .map(|row| crate::predlog::Instance {
                entity: answer.entities.get(row).cloned(),
                seen: answer
                    .seen
                    .as_ref()
                    .map(|s| crate::predlog::Seen::row(s, row)),
                ..Default::default()
            })
            .collect()
    }

    async fn run(
        &self,
        serving: &Arc<Serving>,
        loaded: Arc<LoadedModel>,
        req: pb::ModelInferRequest,
    ) -> Result<V2Answer, ServeError> {
        infer_on(serving, &loaded, req).await
    }
}

/// Where a V2 request goes: a request that names no version follows the model's traffic
/// split, placed by its entity: the `entity_key` parameter, or else the first row of the
/// entity key inputs of a feature-backed model (a V2 answer names one version, so a batch
/// goes whole to its first entity's route).
/// Only a request that follows a split needs one: no work on the others' path.
fn entity_of(serving: &Serving, req: &pb::ModelInferRequest) -> Option<String> {
    if !req.model_version.is_empty() {
        return None;
    }
    let table = serving.models.snapshot();
    let entry = table.models.get(&req.model_name)?;
    if entry.routes.is_empty() {
        return None;
    }
    entity_key(serving, entry, req)
}

/// Answers a V2 `ModelInfer` request through the envelope.
pub async fn infer(
    serving: &Arc<Serving>,
    ctx: &CallContext,
    req: pb::ModelInferRequest,
) -> Result<pb::ModelInferResponse, ServeError> {
    let (model, version, entity) = (
        req.model_name.clone(),
        req.model_version.clone(),
        entity_of(serving, &req),
    );
    let target = Target {
        model: &model,
        version: &version,
        entity: entity.as_deref(),
    };
    Ok(serving
        .call(ctx, &Infer::<false>, target, req)
        .await?
        .response)
}

/// Answers one message of a `ModelStreamInfer` stream through the envelope, within the
/// message's `deadline`.
pub async fn infer_message(
    serving: &Arc<Serving>,
    ctx: &CallContext,
    req: pb::ModelInferRequest,
    deadline: std::time::Duration,
) -> Result<pb::ModelInferResponse, ServeError> {
    let (model, version, entity) = (
        req.model_name.clone(),
        req.model_version.clone(),
        entity_of(serving, &req),
    );
    let target = Target {
        model: &model,
        version: &version,
        entity: entity.as_deref(),
    };
    let answer = serving
        .call_within(
            ctx,
            &Infer::<true>,
            target,
            req,
            deadline,
            "the message's deadline",
        )
        .await?;
    Ok(answer.response)
}

/// The entity a V2 request is about, for routing: its `entity_key` parameter, or the
/// first row of the entity key inputs the champion's bound inputs read.
fn entity_key(
    serving: &Serving,
    entry: &ModelEntry,
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
    let join_keys = lookup::join_keys(&serving.features, input).ok()?;
    let parts = join_keys
        .iter()
        .map(|k| first_bytes_element(&req.inputs, &req.raw_input_contents, k))
        .collect::<Option<Vec<String>>>()?;
    Some(parts.join(&KEY_SEPARATOR.to_string()))
}

/// The bound inputs a request's entity keys were turned into: each by input position
/// (`None` for an input the request sent), the rows the store had nothing for, and the
/// features as the log keeps them.
#[derive(Default)]
struct Looked {
    prefilled: Vec<Option<mercator_runtime::Tensor>>,
    empty_rows: Vec<usize>,
    logged: Vec<crate::predlog::Source>,
    /// Each row's entity (its keys joined by `|`), when predictions are logged.
    entities: Vec<String>,
}

/// For a feature-backed model and a request that sends entity keys instead of the
/// bound inputs: the bound inputs read from the store. Otherwise nothing.
async fn entity_inputs(
    serving: &Serving,
    loaded: &LoadedModel,
    inputs: &mut Vec<pb::model_infer_request::InferInputTensor>,
    raw: &mut Vec<Vec<u8>>,
) -> Result<Looked, ServeError> {
    let manifest = &loaded.manifest;
    let bound = |i: &mercator_runtime::manifest::InputManifest| !i.features.is_empty();
    if !manifest.is_feature_backed() {
        return Ok(Looked::default());
    }
    if inputs
        .iter()
        .any(|r| manifest.inputs.iter().any(|m| bound(m) && m.name == r.name))
    {
        // The bound inputs are sent: they are used as sent. Entity keys sent with them
        // name the entity (routing has read them already) and are checked, not looked up:
        // metadata advertises both as optional, and a client filling every advertised
        // input (perf_analyzer's random data) sends both.
        for input in manifest.inputs.iter().filter(|i| bound(i)) {
            if let Ok(join_keys) = lookup::join_keys(&serving.features, input) {
                take_entity_keys(inputs, raw, &join_keys)?;
            }
        }
        return Ok(Looked::default());
    }
    let mut keys_by_entity: Vec<(Vec<String>, Vec<Vec<String>>)> = Vec::new();
    // Each bound input with the index of its entity's keys: the keys of an entity are
    // taken from the request once, however many inputs bind its views.
    let mut wanted: Vec<(usize, &mercator_runtime::manifest::InputManifest, usize)> = Vec::new();
    for (slot, input) in manifest.inputs.iter().enumerate().filter(|(_, i)| bound(i)) {
        let join_keys = lookup::join_keys(&serving.features, input)?;
        let entity = match keys_by_entity.iter().position(|(k, _)| *k == join_keys) {
            Some(e) => e,
            None => match take_entity_keys(inputs, raw, &join_keys)? {
                Some(keys) => {
                    keys_by_entity.push((join_keys, keys));
                    keys_by_entity.len() - 1
                }
                // Neither the bound input nor its keys: decoding names what is missing.
                None => return Ok(Looked::default()),
            },
        };
        wanted.push((slot, input, entity));
    }
    let lookups: Vec<(&mercator_runtime::manifest::InputManifest, &[Vec<String>])> = wanted
        .iter()
        .map(|&(_, input, e)| (input, keys_by_entity[e].1.as_slice()))
        .collect();
    let now = chrono::Utc::now().timestamp_micros();
    let read =
        lookup::read_inputs(&serving.features, &serving.metrics, loaded, &lookups, now).await?;
    let mut prefilled = vec![None; manifest.inputs.len()];
    let mut empty_rows = Vec::new();
    let mut logged = Vec::new();
    for ((slot, input, _), rows) in wanted.iter().zip(read) {
        if let (Some(_), Some(names)) = (&serving.log, loaded.logged_features.get(*slot)) {
            logged.push(rows.logged(names));
        }
        empty_rows.extend(
            rows.rows
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.any_present)
                .map(|(i, _)| i),
        );
        prefilled[*slot] = Some(rows.tensor(input.datatype, |_| true)?);
    }
    empty_rows.sort_unstable();
    empty_rows.dedup();
    let entities = match keys_by_entity.first() {
        Some((_, keys)) if serving.log.is_some() => keys.iter().map(|k| k.join("|")).collect(),
        _ => Vec::new(),
    };
    Ok(Looked {
        prefilled,
        empty_rows,
        logged,
        entities,
    })
}

/// Answers a V2 request on `loaded`, the version it was routed to.
async fn infer_on(
    serving: &Serving,
    loaded: &Arc<LoadedModel>,
    req: pb::ModelInferRequest,
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
    let started = Instant::now();
    let result = run(serving, &loaded, inputs, raw_input_contents, &outputs, id).await;
    let stats = &loaded.stats;
    match &result {
        Ok(_) => stats.success.add(started.elapsed()),
        Err(_) => stats.fail.add(started.elapsed()),
    }
    result
}

async fn run(
    serving: &Serving,
    loaded: &Arc<LoadedModel>,
    mut inputs: Vec<pb::model_infer_request::InferInputTensor>,
    mut raw: Vec<Vec<u8>>,
    outputs: &[pb::model_infer_request::InferRequestedOutputTensor],
    id: String,
) -> Result<V2Answer, ServeError> {
    let t0 = Instant::now();
    let Looked {
        prefilled,
        empty_rows,
        mut logged,
        entities,
    } = entity_inputs(serving, loaded, &mut inputs, &mut raw).await?;
    let fed: Vec<bool> = prefilled.iter().map(Option::is_some).collect();
    let decoded = decode_request(inputs, raw, outputs, loaded, prefilled)?;
    let t1 = Instant::now();
    if serving.log.is_some() {
        // The tensors the request sent (not those read from the store: logged above as
        // features).
        for (i, tensor) in decoded.inputs.iter().enumerate() {
            if !fed.get(i).copied().unwrap_or(false) {
                let name = loaded
                    .manifest
                    .inputs
                    .get(i)
                    .map_or("", |m| m.name.as_str());
                logged.push(crate::predlog::Source::Tensor {
                    column: format!("input:{name}"),
                    tensor: tensor.clone(),
                });
            }
        }
    }
    let rows = decoded.rows;
    let (tensors, queued) = serving
        .compute_timed(loaded, decoded.inputs, decoded.wanted, rows)
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
        if serving.log.is_some() {
            logged.push(crate::predlog::Source::Tensor {
                column: format!("output:{name}"),
                tensor: tensor.clone(),
            });
        }
        response
            .outputs
            .push(pb::model_infer_response::InferOutputTensor {
                name,
                datatype: tensor.dtype().as_str().to_string(),
                shape: tensor.shape.iter().map(|&d| d as i64).collect(),
                ..Default::default()
            });
        response.raw_output_contents.push(encode_raw(&tensor.data));
    }
    let stats = &loaded.stats;
    let phases = [t1 - t0, (t2 - t1).saturating_sub(queued), t2.elapsed()];
    stats.queue.add(queued);
    stats.compute_input.add(phases[0]);
    stats.compute_infer.add(phases[1]);
    stats.compute_output.add(phases[2]);
    stats.batches.record(rows, phases);
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
    Ok(V2Answer {
        response,
        tensors,
        seen: serving.log.is_some().then(|| Arc::from(logged)),
        entities,
    })
}

/// A V2 response and the tensors it encodes (kept for shadow comparisons).
#[derive(Debug)]
pub struct V2Answer {
    /// The response.
    pub response: pb::ModelInferResponse,
    /// Its outputs, decoded.
    pub tensors: Vec<mercator_runtime::Tensor>,
    /// Its inputs as the model saw them and its outputs, when predictions are logged.
    pub seen: Option<Arc<[crate::predlog::Source]>>,
    /// Each row's entity, for a request by entity keys when predictions are logged.
    pub entities: Vec<String>,
}

impl Predicts for V2Answer {
    /// Every numeric output value, and every BYTES output element, in output order.
    fn predictions(&self) -> Predictions {
        use mercator_runtime::TensorData;
        let mut p = Predictions::default();
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
