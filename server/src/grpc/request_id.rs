//! A request id on every call: the caller's `x-request-id` (gRPC metadata, or the REST
//! header the REST edge forwards) when it is a sane one, else a fresh UUIDv7 (time-ordered,
//! so ids sort as calls arrived). The id goes into the request's extensions (for the
//! layers and handlers below: the prediction log records it), into the call's log span,
//! and back to the caller in the response's `x-request-id` — on refusals too, since this
//! layer sits outside the others.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::codegen::http;
use tracing::Instrument;

/// The header (and gRPC metadata key) that carries a request id.
pub const REQUEST_ID: &str = "x-request-id";

/// Longest id taken from a caller; a longer one is replaced, not cut.
pub const MAX_REQUEST_ID: usize = 128;

/// A call's request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    /// The caller's id in `headers` when it is 1 to [`MAX_REQUEST_ID`] visible ASCII
    /// characters, else a new UUIDv7.
    pub fn from_headers(headers: &http::HeaderMap) -> RequestId {
        headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty()
                    && v.len() <= MAX_REQUEST_ID
                    && v.bytes().all(|b| b.is_ascii_graphic())
            })
            .map_or_else(RequestId::new, |v| RequestId(Arc::from(v)))
    }

    /// A new id: a UUIDv7 (RFC 9562) whose 74 random bits are a per-process random
    /// seed mixed with a counter, so making one costs no system call (the `uuid` crate's
    /// `now_v7` asks the OS for randomness each time): unique within the process by the
    /// counter, across processes by the seed.
    pub fn new() -> RequestId {
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEED: OnceLock<u128> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let seed = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u128());
        let n = u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()) as u64;
        // The counter spread over the random bits (a multiplicative hash), so ids made one
        // after another do not look alike.
        let random = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        let mut bytes = random.to_be_bytes();
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        let id = uuid::Builder::from_bytes(bytes)
            .with_version(uuid::Version::SortRand)
            .with_variant(uuid::Variant::RFC4122)
            .into_uuid();
        RequestId(Arc::from(id.hyphenated().to_string()))
    }

    /// The id as a header value (always valid: visible ASCII).
    pub fn header_value(&self) -> Option<http::HeaderValue> {
        http::HeaderValue::from_str(&self.0).ok()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the serving envelope logs of a call: its request id and its authenticated
/// caller, read off the request's extensions (set by this layer and `auth/layer.rs`).
pub fn context<T>(req: &tonic::Request<T>) -> crate::serving::CallContext {
    crate::serving::CallContext {
        request_id: req
            .extensions()
            .get::<RequestId>()
            .map_or_else(|| RequestId::new().0, |id| Arc::clone(&id.0)),
        principal: req
            .extensions()
            .get::<crate::auth::Principal>()
            .map(|p| p.name.clone())
            .unwrap_or_default(),
        route: None,
    }
}

/// The layer that gives every call its request id.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIds<S>;

    fn layer(&self, inner: S) -> RequestIds<S> {
        RequestIds { inner }
    }
}

/// The wrapped service.
#[derive(Debug, Clone)]
pub struct RequestIds<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RequestIds<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let id = RequestId::from_headers(req.headers());
        let value = id.header_value();
        if let Some(v) = &value {
            req.headers_mut().insert(REQUEST_ID, v.clone());
        }
        let span = tracing::info_span!("call", request_id = %id);
        req.extensions_mut().insert(id);
        let call = self.inner.call(req);
        Box::pin(
            async move {
                let mut response = call.await?;
                if let Some(v) = value {
                    response.headers_mut().insert(REQUEST_ID, v);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            REQUEST_ID,
            http::HeaderValue::from_str(value).expect("value"),
        );
        h
    }

    #[test]
    fn a_sane_id_is_kept_and_anything_else_replaced_by_a_uuid_v7() {
        assert_eq!(
            &*RequestId::from_headers(&with("order-42/a")).0,
            "order-42/a"
        );
        for bad in ["", "has space", &"x".repeat(MAX_REQUEST_ID + 1)] {
            let id = RequestId::from_headers(&with(bad));
            let uuid = uuid::Uuid::parse_str(&id.0).expect("a uuid");
            assert_eq!(uuid.get_version_num(), 7, "{bad:?}");
        }
        let fresh = RequestId::from_headers(&http::HeaderMap::new());
        assert_eq!(fresh.0.len(), 36);
        assert_ne!(fresh, RequestId::new());
    }
}
