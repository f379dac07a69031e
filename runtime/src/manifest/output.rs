//! What a model's output carries, as a manifest declares it (`"value"` of an output):
//! a tree model's prediction, its raw margin, or each feature's contribution.

use serde::{Deserialize, Serialize};

/// What an output of the model carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OutputValue {
    /// The objective's prediction: a probability, a regression value or a class index.
    #[default]
    Prediction,
    /// The raw summed margin, before the objective's transform.
    Margin,
    /// Each feature's contribution to the margin, then the bias (exact TreeSHAP, as
    /// xgboost's `pred_contribs=True`): `[-1, features + 1]`, or `[-1, classes, features
    /// + 1]` for a multi-class model.
    Contributions,
}
