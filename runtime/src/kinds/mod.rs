//! One module per model kind.

pub mod candle;
pub mod xgboost;
