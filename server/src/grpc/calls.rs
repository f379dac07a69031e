//! Every gRPC call counted and timed by service, method and status code, whichever
//! service answers it: the management services (Registry, FeatureStore, Monitoring),
//! V2 metadata and repository calls, health checks and reflection as well as inference.
//! The inference handlers' own per-model, per-version series (`mercator_requests_total`)
//! are unchanged; these say how the server as a whole is being called.
//!
//! A tower layer outside the router, so nothing a handler does (or forgets) can skip it.
//! The code is read where gRPC puts it: the `grpc-status` header of a trailers-only
//! response (how tonic answers an error), else the trailers at the end of the body, so a
//! streaming call is timed to its last message. A call whose body is dropped before its
//! trailers (the client went away) counts as CANCELLED.
//!
//! Labels are bounded: service and method come from the descriptor sets compiled into
//! the binary; any other path a client sends is `_unknown`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use prometheus::{Histogram, IntCounter};
use tonic::codegen::http;

use crate::error::code_name;
use crate::monitor::UNKNOWN;
use crate::monitor::calls::CallMetrics;

/// One method's labels, and its most used series resolved on first use: looking a
/// series up by labels hashes them and takes the family's lock, on every call.
#[derive(Debug)]
struct Method {
    service: String,
    method: String,
    ok: OnceLock<IntCounter>,
    duration: OnceLock<Histogram>,
}

impl Method {
    fn new(service: &str, method: &str) -> Method {
        Method {
            service: service.to_string(),
            method: method.to_string(),
            ok: OnceLock::new(),
            duration: OnceLock::new(),
        }
    }
}

/// Path (`/package.Service/Method`) → its method, for every method served.
type Methods = HashMap<String, Arc<Method>>;

/// Every method of the descriptor sets the server is built with.
fn known_methods() -> Methods {
    crate::descriptors::methods()
        .into_iter()
        .map(|(service, method)| {
            let path = format!("/{service}/{method}");
            (path, Arc::new(Method::new(&service, &method)))
        })
        .collect()
}

/// The layer: wrap the router's service with it.
#[derive(Clone, Debug)]
pub struct CallLayer {
    metrics: CallMetrics,
    methods: Arc<Methods>,
    unknown: Arc<Method>,
}

impl CallLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: CallMetrics) -> CallLayer {
        CallLayer {
            metrics,
            methods: Arc::new(known_methods()),
            unknown: Arc::new(Method::new(UNKNOWN, UNKNOWN)),
        }
    }
}

impl<S> tower::Layer<S> for CallLayer {
    type Service = Calls<S>;

    fn layer(&self, inner: S) -> Calls<S> {
        Calls {
            inner,
            layer: self.clone(),
        }
    }
}

/// The wrapped service.
#[derive(Clone, Debug)]
pub struct Calls<S> {
    inner: S,
    layer: CallLayer,
}

/// One call's labels and start, recorded exactly once: with the code it ended with, or
/// as CANCELLED when dropped unrecorded.
#[derive(Debug)]
struct Pending {
    metrics: CallMetrics,
    method: Arc<Method>,
    started: Instant,
    recorded: bool,
}

impl Pending {
    fn record(&mut self, code: tonic::Code) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let (m, metrics) = (&self.method, &self.metrics);
        let labels = [m.service.as_str(), m.method.as_str()];
        let counter = |code| {
            metrics
                .requests
                .with_label_values(&[labels[0], labels[1], code_name(code)])
        };
        match code {
            tonic::Code::Ok => m.ok.get_or_init(|| counter(code)).inc(),
            other => counter(other).inc(),
        }
        m.duration
            .get_or_init(|| metrics.duration.with_label_values(&labels))
            .observe(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled);
    }
}

/// The code of a `grpc-status` value.
fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    headers
        .get("grpc-status")
        .map(|v| tonic::Code::from_bytes(v.as_bytes()))
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Calls<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<CountedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let method = self
            .layer
            .methods
            .get(req.uri().path())
            .unwrap_or(&self.layer.unknown);
        let mut pending = Pending {
            metrics: self.layer.metrics.clone(),
            method: Arc::clone(method),
            started: Instant::now(),
            recorded: false,
        };
        // The clone that was made ready is the one to call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = match inner.call(req).await {
                Ok(r) => r,
                Err(e) => {
                    pending.record(tonic::Code::Unknown);
                    return Err(e);
                }
            };
            let pending = match status_of(response.headers()) {
                // Trailers-only: the status is already known.
                Some(code) => {
                    pending.record(code);
                    None
                }
                None => Some(pending),
            };
            Ok(response.map(|inner| CountedBody { inner, pending }))
        })
    }
}

/// A response body that records its call when the trailers pass.
#[derive(Debug)]
pub struct CountedBody<B> {
    inner: B,
    pending: Option<Pending>,
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let code = match &polled {
            Some(Ok(frame)) => frame
                .trailers_ref()
                .map(|t| status_of(t).unwrap_or(tonic::Code::Unknown)),
            Some(Err(_)) => Some(tonic::Code::Internal),
            // Ended without trailers: not a well-formed gRPC response.
            None => Some(tonic::Code::Unknown),
        };
        if let Some(code) = code
            && let Some(mut pending) = self.pending.take()
        {
            pending.record(code);
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
