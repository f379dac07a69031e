//! One module per model kind.

pub mod xgboost;
