//! Model kinds and their math.
//!
//! Owns: the typed tensors a model consumes and produces ([`Tensor`]), the signature it
//! declares ([`TensorSpec`]), the [`Model`] trait, one module per model kind, the manifest
//! and its typed sections ([`manifest`]), forecasting, replenishment math ([`replenish`]),
//! warm-up and drift statistics.
//! Does not own: where artifacts come from, wire formats or threads. Everything
//! here is synchronous and does no I/O, so it can run inline or on a compute pool as the
//! caller decides.
#![warn(missing_docs)]

pub mod drift;
mod error;
pub mod forecast;
pub mod kinds;
pub mod manifest;
pub mod normal;
pub mod replenish;
mod tensor;
pub mod warmup;

pub use error::{Result, RuntimeError};
pub use manifest::Manifest;
pub use tensor::{
    DType, Tensor, TensorData, TensorSpec, batch_rows, concat_f32,
    element_count as tensor_element_count,
};

/// A loaded model, ready to answer.
pub trait Model: Send + Sync + std::fmt::Debug {
    /// The kind's name, e.g. `xgboost`.
    fn kind(&self) -> &'static str;

    /// The inputs the model takes, in the order [`Model::infer`] expects them.
    fn inputs(&self) -> &[TensorSpec];

    /// Every output the model can produce.
    fn outputs(&self) -> &[TensorSpec];

    /// Runs the model on `inputs` (one per [`Model::inputs`] entry, in that order, each
    /// already checked with [`TensorSpec::check`]) and returns the outputs whose indexes
    /// into [`Model::outputs`] are listed in `wanted`, in that order.
    fn infer(&self, inputs: &[Tensor], wanted: &[usize]) -> Result<Vec<Tensor>>;

    /// The model as a forecaster, for the typed forecasting endpoint; `None` for models
    /// that do not forecast.
    fn forecaster(&self) -> Option<&dyn forecast::Forecaster> {
        None
    }

    /// The model as an explainer, for reasons on the typed churn endpoint; `None` for
    /// models that cannot attribute their output to their inputs.
    fn explainer(&self) -> Option<&dyn Explainer> {
        None
    }

    /// The model as a passage searcher (a knowledge base); `None` for the others.
    fn searcher(&self) -> Option<&dyn kinds::kb::Searcher> {
        None
    }
}

/// A model that attributes each row's output to its input columns.
pub trait Explainer {
    /// For each row of `inputs` (as [`Model::infer`] takes them), each column's
    /// contribution to the row's raw output (for trees, the margin: log-odds for a
    /// logistic objective), then the bias: `[rows, columns + 1]`, or `[rows, outputs,
    /// columns + 1]` for a model with several margins. A row's values sum to its output.
    fn contributions(&self, inputs: &[Tensor]) -> Result<Tensor>;
}
