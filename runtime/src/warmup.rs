//! Warm-up samples: requests a version runs once when it loads, before it serves, so the
//! first real request pays for nothing lazy and a version that cannot answer them is
//! never swapped in. The manifest lists them under `warmup`, one object per sample
//! mapping each input's name to its value as nested JSON arrays (numbers, `null` for NaN,
//! booleans, or strings for BYTES):
//!
//! ```json
//! "warmup": [{"history": [[12, 15, 9, 14]], "last_date": ["2026-10-31"]}]
//! ```

use serde_json::Value;

use crate::{DType, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// The manifest's warm-up samples as input tensors, in the order of `inputs`; empty when
/// it lists none. Each is checked against the signature.
pub fn samples(
    extra: &std::collections::BTreeMap<String, Value>,
    inputs: &[TensorSpec],
) -> Result<Vec<Vec<Tensor>>> {
    let Some(list) = extra.get("warmup") else {
        return Ok(Vec::new());
    };
    let bad = |m: String| RuntimeError::Signature(format!("warmup{m}"));
    let list = list
        .as_array()
        .ok_or_else(|| bad(": must be a list of samples".into()))?;
    list.iter()
        .enumerate()
        .map(|(i, sample)| {
            let sample = sample
                .as_object()
                .ok_or_else(|| bad(format!("[{i}]: must map input names to values")))?;
            if let Some(name) = sample
                .keys()
                .find(|k| !inputs.iter().any(|s| &s.name == *k))
            {
                return Err(bad(format!("[{i}]: the model has no input '{name}'")));
            }
            inputs
                .iter()
                .map(|spec| {
                    let value = sample
                        .get(&spec.name)
                        .ok_or_else(|| bad(format!("[{i}]: input '{}' is missing", spec.name)))?;
                    tensor(value, spec).map_err(|m| bad(format!("[{i}].{}: {m}", spec.name)))
                })
                .collect()
        })
        .collect()
}

/// The shape of a rectangular nested array and its leaves, row-major.
fn flatten<'v>(
    value: &'v Value,
    shape: &mut Vec<usize>,
    depth: usize,
    leaves: &mut Vec<&'v Value>,
) -> std::result::Result<(), String> {
    match value {
        Value::Array(items) => {
            match shape.get(depth) {
                Some(&n) if n != items.len() => {
                    return Err(format!(
                        "ragged: {} items where {n} were expected",
                        items.len()
                    ));
                }
                Some(_) => {}
                None if leaves.is_empty() => shape.push(items.len()),
                None => return Err("ragged: an array where a value was expected".into()),
            }
            items
                .iter()
                .try_for_each(|item| flatten(item, shape, depth + 1, leaves))
        }
        leaf => {
            if depth != shape.len() {
                return Err("ragged: a value where an array was expected".into());
            }
            leaves.push(leaf);
            Ok(())
        }
    }
}

fn tensor(value: &Value, spec: &TensorSpec) -> std::result::Result<Tensor, String> {
    let (mut shape, mut leaves) = (Vec::new(), Vec::new());
    flatten(value, &mut shape, 0, &mut leaves)?;
    let number = |v: &Value| -> std::result::Result<f64, String> {
        match v {
            Value::Null => Ok(f64::NAN),
            Value::Bool(b) => Ok(f64::from(u8::from(*b))),
            other => other
                .as_f64()
                .ok_or_else(|| format!("{other} is not a number")),
        }
    };
    let numbers = || {
        leaves
            .iter()
            .map(|v| number(v))
            .collect::<std::result::Result<Vec<f64>, _>>()
    };
    let data = match spec.datatype {
        DType::Bytes => TensorData::Bytes(
            leaves
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.as_bytes().to_vec())
                        .ok_or_else(|| format!("{v} is not a string"))
                })
                .collect::<std::result::Result<_, _>>()?,
        ),
        DType::Bool => TensorData::Bool(numbers()?.into_iter().map(|x| x != 0.0).collect()),
        DType::U8 => TensorData::U8(numbers()?.into_iter().map(|x| x as u8).collect()),
        DType::U16 => TensorData::U16(numbers()?.into_iter().map(|x| x as u16).collect()),
        DType::U32 => TensorData::U32(numbers()?.into_iter().map(|x| x as u32).collect()),
        DType::U64 => TensorData::U64(numbers()?.into_iter().map(|x| x as u64).collect()),
        DType::I8 => TensorData::I8(numbers()?.into_iter().map(|x| x as i8).collect()),
        DType::I16 => TensorData::I16(numbers()?.into_iter().map(|x| x as i16).collect()),
        DType::I32 => TensorData::I32(numbers()?.into_iter().map(|x| x as i32).collect()),
        DType::I64 => TensorData::I64(numbers()?.into_iter().map(|x| x as i64).collect()),
        DType::F16 => TensorData::F16(
            numbers()?
                .into_iter()
                .map(|x| half::f16::from_f64(x).to_bits())
                .collect(),
        ),
        DType::BF16 => TensorData::BF16(
            numbers()?
                .into_iter()
                .map(|x| half::bf16::from_f64(x).to_bits())
                .collect(),
        ),
        DType::F32 => TensorData::F32(numbers()?.into_iter().map(|x| x as f32).collect()),
        DType::F64 => TensorData::F64(numbers()?),
    };
    let t = Tensor::new(shape, data).map_err(|e| e.to_string())?;
    spec.check(&t).map_err(|e| e.to_string())?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, datatype: DType, shape: Vec<i64>) -> TensorSpec {
        TensorSpec {
            name: name.into(),
            datatype,
            shape,
            allow_nan: true,
        }
    }

    fn extra(json: &str) -> std::collections::BTreeMap<String, Value> {
        serde_json::from_str(json).expect("json")
    }

    #[test]
    fn samples_become_typed_tensors() {
        let inputs = [
            spec("history", DType::F32, vec![-1, -1]),
            spec("last_date", DType::Bytes, vec![-1]),
        ];
        let got = samples(
            &extra(r#"{"warmup": [{"history": [[1, 2.5, null]], "last_date": ["2026-10-31"]}]}"#),
            &inputs,
        )
        .expect("samples");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0][0].shape, [1, 3]);
        let TensorData::F32(v) = &got[0][0].data else {
            panic!("FP32")
        };
        assert_eq!(&v[..2], &[1.0, 2.5]);
        assert!(v[2].is_nan());
        assert_eq!(
            got[0][1].data,
            TensorData::Bytes(vec![b"2026-10-31".to_vec()])
        );
        assert!(samples(&extra("{}"), &inputs).expect("none").is_empty());
    }

    #[test]
    fn bad_samples_are_named() {
        let inputs = [spec("x", DType::F32, vec![-1, 2])];
        for (json, needle) in [
            (r#"{"warmup": {"x": 1}}"#, "list of samples"),
            (r#"{"warmup": [[1]]}"#, "warmup[0]: must map"),
            (r#"{"warmup": [{}]}"#, "input 'x' is missing"),
            (r#"{"warmup": [{"x": [[1, 2]], "y": [1]}]}"#, "no input 'y'"),
            (r#"{"warmup": [{"x": [[1, 2], [3]]}]}"#, "ragged"),
            (r#"{"warmup": [{"x": [[1, [2]]]}]}"#, "ragged"),
            (r#"{"warmup": [{"x": [["a", "b"]]}]}"#, "not a number"),
            (r#"{"warmup": [{"x": [[1, 2, 3]]}]}"#, "warmup[0].x"),
        ] {
            let err = samples(&extra(json), &inputs)
                .expect_err(needle)
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
