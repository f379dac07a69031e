//! The last word on every error a call answers with (a trailers-only response, which is
//! how tonic answers any refusal and any unary error):
//!
//! - a request that does not decode is the caller's fault: tonic says INTERNAL, the
//!   caller gets INVALID_ARGUMENT;
//! - the message is cut to [`MAX_MESSAGE_CHARS`] characters and control characters are
//!   escaped, so a name a client sent (10 KB of it, or terminal escapes) is not echoed
//!   back whole by any handler, ours or tonic's.
//!
//! Status details (binary) pass through unchanged.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::http;
use tonic::{Code, Status};

/// The longest error message a caller is sent.
pub const MAX_MESSAGE_CHARS: usize = 512;

/// What tonic and prost say when a request's bytes are not a message.
const DECODE_FAILURES: [&str; 3] = [
    "failed to decode Protobuf message",
    "Unexpected EOF decoding stream",
    "protocol error: received message with invalid compression flag",
];

/// The layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusTextLayer;

impl<S> tower::Layer<S> for StatusTextLayer {
    type Service = StatusText<S>;

    fn layer(&self, inner: S) -> StatusText<S> {
        StatusText { inner }
    }
}

/// The wrapped service.
#[derive(Debug, Clone)]
pub struct StatusText<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for StatusText<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let call = self.inner.call(req);
        Box::pin(async move {
            let mut response = call.await?;
            rewrite(response.headers_mut());
            Ok(response)
        })
    }
}

/// Rewrites the status in `headers`, if they carry an error.
fn rewrite(headers: &mut http::HeaderMap) {
    let failed = headers
        .get(Status::GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() != b"0");
    if !failed {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let code = match status.code() {
        Code::Internal
            if DECODE_FAILURES
                .iter()
                .any(|p| status.message().starts_with(p)) =>
        {
            Code::InvalidArgument
        }
        code => code,
    };
    let message = bounded(status.message());
    if code == status.code() && message == status.message() {
        return;
    }
    let details = status.details().to_vec();
    let rewritten = Status::with_details(code, message, details.into());
    headers.remove(Status::GRPC_STATUS);
    headers.remove(Status::GRPC_MESSAGE);
    headers.remove("grpc-status-details-bin");
    // Only fails on a message that cannot be a header, which `bounded` never makes.
    let _ = rewritten.add_header(headers);
}

/// `text` cut to [`MAX_MESSAGE_CHARS`] with control characters escaped.
pub fn bounded(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_CHARS + 8));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers_of(status: &Status) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        status.add_header(&mut h).expect("headers");
        h
    }

    #[test]
    fn decode_failures_become_invalid_argument() {
        let mut h = headers_of(&Status::internal(
            "failed to decode Protobuf message: invalid wire type",
        ));
        rewrite(&mut h);
        let s = Status::from_header_map(&h).expect("status");
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s.message().contains("invalid wire type"));
        let mut h = headers_of(&Status::internal("the model failed"));
        rewrite(&mut h);
        assert_eq!(
            Status::from_header_map(&h).expect("status").code(),
            Code::Internal
        );
    }

    #[test]
    fn long_and_odd_messages_are_cut_and_escaped() {
        let name = format!("{}\u{1b}[2J", "m".repeat(10_000));
        let mut h = headers_of(&Status::not_found(format!("model '{name}' not found")));
        rewrite(&mut h);
        let s = Status::from_header_map(&h).expect("status");
        assert_eq!(s.code(), Code::NotFound);
        assert!(s.message().chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(!s.message().contains('\u{1b}'));
        assert_eq!(bounded("a\nb\u{7}"), "a\\nb\\u{7}");
        let ok = headers_of(&Status::ok(""));
        let mut same = ok.clone();
        rewrite(&mut same);
        assert_eq!(same, ok);
    }
}
