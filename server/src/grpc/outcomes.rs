//! `mercator.v1.Outcomes`: a thin handler over `crate::quality::Judge::push`.

use std::sync::Arc;

use mercator_proto::v1::{self as pb, outcomes_server::Outcomes};
use tonic::{Request, Response, Status};

use crate::error::ServeError;
use crate::monitor::Metrics;
use crate::quality::{Judge, Outcome};

/// The `method` label of `Outcomes/Push`.
pub const PUSH_OUTCOMES: &str = "Outcomes.Push";

/// The outcomes service.
#[derive(Debug, Clone)]
pub struct OutcomesService {
    judge: Option<Arc<Judge>>,
    metrics: Metrics,
}

impl OutcomesService {
    /// Outcomes stored through `judge` (none: the prediction log is off).
    pub fn new(judge: Option<Arc<Judge>>, metrics: Metrics) -> OutcomesService {
        OutcomesService { judge, metrics }
    }
}

/// An outcome from the wire: its time is required.
fn outcome(i: usize, o: pb::Outcome) -> Result<Outcome, ServeError> {
    let pb::Outcome {
        entity,
        time,
        value,
        label,
    } = o;
    let time = time.ok_or_else(|| {
        ServeError::invalid(format!("outcomes[{i}].time"), "give the outcome's time")
    })?;
    let micros = mercator_features::grpc::timestamp_micros(&time)
        .ok_or_else(|| ServeError::invalid(format!("outcomes[{i}].time"), "out of range"))?;
    let labelled = !label.is_empty();
    Ok(Outcome {
        entity,
        time_micros: micros,
        value: (!labelled).then_some(value),
        label: labelled.then_some(label),
    })
}

#[tonic::async_trait]
impl Outcomes for OutcomesService {
    async fn push(
        &self,
        req: Request<pb::PushOutcomesRequest>,
    ) -> Result<Response<pb::PushOutcomesResponse>, Status> {
        let pb::PushOutcomesRequest {
            model_name,
            outcomes,
        } = req.into_inner();
        let result = async {
            let judge = self
                .judge
                .as_ref()
                .ok_or_else(|| crate::quality::log_off("outcomes have nothing to judge"))?;
            let outcomes = outcomes
                .into_iter()
                .enumerate()
                .map(|(i, o)| outcome(i, o))
                .collect::<Result<Vec<_>, _>>()?;
            let accepted = judge.push(&model_name, &outcomes).await?;
            Ok((None, pb::PushOutcomesResponse { accepted }))
        }
        .await;
        super::observed::observed(&self.metrics, PUSH_OUTCOMES, result)
    }
}
