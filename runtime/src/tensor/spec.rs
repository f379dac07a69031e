//! What a model takes and gives: tensor specs and the checks of a request's tensors
//! against them (datatype, shape, NaN and infinities), and batches of row-shaped inputs.

use serde::{Deserialize, Serialize};

use super::{DType, Tensor};
use crate::{Result, RuntimeError};

/// A tensor a model takes or gives: name, datatype and shape, where `-1` marks a
/// dimension of any size (the batch dimension, usually).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSpec {
    /// Tensor name, as clients send it.
    pub name: String,
    /// Element type.
    pub datatype: DType,
    /// Dimensions; `-1` for any size.
    pub shape: Vec<i64>,
    /// Whether NaN is an acceptable value (trees treat it as missing; most nets do not).
    #[serde(default = "default_allow_nan")]
    pub allow_nan: bool,
}

fn default_allow_nan() -> bool {
    true
}

impl TensorSpec {
    /// Checks a tensor against this spec: datatype, rank, every fixed dimension, and NaN
    /// when the spec forbids it. The error names the tensor and says what was expected.
    pub fn check(&self, tensor: &Tensor) -> Result<()> {
        if tensor.dtype() != self.datatype {
            return Err(RuntimeError::input(
                &self.name,
                format!(
                    "datatype {} given, model expects {}",
                    tensor.dtype(),
                    self.datatype
                ),
            ));
        }
        let shape_ok = tensor.shape.len() == self.shape.len()
            && self
                .shape
                .iter()
                .zip(&tensor.shape)
                .all(|(&want, &got)| want < 0 || want as u64 == got as u64);
        if !shape_ok {
            return Err(RuntimeError::input(
                &self.name,
                format!(
                    "shape {:?} given, model expects {}",
                    tensor.shape,
                    self.shape_text()
                ),
            ));
        }
        // A model that takes no NaN takes no infinity either: both poison a net's sums.
        if !self.allow_nan
            && let Some(i) = tensor.data.first_non_finite()
        {
            let what = if tensor.data.first_nan() == Some(i) {
                "NaN"
            } else {
                "infinite"
            };
            return Err(RuntimeError::input(
                &self.name,
                format!("element {i} is {what}, which this model does not accept"),
            ));
        }
        Ok(())
    }

    /// The shape as text, with `-1` shown as `-1`, e.g. `[-1, 8]`.
    pub fn shape_text(&self) -> String {
        format!("{:?}", self.shape)
    }
}

/// The spec of output `k` of a model whose outputs are `outputs`: every kind answers
/// the indexes a request asked for through this, so an index past the outputs is one
/// error wherever it comes from.
pub(crate) fn output_spec(outputs: &[TensorSpec], k: usize) -> Result<&TensorSpec> {
    outputs
        .get(k)
        .ok_or_else(|| RuntimeError::UnknownOutput(k.to_string()))
}

/// Checks a batch against a model's row-shaped inputs (`[rows, width]` each, one width per
/// spec) and returns the number of rows: one tensor per spec, all with the same rows.
pub fn batch_rows(
    inputs: &[Tensor],
    specs: &[TensorSpec],
    widths: &[usize],
) -> crate::Result<usize> {
    if inputs.len() != specs.len() {
        return Err(crate::RuntimeError::input(
            "",
            format!("{} inputs given, {} expected", inputs.len(), specs.len()),
        ));
    }
    let rows = inputs
        .first()
        .and_then(|t| t.shape.first().copied())
        .unwrap_or(0);
    for ((tensor, spec), &width) in inputs.iter().zip(specs).zip(widths) {
        if tensor.shape.first().copied() != Some(rows) {
            return Err(crate::RuntimeError::input(
                &spec.name,
                format!(
                    "has {:?} rows, the first input has {rows}",
                    tensor.shape.first()
                ),
            ));
        }
        if tensor.data.len() != rows * width {
            return Err(crate::RuntimeError::input(
                &spec.name,
                format!("must hold {rows} rows of {width} values"),
            ));
        }
    }
    Ok(rows)
}

/// The inputs side by side as one row-major f32 matrix of `rows × widths.sum()`, each
/// element converted as [`TensorData::copy_into_f32`] does.
pub fn concat_f32(
    inputs: &[Tensor],
    specs: &[TensorSpec],
    widths: &[usize],
    rows: usize,
) -> crate::Result<Vec<f32>> {
    let stride: usize = widths.iter().sum();
    let mut out = vec![0.0f32; rows * stride];
    let mut col = 0;
    for ((tensor, spec), &width) in inputs.iter().zip(specs).zip(widths) {
        tensor
            .data
            .copy_into_f32(width, &mut out, stride, col)
            .ok_or_else(|| crate::RuntimeError::input(&spec.name, "must be numeric"))?;
        col += width;
    }
    Ok(out)
}
