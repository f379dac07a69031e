//! Every call's deadline: the caller's `grpc-timeout`, capped by `[grpc]
//! request_timeout_secs` (which is also the deadline of a call that sets none). Past it
//! the call's work is dropped and the caller gets DEADLINE_EXCEEDED. The deadline covers
//! reading the request too, so a client that stalls mid-upload holds its buffer only
//! until then.
//!
//! A streaming response is timed until its first headers; what it sends after is the
//! stream's own business.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::codegen::http;

/// The layer.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    longest: Duration,
}

impl DeadlineLayer {
    /// Calls get at most `longest`.
    pub fn new(longest: Duration) -> DeadlineLayer {
        DeadlineLayer { longest }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            longest: self.longest,
        }
    }
}

/// The wrapped service.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    longest: Duration,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for Deadline<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let asked = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_timeout);
        let deadline = asked.map_or(self.longest, |a| a.min(self.longest));
        let call = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(answer) => answer,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call's deadline of {:.3} s passed",
                    deadline.as_secs_f64()
                ))
                .into_http()),
            }
        })
    }
}

/// A `grpc-timeout` value (up to 8 digits and a unit: H, M, S, m, u, n), per the gRPC
/// HTTP/2 protocol; `None` when malformed (then the server's own deadline applies).
pub fn parse_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_per_the_protocol() {
        assert_eq!(parse_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123456789S", "-1S", "1.5S", "10x", "１S"] {
            assert_eq!(parse_timeout(bad), None, "{bad}");
        }
    }
}
