//! The record of a call that answers about a model without predicting (model metadata
//! and configuration, drift reports): its outcome, by the model version it was about
//! when it named one. Predictions are observed by the serving envelope
//! (`serving/call.rs`).

use std::sync::Arc;

use crate::error::ServeError;
use crate::models::LoadedModel;
use crate::monitor::Metrics;
use crate::serving::Observation;

/// Records a call to `method` that answered `result` (about `model`, when it named one
/// that exists) and returns it as gRPC's answer.
pub(crate) fn observed<T>(
    metrics: &Metrics,
    method: &'static str,
    result: Result<(Option<Arc<LoadedModel>>, T), ServeError>,
) -> Result<tonic::Response<T>, tonic::Status> {
    let mut obs = Observation::start(method);
    let out = result.map(|(model, value)| {
        if let Some(model) = &model {
            obs.resolved(model);
        }
        tonic::Response::new(value)
    });
    obs.finish(
        metrics,
        out.as_ref()
            .map_or_else(ServeError::code, |_| tonic::Code::Ok),
    );
    out.map_err(tonic::Status::from)
}
