//! `mercator.v1.Intent`: converts to and from `crate::api::intent`'s domain types.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, intent_server::Intent};
use tonic::{Request, Response, Status};

use crate::api::intent::{Classification, Classify, ClassifyRequest};
use crate::serving::Serving;

/// The intent service.
#[derive(Debug, Clone)]
pub struct IntentService {
    serving: Arc<Serving>,
    method: Classify,
}

impl IntentService {
    /// An intent service over the serving path, taking texts of up to `max_text_bytes`.
    pub fn new(serving: Arc<Serving>, max_text_bytes: usize) -> IntentService {
        IntentService {
            serving,
            method: Classify { max_text_bytes },
        }
    }
}

impl From<pb::ClassifyRequest> for ClassifyRequest {
    fn from(r: pb::ClassifyRequest) -> Self {
        let pb::ClassifyRequest {
            model_name,
            model_version,
            text,
            session_id,
            top_k,
            reference_date,
            answer_top_k,
        } = r;
        ClassifyRequest {
            model: model_name,
            version: model_version,
            text,
            session_id,
            top_k,
            reference_date,
            answer_top_k,
        }
    }
}

impl From<Classification> for pb::ClassifyResponse {
    fn from(c: Classification) -> Self {
        let Classification {
            model,
            version,
            intents,
            action,
            handoff_reason,
            session_id,
            slots,
            missing_slots,
            turn,
            answers,
            seen: _,
        } = c;
        pb::ClassifyResponse {
            model_name: model,
            model_version: version,
            intents: intents
                .into_iter()
                .map(|(intent, probability)| pb::IntentScore {
                    intent,
                    probability,
                })
                .collect(),
            action,
            handoff: !handoff_reason.is_empty(),
            handoff_reason: handoff_reason.into(),
            session_id,
            slots: slots
                .into_iter()
                .map(|f| pb::Slot {
                    name: f.name,
                    value: f.value,
                    text: f.text,
                    start: u32::try_from(f.start).unwrap_or(u32::MAX),
                    end: u32::try_from(f.end).unwrap_or(u32::MAX),
                    remembered: f.remembered,
                })
                .collect(),
            missing_slots,
            turn,
            answers: answers
                .into_iter()
                .map(|a| pb::Answer {
                    id: a.id,
                    title: a.title,
                    text: a.text,
                    url: a.url,
                    score: a.score,
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl Intent for IntentService {
    async fn classify(
        &self,
        req: Request<pb::ClassifyRequest>,
    ) -> Result<Response<pb::ClassifyResponse>, Status> {
        let ctx = super::request_id::context(&req);
        let answer = crate::api::intent::classify(
            &self.serving,
            &ctx,
            &self.method,
            req.into_inner().into(),
        )
        .await?;
        Ok(Response::new(answer.into()))
    }
}
