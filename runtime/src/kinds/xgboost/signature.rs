//! The manifest's tensor signature checked against what the trees read and give.

use super::document::XgbSummary;
use super::{Objective, OutputValue};
use crate::{DType, Result, RuntimeError, TensorSpec};

pub(super) fn check_signature(
    summary: &XgbSummary,
    objective: Objective,
    inputs: &[TensorSpec],
    outputs: Vec<TensorSpec>,
    output_values: Vec<OutputValue>,
) -> Result<Signature> {
    if inputs.is_empty() {
        return Err(RuntimeError::Signature(
            "at least one input is needed".into(),
        ));
    }
    let mut widths = Vec::with_capacity(inputs.len());
    for spec in inputs {
        if !spec.datatype.is_numeric() {
            return Err(RuntimeError::Signature(format!(
                "input '{}' must be numeric, not BYTES",
                spec.name
            )));
        }
        match spec.shape.as_slice() {
            [-1, w] if *w >= 0 => widths.push(*w as usize),
            _ => {
                return Err(RuntimeError::Signature(format!(
                    "input '{}' must have shape [-1, width], not {:?}",
                    spec.name, spec.shape
                )));
            }
        }
    }
    let total: usize = widths.iter().sum();
    if total != summary.num_feature {
        return Err(RuntimeError::Signature(format!(
            "inputs give {total} features, the model has {}",
            summary.num_feature
        )));
    }
    if outputs.is_empty() || outputs.len() != output_values.len() {
        return Err(RuntimeError::Signature(
            "each output needs one value kind, and one output is needed".into(),
        ));
    }
    let classes = summary.num_class.max(1) as i64;
    for (spec, value) in outputs.iter().zip(&output_values) {
        if !matches!(spec.datatype, DType::F32 | DType::F64 | DType::F16) {
            return Err(RuntimeError::Signature(format!(
                "output '{}' must be FP32, FP64 or FP16",
                spec.name
            )));
        }
        if *value == OutputValue::Contributions {
            let columns = summary.num_feature as i64 + 1;
            let (ok, want) = if classes == 1 {
                (spec.shape == [-1, columns], format!("[-1, {columns}]"))
            } else {
                (
                    spec.shape == [-1, classes, columns],
                    format!("[-1, {classes}, {columns}]"),
                )
            };
            if !ok {
                return Err(RuntimeError::Signature(format!(
                    "output '{}' (contributions: one per feature, then the bias) must have shape {want}, not {:?}",
                    spec.name, spec.shape
                )));
            }
            continue;
        }
        let width = match (value, objective) {
            (OutputValue::Prediction, Objective::SoftProb)
            | (OutputValue::Margin, Objective::SoftProb | Objective::SoftMax) => classes,
            _ => 1,
        };
        let ok = match spec.shape.as_slice() {
            [-1] => width == 1,
            [-1, w] => *w == width,
            _ => false,
        };
        if !ok {
            let want = if width == 1 {
                "[-1] or [-1, 1]".to_string()
            } else {
                format!("[-1, {width}]")
            };
            return Err(RuntimeError::Signature(format!(
                "output '{}' ({value:?}) must have shape {want}, not {:?}",
                spec.name, spec.shape
            )));
        }
    }
    Ok((widths, outputs, output_values))
}

type Signature = (Vec<usize>, Vec<TensorSpec>, Vec<OutputValue>);
