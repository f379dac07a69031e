//! `mercator.v1.Churn`: thin handler over `crate::churn`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, churn_server::Churn};
use tonic::{Request, Response, Status};

use crate::serving::{Observation, Serving};

/// The churn service.
#[derive(Debug, Clone)]
pub struct ChurnService {
    serving: Arc<Serving>,
}

impl ChurnService {
    /// A churn service over the serving path.
    pub fn new(serving: Arc<Serving>) -> ChurnService {
        ChurnService { serving }
    }
}

#[tonic::async_trait]
impl Churn for ChurnService {
    async fn score(
        &self,
        req: Request<pb::ScoreRequest>,
    ) -> Result<Response<pb::ScoreResponse>, Status> {
        let mut obs = Observation::start(crate::churn::SCORE);
        let result = crate::churn::score(&self.serving, req.into_inner(), &mut obs)
            .await
            .map(Response::new)
            .map_err(Status::from);
        obs.finish(
            &self.serving.metrics,
            result
                .as_ref()
                .map_or_else(|s| s.code(), |_| tonic::Code::Ok),
        );
        result
    }
}
