//! Tensor data in the V2 REST protocol's JSON: a (possibly nested) array of elements in
//! row-major order, each a JSON value of the tensor's datatype — booleans, integers in
//! range, numbers, or strings for BYTES. Read into the runtime's typed data (which the
//! request then carries as raw contents, so JSON and binary inputs mix), and written back
//! as flat arrays, FP32 printed as FP32 (its shortest form, not a widened double's).

use mercator_runtime::{DType, TensorData};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::Value;

/// `data` (the `data` field of input `field`) as `count` elements of `dtype`.
pub fn from_json(
    dtype: DType,
    data: &Value,
    count: usize,
    field: &str,
) -> Result<TensorData, String> {
    let mut flat = Vec::with_capacity(count);
    flatten(data, &mut flat, 0).map_err(|e| format!("{field}: {e}"))?;
    if flat.len() != count {
        return Err(format!(
            "{field}: holds {} elements, but the shape gives {count}",
            flat.len()
        ));
    }
    let at = |i: usize| format!("{field}[{i}]");
    macro_rules! ints {
        ($variant:ident, $t:ty) => {
            TensorData::$variant(
                flat.iter()
                    .enumerate()
                    .map(|(i, v)| integer::<$t>(v).ok_or_else(|| not_a(&at(i), dtype, v)))
                    .collect::<Result<_, _>>()?,
            )
        };
    }
    let number = |i: usize, v: &Value| v.as_f64().ok_or_else(|| not_a(&at(i), dtype, v));
    Ok(match dtype {
        DType::Bool => TensorData::Bool(
            flat.iter()
                .enumerate()
                .map(|(i, v)| v.as_bool().ok_or_else(|| not_a(&at(i), dtype, v)))
                .collect::<Result<_, _>>()?,
        ),
        DType::U8 => ints!(U8, u8),
        DType::U16 => ints!(U16, u16),
        DType::U32 => ints!(U32, u32),
        DType::U64 => ints!(U64, u64),
        DType::I8 => ints!(I8, i8),
        DType::I16 => ints!(I16, i16),
        DType::I32 => ints!(I32, i32),
        DType::I64 => ints!(I64, i64),
        DType::F16 => TensorData::F16(
            flat.iter()
                .enumerate()
                .map(|(i, v)| number(i, v).map(|x| half::f16::from_f64(x).to_bits()))
                .collect::<Result<_, _>>()?,
        ),
        DType::BF16 => TensorData::BF16(
            flat.iter()
                .enumerate()
                .map(|(i, v)| number(i, v).map(|x| half::bf16::from_f64(x).to_bits()))
                .collect::<Result<_, _>>()?,
        ),
        DType::F32 => TensorData::F32(
            flat.iter()
                .enumerate()
                .map(|(i, v)| number(i, v).map(|x| x as f32))
                .collect::<Result<_, _>>()?,
        ),
        DType::F64 => TensorData::F64(
            flat.iter()
                .enumerate()
                .map(|(i, v)| number(i, v))
                .collect::<Result<_, _>>()?,
        ),
        DType::Bytes => TensorData::Bytes(
            flat.iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(|s| s.as_bytes().to_vec())
                        .ok_or_else(|| not_a(&at(i), dtype, v))
                })
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Nesting deeper than any tensor's rank a client could mean (and than the stack wants).
const MAX_DEPTH: usize = 64;

fn flatten<'a>(value: &'a Value, out: &mut Vec<&'a Value>, depth: usize) -> Result<(), String> {
    match value {
        Value::Array(items) if depth < MAX_DEPTH => {
            for item in items {
                flatten(item, out, depth + 1)?;
            }
            Ok(())
        }
        Value::Array(_) => Err(format!("nested more than {MAX_DEPTH} deep")),
        _ if depth == 0 => Err("must be an array".into()),
        other => {
            out.push(other);
            Ok(())
        }
    }
}

fn integer<T: TryFrom<i64> + TryFrom<u64>>(v: &Value) -> Option<T> {
    match (v.as_i64(), v.as_u64()) {
        (Some(i), _) => T::try_from(i).ok(),
        (None, Some(u)) => T::try_from(u).ok(),
        _ => None,
    }
}

fn not_a(at: &str, dtype: DType, v: &Value) -> String {
    let shown: String = v.to_string().chars().take(40).collect();
    format!("{at}: {shown} is not a {dtype} value")
}

/// Tensor data written as a flat JSON array. BYTES elements must be UTF-8 (JSON has no
/// bytes): [`check_utf8`] first.
pub struct JsonData<'a>(pub &'a TensorData);

/// Whether every BYTES element is text; other datatypes always are writable.
pub fn check_utf8(data: &TensorData) -> Result<(), usize> {
    match data {
        TensorData::Bytes(elements) => match elements
            .iter()
            .position(|e| std::str::from_utf8(e).is_err())
        {
            Some(i) => Err(i),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn all<S: Serializer, T: Serialize>(
            s: S,
            v: impl ExactSizeIterator<Item = T>,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for x in v {
                seq.serialize_element(&x)?;
            }
            seq.end()
        }
        match self.0 {
            TensorData::Bool(v) => all(serializer, v.iter()),
            TensorData::U8(v) => all(serializer, v.iter()),
            TensorData::U16(v) => all(serializer, v.iter()),
            TensorData::U32(v) => all(serializer, v.iter()),
            TensorData::U64(v) => all(serializer, v.iter()),
            TensorData::I8(v) => all(serializer, v.iter()),
            TensorData::I16(v) => all(serializer, v.iter()),
            TensorData::I32(v) => all(serializer, v.iter()),
            TensorData::I64(v) => all(serializer, v.iter()),
            TensorData::F16(v) => all(
                serializer,
                v.iter().map(|b| half::f16::from_bits(*b).to_f32()),
            ),
            TensorData::BF16(v) => all(
                serializer,
                v.iter().map(|b| half::bf16::from_bits(*b).to_f32()),
            ),
            TensorData::F32(v) => all(serializer, v.iter()),
            TensorData::F64(v) => all(serializer, v.iter()),
            TensorData::Bytes(v) => all(serializer, v.iter().map(|e| String::from_utf8_lossy(e))),
        }
    }
}
