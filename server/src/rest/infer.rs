//! `POST /v2/models/{name}[/versions/{v}]/infer` bodies, both ways: the JSON request
//! turned into a `ModelInferRequest`, and the `ModelInferResponse` turned back into JSON.
//! With Triton's binary tensor data extension, the body is a JSON header of
//! `Inference-Header-Content-Length` bytes followed by the inputs marked
//! `binary_data_size`, in order; outputs asked for with `binary_data` (or every output,
//! with the request's `binary_data_output`) come back the same way. Every input travels
//! on as raw contents, so JSON and binary inputs mix in one request.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mercator_proto::inference as pb;
use mercator_runtime::{DType, TensorData};
use pb::infer_parameter::ParameterChoice;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::RestError;
use super::tensors::{JsonData, check_utf8, from_json};
use crate::v2::tensors::{decode_contents, decode_raw, encode_raw};

/// The header giving the JSON part's length when binary data follows it.
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The most dimensions a tensor may have (Triton's limit is lower still).
const MAX_RANK: usize = 64;

/// Parameters the REST edge reads and does not pass on.
const BINARY_DATA_SIZE: &str = "binary_data_size";
const BINARY_DATA: &str = "binary_data";
const BINARY_DATA_OUTPUT: &str = "binary_data_output";

#[derive(Debug, Deserialize)]
struct RequestJson<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Params,
    #[serde(borrow)]
    inputs: Vec<InputJson<'a>>,
    #[serde(default)]
    outputs: Vec<OutputJson>,
}

#[derive(Debug, Deserialize)]
struct InputJson<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Params,
    /// The text of `data`, read once the datatype is known (`tensors::from_json`).
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct OutputJson {
    name: String,
    #[serde(default)]
    parameters: Params,
}

/// A `parameters` object. Values are kept only when they are scalars; anything else is
/// skipped over without being built (so a huge array costs no memory) and refused by
/// [`parameters_pb`], naming its key.
type Params = std::collections::BTreeMap<String, Param>;

/// One parameter's value as read.
#[derive(Debug, Clone)]
enum Param {
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(String),
    /// An array, an object or null.
    Other,
}

impl<'de> Deserialize<'de> for Param {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Param, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Param;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a parameter value")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Param, E> {
                Ok(Param::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Param, E> {
                Ok(Param::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Param, E> {
                Ok(Param::U64(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Param, E> {
                Ok(Param::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Param, E> {
                Ok(Param::Str(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Param, E> {
                Ok(Param::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Param, A::Error> {
                while a.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Param, A::Error> {
                while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Param::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// Which outputs the caller wants as binary data.
#[derive(Debug, Default)]
pub struct BinaryOutputs {
    /// The request's `binary_data_output`: every output not saying otherwise.
    all: bool,
    /// Outputs' own `binary_data`.
    named: HashMap<String, bool>,
}

impl BinaryOutputs {
    fn wants(&self, name: &str) -> bool {
        self.named.get(name).copied().unwrap_or(self.all)
    }
}

/// A request body for `model` (and `version`, empty for the model's routing) as a V2
/// request, and which outputs go back as binary.
pub fn parse(
    model: &str,
    version: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(pb::ModelInferRequest, BinaryOutputs), RestError> {
    let (json, mut binary) = split(headers, body)?;
    // Python's `json` writes a missing value as a bare NaN: quoted here for the parser.
    let json = super::nonfinite::quote(&json);
    let json = std::str::from_utf8(&json)
        .map_err(|e| RestError::invalid("request body", format!("not UTF-8: {e}")))?;
    let parsed: RequestJson = serde_json::from_str(json).map_err(|e| {
        RestError::invalid("request body", format!("not a V2 inference request: {e}"))
    })?;
    let mut request = pb::ModelInferRequest {
        model_name: model.to_string(),
        model_version: version.to_string(),
        id: parsed.id.unwrap_or_default(),
        ..Default::default()
    };
    let mut parameters = parsed.parameters;
    let all = take_bool(&mut parameters, BINARY_DATA_OUTPUT, "parameters")?;
    request.parameters = parameters_pb(parameters, "parameters")?;
    for input in parsed.inputs {
        let field = format!("inputs[{}]", input.name);
        let dtype = DType::parse(&input.datatype).ok_or_else(|| {
            RestError::invalid(
                format!("{field}.datatype"),
                format!("unknown datatype '{}'", input.datatype),
            )
        })?;
        let count = element_count(&input.shape).ok_or_else(|| {
            RestError::invalid(
                format!("{field}.shape"),
                "dimensions must be non-negative and their product fit in memory",
            )
        })?;
        if input.shape.len() > MAX_RANK {
            return Err(RestError::invalid(
                format!("{field}.shape"),
                format!("has {} dimensions, more than {MAX_RANK}", input.shape.len()),
            ));
        }
        let mut params = input.parameters;
        let raw = match take_size(&mut params, &field)? {
            Some(size) => {
                if input.data.is_some() {
                    return Err(RestError::invalid(
                        &field,
                        "has both data and binary_data_size",
                    ));
                }
                if size > binary.len() {
                    return Err(RestError::invalid(
                        format!("{field}.parameters.binary_data_size"),
                        format!(
                            "{size} bytes, but only {} bytes of binary data are left",
                            binary.len()
                        ),
                    ));
                }
                binary.split_to(size).to_vec()
            }
            None => {
                let data = input.data.ok_or_else(|| {
                    RestError::invalid(&field, "has neither data nor binary_data_size")
                })?;
                let typed = from_json(dtype, data.get(), count, &format!("{field}.data"))
                    .map_err(|e| RestError::from(tonic::Status::invalid_argument(e)))?;
                encode_raw(&typed)
            }
        };
        request
            .inputs
            .push(pb::model_infer_request::InferInputTensor {
                name: input.name,
                datatype: input.datatype,
                shape: input.shape,
                parameters: parameters_pb(params, &format!("{field}.parameters"))?,
                contents: None,
            });
        request.raw_input_contents.push(raw);
    }
    if !binary.is_empty() {
        return Err(RestError::invalid(
            "request body",
            format!(
                "{} bytes of binary data follow the inputs that claim them",
                binary.len()
            ),
        ));
    }
    let mut named = HashMap::new();
    for output in parsed.outputs {
        let field = format!("outputs[{}].parameters", output.name);
        let mut params = output.parameters;
        if params.contains_key(BINARY_DATA) {
            named.insert(
                output.name.clone(),
                take_bool(&mut params, BINARY_DATA, &field)?,
            );
        }
        request
            .outputs
            .push(pb::model_infer_request::InferRequestedOutputTensor {
                name: output.name,
                parameters: parameters_pb(params, &field)?,
            });
    }
    Ok((request, BinaryOutputs { all, named }))
}

/// The JSON part and the binary part of a body.
fn split(headers: &HeaderMap, body: &Bytes) -> Result<(Bytes, Bytes), RestError> {
    let Some(value) = headers.get(HEADER_LENGTH) else {
        return Ok((body.clone(), Bytes::new()));
    };
    let length = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| {
            RestError::invalid("Inference-Header-Content-Length", "must be a byte count")
        })?;
    if length > body.len() {
        return Err(RestError::invalid(
            "Inference-Header-Content-Length",
            format!("{length} bytes, but the body has {}", body.len()),
        ));
    }
    let mut json = body.clone();
    let binary = json.split_off(length);
    Ok((json, binary))
}

fn element_count(shape: &[i64]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?))
}

fn take_bool(params: &mut Params, key: &str, field: &str) -> Result<bool, RestError> {
    match params.remove(key) {
        None => Ok(false),
        Some(Param::Bool(b)) => Ok(b),
        Some(_) => Err(RestError::invalid(
            format!("{field}.{key}"),
            "must be true or false",
        )),
    }
}

fn take_size(params: &mut Params, field: &str) -> Result<Option<usize>, RestError> {
    let size = |v: Param| match v {
        Param::U64(n) => usize::try_from(n).ok(),
        Param::I64(n) => usize::try_from(n).ok(),
        _ => None,
    };
    match params.remove(BINARY_DATA_SIZE) {
        None => Ok(None),
        Some(v) => size(v).map(Some).ok_or_else(|| {
            RestError::invalid(
                format!("{field}.parameters.{BINARY_DATA_SIZE}"),
                "must be a byte count",
            )
        }),
    }
}

/// JSON parameters as V2 parameters: booleans, integers, numbers and strings.
fn parameters_pb(
    params: Params,
    field: &str,
) -> Result<HashMap<String, pb::InferParameter>, RestError> {
    params
        .into_iter()
        .map(|(key, value)| {
            let choice = match value {
                Param::Bool(b) => ParameterChoice::BoolParam(b),
                Param::Str(s) => ParameterChoice::StringParam(s),
                Param::I64(i) => ParameterChoice::Int64Param(i),
                Param::U64(u) => match i64::try_from(u) {
                    Ok(i) => ParameterChoice::Int64Param(i),
                    Err(_) => ParameterChoice::Uint64Param(u),
                },
                Param::F64(f) => ParameterChoice::DoubleParam(f),
                Param::Other => {
                    return Err(RestError::invalid(
                        format!("{field}.{key}"),
                        "must be a boolean, a number or a string",
                    ));
                }
            };
            Ok((
                key,
                pb::InferParameter {
                    parameter_choice: Some(choice),
                },
            ))
        })
        .collect()
}

/// A V2 parameter as JSON.
pub fn parameter_json(p: &pb::InferParameter) -> Value {
    match &p.parameter_choice {
        Some(ParameterChoice::BoolParam(b)) => Value::from(*b),
        Some(ParameterChoice::Int64Param(i)) => Value::from(*i),
        Some(ParameterChoice::Uint64Param(u)) => Value::from(*u),
        Some(ParameterChoice::DoubleParam(d)) => Value::from(*d),
        Some(ParameterChoice::StringParam(s)) => Value::from(s.as_str()),
        None => Value::Null,
    }
}

#[derive(Serialize)]
struct ResponseJson<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    id: &'a str,
    #[serde(skip_serializing_if = "Map::is_empty")]
    parameters: Map<String, Value>,
    outputs: Vec<OutputOut<'a>>,
}

#[derive(Serialize)]
struct OutputOut<'a> {
    name: &'a str,
    datatype: &'a str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<JsonData<'a>>,
}

/// The answer to a REST inference: JSON, with the binary outputs after it.
pub fn respond(
    response: &pb::ModelInferResponse,
    binary: &BinaryOutputs,
) -> Result<Response, RestError> {
    let (body, json_length) = response_body(response, binary)?;
    let Some(length) = json_length else {
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    };
    let mut answer = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
    answer
        .headers_mut()
        .insert(HEADER_LENGTH, HeaderValue::from(length));
    Ok(answer)
}

/// A response as the REST protocol's body: the JSON, then the outputs asked for as binary
/// data, with the JSON part's length when any are (else `None`: the body is all JSON).
pub fn response_body(
    response: &pb::ModelInferResponse,
    binary: &BinaryOutputs,
) -> Result<(Vec<u8>, Option<usize>), RestError> {
    let internal = |m: String| RestError::from(tonic::Status::internal(m));
    // Each output's data, decoded unless it goes back as binary.
    let mut decoded: Vec<Option<TensorData>> = Vec::with_capacity(response.outputs.len());
    let mut tail: Vec<u8> = Vec::new();
    let mut sizes: Vec<Option<usize>> = Vec::with_capacity(response.outputs.len());
    for (i, output) in response.outputs.iter().enumerate() {
        let dtype = DType::parse(&output.datatype).ok_or_else(|| {
            internal(format!(
                "output {} has datatype {}",
                output.name, output.datatype
            ))
        })?;
        let count = element_count(&output.shape).ok_or_else(|| {
            internal(format!(
                "output {} has shape {:?}",
                output.name, output.shape
            ))
        })?;
        let raw = response.raw_output_contents.get(i);
        if binary.wants(&output.name) {
            let bytes = match (raw, &output.contents) {
                (Some(raw), _) => raw.clone(),
                (None, Some(c)) => {
                    encode_raw(&decode_contents(dtype, c.clone(), count).map_err(internal)?)
                }
                (None, None) => Vec::new(),
            };
            sizes.push(Some(bytes.len()));
            tail.extend_from_slice(&bytes);
            decoded.push(None);
            continue;
        }
        let data = match (raw, &output.contents) {
            (Some(raw), _) => decode_raw(dtype, raw, count).map_err(internal)?,
            (None, Some(c)) => decode_contents(dtype, c.clone(), count).map_err(internal)?,
            (None, None) => decode_raw(dtype, &[], count).map_err(internal)?,
        };
        if let Err(at) = check_utf8(&data) {
            return Err(RestError::invalid(
                format!("outputs[{}]", output.name),
                format!(
                    "element {at} is not UTF-8, which JSON cannot carry: ask for it with binary_data"
                ),
            ));
        }
        sizes.push(None);
        decoded.push(Some(data));
    }
    let tokens = super::nonfinite::Tokens::default();
    let outputs = response
        .outputs
        .iter()
        .zip(&decoded)
        .zip(&sizes)
        .map(|((o, data), size)| OutputOut {
            name: &o.name,
            datatype: &o.datatype,
            shape: &o.shape,
            parameters: size.map(|n| serde_json::json!({ BINARY_DATA_SIZE: n })),
            data: data.as_ref().map(|data| JsonData {
                data,
                tokens: &tokens,
            }),
        })
        .collect();
    let body = ResponseJson {
        model_name: &response.model_name,
        model_version: &response.model_version,
        id: &response.id,
        parameters: response
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), parameter_json(v)))
            .collect(),
        outputs,
    };
    let json =
        serde_json::to_vec(&body).map_err(|e| internal(format!("writing the answer: {e}")))?;
    let mut json = tokens.restore(json);
    if sizes.iter().all(Option::is_none) {
        return Ok((json, None));
    }
    let length = json.len();
    json.extend_from_slice(&tail);
    Ok((json, Some(length)))
}
