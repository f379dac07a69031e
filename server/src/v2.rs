//! KServe V2 tensor decoding and encoding.
//!
//! Inputs arrive either all as `raw_input_contents` (row-major little-endian bytes, one
//! entry per input; BYTES elements each prefixed by a 4-byte little-endian length) or all
//! as typed `contents`; a request that mixes the two is refused. Outputs go back as
//! `raw_output_contents`, which is what Triton returns and the only thing `tritonclient`
//! reads. Every length is checked before anything is allocated from it.

use mercator_proto::inference::{self as pb, InferTensorContents};
use mercator_runtime::{DType, Tensor, TensorData};

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
                String::from_utf8(e).map_err(|_| {
                    ServeError::invalid(field(), format!("element {i} of '{key}' is not UTF-8"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
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
    if !raw.is_empty() {
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
    }
    let mut slots: Vec<Option<Tensor>> = if prefilled.is_empty() {
        vec![None; specs.len()]
    } else {
        prefilled
    };
    let mut raw = raw.into_iter();
    for input in inputs {
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
        let data = match raw.next() {
            Some(bytes) => decode_raw(dtype, &bytes, count),
            None => match contents {
                Some(c) => decode_contents(dtype, c, count),
                None => Err(format!(
                    "input '{name}' has no data: send contents or raw_input_contents"
                )),
            },
        }
        .map_err(|message| ServeError::invalid(field(), format!("input '{name}': {message}")))?;
        let tensor =
            Tensor::new(dims, data).map_err(|e| ServeError::invalid(field(), e.to_string()))?;
        specs[position].check(&tensor)?;
        slots[position] = Some(tensor);
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

    let out_specs = model.model.outputs();
    let wanted = if outputs.is_empty() {
        (0..out_specs.len()).collect()
    } else {
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
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(DecodedRequest {
        inputs,
        wanted,
        rows,
    })
}

fn le_chunks<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().unwrap_or([0; N])))
        .collect()
}

/// Decodes raw little-endian contents holding `count` elements.
pub fn decode_raw(dtype: DType, bytes: &[u8], count: usize) -> Result<TensorData, String> {
    let Some(size) = dtype.size_bytes() else {
        return decode_bytes_elements(bytes, count).map(TensorData::Bytes);
    };
    let expected = count.checked_mul(size).ok_or("shape is too large")?;
    if bytes.len() != expected {
        return Err(format!(
            "raw contents hold {} bytes, but {count} {dtype} elements need {expected}",
            bytes.len()
        ));
    }
    Ok(match dtype {
        DType::Bool => TensorData::Bool(bytes.iter().map(|&b| b != 0).collect()),
        DType::U8 => TensorData::U8(bytes.to_vec()),
        DType::I8 => TensorData::I8(bytes.iter().map(|&b| b as i8).collect()),
        DType::U16 => TensorData::U16(le_chunks(bytes, u16::from_le_bytes)),
        DType::I16 => TensorData::I16(le_chunks(bytes, i16::from_le_bytes)),
        DType::F16 => TensorData::F16(le_chunks(bytes, u16::from_le_bytes)),
        DType::BF16 => TensorData::BF16(le_chunks(bytes, u16::from_le_bytes)),
        DType::U32 => TensorData::U32(le_chunks(bytes, u32::from_le_bytes)),
        DType::I32 => TensorData::I32(le_chunks(bytes, i32::from_le_bytes)),
        DType::F32 => TensorData::F32(le_chunks(bytes, f32::from_le_bytes)),
        DType::U64 => TensorData::U64(le_chunks(bytes, u64::from_le_bytes)),
        DType::I64 => TensorData::I64(le_chunks(bytes, i64::from_le_bytes)),
        DType::F64 => TensorData::F64(le_chunks(bytes, f64::from_le_bytes)),
        DType::Bytes => return Err("unreachable: BYTES has no fixed size".into()),
    })
}

/// Splits raw BYTES contents: each element is a 4-byte little-endian length and then
/// that many bytes. The element count must match the shape exactly.
pub fn decode_bytes_elements(bytes: &[u8], count: usize) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    let mut rest = bytes;
    while !rest.is_empty() {
        if out.len() == count {
            return Err(format!(
                "raw BYTES contents hold more than the {count} elements the shape gives"
            ));
        }
        let (len, tail) = rest.split_first_chunk::<4>().ok_or_else(|| {
            format!(
                "raw BYTES element {} has a truncated 4-byte length prefix",
                out.len()
            )
        })?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > tail.len() {
            return Err(format!(
                "raw BYTES element {} claims {len} bytes but only {} remain",
                out.len(),
                tail.len()
            ));
        }
        let (element, tail) = tail.split_at(len);
        out.push(element.to_vec());
        rest = tail;
    }
    if out.len() != count {
        return Err(format!(
            "raw BYTES contents hold {} elements, the shape gives {count}",
            out.len()
        ));
    }
    Ok(out)
}

/// Decodes typed contents holding `count` elements of `dtype`; any other field that
/// holds values is an error, as is a value out of the type's range.
pub fn decode_contents(
    dtype: DType,
    c: InferTensorContents,
    count: usize,
) -> Result<TensorData, String> {
    let InferTensorContents {
        bool_contents,
        int_contents,
        int64_contents,
        uint_contents,
        uint64_contents,
        fp32_contents,
        fp64_contents,
        bytes_contents,
    } = c;
    let lens = [
        ("bool_contents", bool_contents.len()),
        ("int_contents", int_contents.len()),
        ("int64_contents", int64_contents.len()),
        ("uint_contents", uint_contents.len()),
        ("uint64_contents", uint64_contents.len()),
        ("fp32_contents", fp32_contents.len()),
        ("fp64_contents", fp64_contents.len()),
        ("bytes_contents", bytes_contents.len()),
    ];
    let field = match dtype {
        DType::Bool => "bool_contents",
        DType::I8 | DType::I16 | DType::I32 => "int_contents",
        DType::I64 => "int64_contents",
        DType::U8 | DType::U16 | DType::U32 => "uint_contents",
        DType::U64 => "uint64_contents",
        DType::F32 => "fp32_contents",
        DType::F64 => "fp64_contents",
        DType::Bytes => "bytes_contents",
        DType::F16 | DType::BF16 => {
            return Err(format!(
                "{dtype} has no typed contents field; send raw_input_contents"
            ));
        }
    };
    if let Some((other, _)) = lens.iter().find(|(name, len)| *name != field && *len > 0) {
        return Err(format!(
            "{dtype} data belongs in contents.{field}, but contents.{other} holds values"
        ));
    }
    let given = lens
        .iter()
        .find(|(name, _)| *name == field)
        .map_or(0, |(_, l)| *l);
    if given != count {
        return Err(format!(
            "contents.{field} holds {given} elements, the shape gives {count}"
        ));
    }
    fn narrow<S: Copy + std::fmt::Display, T: TryFrom<S>>(
        v: Vec<S>,
        dtype: DType,
    ) -> Result<Vec<T>, String> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| {
                T::try_from(x).map_err(|_| format!("element {i} ({x}) is out of range for {dtype}"))
            })
            .collect()
    }
    Ok(match dtype {
        DType::Bool => TensorData::Bool(bool_contents),
        DType::I8 => TensorData::I8(narrow(int_contents, dtype)?),
        DType::I16 => TensorData::I16(narrow(int_contents, dtype)?),
        DType::I32 => TensorData::I32(int_contents),
        DType::I64 => TensorData::I64(int64_contents),
        DType::U8 => TensorData::U8(narrow(uint_contents, dtype)?),
        DType::U16 => TensorData::U16(narrow(uint_contents, dtype)?),
        DType::U32 => TensorData::U32(uint_contents),
        DType::U64 => TensorData::U64(uint64_contents),
        DType::F32 => TensorData::F32(fp32_contents),
        DType::F64 => TensorData::F64(fp64_contents),
        DType::Bytes => TensorData::Bytes(bytes_contents),
        DType::F16 | DType::BF16 => return Err(format!("{dtype} has no typed contents field")),
    })
}

/// Encodes a tensor's elements as raw little-endian bytes (BYTES length-prefixed).
pub fn encode_raw(data: &TensorData) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = Vec::with_capacity(v.len() * N);
        for &x in v {
            out.extend_from_slice(&f(x));
        }
        out
    }
    match data {
        TensorData::Bool(v) => v.iter().map(|&b| u8::from(b)).collect(),
        TensorData::U8(v) => v.clone(),
        TensorData::I8(v) => v.iter().map(|&x| x as u8).collect(),
        TensorData::U16(v) | TensorData::F16(v) | TensorData::BF16(v) => le(v, u16::to_le_bytes),
        TensorData::I16(v) => le(v, i16::to_le_bytes),
        TensorData::U32(v) => le(v, u32::to_le_bytes),
        TensorData::I32(v) => le(v, i32::to_le_bytes),
        TensorData::F32(v) => le(v, f32::to_le_bytes),
        TensorData::U64(v) => le(v, u64::to_le_bytes),
        TensorData::I64(v) => le(v, i64::to_le_bytes),
        TensorData::F64(v) => le(v, f64::to_le_bytes),
        TensorData::Bytes(v) => {
            let mut out = Vec::with_capacity(v.iter().map(|e| e.len() + 4).sum());
            for e in v {
                out.extend_from_slice(&(e.len() as u32).to_le_bytes());
                out.extend_from_slice(e);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_round_trips_every_datatype() {
        let samples = [
            TensorData::Bool(vec![true, false]),
            TensorData::U8(vec![0, 255]),
            TensorData::I8(vec![-128, 127]),
            TensorData::U16(vec![1, 65535]),
            TensorData::I16(vec![-32768, 7]),
            TensorData::U32(vec![u32::MAX, 3]),
            TensorData::I32(vec![i32::MIN, 9]),
            TensorData::U64(vec![u64::MAX, 0]),
            TensorData::I64(vec![i64::MIN, 1]),
            TensorData::F16(vec![0x3c00, 0xc000]),
            TensorData::BF16(vec![0x3f80, 0x0000]),
            TensorData::F32(vec![1.5, -0.25]),
            TensorData::F64(vec![1e300, -2.5]),
            TensorData::Bytes(vec![b"hello".to_vec(), vec![]]),
        ];
        for data in samples {
            let bytes = encode_raw(&data);
            assert_eq!(
                decode_raw(data.dtype(), &bytes, 2).unwrap(),
                data,
                "{}",
                data.dtype()
            );
        }
    }

    #[test]
    fn raw_lengths_are_checked() {
        let e = decode_raw(DType::F32, &[0; 7], 2).unwrap_err();
        assert!(e.contains("7 bytes") && e.contains("need 8"), "{e}");
        assert!(decode_raw(DType::F64, &[0; 8], usize::MAX).is_err());
    }

    #[test]
    fn bytes_elements_are_bounds_checked() {
        let mut ok = 3u32.to_le_bytes().to_vec();
        ok.extend_from_slice(b"abc");
        assert_eq!(
            decode_bytes_elements(&ok, 1).unwrap(),
            vec![b"abc".to_vec()]
        );
        assert!(
            decode_bytes_elements(&ok, 2)
                .unwrap_err()
                .contains("1 elements")
        );
        assert!(
            decode_bytes_elements(&ok, 0)
                .unwrap_err()
                .contains("more than")
        );
        let mut lying = 1000u32.to_le_bytes().to_vec();
        lying.extend_from_slice(b"abc");
        assert!(
            decode_bytes_elements(&lying, 1)
                .unwrap_err()
                .contains("claims 1000")
        );
        assert!(
            decode_bytes_elements(&[1, 0], 1)
                .unwrap_err()
                .contains("truncated")
        );
        assert!(decode_bytes_elements(&[], 0).unwrap().is_empty());
    }

    #[test]
    fn typed_contents_are_checked() {
        let c = InferTensorContents {
            int_contents: vec![1, 300],
            ..Default::default()
        };
        assert!(
            decode_contents(DType::I8, c.clone(), 2)
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(
            decode_contents(DType::I16, c.clone(), 2).unwrap(),
            TensorData::I16(vec![1, 300])
        );
        assert!(
            decode_contents(DType::I32, c.clone(), 3)
                .unwrap_err()
                .contains("holds 2")
        );
        assert!(
            decode_contents(DType::F32, c, 2)
                .unwrap_err()
                .contains("int_contents")
        );
        assert!(decode_contents(DType::F16, InferTensorContents::default(), 0).is_err());
    }

    proptest::proptest! {
        /// Whatever bytes, datatype and element count a client sends, decoding returns a
        /// tensor or an error, never a panic, and a decoded tensor has exactly `count`
        /// elements.
        #[test]
        fn raw_decoding_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            dtype in proptest::sample::select(DType::ALL.to_vec()),
            count in proptest::prop_oneof![0usize..80, proptest::prelude::Just(usize::MAX)],
        ) {
            if let Ok(data) = decode_raw(dtype, &bytes, count) {
                proptest::prop_assert_eq!(data.len(), count);
                proptest::prop_assert_eq!(data.dtype(), dtype);
            }
        }
    }
}
