//! `ModelStreamInfer`: V2 inference over one bidirectional stream, as Triton serves it.
//! Each request is answered by the same path as a unary `ModelInfer` (`v2::infer`), with
//! up to [`IN_FLIGHT`] of a stream's requests computed at once and the answers sent in
//! the order the requests came. A request that fails does not end the stream: its answer
//! carries the error in `error_message` and the request's id. Each message after the
//! first takes its own token from the caller's rate limit (the call took the first) and
//! gets its own deadline; the stream as a whole may live as long as the connection.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use mercator_proto::inference as pb;
use tonic::{Request, Status, Streaming};

use super::status_text::bounded;
use crate::auth::Principal;
use crate::auth::Scope;
use crate::auth::rate::RateLimits;
use crate::serving::Serving;

/// Requests of one stream computed at once (answers still go out in order).
pub const IN_FLIGHT: usize = 8;

/// The answers of a stream.
pub type AnswerStream =
    Pin<Box<dyn Stream<Item = Result<pb::ModelStreamInferResponse, Status>> + Send + 'static>>;

/// What each message of a stream is held to.
#[derive(Debug, Clone)]
pub struct StreamLimits {
    /// The per-principal rate limits (`None`: unlimited).
    pub rates: Option<Arc<RateLimits>>,
    /// Each message's deadline (`[grpc] request_timeout_secs`).
    pub message_timeout: Duration,
}

/// Answers the requests of `req`'s stream, in order.
pub fn answer(
    serving: Arc<Serving>,
    limits: StreamLimits,
    req: Request<Streaming<pb::ModelInferRequest>>,
) -> AnswerStream {
    let principal = req.extensions().get::<Principal>().cloned();
    let stream = super::request_id::context(&req);
    let inbound = req.into_inner();
    let answers = inbound
        .enumerate()
        .map(move |(n, message)| {
            let serving = Arc::clone(&serving);
            let limits = limits.clone();
            let principal = principal.clone();
            // Each message is its own prediction: the stream's request id and its place.
            let ctx = crate::serving::CallContext {
                request_id: std::sync::Arc::from(format!("{}/{n}", stream.request_id)),
                principal: stream.principal.clone(),
                route: None,
            };
            async move {
                let request = message?;
                Ok(one(&serving, &ctx, &limits, principal.as_ref(), n, request).await)
            }
        })
        .buffered(IN_FLIGHT);
    // A broken inbound stream ends the answers with its status, after the answers before it.
    let mut ended = false;
    Box::pin(answers.take_while(move |item| {
        let go = !ended;
        ended |= item.is_err();
        futures::future::ready(go)
    }))
}

/// The answer to the `n`th request of a stream.
async fn one(
    serving: &Arc<Serving>,
    ctx: &crate::serving::CallContext,
    limits: &StreamLimits,
    principal: Option<&Principal>,
    n: usize,
    request: pb::ModelInferRequest,
) -> pb::ModelStreamInferResponse {
    let echo = pb::ModelInferResponse {
        model_name: request.model_name.clone(),
        model_version: request.model_version.clone(),
        id: request.id.clone(),
        ..Default::default()
    };
    if n > 0
        && let (Some(rates), Some(p)) = (&limits.rates, principal)
        && let Err(wait) = rates.take(&p.name, Scope::Infer)
    {
        return failed(
            echo,
            &format!(
                "this principal is over its rate for `infer` ([auth] rate_limits): retry in {:.3} s",
                wait.as_secs_f64()
            ),
        );
    }
    let result = crate::v2::infer::infer_message(serving, ctx, request, limits.message_timeout)
        .await
        .map_err(Status::from);
    match result {
        Ok(response) => pb::ModelStreamInferResponse {
            error_message: String::new(),
            infer_response: Some(response),
        },
        Err(status) => failed(echo, status.message()),
    }
}

fn failed(echo: pb::ModelInferResponse, message: &str) -> pb::ModelStreamInferResponse {
    pb::ModelStreamInferResponse {
        error_message: bounded(message),
        infer_response: Some(echo),
    }
}
