//! The two listeners: gRPC (every service) and HTTP (`GET /metrics`), in plain TCP or,
//! with `[tls]`, in TLS ([`tls`]); and the metrics endpoint itself, which needs a bearer
//! credential when `[metrics] protect` is on.

pub mod conn;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Verifier;
use crate::grpc::budget::ConnectionBudget;
use conn::Conn;
use tls::{Protocol, Tls, TlsConn};

/// Serves `router` on `listener` until `stop` resolves, each connection with a buffered
/// request budget of `per_connection` bytes.
pub async fn serve_grpc(
    router: crate::grpc::GrpcRouter,
    listener: TcpListener,
    tls: Option<&Tls>,
    per_connection: usize,
    stop: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
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
            router.serve_with_incoming_shutdown(incoming, stop).await
        }
        Some(tls) => {
            let accepted = ReceiverStream::new(tls.accept(listener, Protocol::Grpc));
            let incoming = accepted.map(with_budget(per_connection));
            router.serve_with_incoming_shutdown(incoming, stop).await
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

/// Serves `GET /metrics` with `render`'s text on `listener` until `stop` resolves.
/// With a `verifier`, a scrape needs a bearer credential it accepts.
pub async fn serve_metrics(
    listener: TcpListener,
    tls: Option<Tls>,
    verifier: Option<Arc<Verifier>>,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move |headers: HeaderMap| {
            let render = render.clone();
            let verifier = verifier.clone();
            async move { scrape(&headers, verifier.as_deref(), render).await }
        }),
    );
    match tls {
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(tls) => {
            let local = listener.local_addr()?;
            let accepted = TlsListener {
                rx: tls.accept(listener, Protocol::Http),
                local,
            };
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

/// TLS connections as an axum listener.
struct TlsListener {
    rx: mpsc::Receiver<TlsConn>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConn, SocketAddr) {
        match self.rx.recv().await {
            Some(conn) => {
                let peer = conn.peer();
                (conn, peer)
            }
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
