//! The two listeners: gRPC (every service) and HTTP (`GET /metrics` and V2 over REST,
//! `rest/`), in plain TCP or, with `[tls]`, in TLS ([`tls`]); and the metrics endpoint
//! itself, which needs a bearer credential when `[metrics] protect` is on.

pub mod conn;
pub mod http;
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
use crate::grpc::connection::ConnectionValues;
use conn::Conn;
use http::HttpListener;
use tls::{Protocol, Tls};

/// Serves `grpc` on `listener` until `stop` resolves, each connection with a buffered
/// request budget of `per_connection` bytes.
pub async fn serve_grpc(
    grpc: (tonic::transport::Server, crate::grpc::GrpcService),
    listener: TcpListener,
    tls: Option<&Tls>,
    per_connection: usize,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (server, service) = grpc;
    match tls {
        None => {
            // Without TCP_NODELAY, small responses wait for the peer's delayed ACK (~40 ms).
            let incoming = tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .filter_map(|accepted| match accepted {
                    Ok(tcp) => {
                        let peer = tcp.peer_addr().ok()?;
                        Some(Conn::new(tcp, peer))
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        None
                    }
                })
                .map(with_budget(per_connection));
            server
                .serve_with_incoming_shutdown(service, incoming, stop)
                .await
        }
        Some(tls) => {
            let accepted = ReceiverStream::new(tls.accept(listener, Protocol::Grpc));
            let incoming = accepted.map(with_budget(per_connection));
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
/// `stop` resolves, each connection with a buffered request budget of `per_connection`
/// bytes. With a `verifier`, a scrape needs a bearer credential it accepts.
pub async fn serve_http(
    listener: TcpListener,
    tls: Option<Tls>,
    verifier: Option<Arc<Verifier>>,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    rest: axum::Router,
    per_connection: usize,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let render = render.clone();
                let verifier = verifier.clone();
                async move { scrape(&headers, verifier.as_deref(), render).await }
            }),
        )
        .merge(rest)
        .into_make_service_with_connect_info::<ConnectionValues>();
    let local = listener.local_addr()?;
    match tls {
        None => {
            let accepted = HttpListener::new(http::accept_plain(listener), local, per_connection);
            axum::serve(accepted, router)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(tls) => {
            let accepted =
                HttpListener::new(tls.accept(listener, Protocol::Http), local, per_connection);
            axum::serve(accepted, router)
                .with_graceful_shutdown(stop)
                .await
        }
    }
}

async fn scrape(
    headers: &HeaderMap,
    verifier: Option<&Verifier>,
    render: impl Fn() -> String,
) -> Response {
    if let Some(verifier) = verifier {
        let credential = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
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
