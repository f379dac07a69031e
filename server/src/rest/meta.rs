//! The non-inference V2 REST answers as JSON, in the shapes KServe's REST protocol and
//! Triton's extensions give them (Triton's model configuration and statistics use the
//! protobuf messages' JSON names, enums as their names).

use mercator_proto::inference as pb;
use serde_json::{Value, json};

/// `GET /v2`.
pub fn server_metadata(m: &pb::ServerMetadataResponse) -> Value {
    json!({ "name": m.name, "version": m.version, "extensions": m.extensions })
}

fn tensors(specs: &[pb::model_metadata_response::TensorMetadata]) -> Value {
    specs
        .iter()
        .map(|t| {
            let mut tensor = json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape });
            // Mercator's extension (entity keys and the inputs they replace), only when set.
            if !t.parameters.is_empty() {
                let parameters: serde_json::Map<String, Value> = t
                    .parameters
                    .iter()
                    .filter_map(|(k, p)| match &p.parameter_choice {
                        Some(pb::infer_parameter::ParameterChoice::StringParam(v)) => {
                            Some((k.clone(), Value::from(v.as_str())))
                        }
                        _ => None,
                    })
                    .collect();
                tensor["parameters"] = Value::Object(parameters);
            }
            tensor
        })
        .collect()
}

/// `GET /v2/models/{name}[/versions/{v}]`.
pub fn model_metadata(m: &pb::ModelMetadataResponse) -> Value {
    json!({
        "name": m.name,
        "versions": m.versions,
        "platform": m.platform,
        "inputs": tensors(&m.inputs),
        "outputs": tensors(&m.outputs),
    })
}

/// `GET /v2/models/{name}[/versions/{v}]/config`: Triton's model configuration.
pub fn model_config(c: &pb::ModelConfig) -> Value {
    let data_type = |t: i32| {
        pb::DataType::try_from(t)
            .unwrap_or(pb::DataType::TypeInvalid)
            .as_str_name()
    };
    let inputs: Vec<Value> = c
        .input
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "data_type": data_type(i.data_type),
                "format": pb::model_input::Format::try_from(i.format)
                    .unwrap_or(pb::model_input::Format::None)
                    .as_str_name(),
                "dims": i.dims,
                "optional": i.optional,
            })
        })
        .collect();
    let outputs: Vec<Value> = c
        .output
        .iter()
        .map(|o| {
            json!({
                "name": o.name,
                "data_type": data_type(o.data_type),
                "dims": o.dims,
                "label_filename": o.label_filename,
            })
        })
        .collect();
    let mut config = json!({
        "name": c.name,
        "platform": c.platform,
        "backend": c.backend,
        "max_batch_size": c.max_batch_size,
        "input": inputs,
        "output": outputs,
    });
    if let Some(b) = &c.dynamic_batching {
        config["dynamic_batching"] = json!({
            "preferred_batch_size": b.preferred_batch_size,
            "max_queue_delay_microseconds": b.max_queue_delay_microseconds,
            "preserve_ordering": b.preserve_ordering,
            "default_queue_policy": {
                "max_queue_size": b.default_queue_policy.map_or(0, |p| p.max_queue_size),
            },
        });
    }
    config
}

fn duration(d: Option<&pb::StatisticDuration>) -> Value {
    let d = d.copied().unwrap_or_default();
    json!({ "count": d.count, "ns": d.ns })
}

/// `GET /v2/models[/{name}[/versions/{v}]]/stats`: Triton's statistics.
pub fn statistics(s: &pb::ModelStatisticsResponse) -> Value {
    let models: Vec<Value> = s
        .model_stats
        .iter()
        .map(|m| {
            let i = m.inference_stats.unwrap_or_default();
            json!({
                "name": m.name,
                "version": m.version,
                "last_inference": m.last_inference,
                "inference_count": m.inference_count,
                "execution_count": m.execution_count,
                "inference_stats": {
                    "success": duration(i.success.as_ref()),
                    "fail": duration(i.fail.as_ref()),
                    "queue": duration(i.queue.as_ref()),
                    "compute_input": duration(i.compute_input.as_ref()),
                    "compute_infer": duration(i.compute_infer.as_ref()),
                    "compute_output": duration(i.compute_output.as_ref()),
                    "cache_hit": duration(i.cache_hit.as_ref()),
                    "cache_miss": duration(i.cache_miss.as_ref()),
                },
                "batch_stats": m.batch_stats.iter().map(|b| json!({
                    "batch_size": b.batch_size,
                    "compute_input": duration(b.compute_input.as_ref()),
                    "compute_infer": duration(b.compute_infer.as_ref()),
                    "compute_output": duration(b.compute_output.as_ref()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "model_stats": models })
}

/// `POST /v2/repository/index`: a list of models.
pub fn repository_index(r: &pb::RepositoryIndexResponse) -> Value {
    r.models
        .iter()
        .map(|m| {
            json!({ "name": m.name, "version": m.version, "state": m.state, "reason": m.reason })
        })
        .collect()
}
