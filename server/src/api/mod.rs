//! The typed commerce APIs: churn scores by customer id, chatbot intents, and demand
//! forecasts. Each takes its request, routes it on the serving core, reads what it needs
//! from the feature store, and answers in its own terms; the gRPC adapters in `grpc/`
//! only call in here.

pub mod churn;
pub mod forecast;
pub mod intent;
