//! The budgets for buffered request bytes: one for the whole process
//! (`[grpc] max_buffered_request_bytes`) and one for each connection
//! (`max_buffered_request_bytes_per_connection`, its [`ConnectionBudget`] given by the
//! listener). Every request body draws on both as its data arrives and gives back when it
//! is dropped; a body that would overdraw either fails at once with RESOURCE_EXHAUSTED
//! naming the limit. So a crowd of uploads that send a little and stall (each one holding
//! its buffer until the deadline) cannot take the process's memory, whatever
//! `max_message_bytes` allows one call, one connection's streams cannot take the whole
//! budget from the others, and requests that fit keep being served.
//!
//! Only authenticated callers draw on those budgets. A call that passes without a
//! credential (health checks, reflection when open: `auth::Unauthenticated` marks it)
//! may send at most `[limits] max_unauthenticated_body_bytes`, from a small pool of its
//! own, so that nobody without a credential can hold the memory keyed callers need.
//! REST requests are charged by the REST edge itself (`rest/guard.rs`, with a [`Charge`]
//! on the same pools) and marked [`Prebudgeted`], so they are not charged twice.
//!
//! A body holds the bytes of the message it is receiving: it follows gRPC's framing (a
//! 5-byte prefix giving each message's length) and gives the bytes back as each message
//! is complete, when the decoder takes it, or when the body is dropped. So a unary call
//! holds its one message until it is decoded, and a stream (`ModelStreamInfer`) holds
//! only the message in flight, however long it runs.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::http;

/// The pools are counted in KiB, so that a large budget fits a semaphore's permits.
const UNIT: usize = 1024;

/// One pool of bytes, and the configuration key that sets it (for the refusal).
#[derive(Debug, Clone)]
struct Pool {
    units: Arc<Semaphore>,
    bytes: usize,
    key: &'static str,
}

impl Pool {
    fn new(bytes: usize, key: &'static str) -> Pool {
        let units = bytes.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS);
        Pool {
            units: Arc::new(Semaphore::new(units)),
            bytes,
            key,
        }
    }

    /// `units` from the pool, or the refusal that names it.
    fn take(&self, units: u32) -> Result<OwnedSemaphorePermit, tonic::Status> {
        Arc::clone(&self.units)
            .try_acquire_many_owned(units)
            .map_err(|_| {
                tonic::Status::resource_exhausted(format!(
                    "the server is receiving as many request bytes as it may buffer \
                     ({} = {}); retry shortly",
                    self.key, self.bytes
                ))
            })
    }
}

/// One connection's share: the listener gives each accepted connection its own, which
/// its requests find in their extensions (`grpc/connection.rs`).
#[derive(Debug, Clone)]
pub struct ConnectionBudget(Pool);

impl ConnectionBudget {
    /// A budget of `bytes` for the request bodies one connection receives at once.
    pub fn new(bytes: usize) -> ConnectionBudget {
        ConnectionBudget(Pool::new(
            bytes,
            "grpc.max_buffered_request_bytes_per_connection",
        ))
    }
}

/// Marks a request whose body the REST edge has already charged: the layer lets it by.
#[derive(Debug, Clone, Copy)]
pub struct Prebudgeted;

/// How many unauthenticated bodies of the largest size may be held at once: their pool.
const UNAUTHENTICATED_BODIES: usize = 256;

/// The layer that puts every request body on the budgets.
#[derive(Debug, Clone)]
pub struct BudgetLayer {
    global: Pool,
    /// What all unauthenticated bodies together may hold.
    unauthenticated: Pool,
    /// What one unauthenticated body may hold.
    per_unauthenticated: usize,
}

impl BudgetLayer {
    /// A budget of `bytes` for all authenticated request bodies being received at once,
    /// and of `unauthenticated` bytes for each body sent without a credential.
    pub fn new(bytes: usize, unauthenticated: usize) -> BudgetLayer {
        BudgetLayer {
            global: Pool::new(bytes, "grpc.max_buffered_request_bytes"),
            unauthenticated: Pool::new(
                unauthenticated.saturating_mul(UNAUTHENTICATED_BODIES),
                "limits.max_unauthenticated_body_bytes (times 256, for all such bodies)",
            ),
            per_unauthenticated: unauthenticated,
        }
    }

    /// The pools a request draws on: an authenticated one's connection's and the global
    /// one, an unauthenticated one's own small allowance and the pool of all such.
    fn pools(&self, extensions: &http::Extensions) -> Vec<Held> {
        let mut pools = Vec::with_capacity(2);
        if extensions.get::<crate::auth::Unauthenticated>().is_some() {
            pools.push((
                Pool::new(
                    self.per_unauthenticated,
                    "limits.max_unauthenticated_body_bytes",
                ),
                None,
            ));
            pools.push((self.unauthenticated.clone(), None));
            return pools;
        }
        // The connection's pool first: one greedy connection is refused by its own limit.
        if let Some(ConnectionBudget(pool)) = extensions.get::<ConnectionBudget>() {
            pools.push((pool.clone(), None));
        }
        pools.push((self.global.clone(), None));
        pools
    }

    /// A charge for one request received outside the gRPC layers (a REST body), on the
    /// same pools a gRPC call with the same `extensions` would draw on.
    pub fn charge(&self, extensions: &http::Extensions) -> Charge {
        Charge(Arc::new(Mutex::new(self.pools(extensions))))
    }
}

/// What one request holds against its pools: taken as its bytes arrive, given back when
/// the last clone is dropped (when the request has been answered).
#[derive(Debug, Clone)]
pub struct Charge(Arc<Mutex<Vec<Held>>>);

/// A pool and what a request holds of it.
type Held = (Pool, Option<OwnedSemaphorePermit>);

impl Charge {
    /// Holds `bytes` more on every pool, or refuses with RESOURCE_EXHAUSTED naming the
    /// limit that would be overdrawn.
    pub fn take(&self, bytes: usize) -> Result<(), tonic::Status> {
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        if units == 0 {
            return Ok(());
        }
        let mut pools = self.0.lock().unwrap_or_else(|p| p.into_inner());
        hold(&mut pools, units)
    }
}

/// Holds `units` on every pool of `pools`, merged with what each already holds.
fn hold(pools: &mut [Held], units: u32) -> Result<(), tonic::Status> {
    for (pool, held) in pools {
        let permit = pool.take(units)?;
        match held {
            Some(held) => held.merge(permit),
            None => *held = Some(permit),
        }
    }
    Ok(())
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
        if req.extensions().get::<Prebudgeted>().is_some() {
            return self.inner.call(req.map(tonic::body::Body::new));
        }
        let pools = self.layer.pools(req.extensions());
        self.inner.call(req.map(|body| {
            tonic::body::Body::new(Budgeted {
                inner: Box::pin(body),
                pools,
                framing: Framing::default(),
            })
        }))
    }
}

/// A request body that holds its received bytes against the pools.
struct Budgeted<B> {
    inner: Pin<Box<B>>,
    pools: Vec<Held>,
    framing: Framing,
}

/// Where a body is in gRPC's length-prefixed framing.
#[derive(Debug, Default)]
struct Framing {
    /// Bytes of the current message's 5-byte prefix seen so far.
    prefix: Vec<u8>,
    /// Bytes of the current message still to come, once its prefix is whole.
    left: usize,
}

impl Framing {
    /// Follows `data`; when a message ends within it, how many of its bytes come after
    /// the last message boundary (those of the message now in flight).
    fn advance(&mut self, mut data: &[u8]) -> Option<usize> {
        let mut tail = None;
        while !data.is_empty() {
            if self.left > 0 {
                let n = self.left.min(data.len());
                self.left -= n;
                data = &data[n..];
            } else {
                let n = (5 - self.prefix.len()).min(data.len());
                self.prefix.extend_from_slice(&data[..n]);
                data = &data[n..];
                if self.prefix.len() == 5 {
                    let len = [
                        self.prefix[1],
                        self.prefix[2],
                        self.prefix[3],
                        self.prefix[4],
                    ];
                    self.left = u32::from_be_bytes(len) as usize;
                    self.prefix.clear();
                } else {
                    continue;
                }
            }
            if self.left == 0 && self.prefix.is_empty() {
                tail = Some(data.len());
            }
        }
        tail
    }
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
            let held_bytes = match this.framing.advance(data) {
                // Still inside one message: hold all of this data too.
                None => data.len(),
                // A message ended here: give back what it held, hold what follows.
                Some(tail) => {
                    for (_, held) in &mut this.pools {
                        *held = None;
                    }
                    tail
                }
            };
            let units = u32::try_from(held_bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
            if units == 0 {
                return Poll::Ready(Some(Ok(frame)));
            }
            if let Err(status) = hold(&mut this.pools, units) {
                return Poll::Ready(Some(Err(Box::new(status))));
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

#[cfg(test)]
mod tests {
    use super::Framing;

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&u32::try_from(len).expect("small").to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len));
        m
    }

    #[test]
    fn framing_finds_message_ends_across_and_within_chunks() {
        let mut f = Framing::default();
        let two = [message(10), message(3)].concat();
        // A whole message and the first 4 bytes of the next: 4 bytes are in flight.
        assert_eq!(f.advance(&two[..19]), Some(4));
        // The rest of it: it ends exactly at the chunk's end.
        assert_eq!(f.advance(&two[19..]), Some(0));
        // A prefix split over chunks, then a body split too.
        let big = message(100);
        assert_eq!(f.advance(&big[..3]), None);
        assert_eq!(f.advance(&big[3..50]), None);
        assert_eq!(f.advance(&big[50..]), Some(0));
        // An empty message ends with its prefix.
        assert_eq!(f.advance(&message(0)), Some(0));
    }
}
