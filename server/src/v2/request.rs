//! A V2 request's tensors checked against the version that answers it: inputs by name
//! into the model's order, one batch size, the wanted outputs by index, and the entity key
//! inputs a feature-backed model reads instead of its bound inputs.

use mercator_proto::inference as pb;
use mercator_runtime::{DType, Tensor, TensorData};

use super::tensors::{decode_contents, decode_raw};
use crate::error::ServeError;
use crate::models::LoadedModel;

/// A decoded request: inputs in the model's order, the indexes of the wanted outputs,
/// and the batch size.
#[derive(Debug)]
pub struct DecodedRequest {
    /// One tensor per model input, in the model's order.
    pub inputs: Vec<Tensor>,
    /// Indexes into the model's outputs, in the order the client asked for them.
    pub wanted: Vec<usize>,
    /// Rows in the batch (the first dimension).
    pub rows: usize,
}

/// The first element of BYTES input `name`, as text, without consuming the request (for
/// routing); `None` when there is no such input or it cannot be read (decoding the
/// request later names the problem).
pub fn first_bytes_element(
    inputs: &[pb::model_infer_request::InferInputTensor],
    raw: &[Vec<u8>],
    name: &str,
) -> Option<String> {
    let at = inputs.iter().position(|i| i.name == name)?;
    if inputs[at].datatype != "BYTES" {
        return None;
    }
    let element = match raw.get(at) {
        Some(bytes) => {
            let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            bytes.get(4..4usize.checked_add(len)?)?.to_vec()
        }
        None if raw.is_empty() => inputs[at]
            .contents
            .as_ref()?
            .bytes_contents
            .first()?
            .clone(),
        None => return None,
    };
    String::from_utf8(element).ok()
}

/// Takes the entity key inputs (BYTES tensors named for `join_keys`, shape `[n]` or
/// `[n, 1]`, UTF-8) out of a request, with their raw contents. `None` when the request
/// sends none of them; all of them, with one batch size, when it sends any.
pub fn take_entity_keys(
    inputs: &mut Vec<pb::model_infer_request::InferInputTensor>,
    raw: &mut Vec<Vec<u8>>,
    join_keys: &[String],
) -> Result<Option<Vec<Vec<String>>>, ServeError> {
    if !inputs.iter().any(|i| join_keys.contains(&i.name)) {
        return Ok(None);
    }
    let mut columns: Vec<Vec<String>> = Vec::with_capacity(join_keys.len());
    for key in join_keys {
        let field = || format!("inputs[{key}]");
        let at = inputs.iter().position(|i| &i.name == key).ok_or_else(|| {
            ServeError::invalid(
                field(),
                format!(
                    "entity key input '{key}' is missing; the entity is keyed by {join_keys:?}"
                ),
            )
        })?;
        let input = inputs.remove(at);
        let bytes = (!raw.is_empty() && at < raw.len()).then(|| raw.remove(at));
        if input.datatype != "BYTES" {
            return Err(ServeError::invalid(
                format!("{}.datatype", field()),
                format!("entity key '{key}' must be BYTES, not {}", input.datatype),
            ));
        }
        let n = match input.shape.as_slice() {
            [n] | [n, 1] => usize::try_from(*n).ok(),
            _ => None,
        }
        .ok_or_else(|| {
            ServeError::invalid(
                format!("{}.shape", field()),
                format!(
                    "entity key '{key}' must have shape [n] or [n, 1], not {:?}",
                    input.shape
                ),
            )
        })?;
        let data = match (bytes, input.contents) {
            (Some(b), _) => decode_raw(DType::Bytes, &b, n),
            (None, Some(c)) => decode_contents(DType::Bytes, c, n),
            (None, None) => Err(format!("entity key '{key}' has no data")),
        }
        .map_err(|m| ServeError::invalid(field(), m))?;
        let TensorData::Bytes(elements) = data else {
            return Err(ServeError::Internal("BYTES decoded as another type".into()));
        };
        let values = elements
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let value = String::from_utf8(e).map_err(|_| {
                    ServeError::invalid(field(), format!("element {i} of '{key}' is not UTF-8"))
                })?;
                crate::serving::lookup::check_key(format!("{}[{i}]", field()), &value)?;
                Ok(value)
            })
            .collect::<Result<Vec<_>, ServeError>>()?;
        if let Some(first) = columns.first()
            && first.len() != values.len()
        {
            return Err(ServeError::invalid(
                field(),
                format!(
                    "{} '{key}' values for {} entities",
                    values.len(),
                    first.len()
                ),
            ));
        }
        columns.push(values);
    }
    let n = columns.first().map_or(0, Vec::len);
    Ok(Some(
        (0..n)
            .map(|r| columns.iter().map(|c| c[r].clone()).collect())
            .collect(),
    ))
}

/// Decodes and checks a request's tensors against the model's signature. `prefilled`
/// holds inputs already assembled (from the feature store) by position, or is empty.
pub fn decode_request(
    inputs: Vec<pb::model_infer_request::InferInputTensor>,
    raw: Vec<Vec<u8>>,
    outputs: &[pb::model_infer_request::InferRequestedOutputTensor],
    model: &LoadedModel,
    prefilled: Vec<Option<Tensor>>,
) -> Result<DecodedRequest, ServeError> {
    let specs = model.model.inputs();
    check_layout(&inputs, &raw)?;
    let mut slots: Vec<Option<Tensor>> = if prefilled.is_empty() {
        vec![None; specs.len()]
    } else {
        prefilled
    };
    let mut raw = raw.into_iter();
    for input in inputs {
        decode_input(input, raw.next(), model, &mut slots)?;
    }
    let inputs: Vec<Tensor> = slots
        .into_iter()
        .zip(specs)
        .map(|(t, spec)| {
            t.ok_or_else(|| {
                ServeError::invalid(
                    format!("inputs[{}]", spec.name),
                    format!(
                        "input '{}' ({} {}) is missing",
                        spec.name,
                        spec.datatype,
                        spec.shape_text()
                    ),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let rows = batch_rows(&inputs, model)?;
    let wanted = wanted_outputs(outputs, model)?;
    Ok(DecodedRequest {
        inputs,
        wanted,
        rows,
    })
}

/// All inputs raw or all typed, and one raw entry per input.
fn check_layout(
    inputs: &[pb::model_infer_request::InferInputTensor],
    raw: &[Vec<u8>],
) -> Result<(), ServeError> {
    if raw.is_empty() {
        return Ok(());
    }
    if let Some(t) = inputs.iter().find(|t| t.contents.is_some()) {
        return Err(ServeError::invalid(
            format!("inputs[{}].contents", t.name),
            "a request must send all inputs as raw_input_contents or all as contents, not both",
        ));
    }
    if raw.len() != inputs.len() {
        return Err(ServeError::invalid(
            "raw_input_contents",
            format!(
                "{} raw entries for {} inputs; there must be one per input",
                raw.len(),
                inputs.len()
            ),
        ));
    }
    Ok(())
}

/// Decodes one input (`raw`: its raw contents, if the request sends them) into its slot
/// in the model's order, checked against its spec.
fn decode_input(
    input: pb::model_infer_request::InferInputTensor,
    raw: Option<Vec<u8>>,
    model: &LoadedModel,
    slots: &mut [Option<Tensor>],
) -> Result<(), ServeError> {
    let specs = model.model.inputs();
    let pb::model_infer_request::InferInputTensor {
        name,
        datatype,
        shape,
        parameters: _,
        contents,
    } = input;
    // Built only when an error needs it: the happy path allocates no messages.
    let field = || format!("inputs[{name}]");
    let position = specs.iter().position(|s| s.name == name).ok_or_else(|| {
        let expected: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        ServeError::invalid(
            field(),
            format!(
                "model '{}' has no input '{name}'; its inputs are {expected:?}",
                model.name
            ),
        )
    })?;
    if slots[position].is_some() {
        return Err(ServeError::invalid(
            field(),
            format!("input '{name}' is given twice"),
        ));
    }
    let dtype = DType::parse(&datatype).ok_or_else(|| {
        ServeError::invalid(
            format!("{}.datatype", field()),
            format!("'{datatype}' is not a V2 datatype"),
        )
    })?;
    let dims = shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| {
            ServeError::invalid(
                format!("{}.shape", field()),
                format!("shape {shape:?} has a negative dimension"),
            )
        })?;
    let count = mercator_runtime::tensor_element_count(&dims).ok_or_else(|| {
        ServeError::invalid(
            format!("{}.shape", field()),
            format!("shape {shape:?} is too large"),
        )
    })?;
    let data = match raw {
        Some(bytes) => decode_raw(dtype, &bytes, count),
        None => match contents {
            Some(c) => decode_contents(dtype, c, count),
            None => Err(format!(
                "input '{name}' has no data: send contents or raw_input_contents"
            )),
        },
    }
    .map_err(|message| ServeError::invalid(field(), format!("input '{name}': {message}")))?;
    let dims = super::signature::row_shape(&specs[position], dims);
    let tensor =
        Tensor::new(dims, data).map_err(|e| ServeError::invalid(field(), e.to_string()))?;
    specs[position].check(&tensor)?;
    slots[position] = Some(tensor);
    Ok(())
}

/// The batch size every input shares, within the version's largest batch.
fn batch_rows(inputs: &[Tensor], model: &LoadedModel) -> Result<usize, ServeError> {
    let specs = model.model.inputs();
    let rows = inputs
        .first()
        .and_then(|t| t.shape.first().copied())
        .unwrap_or(0);
    if let Some(t) = inputs
        .iter()
        .zip(specs)
        .find(|(t, _)| t.shape.first().copied() != Some(rows))
    {
        return Err(ServeError::invalid(
            format!("inputs[{}]", t.1.name),
            format!(
                "input '{}' has batch size {:?}, other inputs have {rows}",
                t.1.name,
                t.0.shape.first()
            ),
        ));
    }
    if rows > model.max_batch_size {
        return Err(ServeError::invalid(
            format!("inputs[{}].shape", specs[0].name),
            format!(
                "batch of {rows} rows exceeds the maximum of {} for model '{}'",
                model.max_batch_size, model.name
            ),
        ));
    }
    Ok(rows)
}

/// Indexes into the model's outputs of those the request asks for, in its order (all
/// when it names none).
fn wanted_outputs(
    outputs: &[pb::model_infer_request::InferRequestedOutputTensor],
    model: &LoadedModel,
) -> Result<Vec<usize>, ServeError> {
    let out_specs = model.model.outputs();
    if outputs.is_empty() {
        return Ok((0..out_specs.len()).collect());
    }
    outputs
        .iter()
        .map(|o| {
            if o.parameters.contains_key("classification") {
                return Err(ServeError::invalid(
                    format!("outputs[{}].parameters", o.name),
                    "classification outputs are not supported",
                ));
            }
            out_specs
                .iter()
                .position(|s| s.name == o.name)
                .ok_or_else(|| {
                    let known: Vec<&str> = out_specs.iter().map(|s| s.name.as_str()).collect();
                    ServeError::invalid(
                        format!("outputs[{}]", o.name),
                        format!(
                            "model '{}' has no output '{}'; its outputs are {known:?}",
                            model.name, o.name
                        ),
                    )
                })
        })
        .collect()
}
