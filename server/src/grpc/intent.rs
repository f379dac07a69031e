//! `mercator.v1.Intent`: thin handler over `crate::api::intent`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, intent_server::Intent};
use tonic::{Request, Response, Status};

use crate::serving::Serving;

/// The intent service.
#[derive(Debug, Clone)]
pub struct IntentService {
    serving: Arc<Serving>,
    /// `limits.max_text_bytes`.
    max_text_bytes: usize,
}

impl IntentService {
    /// An intent service over the serving path, taking texts of up to `max_text_bytes`.
    pub fn new(serving: Arc<Serving>, max_text_bytes: usize) -> IntentService {
        IntentService {
            serving,
            max_text_bytes,
        }
    }
}

#[tonic::async_trait]
impl Intent for IntentService {
    async fn classify(
        &self,
        req: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        let serving = &self.serving;
        super::observed::observed(
            &serving.metrics,
            crate::api::intent::CLASSIFY,
            async |obs| {
                crate::api::intent::classify(serving, req.into_inner(), self.max_text_bytes, obs)
                    .await
            },
        )
        .await
    }
}
