//! The typed commerce APIs: churn scores by customer id, chatbot intents, and demand
//! forecasts. Each takes its request, routes it on the serving core, reads what it needs
//! from the feature store, and answers in its own terms; the gRPC adapters in `grpc/`
//! only call in here.

pub mod churn;
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
