//! The one shape of every handler that answers with a model: time the call, run it, and
//! record its outcome (model, version, method, code).

/// Times a request to `method`, runs it, and records its outcome (model, version,
/// method, code): the one shape of every handler that answers with a model.
pub(crate) async fn observed<T>(
    metrics: &crate::monitor::Metrics,
    method: &'static str,
    run: impl AsyncFnOnce(&mut crate::serving::Observation) -> Result<T, crate::error::ServeError>,
) -> Result<tonic::Response<T>, tonic::Status> {
    let mut obs = crate::serving::Observation::start(method);
    let result = run(&mut obs)
        .await
        .map(tonic::Response::new)
        .map_err(tonic::Status::from);
    obs.finish(
        metrics,
        result
            .as_ref()
            .map_or_else(|s| s.code(), |_| tonic::Code::Ok),
    );
    result
}
