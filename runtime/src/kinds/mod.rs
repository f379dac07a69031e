//! One module per model kind.

pub mod candle;
pub mod encoder;
pub mod ets;
pub mod kb;
pub mod neural_forecast;
pub mod text;
pub mod uplift;
pub mod xgboost;
