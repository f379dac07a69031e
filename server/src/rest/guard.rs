//! What every REST request passes before its body is read: one `authorization` header at
//! most; with auth required, a credential the verifier accepts (or a client certificate
//! standing for a principal), checked from the headers alone, so a caller without one is
//! answered 401 having sent nothing the server keeps; then the body, read within the
//! request deadline and the size limit, each chunk charged as it arrives to the same
//! buffered-bytes budgets a gRPC call draws on (`grpc/budget.rs`): the connection's and
//! the process's for an authenticated caller, a small allowance of its own for one
//! without a credential (the health routes). The charge is held until the answer is
//! made, covering the body, the parsed request and its gRPC form; the in-process gRPC
//! call is marked as already charged. The scopes are still the gRPC layers' to check.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::error::RestError;
use crate::auth::{CertPrincipal, Unauthenticated, Verifier};
use crate::grpc::budget::{BudgetLayer, Charge};
use crate::grpc::connection::ConnectionValues;

/// The REST routes that need no credential, as their gRPC methods need none.
const OPEN: [&str; 2] = ["/v2/health/live", "/v2/health/ready"];

/// What the guard enforces.
#[derive(Debug, Clone)]
pub struct Guard {
    /// `None`: auth is off, every caller is charged as an authenticated one.
    pub verifier: Option<Arc<Verifier>>,
    /// The budgets the gRPC layers charge.
    pub budget: BudgetLayer,
    /// The largest body read (`[limits] max_message_bytes`).
    pub max_body: usize,
    /// How long a body may take to arrive (`[grpc] request_timeout_secs`).
    pub timeout: Duration,
    /// Refusals by reason (`mercator_http_refused_total`).
    pub refused: prometheus::IntCounterVec,
}

impl Guard {
    /// Counts a refusal for `reason` and answers it.
    fn refuse(&self, reason: &str, answer: impl IntoResponse) -> Response {
        self.refused.with_label_values(&[reason]).inc();
        answer.into_response()
    }
}

/// The middleware: refuses before the body is read, or reads it under its charge and
/// hands the route the whole body with the charge in its extensions.
pub async fn guard(
    State(guard): State<Guard>,
    ConnectInfo(values): ConnectInfo<ConnectionValues>,
    request: Request,
    next: Next,
) -> Response {
    let header = match crate::auth::authorization(request.headers()) {
        Ok(header) => header,
        Err(status) => return guard.refuse("unauthenticated", RestError::from(status)),
    };
    let mut extensions = values.0.clone();
    if let Some(verifier) = &guard.verifier {
        if OPEN.contains(&request.uri().path()) {
            extensions.insert(Unauthenticated);
        } else {
            let certified = values.0.get::<CertPrincipal>().and_then(|c| c.0.as_deref());
            if let Err(status) = verifier.authenticate(header, certified).await {
                return guard.refuse("unauthenticated", RestError::from(status));
            }
        }
    }
    let charge = guard.budget.charge(&extensions);
    let (mut parts, body) = request.into_parts();
    let expected = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    let read = tokio::time::timeout(
        guard.timeout,
        read_body(body, &charge, guard.max_body, expected),
    );
    let bytes = match read.await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err((reason, refusal))) => return guard.refuse(reason, refusal),
        Err(_) => {
            let late = RestError::invalid(
                "request body",
                format!(
                    "did not arrive within {:.0} s (grpc.request_timeout_secs)",
                    guard.timeout.as_secs_f64()
                ),
            );
            return guard.refuse("timeout", (StatusCode::REQUEST_TIMEOUT, late));
        }
    };
    parts.extensions.insert(charge.clone());
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    // Held until the answer is made: the body, its parse and its gRPC form.
    drop(charge);
    response
}

/// Reads `body` whole, never past `limit` bytes; a refusal comes with its reason. What
/// is charged is the buffer's capacity, taken before the buffer grows, so the memory a
/// body holds never exceeds its charge. With a `Content-Length` (`expected`), the
/// buffer is reserved once at that size, charged first (a body over the limit is
/// refused before a byte is read): its pages are touched only as bytes arrive, and no
/// copy of a growing buffer is left behind in the allocator. Without one (chunked), it
/// doubles.
async fn read_body(
    mut body: Body,
    charge: &Charge,
    limit: usize,
    expected: Option<usize>,
) -> Result<Bytes, (&'static str, Response)> {
    let too_large = || {
        let refusal = RestError::invalid(
            "request body",
            format!("is over {limit} bytes ([limits] max_message_bytes)"),
        );
        (
            "too_large",
            (StatusCode::PAYLOAD_TOO_LARGE, refusal).into_response(),
        )
    };
    let over_budget =
        |status: tonic::Status| ("over_budget", RestError::from(status).into_response());
    let mut out = BytesMut::new();
    if let Some(expected) = expected {
        if expected > limit {
            return Err(too_large());
        }
        charge.take(expected).map_err(over_budget)?;
        out.reserve(expected);
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let bad = RestError::invalid("request body", format!("could not be read: {e}"));
            ("bad_body", bad.into_response())
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if out.len().saturating_add(data.len()) > limit {
            return Err(too_large());
        }
        let needed = out.len() + data.len();
        if needed > out.capacity() {
            let grown = needed.max(out.capacity().saturating_mul(2)).min(limit);
            charge.take(grown - out.capacity()).map_err(over_budget)?;
            out.reserve(grown - out.len());
        }
        out.extend_from_slice(&data);
    }
    Ok(out.freeze())
}
