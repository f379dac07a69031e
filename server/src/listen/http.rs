//! The HTTP listener's serving loop, and the plain-TCP accept loop both listeners use.
//! Every accepted connection, plain or TLS, is a [`Conn`] with its own values (its client
//! certificate's principal, its share of the buffered-bytes budget), which a handler
//! takes as `ConnectInfo<ConnectionValues>` and hands to the gRPC layers
//! (`rest/gateway.rs`), as the gRPC listener does for its connections.
//!
//! Connections are served by hyper directly rather than through `axum::serve`, for the
//! settings a public listener needs: HTTP/1.1 request headers must arrive whole within
//! `[server] header_read_timeout_secs` (a client sending half a header a second is
//! closed), and shutdown drains the connections in flight.

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tower::Service;

use super::conn::Conn;
use super::limit::{AcceptErrors, Connections};
use crate::grpc::budget::ConnectionBudget;

/// Accepts plain TCP connections on `listener` (with `TCP_NODELAY`: small responses
/// would otherwise wait for the peer's delayed ACK), each given a place among
/// `connections`, until the receiver is dropped. `name` names the listener in the log.
pub fn accept_plain(
    listener: TcpListener,
    connections: Connections,
    name: &'static str,
) -> mpsc::Receiver<Conn<TcpStream>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut errors = AcceptErrors::default();
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    errors.succeeded();
                    // At the cap with every connection busy: closed at once, so the
                    // descriptor is not held.
                    let Some(slot) = connections.admit() else {
                        continue;
                    };
                    let _ = tcp.set_nodelay(true);
                    if tx.send(Conn::new(tcp, peer, slot)).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let pause = errors.failed(name, &error);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
    rx
}

/// How the HTTP listener serves its connections.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Each connection's budget of buffered request bytes.
    pub per_connection: usize,
    /// How long an HTTP/1.1 request's headers may take to arrive.
    pub header_read_timeout: Duration,
}

/// Serves `router` on the connections from `accepted` until `stop` resolves, then
/// waits for the connections in flight to finish.
pub async fn serve<IO>(
    mut accepted: mpsc::Receiver<Conn<IO>>,
    router: axum::Router,
    settings: HttpSettings,
    stop: impl Future<Output = ()>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let conn = tokio::select! {
            conn = accepted.recv() => conn,
            () = &mut stop => break,
        };
        let Some(mut conn) = conn else {
            break;
        };
        conn.values
            .insert(ConnectionBudget::new(settings.per_connection));
        let values = conn.values.clone();
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(values.clone()));
            router.clone().call(request)
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(accepted);
    graceful.shutdown().await;
}
