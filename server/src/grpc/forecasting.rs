//! `mercator.v1.Forecasting`: thin handlers over `crate::api::forecast`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, forecasting_server::Forecasting};
use tonic::{Request, Response, Status};

use crate::api::forecast::{BatchStream, FORECAST, FORECAST_BATCH, ForecastLimits};
use crate::serving::{Observation, Serving};

/// The forecasting service.
#[derive(Debug, Clone)]
pub struct ForecastingService {
    serving: Arc<Serving>,
    limits: ForecastLimits,
}

impl ForecastingService {
    /// A forecasting service over the serving path.
    pub fn new(serving: Arc<Serving>, limits: ForecastLimits) -> ForecastingService {
        ForecastingService { serving, limits }
    }
}

#[tonic::async_trait]
impl Forecasting for ForecastingService {
    async fn forecast(
        &self,
        req: Request<pb::ForecastRequest>,
    ) -> Result<Response<pb::ForecastResponse>, Status> {
        let serving = &self.serving;
        super::observed::observed(&serving.metrics, FORECAST, async |obs| {
            crate::api::forecast::forecast(serving, self.limits, req.into_inner(), obs).await
        })
        .await
    }

    type ForecastBatchStream = BatchStream;

    async fn forecast_batch(
        &self,
        req: Request<pb::ForecastBatchRequest>,
    ) -> Result<Response<BatchStream>, Status> {
        // Observed when the stream ends, not when it starts.
        let obs = Observation::start(FORECAST_BATCH);
        crate::api::forecast::forecast_batch(
            Arc::clone(&self.serving),
            self.limits,
            req.into_inner(),
            obs,
        )
        .await
        .map(Response::new)
    }
}
