//! The two listeners: gRPC (every service) and HTTP (`GET /metrics` and V2 over REST,
//! `rest/`), in plain TCP or, with `[tls]`, in TLS ([`tls`]); and the metrics endpoint
//! itself, which needs a bearer credential when `[metrics] protect` is on.

pub mod conn;
pub mod http;
pub mod limit;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Verifier;
use crate::grpc::budget::ConnectionBudget;
use conn::Conn;
use http::HttpSettings;
use limit::Connections;
use tls::{Protocol, Tls};

/// Serves `grpc` on `listener` until `stop` resolves, each connection with a buffered
/// request budget of `per_connection` bytes, at most as many at once as `connections`
/// holds.
pub async fn serve_grpc(
    grpc: (tonic::transport::Server, crate::grpc::GrpcService),
    listener: TcpListener,
    tls: Option<&Tls>,
    connections: Connections,
    per_connection: usize,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (server, service) = grpc;
    match tls {
        None => {
            let accepted = http::accept_plain(listener, connections, "grpc");
            let incoming = ReceiverStream::new(accepted).map(with_budget(per_connection));
            server
                .serve_with_incoming_shutdown(service, incoming, stop)
                .await
        }
        Some(tls) => {
            let accepted = tls.accept(listener, Protocol::Grpc, connections);
            let incoming = ReceiverStream::new(accepted).map(with_budget(per_connection));
            server
                .serve_with_incoming_shutdown(service, incoming, stop)
                .await
        }
    }
}

/// Gives each connection its own buffered-bytes budget of `bytes`.
fn with_budget<IO>(bytes: usize) -> impl Fn(Conn<IO>) -> std::io::Result<Conn<IO>> {
    move |mut conn| {
        conn.values.insert(ConnectionBudget::new(bytes));
        Ok(conn)
    }
}

/// Serves `GET /metrics` with `render`'s text, and `rest`'s routes, on `listener` until
/// `stop` resolves, at most as many connections at once as `connections` holds, served
/// as `settings` say. With a `verifier`, a scrape needs a bearer credential it accepts.
#[expect(
    clippy::too_many_arguments,
    reason = "the listener's parts, each from a different section of the configuration"
)]
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<Tls>,
    verifier: Option<Arc<Verifier>>,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    rest: axum::Router,
    connections: Connections,
    settings: HttpSettings,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let render = render.clone();
                let verifier = verifier.clone();
                async move { scrape(&headers, verifier.as_deref(), render).await }
            }),
        )
        .merge(rest);
    match tls {
        None => {
            let accepted = http::accept_plain(listener, connections, "http");
            http::serve(accepted, router, settings, stop).await;
        }
        Some(tls) => {
            let accepted = tls.accept(listener, Protocol::Http, connections);
            http::serve(accepted, router, settings, stop).await;
        }
    }
}

async fn scrape(
    headers: &HeaderMap,
    verifier: Option<&Verifier>,
    render: impl Fn() -> String,
) -> Response {
    if let Some(verifier) = verifier {
        let credential = match crate::auth::authorization(headers) {
            Ok(credential) => credential,
            Err(status) => {
                return (StatusCode::UNAUTHORIZED, status.message().to_string()).into_response();
            }
        };
        if let Err(status) = verifier.principal(credential).await {
            let code = match status.code() {
                tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            return (code, status.message().to_string()).into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(),
    )
        .into_response()
}
