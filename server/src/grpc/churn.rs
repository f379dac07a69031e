//! `mercator.v1.Churn`: converts to and from `crate::api::churn`'s domain types.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, churn_server::Churn};
use tonic::{Request, Response, Status};

use crate::api::churn::{
    CustomerScore, CustomerStatus, Intervention, Reason, Score, ScoreAnswer, ScoreRequest, Source,
};
use crate::serving::Serving;

/// The churn service.
#[derive(Debug, Clone)]
pub struct ChurnService {
    serving: Arc<Serving>,
    method: Score,
}

impl ChurnService {
    /// A churn service over the serving path, scoring up to `max_customers` per call.
    pub fn new(serving: Arc<Serving>, max_customers: usize) -> ChurnService {
        ChurnService {
            serving,
            method: Score { max_customers },
        }
    }
}

impl From<pb::ScoreRequest> for ScoreRequest {
    fn from(r: pb::ScoreRequest) -> Self {
        let pb::ScoreRequest {
            model_name,
            model_version,
            customer_ids,
            top_reasons,
        } = r;
        ScoreRequest {
            model: model_name,
            version: model_version,
            customer_ids,
            top_reasons,
        }
    }
}

impl From<Reason> for pb::Reason {
    fn from(r: Reason) -> Self {
        let Reason {
            feature,
            value,
            source,
            contribution,
            raises_risk,
        } = r;
        let source = match source {
            Source::Present => pb::reason::Source::Present,
            Source::Missing => pb::reason::Source::Missing,
            Source::Expired => pb::reason::Source::Expired,
        };
        let direction = if raises_risk {
            pb::reason::Direction::RaisesRisk
        } else {
            pb::reason::Direction::LowersRisk
        };
        pb::Reason {
            feature,
            value,
            source: source.into(),
            contribution,
            direction: direction.into(),
        }
    }
}

impl From<CustomerScore> for pb::CustomerScore {
    fn from(s: CustomerScore) -> Self {
        let CustomerScore {
            customer_id,
            status,
            probability,
            risk_band,
            missing_features,
            expired_features,
            model_version,
            reasons,
            intervention,
            uplift,
        } = s;
        let status = match status {
            CustomerStatus::Scored => pb::customer_score::Status::Scored,
            CustomerStatus::NoFeatures => pb::customer_score::Status::NoFeatures,
        };
        pb::CustomerScore {
            customer_id,
            status: status.into(),
            probability,
            risk_band,
            missing_features,
            expired_features,
            model_version,
            reasons: reasons.into_iter().map(Into::into).collect(),
            uplift,
            intervention: intervention.map(
                |Intervention {
                     action,
                     rule,
                     control,
                     experiment,
                 }| pb::Intervention {
                    action,
                    rule,
                    control,
                    experiment,
                },
            ),
        }
    }
}

impl From<ScoreAnswer> for pb::ScoreResponse {
    fn from(a: ScoreAnswer) -> Self {
        let ScoreAnswer {
            model,
            version,
            scores,
        } = a;
        pb::ScoreResponse {
            model_name: model,
            model_version: version,
            scores: scores.into_iter().map(Into::into).collect(),
        }
    }
}

#[tonic::async_trait]
impl Churn for ChurnService {
    async fn score(
        &self,
        req: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let ctx = super::request_id::context(&req);
        let answer =
            crate::api::churn::score(&self.serving, &ctx, &self.method, req.into_inner().into())
                .await?;
        Ok(Response::new(answer.into()))
    }
}
