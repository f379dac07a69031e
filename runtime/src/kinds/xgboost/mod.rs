//! Gradient-boosted trees loaded from XGBoost's JSON model format.
//!
//! Reads what `Booster.save_model("model.json")` writes in xgboost 2.x and 3.x (3.x stores
//! `base_score` as a vector, e.g. `"[4.4E-1]"`), for `gbtree` and `dart` boosters with
//! numerical splits. Prediction follows XGBoost's CPU predictor step for step so the
//! numbers agree: features are cast to f32, a NaN follows the split's default direction,
//! a value goes left when `value < split_condition`, leaf values are summed in f32 in tree
//! order onto the base margin, and the objective's transform is applied in f32.
//!
//! The trees are laid out flat: every node of every tree in one `Vec<Node>` of 16-byte
//! nodes with absolute child indexes, so a prediction allocates nothing per row.

//!
//! - [`document`]: the JSON document, parsed and laid out as flat trees;
//! - [`signature`]: the manifest's tensors checked against the trees;
//! - here: the model and its prediction.

mod document;
mod shap;
mod signature;
mod walk;

use crate::{Model, Result, RuntimeError, Tensor, TensorData, TensorSpec};

/// Rows walked together through each tree (see [`XgbModel::margins`]).
const ROW_BLOCK: usize = 64;

/// Fills node slots no tree uses (never reached).
const LEAF: u32 = u32::MAX;
/// High bit of [`Node::feature`]: missing values go left.
const DEFAULT_LEFT: u32 = 1 << 31;

/// One node, 12 bytes. Trees are relaid breadth-first at load so that a node's right
/// child sits right after its left child: the walk picks a child with an add, no branch.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Split threshold, or the leaf value (already scaled by the dart weight) for a leaf.
    value: f32,
    /// Feature index, with [`DEFAULT_LEFT`] or-ed in; for a leaf, the walks' extra
    /// column (`num_feature`).
    feature: u32,
    /// Absolute index of the left child (the right one is `left + 1`); a leaf's own.
    left: u32,
}

/// How the summed margin turns into a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Sigmoid of the margin (`binary:logistic`, `reg:logistic`).
    Logistic,
    /// The margin itself; the base score is stored as a margin (`binary:logitraw`).
    LogitRaw,
    /// The margin itself (`reg:squarederror` and other identity-link regressions).
    Identity,
    /// `exp` of the margin, with a log base score (`count:poisson`, `reg:gamma`, `reg:tweedie`).
    Exp,
    /// Softmax over the classes (`multi:softprob`).
    SoftProb,
    /// Index of the largest class margin, as f32 (`multi:softmax`).
    SoftMax,
    /// 1 when the margin is positive, else 0 (`binary:hinge`).
    Hinge,
}

impl Objective {
    fn parse(name: &str) -> Result<Objective> {
        Ok(match name {
            "binary:logistic" | "reg:logistic" => Objective::Logistic,
            "binary:logitraw" => Objective::LogitRaw,
            "reg:squarederror"
            | "reg:linear"
            | "reg:squaredlogerror"
            | "reg:pseudohubererror"
            | "reg:absoluteerror" => Objective::Identity,
            "count:poisson" | "reg:gamma" | "reg:tweedie" => Objective::Exp,
            "multi:softprob" => Objective::SoftProb,
            "multi:softmax" => Objective::SoftMax,
            "binary:hinge" => Objective::Hinge,
            other => {
                return Err(RuntimeError::artifact(format!(
                    "objective '{other}' is not supported"
                )));
            }
        })
    }

    /// Converts the stored base score to margin space, as XGBoost's `ProbToMargin` does.
    fn base_margin(self, base_score: f32) -> Result<f32> {
        match self {
            Objective::Logistic => {
                if !(base_score > 0.0 && base_score < 1.0) {
                    return Err(RuntimeError::artifact(format!(
                        "base_score {base_score} must be in (0, 1) for a logistic objective"
                    )));
                }
                Ok(-(1.0f32 / base_score - 1.0f32).ln())
            }
            Objective::Exp => {
                if base_score <= 0.0 {
                    return Err(RuntimeError::artifact(format!(
                        "base_score {base_score} must be positive"
                    )));
                }
                Ok(base_score.ln())
            }
            // XGBoost's `binary:logitraw` keeps its base score in margin space.
            Objective::LogitRaw
            | Objective::Identity
            | Objective::SoftProb
            | Objective::SoftMax
            | Objective::Hinge => Ok(base_score),
        }
    }
}

/// What an output carries: a manifest concept, read by this kind.
pub use crate::manifest::output::OutputValue;

pub use document::{XgbSummary, summarize};
use document::{append_tree, parse_base_score, parse_document, parse_num, summary_of};
use signature::check_signature;

/// A tree ensemble ready to predict.
#[derive(Debug)]
pub struct XgbModel {
    nodes: Vec<Node>,
    /// Index into `nodes` of each tree's root.
    roots: Vec<u32>,
    /// Output group (class) of each tree.
    groups: Vec<u32>,
    /// Depth of each tree (its deepest leaf's level).
    depths: Vec<u8>,
    objective: Objective,
    num_feature: usize,
    /// Number of margins per row: classes for multi-class, else 1.
    num_group: usize,
    /// Base margin per group.
    base_margin: Vec<f32>,
    inputs: Vec<TensorSpec>,
    input_widths: Vec<usize>,
    outputs: Vec<TensorSpec>,
    output_values: Vec<OutputValue>,
    summary: XgbSummary,
    /// The trees as TreeSHAP walks them, or why the model cannot be explained.
    shap: std::result::Result<shap::ShapTrees, String>,
}

// ---- the JSON document, as much of it as prediction needs ----

impl XgbModel {
    /// Builds the model from XGBoost JSON and the manifest's signature.
    ///
    /// The inputs are numeric `[-1, width]` tensors whose columns are laid side by side,
    /// in order, to form the feature row, so their widths must add up to the model's
    /// feature count. Each output is FP32 or FP64 and carries either the prediction or
    /// the margin (`output_values`, one per output).
    pub fn load(
        json: &[u8],
        inputs: Vec<TensorSpec>,
        outputs: Vec<TensorSpec>,
        output_values: Vec<OutputValue>,
    ) -> Result<XgbModel> {
        let (learner, model, dart_weights) = parse_document(json)?;
        let summary = summary_of(&learner, &model)?;
        let objective = Objective::parse(&summary.objective)?;
        if let Some(t) = learner.learner_model_param.num_target.as_deref()
            && parse_num::<usize>("num_target", t)? > 1
        {
            return Err(RuntimeError::artifact(
                "multi-target models are not supported",
            ));
        }
        let num_group = summary.num_class.max(1);
        let base_scores = parse_base_score(&learner.learner_model_param.base_score)?;
        let base_margin = match base_scores.len() {
            1 => vec![objective.base_margin(base_scores[0])?; num_group],
            n if n == num_group => base_scores
                .iter()
                .map(|&b| objective.base_margin(b))
                .collect::<Result<_>>()?,
            n => {
                return Err(RuntimeError::artifact(format!(
                    "base_score has {n} values for {num_group} groups"
                )));
            }
        };
        if model.tree_info.len() != model.trees.len() {
            return Err(RuntimeError::artifact(
                "tree_info and trees differ in length",
            ));
        }
        if let Some(w) = &dart_weights
            && w.len() != model.trees.len()
        {
            return Err(RuntimeError::artifact(
                "dart weight_drop and trees differ in length",
            ));
        }

        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(model.trees.len());
        let mut groups = Vec::with_capacity(model.trees.len());
        let mut depths = Vec::with_capacity(model.trees.len());
        for (t, tree) in model.trees.iter().enumerate() {
            let group = model.tree_info[t];
            if group < 0 || group as usize >= num_group {
                return Err(RuntimeError::artifact(format!(
                    "tree {t} belongs to group {group} of {num_group}"
                )));
            }
            let weight = dart_weights.as_ref().map_or(1.0, |w| w[t]);
            roots.push(
                u32::try_from(nodes.len()).map_err(|_| RuntimeError::artifact("too many nodes"))?,
            );
            groups.push(group as u32);
            depths.push(append_tree(
                &mut nodes,
                tree,
                t,
                weight,
                summary.num_feature,
            )?);
        }

        let shap = shap::ShapTrees::build(&model.trees, &groups, dart_weights.as_deref())
            .map_err(|e| e.to_string());
        let (input_widths, outputs, output_values) =
            check_signature(&summary, objective, &inputs, outputs, output_values)?;
        if let Err(why) = &shap
            && let Some(k) = output_values
                .iter()
                .position(|v| *v == OutputValue::Contributions)
        {
            return Err(RuntimeError::Signature(format!(
                "output '{}' carries contributions, but {why}",
                outputs[k].name
            )));
        }
        Ok(XgbModel {
            nodes,
            roots,
            groups,
            depths,
            objective,
            num_feature: summary.num_feature,
            num_group,
            base_margin,
            inputs,
            input_widths,
            outputs,
            output_values,
            summary,
            shap,
        })
    }

    /// The model's facts as read from its JSON.
    pub fn summary(&self) -> &XgbSummary {
        &self.summary
    }

    /// Number of features in a row.
    pub fn num_feature(&self) -> usize {
        self.num_feature
    }

    /// Number of margins per row (classes for multi-class, else 1).
    pub fn num_group(&self) -> usize {
        self.num_group
    }

    /// Each feature's contribution to each row's margin (exact TreeSHAP, as xgboost's
    /// `pred_contribs=True`): row-major `[rows][groups][num_feature + 1]`, the bias (the
    /// base margin plus every tree's expected value) last in each group. A row's values
    /// in a group sum to its margin there.
    pub fn contributions(&self, features: &[f32]) -> Result<Vec<f32>> {
        let shap = self.shap.as_ref().map_err(|why| {
            RuntimeError::artifact(format!("this model cannot be explained: {why}"))
        })?;
        let width = self.num_feature.max(1);
        let rows = features.len() / width;
        let per_row = self.num_group * (self.num_feature + 1);
        let mut out = vec![0f32; rows * per_row];
        for (row, phi) in features
            .chunks_exact(width)
            .zip(out.chunks_exact_mut(per_row))
        {
            shap.explain_row(row, phi, self.num_feature);
            for (g, base) in self.base_margin.iter().enumerate() {
                phi[g * (self.num_feature + 1) + self.num_feature] += base;
            }
        }
        Ok(out)
    }

    /// Sums the trees for each row of `features` (row-major, `num_feature` columns) into
    /// `margins` (row-major, `num_group` columns), starting from the base margin.
    pub fn margins(&self, features: &[f32], margins: &mut [f32]) {
        let width = self.num_feature.max(1);
        let groups = self.num_group;
        let rows = (features.len() / width).min(margins.len() / groups);
        for out in margins.chunks_exact_mut(groups) {
            out.copy_from_slice(&self.base_margin);
        }
        // Tree-major over blocks of rows, as XGBoost's CPU predictor does: one tree's
        // nodes stay in cache while the block's rows walk it (`walk.rs`). The block is
        // copied with one more column, −∞, which leaves split on.
        let padded = width + 1;
        let mut block = vec![f32::NEG_INFINITY; ROW_BLOCK.min(rows) * padded];
        for start in (0..rows).step_by(ROW_BLOCK) {
            let end = (start + ROW_BLOCK).min(rows);
            let n = end - start;
            for (r, row) in features[start * width..end * width]
                .chunks_exact(width)
                .enumerate()
            {
                block[r * padded..r * padded + width].copy_from_slice(row);
            }
            let out = &mut margins[start * groups..end * groups];
            for ((&root, &group), &depth) in self.roots.iter().zip(&self.groups).zip(&self.depths) {
                let tree = walk::Tree {
                    root,
                    depth,
                    group: group as usize,
                };
                walk::add_tree(&self.nodes, tree, &block[..n * padded], padded, out, groups);
            }
        }
    }

    /// Turns margins into predictions: per row, `num_group` values for `multi:softprob`,
    /// one otherwise.
    pub fn transform(&self, margins: &[f32]) -> Vec<f32> {
        match self.objective {
            Objective::Logistic => margins.iter().map(|&m| sigmoid(m)).collect(),
            Objective::LogitRaw | Objective::Identity => margins.to_vec(),
            Objective::Exp => margins.iter().map(|&m| m.exp()).collect(),
            Objective::Hinge => margins
                .iter()
                .map(|&m| if m > 0.0 { 1.0 } else { 0.0 })
                .collect(),
            Objective::SoftProb => {
                let mut out = margins.to_vec();
                for row in out.chunks_exact_mut(self.num_group) {
                    softmax(row);
                }
                out
            }
            Objective::SoftMax => margins
                .chunks_exact(self.num_group)
                .map(|row| {
                    // First maximum wins, as in XGBoost.
                    let mut best = 0;
                    for (k, &v) in row.iter().enumerate() {
                        if v > row[best] {
                            best = k;
                        }
                    }
                    best as f32
                })
                .collect(),
        }
    }

    /// Predicts for a row-major feature matrix: the objective's output per row.
    pub fn predict(&self, features: &[f32]) -> Vec<f32> {
        let rows = features.len() / self.num_feature.max(1);
        let mut margins = vec![0.0f32; rows * self.num_group];
        self.margins(features, &mut margins);
        self.transform(&margins)
    }
}

impl crate::Explainer for XgbModel {
    fn contributions(&self, inputs: &[Tensor]) -> Result<Tensor> {
        let rows = crate::batch_rows(inputs, &self.inputs, &self.input_widths)?;
        let features = crate::concat_f32(inputs, &self.inputs, &self.input_widths, rows)?;
        let values = XgbModel::contributions(self, &features)?;
        let shape = if self.num_group == 1 {
            vec![rows, self.num_feature + 1]
        } else {
            vec![rows, self.num_group, self.num_feature + 1]
        };
        Tensor::new(shape, TensorData::F32(values))
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0f32 / (1.0f32 + (-x).exp())
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in row.iter_mut() {
        *v /= sum;
    }
}

impl Model for XgbModel {
    fn kind(&self) -> &'static str {
        "xgboost"
    }

    fn explainer(&self) -> Option<&dyn crate::Explainer> {
        self.shap.is_ok().then_some(self as &dyn crate::Explainer)
    }

    fn inputs(&self) -> &[TensorSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }

    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>> {
        let rows = crate::batch_rows(inputs, &self.inputs, &self.input_widths)?;
        // One FP32 input already is the feature matrix: read it in place.
        let features: std::borrow::Cow<'_, [f32]> = match inputs {
            [
                Tensor {
                    data: TensorData::F32(v),
                    ..
                },
            ] if v.len() == rows * self.num_feature => v.as_slice().into(),
            _ => crate::concat_f32(inputs, &self.inputs, &self.input_widths, rows)?.into(),
        };
        let mut margins = vec![0.0f32; rows * self.num_group];
        self.margins(&features, &mut margins);
        let mut prediction = None;
        let mut contributions = None;
        wanted
            .iter()
            .map(|&k| {
                let spec = crate::tensor::output_spec(&self.outputs, k)?;
                let values = match self.output_values[k] {
                    OutputValue::Margin => margins.clone(),
                    OutputValue::Prediction => prediction
                        .get_or_insert_with(|| self.transform(&margins))
                        .clone(),
                    OutputValue::Contributions => match &contributions {
                        Some(c) => Vec::clone(c),
                        None => contributions.insert(self.contributions(&features)?).clone(),
                    },
                };
                let width = values.len() / rows.max(1);
                let shape = match spec.shape.len() {
                    1 => vec![rows],
                    2 => vec![rows, width],
                    _ => vec![rows, self.num_group, self.num_feature + 1],
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
    fn base_score_both_dialects() {
        assert_eq!(parse_base_score("5E-1").unwrap(), vec![0.5]);
        assert_eq!(parse_base_score("[4.43E-1]").unwrap(), vec![0.443]);
        assert_eq!(parse_base_score("[0E0,1E0]").unwrap(), vec![0.0, 1.0]);
        assert!(parse_base_score("[x]").is_err());
    }

    #[test]
    fn refuses_garbage_and_unknown_objectives() {
        assert!(summarize(b"{}").is_err());
        assert!(summarize(b"not json").is_err());
        assert!(Objective::parse("rank:pairwise").is_err());
    }
}
