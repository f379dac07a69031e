//! Two-model (T-learner) uplift: one XGBoost booster trained on the customers who got an
//! action, one on those who did not, both predicting the same binary outcome. Per
//! customer the model answers both probabilities and how much the action moves the
//! favourable outcome's probability, so an action can go to the customers it changes
//! rather than to those most at risk (Künzel et al., "Metalearners for estimating
//! heterogeneous treatment effects", PNAS 2019).
//!
//! The weights file is one JSON object holding both boosters as XGBoost saves them
//! (`Booster.save_model("x.json")`), which `mercator.export.export_uplift` writes:
//!
//! ```json
//! {"format": "mercator-uplift", "treated": {…xgboost JSON…}, "control": {…xgboost JSON…}}
//! ```
//!
//! Outputs are chosen by name: `p_treated` and `p_control` (each booster's probability of
//! the outcome, as `predict_proba(x)[:, 1]`), and `uplift`, their difference signed so
//! that a positive uplift means the action makes the favourable outcome likelier: for an
//! outcome people want (a purchase, `"favourable_outcome": 1`, the default) it is
//! `p_treated − p_control`; for one they do not (churn, `"favourable_outcome": 0`) it is
//! `p_control − p_treated`, the fall in churn the action brings.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::xgboost::{OutputValue, XgbModel};
use crate::{DType, Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// The names an uplift model's outputs may take.
pub const OUTPUTS: [&str; 3] = ["p_treated", "p_control", "uplift"];

/// Which outcome is the favourable one: from the manifest's `favourable_outcome`.
pub fn favourable_from_manifest(
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<bool> {
    match extra.get("favourable_outcome") {
        None => Ok(true),
        Some(v) => match v.as_u64() {
            Some(1) => Ok(true),
            Some(0) => Ok(false),
            _ => Err(RuntimeError::Signature(format!(
                "favourable_outcome: {v} is neither 0 nor 1 (the outcome class the action should make likelier)"
            ))),
        },
    }
}

#[derive(Deserialize)]
struct Bundle<'a> {
    format: String,
    #[serde(borrow)]
    treated: &'a RawValue,
    #[serde(borrow)]
    control: &'a RawValue,
}

/// What an output carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    Treated,
    Control,
    Uplift,
}

/// A T-learner: the outcome's probability with and without the action.
#[derive(Debug)]
pub struct UpliftModel {
    treated: XgbModel,
    control: XgbModel,
    /// Whether the outcome's class 1 is the favourable one.
    favourable_is_one: bool,
    inputs: Vec<TensorSpec>,
    widths: Vec<usize>,
    outputs: Vec<TensorSpec>,
    carries: Vec<Carries>,
}

impl UpliftModel {
    /// Builds the model from the bundle's bytes and the manifest's signature.
    pub fn load(
        json: &[u8],
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        favourable_is_one: bool,
    ) -> Result<UpliftModel> {
        let bundle: Bundle<'_> = serde_json::from_slice(json).map_err(|e| {
            RuntimeError::artifact(format!(
                "an uplift model's weights are {{\"format\": \"mercator-uplift\", \"treated\": …, \"control\": …}}: {e}"
            ))
        })?;
        if bundle.format != "mercator-uplift" {
            return Err(RuntimeError::artifact(format!(
                "format '{}' is not 'mercator-uplift'",
                bundle.format
            )));
        }
        let probability = vec![TensorSpec {
            name: "p".into(),
            datatype: DType::F32,
            shape: vec![-1],
            allow_nan: true,
        }];
        let booster = |arm: &str, raw: &RawValue| -> Result<XgbModel> {
            let model = XgbModel::load(
                raw.get().as_bytes(),
                inputs.clone(),
                probability.clone(),
                vec![OutputValue::Prediction],
            )
            .map_err(|e| RuntimeError::artifact(format!("the {arm} booster: {e}")))?;
            let objective = &model.summary().objective;
            if !matches!(objective.as_str(), "binary:logistic" | "reg:logistic") {
                return Err(RuntimeError::artifact(format!(
                    "the {arm} booster's objective is '{objective}': uplift needs probabilities (binary:logistic)"
                )));
            }
            Ok(model)
        };
        let treated = booster("treated", bundle.treated)?;
        let control = booster("control", bundle.control)?;
        let mut carries = Vec::with_capacity(outputs.len());
        for spec in &outputs {
            let c = match spec.name.as_str() {
                "p_treated" => Carries::Treated,
                "p_control" => Carries::Control,
                "uplift" => Carries::Uplift,
                other => {
                    return Err(RuntimeError::Signature(format!(
                        "output '{other}': an uplift model's outputs are named {OUTPUTS:?}"
                    )));
                }
            };
            if !matches!(spec.datatype, DType::F32 | DType::F64) {
                return Err(RuntimeError::Signature(format!(
                    "output '{}' must be FP32 or FP64",
                    spec.name
                )));
            }
            if !matches!(spec.shape.as_slice(), [-1] | [-1, 1]) {
                return Err(RuntimeError::Signature(format!(
                    "output '{}' must have shape [-1] or [-1, 1], not {:?}",
                    spec.name, spec.shape
                )));
            }
            carries.push(c);
        }
        // The boosters checked the inputs: numeric `[-1, width]`, adding up to their
        // feature count.
        let widths = inputs
            .iter()
            .map(|s| s.shape.get(1).copied().unwrap_or(0).max(0) as usize)
            .collect();
        Ok(UpliftModel {
            treated,
            control,
            favourable_is_one,
            inputs,
            widths,
            outputs,
            carries,
        })
    }

    /// Each row's probabilities under treatment and under control, and the uplift.
    pub fn predict(&self, features: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let treated = self.treated.predict(features);
        let control = self.control.predict(features);
        let uplift = treated
            .iter()
            .zip(&control)
            .map(|(&t, &c)| if self.favourable_is_one { t - c } else { c - t })
            .collect();
        (treated, control, uplift)
    }
}

impl Model for UpliftModel {
    fn kind(&self) -> &'static str {
        "uplift"
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let rows = crate::batch_rows(inputs, &self.inputs, &self.widths)?;
        let features = crate::concat_f32(inputs, &self.inputs, &self.widths, rows)?;
        let (treated, control, uplift) = self.predict(&features);
        wanted
            .iter()
            .map(|&k| {
                let spec = crate::tensor::output_spec(&self.outputs, k)?;
                let values = match self.carries[k] {
                    Carries::Treated => treated.clone(),
                    Carries::Control => control.clone(),
                    Carries::Uplift => uplift.clone(),
                };
                let shape = if spec.shape.len() == 1 {
                    vec![rows]
                } else {
                    vec![rows, 1]
                };
                let data = TensorData::from_f32(values, spec.datatype).ok_or_else(|| {
                    RuntimeError::Signature(format!("output '{}' datatype", spec.name))
                })?;
                Tensor::new(shape, data)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_bundle() {
        let specs = || {
            vec![TensorSpec {
                name: "x".into(),
                datatype: DType::F32,
                shape: vec![-1, 2],
                allow_nan: true,
            }]
        };
        let err = UpliftModel::load(b"{}", specs(), specs(), true).unwrap_err();
        assert!(err.to_string().contains("mercator-uplift"), "{err}");
        let err = UpliftModel::load(
            br#"{"format":"other","treated":{},"control":{}}"#,
            specs(),
            specs(),
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("'other'"), "{err}");
        let extra = |v: serde_json::Value| {
            std::collections::BTreeMap::from([("favourable_outcome".to_string(), v)])
        };
        assert!(favourable_from_manifest(&extra(0.into())).is_ok_and(|f| !f));
        assert!(favourable_from_manifest(&Default::default()).is_ok_and(|f| f));
        assert!(favourable_from_manifest(&extra(2.into())).is_err());
        assert!(favourable_from_manifest(&extra("no".into())).is_err());
    }
}
