//! A refused or failed REST call: the gRPC status it came back as, answered with the HTTP
//! status gRPC's own mapping gives its code and a JSON body `{"error": "…"}` (the V2 REST
//! protocol's error shape). A rate refusal says when to retry (`Retry-After`), an
//! unauthenticated call which scheme to use (`WWW-Authenticate`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tonic::{Code, Status};

/// A REST error: an HTTP status and the message of the `error` field.
#[derive(Debug, thiserror::Error)]
#[error("{}", .status.message())]
pub struct RestError {
    status: Status,
}

impl RestError {
    /// A client's mistake found at the REST edge, before any call: INVALID_ARGUMENT.
    pub fn invalid(field: impl std::fmt::Display, message: impl std::fmt::Display) -> RestError {
        RestError {
            status: Status::invalid_argument(format!("{field}: {message}")),
        }
    }
}

impl From<Status> for RestError {
    fn from(status: Status) -> RestError {
        RestError { status }
    }
}

/// The HTTP status for a gRPC code (the mapping gRPC's HTTP gateways use).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        use tonic_types::StatusExt;
        let code = self.status.code();
        let body = serde_json::json!({ "error": self.status.message() }).to_string();
        let mut response = (
            http_status(code),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Some(wait) = self
            .status
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
        {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if code == Code::Unauthenticated {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
