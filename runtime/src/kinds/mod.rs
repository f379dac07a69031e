//! One module per model kind.

pub mod candle;
pub mod ets;
pub mod xgboost;
