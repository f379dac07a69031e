//! `mercator.v1.Inventory`: converts to and from `crate::api::forecast`'s domain types;
//! a batch's stream is converted item by item.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;
use mercator_proto::v1::{self as pb, inventory_server::Inventory};
use tonic::{Request, Response, Status};

use super::forecasting::item_status;
use crate::api::forecast::types as t;
use crate::api::forecast::{Recommend, RecommendSettings};
use crate::serving::Serving;

/// The inventory service.
#[derive(Debug, Clone)]
pub struct InventoryService {
    serving: Arc<Serving>,
    method: Recommend,
}

impl InventoryService {
    /// An inventory service over the serving path, with `settings`.
    pub fn new(serving: Arc<Serving>, settings: RecommendSettings) -> InventoryService {
        InventoryService {
            serving,
            method: Recommend { settings },
        }
    }
}

impl From<pb::RecommendRequest> for t::RecommendRequest {
    fn from(r: pb::RecommendRequest) -> Self {
        let pb::RecommendRequest {
            model_name,
            model_version,
            series,
            on_hand,
            on_order,
            lead_time_days,
            lead_time_std_days,
            lead_time_distribution,
            review_period_days,
            target,
            pack_size,
            min_order_quantity,
            unit_cost,
            quantiles,
            history,
            backordered,
        } = r;
        t::RecommendRequest {
            model_name,
            model_version,
            series: series.map(Into::into),
            on_hand,
            on_order: on_order
                .into_iter()
                .map(
                    |pb::OnOrder {
                         quantity,
                         arrival_date,
                     }| t::OnOrder {
                        quantity,
                        arrival_date,
                    },
                )
                .collect(),
            lead_time_days,
            lead_time_std_days,
            lead_time_distribution: lead_time_distribution
                .into_iter()
                .map(
                    |pb::LeadTimeOutcome { days, probability }| t::LeadTimeOutcome {
                        days,
                        probability,
                    },
                )
                .collect(),
            review_period_days,
            target: target.map(|target| match target {
                pb::recommend_request::Target::CycleServiceLevel(a) => {
                    t::ServiceTarget::CycleServiceLevel(a)
                }
                pb::recommend_request::Target::FillRate(b) => t::ServiceTarget::FillRate(b),
            }),
            pack_size,
            min_order_quantity,
            unit_cost,
            quantiles,
            history: history.map(Into::into),
            backordered,
        }
    }
}

impl From<t::RecommendResponse> for pb::RecommendResponse {
    fn from(r: t::RecommendResponse) -> Self {
        let t::RecommendResponse {
            model_name,
            model_version,
            series,
            history_last_date,
            outcome,
            protection_days,
            demand_mean,
            demand_std,
            quantiles,
            demand_quantiles,
            reorder_point,
            order_up_to,
            inventory_position,
            order_quantity,
            stockout_probability,
            expected_units_short,
            order_value,
            needs_approval,
        } = r;
        let outcome = match outcome {
            t::Outcome::Order => pb::recommend_response::Outcome::Order,
            t::Outcome::NoOrder => pb::recommend_response::Outcome::NoOrder,
            t::Outcome::NeedsApproval => pb::recommend_response::Outcome::NeedsApproval,
        };
        pb::RecommendResponse {
            model_name,
            model_version,
            series: series.map(Into::into),
            history_last_date,
            outcome: outcome.into(),
            protection_days,
            demand_mean,
            demand_std,
            quantiles,
            demand_quantiles,
            reorder_point,
            order_up_to,
            inventory_position,
            order_quantity,
            stockout_probability,
            expected_units_short,
            order_value,
            needs_approval,
        }
    }
}

impl From<pb::RecommendBatchRequest> for t::RecommendBatchRequest {
    fn from(r: pb::RecommendBatchRequest) -> Self {
        let pb::RecommendBatchRequest {
            model_name,
            model_version,
            items,
        } = r;
        t::RecommendBatchRequest {
            model_name,
            model_version,
            items: items.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<t::RecommendBatchResponse> for pb::RecommendBatchResponse {
    fn from(r: t::RecommendBatchResponse) -> Self {
        pb::RecommendBatchResponse {
            recommendations: r
                .recommendations
                .into_iter()
                .map(|item| {
                    let t::ItemRecommendation {
                        index,
                        error,
                        recommendation,
                    } = item;
                    let (code, error) = item_status(error);
                    pb::ItemRecommendation {
                        index,
                        code,
                        error,
                        recommendation: recommendation.map(Into::into),
                    }
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl Inventory for InventoryService {
    async fn recommend(
        &self,
        req: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let ctx = super::request_id::context(&req);
        let answer = crate::api::forecast::recommend(
            &self.serving,
            &ctx,
            &self.method,
            req.into_inner().into(),
        )
        .await?;
        Ok(Response::new(answer.into()))
    }

    type RecommendBatchStream = BoxStream<'static, Result<pb::RecommendBatchResponse, Status>>;

    async fn recommend_batch(
        &self,
        req: Request<pb::RecommendBatchRequest>,
    ) -> Result<Response<Self::RecommendBatchStream>, Status> {
        let ctx = super::request_id::context(&req);
        let stream = crate::api::forecast::recommend_batch(
            Arc::clone(&self.serving),
            &ctx,
            self.method.settings,
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
