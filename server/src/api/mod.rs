//! The typed commerce APIs: churn scores by customer id, chatbot intents, demand
//! forecasts and replenishment orders, in domain types. Each is a `serving::Method`: the
//! envelope (`serving/call.rs`) admits, routes, runs it on a version, copies it to shadows
//! and observes it; the method reads what it needs from the feature store and answers in
//! its own terms. The gRPC adapters in `grpc/` convert protobuf to these types and back;
//! nothing here names protobuf, tonic or the blocking pool (the fitness test).

pub mod answers;
pub mod churn;
pub mod conversation;
pub mod forecast;
pub mod intent;

/// Refuses a request whose `field` holds more than the configured `limit` (`key`, e.g.
/// `limits.max_text_bytes`) allows; the error names both, so the caller knows what to
/// split and the operator what to raise.
pub fn cap(
    field: &str,
    got: usize,
    key: &str,
    limit: usize,
    unit: &str,
) -> Result<(), crate::error::ServeError> {
    if got <= limit {
        return Ok(());
    }
    Err(crate::error::ServeError::invalid(
        field,
        format!("{got} {unit} exceed {key} = {limit}"),
    ))
}
