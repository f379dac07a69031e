//! The series of every gRPC call, by service, method and code; recorded by the tower
//! layer in `grpc::calls`.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::names::LATENCY_BUCKETS;

/// `mercator_grpc_requests_total` and `mercator_grpc_request_duration_seconds`.
#[derive(Clone, Debug)]
pub struct CallMetrics {
    pub(crate) requests: IntCounterVec,
    pub(crate) duration: HistogramVec,
}

impl CallMetrics {
    /// Creates the metrics and registers them on `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<CallMetrics> {
        let m = CallMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "mercator_grpc_requests_total",
                    "gRPC calls of every service, by service, method and status code.",
                ),
                &["service", "method", "code"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "mercator_grpc_request_duration_seconds",
                    "Time from a gRPC call's arrival to its status (a stream's last message), \
                     in seconds, by service and method.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["service", "method"],
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.duration.clone()))?;
        Ok(m)
    }
}
