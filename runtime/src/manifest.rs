//! The model manifest (`mercator.json`): what kind a version is, which file holds its
//! weights, and the tensors it takes and gives. The registry stores it, the server builds
//! models from it; both parse and check it here so they agree.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kinds::xgboost::{OutputValue, XgbModel};
use crate::{DType, Model, Result, RuntimeError, TensorSpec};

/// File name of the manifest inside a version's folder.
pub const MANIFEST_FILE: &str = "mercator.json";

/// A parsed manifest. Unknown keys are kept in `extra` so that a manifest written for a
/// newer Mercator round-trips unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Model kind, e.g. `xgboost`.
    pub kind: String,
    /// File (relative to the version's folder) holding the weights.
    pub weights: String,
    /// Input tensors, in the order the model reads them.
    pub inputs: Vec<InputManifest>,
    /// Output tensors.
    pub outputs: Vec<OutputManifest>,
    /// Largest batch (first dimension) a request may carry; 0 means the server's default.
    #[serde(default)]
    pub max_batch_size: u32,
    /// Free text shown to people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Everything else (labels, thresholds, feature bindings…), preserved as given.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One input tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputManifest {
    /// Tensor name clients send.
    pub name: String,
    /// V2 datatype name, e.g. `FP32`.
    pub datatype: DType,
    /// Shape with `-1` for any size; the first dimension is the batch.
    pub shape: Vec<i64>,
    /// Whether NaN is accepted (default true: trees treat it as missing).
    #[serde(default = "yes")]
    pub allow_nan: bool,
    /// Names of the columns, for people and drift reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_names: Vec<String>,
}

/// One output tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputManifest {
    /// Tensor name returned to clients.
    pub name: String,
    /// V2 datatype name, e.g. `FP32`.
    pub datatype: DType,
    /// Shape with `-1` for the batch dimension.
    pub shape: Vec<i64>,
    /// What the output carries (for trees: `prediction` or `margin`).
    #[serde(default)]
    pub value: OutputValue,
}

fn yes() -> bool {
    true
}

impl Manifest {
    /// Parses and checks a manifest: a known kind, a weights file, at least one input and
    /// one output, unique names, and shapes whose first dimension is the batch.
    pub fn parse(json: &[u8]) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_slice(json).map_err(|e| {
            RuntimeError::Signature(format!("{MANIFEST_FILE} is not a valid manifest: {e}"))
        })?;
        manifest.check()?;
        Ok(manifest)
    }

    fn check(&self) -> Result<()> {
        let fail = |m: String| Err(RuntimeError::Signature(m));
        if !KINDS.contains(&self.kind.as_str()) {
            return fail(format!(
                "kind '{}' is unknown; known kinds: {}",
                self.kind,
                KINDS.join(", ")
            ));
        }
        if self.weights.trim().is_empty() {
            return fail("'weights' must name the weights file".into());
        }
        if self.inputs.is_empty() {
            return fail("'inputs' must describe at least one input tensor".into());
        }
        if self.outputs.is_empty() {
            return fail("'outputs' must describe at least one output tensor".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        let tensors = self
            .inputs
            .iter()
            .map(|i| ("inputs", &i.name, &i.shape))
            .chain(self.outputs.iter().map(|o| ("outputs", &o.name, &o.shape)));
        for (section, name, shape) in tensors {
            if name.trim().is_empty() {
                return fail(format!("every entry of '{section}' needs a name"));
            }
            if !seen.insert((section, name)) {
                return fail(format!("'{section}' names '{name}' twice"));
            }
            if shape.is_empty() || shape.iter().any(|&d| d < -1) {
                return fail(format!(
                    "{section} '{name}': shape {shape:?} must be non-empty, with -1 or sizes >= 0"
                ));
            }
        }
        Ok(())
    }

    /// The input signature.
    pub fn input_specs(&self) -> Vec<TensorSpec> {
        self.inputs
            .iter()
            .map(|i| TensorSpec {
                name: i.name.clone(),
                datatype: i.datatype,
                shape: i.shape.clone(),
                allow_nan: i.allow_nan,
            })
            .collect()
    }

    /// The output signature.
    pub fn output_specs(&self) -> Vec<TensorSpec> {
        self.outputs
            .iter()
            .map(|o| TensorSpec {
                name: o.name.clone(),
                datatype: o.datatype,
                shape: o.shape.clone(),
                allow_nan: true,
            })
            .collect()
    }

    /// Builds the model from the weights file's bytes.
    pub fn build(&self, weights: &[u8]) -> Result<Box<dyn Model>> {
        match self.kind.as_str() {
            "xgboost" => Ok(Box::new(XgbModel::load(
                weights,
                self.input_specs(),
                self.output_specs(),
                self.outputs.iter().map(|o| o.value).collect(),
            )?)),
            other => Err(RuntimeError::Signature(format!(
                "kind '{other}' is unknown"
            ))),
        }
    }

    /// Infers a manifest for a bare XGBoost JSON model: one FP32 input `features`
    /// `[-1, num_feature]` and one FP32 output named for what the objective predicts.
    pub fn infer_for_xgboost(json: &[u8], weights_file: &str) -> Result<Manifest> {
        let s = crate::kinds::xgboost::summarize(json)?;
        let classes = s.num_class as i64;
        let (name, shape) = match s.objective.as_str() {
            "binary:logistic" | "reg:logistic" => ("probability", vec![-1]),
            "multi:softprob" => ("probabilities", vec![-1, classes]),
            "multi:softmax" => ("class", vec![-1]),
            _ => ("prediction", vec![-1]),
        };
        let manifest = Manifest {
            kind: "xgboost".into(),
            weights: weights_file.into(),
            inputs: vec![InputManifest {
                name: "features".into(),
                datatype: DType::F32,
                shape: vec![-1, s.num_feature as i64],
                allow_nan: true,
                feature_names: s.feature_names.clone(),
            }],
            outputs: vec![OutputManifest {
                name: name.into(),
                datatype: DType::F32,
                shape,
                value: OutputValue::Prediction,
            }],
            max_batch_size: 0,
            description: format!("XGBoost {} model with {} trees", s.objective, s.num_trees),
            extra: BTreeMap::new(),
        };
        manifest.check()?;
        Ok(manifest)
    }
}

/// Model kinds this runtime can build.
pub const KINDS: &[&str] = &["xgboost"];

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"kind":"xgboost","weights":"model.json",
        "inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}],
        "outputs":[{"name":"probability","datatype":"FP32","shape":[-1]}],
        "thresholds":{"high":0.7}}"#;

    #[test]
    fn parses_and_keeps_unknown_keys() {
        let m = Manifest::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(m.inputs[0].datatype, DType::F32);
        assert!(m.inputs[0].allow_nan);
        assert_eq!(m.extra["thresholds"]["high"], 0.7);
        let again: Manifest = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn refuses_manifests_without_signature() {
        for (bad, needle) in [
            (
                GOOD.replace(
                    r#""inputs":[{"name":"features","datatype":"FP32","shape":[-1,8]}]"#,
                    r#""inputs":[]"#,
                ),
                "inputs",
            ),
            (
                GOOD.replace(
                    r#""outputs":[{"name":"probability","datatype":"FP32","shape":[-1]}],"#,
                    "",
                ),
                "outputs",
            ),
            (
                GOOD.replace("FP32\",\"shape\":[-1,8]", "FLOAT\",\"shape\":[-1,8]"),
                "FLOAT",
            ),
            (GOOD.replace("xgboost", "pytorch"), "kind 'pytorch'"),
            (GOOD.replace("[-1,8]", "[]"), "shape"),
        ] {
            let err = Manifest::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
