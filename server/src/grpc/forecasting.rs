//! `mercator.v1.Forecasting`: converts to and from `crate::api::forecast`'s domain
//! types; a batch's stream is converted item by item.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use mercator_proto::v1::{self as pb, forecasting_server::Forecasting};
use tonic::{Request, Response, Status};

use crate::api::forecast::types as t;
use crate::api::forecast::{Forecast, ForecastLimits};
use crate::serving::Serving;

/// The forecasting service.
#[derive(Debug, Clone)]
pub struct ForecastingService {
    serving: Arc<Serving>,
    method: Forecast,
}

impl ForecastingService {
    /// A forecasting service over the serving path, within `limits`.
    pub fn new(serving: Arc<Serving>, limits: ForecastLimits) -> ForecastingService {
        ForecastingService {
            serving,
            method: Forecast { limits },
        }
    }
}

impl From<pb::SeriesId> for t::SeriesId {
    fn from(s: pb::SeriesId) -> Self {
        let pb::SeriesId {
            sku_id,
            location_id,
        } = s;
        t::SeriesId {
            sku_id,
            location_id,
        }
    }
}

impl From<t::SeriesId> for pb::SeriesId {
    fn from(s: t::SeriesId) -> Self {
        let t::SeriesId {
            sku_id,
            location_id,
        } = s;
        pb::SeriesId {
            sku_id,
            location_id,
        }
    }
}

impl From<pb::History> for t::SentHistory {
    fn from(h: pb::History) -> Self {
        let pb::History { values, last_date } = h;
        t::SentHistory { values, last_date }
    }
}

impl From<t::ForecastPoint> for pb::ForecastPoint {
    fn from(p: t::ForecastPoint) -> Self {
        let t::ForecastPoint {
            date,
            mean,
            quantiles,
        } = p;
        pb::ForecastPoint {
            date,
            mean,
            quantiles,
        }
    }
}

impl From<pb::ForecastRequest> for t::ForecastRequest {
    fn from(r: pb::ForecastRequest) -> Self {
        let pb::ForecastRequest {
            model_name,
            model_version,
            series,
            horizon_days,
            quantiles,
            history,
        } = r;
        t::ForecastRequest {
            model_name,
            model_version,
            series: series.map(Into::into),
            horizon_days,
            quantiles,
            history: history.map(Into::into),
        }
    }
}

impl From<t::ForecastResponse> for pb::ForecastResponse {
    fn from(r: t::ForecastResponse) -> Self {
        let t::ForecastResponse {
            model_name,
            model_version,
            series,
            points,
            quantiles,
            history_last_date,
        } = r;
        pb::ForecastResponse {
            model_name,
            model_version,
            series: series.map(Into::into),
            points: points.into_iter().map(Into::into).collect(),
            quantiles,
            history_last_date,
        }
    }
}

impl From<pb::ForecastBatchRequest> for t::ForecastBatchRequest {
    fn from(r: pb::ForecastBatchRequest) -> Self {
        let pb::ForecastBatchRequest {
            model_name,
            model_version,
            series,
            horizon_days,
            quantiles,
        } = r;
        t::ForecastBatchRequest {
            model_name,
            model_version,
            series: series.into_iter().map(Into::into).collect(),
            horizon_days,
            quantiles,
        }
    }
}

/// An item's failure in a streamed batch: its gRPC code and message.
pub(super) fn item_status(error: Option<crate::error::ServeError>) -> (i32, String) {
    match error {
        None => (0, String::new()),
        Some(e) => {
            let status = Status::from(e);
            (status.code() as i32, status.message().to_string())
        }
    }
}

impl From<t::ForecastBatchResponse> for pb::ForecastBatchResponse {
    fn from(r: t::ForecastBatchResponse) -> Self {
        let t::ForecastBatchResponse {
            model_name,
            model_version,
            quantiles,
            forecasts,
        } = r;
        pb::ForecastBatchResponse {
            model_name,
            model_version,
            quantiles,
            forecasts: forecasts
                .into_iter()
                .map(|f| {
                    let t::SeriesForecast {
                        series,
                        error,
                        history_last_date,
                        points,
                    } = f;
                    let (code, error) = item_status(error);
                    pb::SeriesForecast {
                        series: series.map(Into::into),
                        code,
                        error,
                        history_last_date,
                        points: points.into_iter().map(Into::into).collect(),
                    }
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl Forecasting for ForecastingService {
    async fn forecast(
        &self,
        req: Request<pb::ForecastRequest>,
    ) -> Result<Response<pb::ForecastResponse>, Status> {
        let ctx = super::request_id::context(&req);
        let answer = crate::api::forecast::forecast(
            &self.serving,
            &ctx,
            &self.method,
            req.into_inner().into(),
        )
        .await?;
        Ok(Response::new(answer.into()))
    }

    type ForecastBatchStream = BoxStream<'static, Result<pb::ForecastBatchResponse, Status>>;

    async fn forecast_batch(
        &self,
        req: Request<pb::ForecastBatchRequest>,
    ) -> Result<Response<Self::ForecastBatchStream>, Status> {
        let ctx = super::request_id::context(&req);
        let stream = crate::api::forecast::forecast_batch(
            Arc::clone(&self.serving),
            &ctx,
            self.method.limits,
            req.into_inner().into(),
        )
        .await?;
        Ok(Response::new(
            stream
                .map(|chunk| chunk.map(Into::into).map_err(Status::from))
                .boxed(),
        ))
    }
}
