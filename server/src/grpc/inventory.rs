//! `mercator.v1.Inventory`: thin handlers over `crate::api::forecast`'s recommendations.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, inventory_server::Inventory};
use tonic::{Request, Response, Status};

use crate::api::forecast::{RECOMMEND, RECOMMEND_BATCH, RecommendSettings, RecommendStream};
use crate::serving::{Observation, Serving};

/// The inventory service.
#[derive(Debug, Clone)]
pub struct InventoryService {
    serving: Arc<Serving>,
    settings: RecommendSettings,
}

impl InventoryService {
    /// An inventory service over the serving path.
    pub fn new(serving: Arc<Serving>, settings: RecommendSettings) -> InventoryService {
        InventoryService { serving, settings }
    }
}

#[tonic::async_trait]
impl Inventory for InventoryService {
    async fn recommend(
        &self,
        req: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let serving = &self.serving;
        super::observed::observed(&serving.metrics, RECOMMEND, async |obs| {
            crate::api::forecast::recommend(serving, self.settings, req.into_inner(), obs).await
        })
        .await
    }

    type RecommendBatchStream = RecommendStream;

    async fn recommend_batch(
        &self,
        req: Request<pb::RecommendBatchRequest>,
    ) -> Result<Response<RecommendStream>, Status> {
        // Observed when the stream ends, not when it starts.
        let obs = Observation::start(RECOMMEND_BATCH);
        crate::api::forecast::recommend_batch(
            Arc::clone(&self.serving),
            self.settings,
            req.into_inner(),
            obs,
        )
        .await
        .map(Response::new)
    }
}
