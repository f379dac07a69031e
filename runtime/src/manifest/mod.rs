//! The model manifest (`mercator.json`): what kind a version is, which file holds its
//! weights, and the tensors it takes and gives. The registry stores it, the server builds
//! models from it; both parse and check it here so they agree.

pub mod batching;
pub mod output;
pub mod quality;
pub mod runbook;
pub mod sections;
pub mod slots;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kinds::xgboost::XgbModel;
use crate::{DType, Model, Result, RuntimeError, TensorSpec};
pub use output::OutputValue;

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
    /// Feature store fields that fill this input's columns, in order, when a request
    /// sends entity keys instead of the tensor. Only for 2-D float inputs `[-1, n]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureBinding>,
}

/// One column of an input, read from the feature store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureBinding {
    /// `view:field`.
    pub feature: String,
    /// Used when the value is missing or expired; without it the column gets NaN, which
    /// trees route down each split's default branch (as at training time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<f64>,
}

impl FeatureBinding {
    /// The view and field names.
    pub fn view_field(&self) -> (&str, &str) {
        self.feature.split_once(':').unwrap_or(("", ""))
    }
}

/// A named band of a probability: `[threshold, next band's threshold)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskBand {
    /// Band name, e.g. `high`.
    pub name: String,
    /// Lowest probability in the band.
    pub threshold: f64,
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
        Ok(Manifest::parse_with_sections(json)?.0)
    }

    /// [`Manifest::parse`], keeping the typed sections the check parsed (a load needs
    /// them; parsing them again would repeat the check's work).
    pub fn parse_with_sections(json: &[u8]) -> Result<(Manifest, sections::Sections)> {
        let manifest: Manifest = serde_json::from_slice(json).map_err(|e| {
            RuntimeError::Signature(format!("{MANIFEST_FILE} is not a valid manifest: {e}"))
        })?;
        let sections = manifest.check()?;
        Ok((manifest, sections))
    }

    fn check(&self) -> Result<sections::Sections> {
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
        for input in &self.inputs {
            check_bindings(input)?;
        }
        // The typed sections (intent, history, risk bands) fail here, not on a request.
        let sections = sections::Sections::of(self)?;
        if self.kind == "candle" || self.kind == "text" {
            crate::kinds::candle::layers_from_manifest(&self.extra)?;
        }
        if self.kind == "text" {
            crate::kinds::text::spec_from_manifest(&self.extra)?;
        }
        if self.kind == "candle" {
            crate::kinds::neural_forecast::ForecasterSpec::from_manifest(&self.extra)?;
        }
        if self.kind == "uplift" {
            crate::kinds::uplift::favourable_from_manifest(&self.extra)?;
        }
        if self.kind == "encoder" {
            crate::kinds::encoder::EncoderSpec::from_manifest(&self.extra)?;
        }
        if self.kind == "kb" {
            crate::kinds::kb::KbSpec::from_manifest(&self.extra)?;
        }
        self.warmup_samples()?;
        Ok(sections)
    }

    /// The manifest's `quantiles` for forecasters (default 0.1, 0.5, 0.9).
    pub fn quantiles(&self) -> Result<Vec<f64>> {
        match self.extra.get("quantiles") {
            None => Ok(vec![0.1, 0.5, 0.9]),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| RuntimeError::Signature(format!("quantiles: {e}"))),
        }
    }

    /// The manifest's `non_negative` for forecasters (default true: forecasts of sales
    /// are clamped at zero).
    pub fn non_negative(&self) -> Result<bool> {
        match self.extra.get("non_negative") {
            None => Ok(true),
            Some(v) => v.as_bool().ok_or_else(|| {
                RuntimeError::Signature("non_negative must be true or false".into())
            }),
        }
    }

    /// The manifest's `warmup` samples as input tensors (see [`crate::warmup`]).
    pub fn warmup_samples(&self) -> Result<Vec<Vec<crate::Tensor>>> {
        crate::warmup::samples(&self.extra, &self.input_specs())
    }

    /// The typed sections the server's APIs read (see [`sections`]).
    pub fn sections(&self) -> Result<sections::Sections> {
        sections::Sections::of(self)
    }

    /// Whether requests may send entity keys instead of tensors.
    pub fn is_feature_backed(&self) -> bool {
        self.inputs.iter().any(|i| !i.features.is_empty())
    }

    /// The manifest's `risk_bands` (`{"low": 0.0, "medium": 0.3, "high": 0.6}`), lowest
    /// threshold first; empty when it has none.
    pub fn risk_bands(&self) -> Result<Vec<RiskBand>> {
        let Some(value) = self.extra.get("risk_bands") else {
            return Ok(Vec::new());
        };
        let fail = |m: &str| RuntimeError::Signature(format!("risk_bands: {m}"));
        let object = value
            .as_object()
            .ok_or_else(|| fail("must map band names to thresholds"))?;
        let mut bands = Vec::with_capacity(object.len());
        for (name, t) in object {
            let threshold = t
                .as_f64()
                .filter(|t| (0.0..=1.0).contains(t))
                .ok_or_else(|| fail(&format!("'{name}' must be a number in [0, 1]")))?;
            bands.push(RiskBand {
                name: name.clone(),
                threshold,
            });
        }
        bands.sort_by(|a, b| a.threshold.total_cmp(&b.threshold));
        if bands.windows(2).any(|w| w[0].threshold == w[1].threshold) {
            return Err(fail("two bands share a threshold"));
        }
        Ok(bands)
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

    /// Every file of the version the model reads: the weights, and the files a kind's
    /// section names (an encoder's config, tokenizer and head).
    pub fn files(&self) -> Vec<String> {
        let mut files = vec![self.weights.clone()];
        if self.kind == "encoder"
            && let Ok(spec) = crate::kinds::encoder::EncoderSpec::from_manifest(&self.extra)
        {
            files.extend(spec.files().into_iter().map(String::from));
        }
        if self.kind == "kb"
            && let Ok(spec) = crate::kinds::kb::KbSpec::from_manifest(&self.extra)
        {
            files.push(spec.passages);
        }
        files
    }

    /// Builds the model from the weights file's bytes (a kind that reads more files
    /// than its weights needs [`Manifest::build_with`]).
    pub fn build(&self, weights: &[u8]) -> Result<Box<dyn Model>> {
        self.build_with(weights, &|_| None)
    }

    /// Builds the model from the weights file's bytes and the version's other files,
    /// which `file` gives by name.
    pub fn build_with(
        &self,
        weights: &[u8],
        file: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Box<dyn Model>> {
        match self.kind.as_str() {
            "kb" => {
                let spec = crate::kinds::kb::KbSpec::from_manifest(&self.extra)?;
                let passages = file(&spec.passages).ok_or_else(|| {
                    RuntimeError::artifact(format!(
                        "kb.passages names '{}', which is not among the version's files",
                        spec.passages
                    ))
                })?;
                Ok(Box::new(crate::kinds::kb::KnowledgeBase::load(
                    spec,
                    weights,
                    &passages,
                    self.input_specs(),
                    self.output_specs(),
                )?))
            }
            "encoder" => Ok(Box::new(crate::kinds::encoder::EncoderModel::load(
                crate::kinds::encoder::EncoderSpec::from_manifest(&self.extra)?,
                weights,
                file,
                self.input_specs(),
                self.output_specs(),
            )?)),
            "xgboost" => Ok(Box::new(XgbModel::load(
                weights,
                self.input_specs(),
                self.output_specs(),
                self.outputs.iter().map(|o| o.value).collect(),
            )?)),
            "uplift" => Ok(Box::new(crate::kinds::uplift::UpliftModel::load(
                weights,
                self.input_specs(),
                self.output_specs(),
                crate::kinds::uplift::favourable_from_manifest(&self.extra)?,
            )?)),
            "candle" if self.extra.contains_key("forecaster") => {
                let spec =
                    crate::kinds::neural_forecast::ForecasterSpec::from_manifest(&self.extra)?
                        .ok_or_else(|| RuntimeError::Signature("forecaster section".into()))?;
                let forecaster = crate::kinds::neural_forecast::NeuralForecaster::load(
                    weights,
                    &crate::kinds::candle::layers_from_manifest(&self.extra)?,
                    spec,
                )?;
                Ok(Box::new(crate::forecast::ForecastModel::new(
                    "candle",
                    Box::new(forecaster),
                    self.input_specs(),
                    self.output_specs(),
                    self.quantiles()?,
                    self.non_negative()?,
                )?))
            }
            "candle" => Ok(Box::new(crate::kinds::candle::CandleModel::load(
                weights,
                &crate::kinds::candle::layers_from_manifest(&self.extra)?,
                self.input_specs(),
                self.output_specs(),
            )?)),
            "text" => Ok(Box::new(crate::kinds::text::TextModel::load(
                crate::kinds::text::spec_from_manifest(&self.extra)?,
                weights,
                &crate::kinds::candle::layers_from_manifest(&self.extra)?,
                self.input_specs(),
                self.output_specs(),
            )?)),
            "ets" => {
                use crate::kinds::ets::{Ets, EtsBundle};
                let forecaster: Box<dyn crate::forecast::Forecaster> =
                    if EtsBundle::is_bundle(weights) {
                        Box::new(EtsBundle::from_json(weights)?)
                    } else {
                        Box::new(Ets::from_json(weights)?)
                    };
                Ok(Box::new(crate::forecast::ForecastModel::new(
                    "ets",
                    forecaster,
                    self.input_specs(),
                    self.output_specs(),
                    self.quantiles()?,
                    self.non_negative()?,
                )?))
            }
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
                features: Vec::new(),
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

/// A bound input is `[-1, n]` floating point with one binding per column, each naming
/// `view:field`, and a column without a default must accept NaN.
fn check_bindings(input: &InputManifest) -> Result<()> {
    if input.features.is_empty() {
        return Ok(());
    }
    let fail = |m: String| {
        Err(RuntimeError::Signature(format!(
            "inputs '{}': {m}",
            input.name
        )))
    };
    if !matches!(input.datatype, DType::F32 | DType::F64) {
        return fail("only FP32 and FP64 inputs can be bound to features".into());
    }
    if input.shape.len() != 2 || input.shape[1] != input.features.len() as i64 {
        return fail(format!(
            "shape {:?} must be [-1, {}] for its {} bound features",
            input.shape,
            input.features.len(),
            input.features.len()
        ));
    }
    for (i, b) in input.features.iter().enumerate() {
        match b.feature.split_once(':') {
            Some((v, f)) if !v.is_empty() && !f.is_empty() => {}
            _ => return fail(format!("features[{i}] '{}' must be view:field", b.feature)),
        }
        if b.default.is_none() && !input.allow_nan {
            return fail(format!(
                "features[{i}] '{}' needs a default: the input does not allow NaN",
                b.feature
            ));
        }
        if b.default.is_some_and(|d| !d.is_finite()) {
            return fail(format!("features[{i}] default must be finite"));
        }
    }
    Ok(())
}

/// Model kinds this runtime can build.
pub const KINDS: &[&str] = &[
    "xgboost", "candle", "ets", "text", "uplift", "encoder", "kb",
];

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
    fn bindings_and_risk_bands_parse() {
        let json = GOOD
            .replace(
                r#""shape":[-1,8]"#,
                r#""shape":[-1,2],"features":[{"feature":"v:a"},{"feature":"v:b","default":0}]"#,
            )
            .replace(
                r#""thresholds":{"high":0.7}"#,
                r#""risk_bands":{"high":0.6,"low":0,"medium":0.3}"#,
            );
        let m = Manifest::parse(json.as_bytes()).unwrap();
        assert!(m.is_feature_backed());
        assert_eq!(m.inputs[0].features[1].default, Some(0.0));
        assert_eq!(m.inputs[0].features[0].view_field(), ("v", "a"));
        let bands: Vec<_> = m
            .risk_bands()
            .unwrap()
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(bands, ["low", "medium", "high"]);
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
            (
                GOOD.replace(
                    r#""shape":[-1,8]"#,
                    r#""shape":[-1,2],"features":[{"feature":"v:a"}]"#,
                ),
                "[-1, 1]",
            ),
            (
                GOOD.replace(
                    r#""shape":[-1,8]"#,
                    r#""shape":[-1,1],"features":[{"feature":"nocolon"}]"#,
                ),
                "view:field",
            ),
            (
                GOOD.replace(
                    r#""shape":[-1,8]"#,
                    r#""shape":[-1,1],"allow_nan":false,"features":[{"feature":"v:a"}]"#,
                ),
                "needs a default",
            ),
            (
                GOOD.replace(
                    r#""thresholds":{"high":0.7}"#,
                    r#""risk_bands":{"high":1.5}"#,
                ),
                "risk_bands: 'high'",
            ),
            (
                GOOD.replace(r#""thresholds":{"high":0.7}"#, r#""risk_bands":[0.5]"#),
                "risk_bands",
            ),
        ] {
            let err = Manifest::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
