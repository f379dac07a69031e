//! The global budget for buffered request bytes (`[grpc] max_buffered_request_bytes`).
//! Every request body draws on one pool as its data arrives and gives back when it is
//! dropped; a body that would overdraw it fails at once with RESOURCE_EXHAUSTED. So a
//! crowd of uploads that send a little and stall (each one holding its buffer until the
//! deadline) cannot take the process's memory, whatever `max_message_bytes` allows one
//! call, and requests that fit keep being served.
//!
//! A body gives its bytes back when it is dropped, which for the unary calls served
//! today is once its message is decoded. A client-streaming RPC (none yet) would hold
//! its whole stream this way and needs a release as messages are consumed.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::http;

/// The pool is counted in KiB, so that a large budget fits a semaphore's permits.
const UNIT: usize = 1024;

/// The layer that puts every request body on the budget.
#[derive(Debug, Clone)]
pub struct BudgetLayer {
    pool: Arc<Semaphore>,
    bytes: usize,
}

impl BudgetLayer {
    /// A budget of `bytes` for all request bodies being received at once.
    pub fn new(bytes: usize) -> BudgetLayer {
        let units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        BudgetLayer {
            pool: Arc::new(Semaphore::new(units)),
            bytes,
        }
    }
}

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = Budget<S>;

    fn layer(&self, inner: S) -> Budget<S> {
        Budget {
            inner,
            layer: self.clone(),
        }
    }
}

/// The wrapped service.
#[derive(Debug, Clone)]
pub struct Budget<S> {
    inner: S,
    layer: BudgetLayer,
}

impl<S, B> tower::Service<http::Request<B>> for Budget<S>
where
    S: tower::Service<http::Request<tonic::body::Body>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tower::BoxError>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> S::Future {
        let pool = Arc::clone(&self.layer.pool);
        let limit = self.layer.bytes;
        self.inner.call(req.map(|body| {
            tonic::body::Body::new(Budgeted {
                inner: Box::pin(body),
                pool,
                limit,
                held: None,
            })
        }))
    }
}

/// A request body that holds its received bytes against the pool.
struct Budgeted<B> {
    inner: Pin<Box<B>>,
    pool: Arc<Semaphore>,
    limit: usize,
    held: Option<OwnedSemaphorePermit>,
}

impl<B> Body for Budgeted<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<tower::BoxError>,
{
    type Data = Bytes;
    type Error = tower::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tower::BoxError>>> {
        let this = self.get_mut();
        let frame = match this.inner.as_mut().poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            let units = u32::try_from(data.len().div_ceil(UNIT)).unwrap_or(u32::MAX);
            match Arc::clone(&this.pool).try_acquire_many_owned(units) {
                Ok(permit) => match &mut this.held {
                    Some(held) => held.merge(permit),
                    None => this.held = Some(permit),
                },
                Err(_) => {
                    let status = tonic::Status::resource_exhausted(format!(
                        "the server is receiving as many request bytes as it may buffer \
                         (grpc.max_buffered_request_bytes = {}); retry shortly",
                        this.limit
                    ));
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
