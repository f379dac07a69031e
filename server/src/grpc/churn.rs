//! `mercator.v1.Churn`: thin handler over `crate::api::churn`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, churn_server::Churn};
use tonic::{Request, Response, Status};

use crate::serving::Serving;

/// The churn service.
#[derive(Debug, Clone)]
pub struct ChurnService {
    serving: Arc<Serving>,
    /// `limits.max_score_customers`.
    max_customers: usize,
}

impl ChurnService {
    /// A churn service over the serving path, scoring up to `max_customers` per call.
    pub fn new(serving: Arc<Serving>, max_customers: usize) -> ChurnService {
        ChurnService {
            serving,
            max_customers,
        }
    }
}

#[tonic::async_trait]
impl Churn for ChurnService {
    async fn score(
        &self,
        req: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let serving = &self.serving;
        super::observed::observed(&serving.metrics, crate::api::churn::SCORE, async |obs| {
            crate::api::churn::score(serving, req.into_inner(), self.max_customers, obs).await
        })
        .await
    }
}
