//! The tower layer in front of every gRPC service: the call's scope from the table, the
//! credential checked, the principal put into the request for the handler. A refused
//! call never reaches a handler (nor decodes its body).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::Either;
use tonic::codegen::http;

use super::CertPrincipal;
use super::rate::RateLimits;
use super::scopes::{Access, access};
use super::verify::Verifier;

/// What the layer enforces.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    /// `None`: auth is off (`[auth] mode = "none"`), every call passes.
    verifier: Option<Arc<Verifier>>,
    /// Whether server reflection needs a credential.
    protect_reflection: bool,
    /// Per-principal budgets (`None`: unlimited).
    limits: Option<Arc<RateLimits>>,
}

impl AuthLayer {
    /// A layer checking credentials with `verifier` (`None`: auth off), then each
    /// principal's rate with `limits`.
    pub fn new(
        verifier: Option<Arc<Verifier>>,
        protect_reflection: bool,
        limits: Option<Arc<RateLimits>>,
    ) -> AuthLayer {
        AuthLayer {
            verifier,
            protect_reflection,
            limits,
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The wrapped service.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

type Refusable<F, R, E> = Either<F, Pin<Box<dyn Future<Output = Result<R, E>> + Send>>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Auth<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Refusable<S::Future, Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        if let Err(status) = super::authorization(req.headers()) {
            return Either::Right(Box::pin(async move { Ok(status.into_http()) }));
        }
        let Some(verifier) = &self.layer.verifier else {
            return Either::Left(self.inner.call(req));
        };
        let needed = match access(req.uri().path()) {
            Access::Open => None,
            Access::Reflection if !self.layer.protect_reflection => None,
            Access::Reflection => Some(None),
            Access::Scope(scope) => Some(Some(scope)),
        };
        let Some(needed) = needed else {
            req.extensions_mut().insert(super::Unauthenticated);
            return Either::Left(self.inner.call(req));
        };
        let verifier = Arc::clone(verifier);
        let limits = self.layer.limits.clone();
        // The clone that was made ready is the one to call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Either::Right(Box::pin(async move {
            let header = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|v| v.as_bytes());
            let certified = req
                .extensions()
                .get::<CertPrincipal>()
                .and_then(|c| c.0.as_deref());
            let principal = match verifier.authenticate(header, certified).await {
                Ok(p) => p,
                Err(status) => return Ok(status.into_http()),
            };
            if let Some(scope) = needed
                && !principal.allows(scope)
            {
                let status = tonic::Status::permission_denied(format!(
                    "this call needs the scope `{scope}`"
                ));
                return Ok(status.into_http());
            }
            if let (Some(limits), Some(scope)) = (&limits, needed)
                && let Err(wait) = limits.take(&principal.name, scope)
            {
                return Ok(rate_limited(scope, wait).into_http());
            }
            req.extensions_mut().insert(principal);
            inner.call(req).await
        }))
    }
}

/// The refusal of a call over its principal's rate, with a `RetryInfo` saying when.
fn rate_limited(scope: super::Scope, wait: std::time::Duration) -> tonic::Status {
    use tonic_types::{ErrorDetails, StatusExt};
    tonic::Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!(
            "this principal is over its rate for `{scope}` ([auth] rate_limits): retry in {:.3} s",
            wait.as_secs_f64()
        ),
        ErrorDetails::with_retry_info(Some(wait)),
    )
}
