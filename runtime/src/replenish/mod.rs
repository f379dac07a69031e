//! From demand forecasts to replenishment orders: the demand distribution over a
//! protection interval ([`demand`]) and the order-up-to policy sized from it
//! ([`policy`]). Pure math, no I/O: the server reads the forecasts and the stock.

pub mod approx;
pub mod demand;
pub mod policy;

pub use demand::Demand;
pub use policy::{
    LeadTime, MAX_QUANTITY, OnOrder, PROBABILITY_SUM_TOLERANCE, Recommendation, Situation, Target,
    recommend,
};
