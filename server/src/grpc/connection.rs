//! What a connection carries into each of its calls. The listener (`listen/`) gives every
//! accepted connection a set of values — the principal its verified client certificate
//! stands for, its own share of the buffered-bytes budget — and tonic hands a clone of
//! that set to each request as the connection's `connect_info`. [`ConnectionLayer`], the
//! outermost layer, spreads it into the request's extensions, where each layer below finds
//! the value it needs by its type, knowing nothing of listeners.

use std::task::{Context, Poll};

use tonic::codegen::http;

/// A connection's values, keyed by type (as `http::Extensions` are).
#[derive(Debug, Clone, Default)]
pub struct ConnectionValues(pub http::Extensions);

impl ConnectionValues {
    /// Adds `value`, replacing any value of its type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(value);
    }
}

/// The layer that spreads a connection's values into each of its requests.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionLayer;

impl<S> tower::Layer<S> for ConnectionLayer {
    type Service = Connection<S>;

    fn layer(&self, inner: S) -> Connection<S> {
        Connection { inner }
    }
}

/// The wrapped service.
#[derive(Debug, Clone)]
pub struct Connection<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Connection<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> S::Future {
        if let Some(values) = req.extensions_mut().remove::<ConnectionValues>() {
            req.extensions_mut().extend(values.0);
        }
        self.inner.call(req)
    }
}
