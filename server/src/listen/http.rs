//! The HTTP listener's connections as axum sees them: every accepted connection, plain or
//! TLS, is a [`Conn`] with its own values (its client certificate's principal, its share
//! of the buffered-bytes budget), which a handler takes as
//! `ConnectInfo<ConnectionValues>` and hands to the gRPC layers (`rest/gateway.rs`), as
//! the gRPC listener does for its connections.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::conn::Conn;
use crate::grpc::budget::ConnectionBudget;
use crate::grpc::connection::ConnectionValues;

/// Accepted connections handed to axum, each given its budget.
#[derive(Debug)]
pub struct HttpListener<IO> {
    rx: mpsc::Receiver<Conn<IO>>,
    local: SocketAddr,
    per_connection: usize,
}

impl<IO> HttpListener<IO> {
    /// Connections from `rx` (an accept loop for `local`), each with a budget of
    /// `per_connection` buffered request bytes.
    pub fn new(rx: mpsc::Receiver<Conn<IO>>, local: SocketAddr, per_connection: usize) -> Self {
        HttpListener {
            rx,
            local,
            per_connection,
        }
    }
}

/// Accepts plain TCP connections on `listener` (with `TCP_NODELAY`: small responses
/// would otherwise wait for the peer's delayed ACK) until the receiver is dropped.
pub fn accept_plain(listener: TcpListener) -> mpsc::Receiver<Conn<TcpStream>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = tx.closed() => return,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    if tx.send(Conn::new(tcp, peer)).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    // Out of descriptors, mostly: wait rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    rx
}

impl<IO> axum::serve::Listener for HttpListener<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    type Io = Conn<IO>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn<IO>, SocketAddr) {
        match self.rx.recv().await {
            Some(mut conn) => {
                conn.values
                    .insert(ConnectionBudget::new(self.per_connection));
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

impl<IO> Connected<IncomingStream<'_, HttpListener<IO>>> for ConnectionValues
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + Sync + 'static,
{
    fn connect_info(stream: IncomingStream<'_, HttpListener<IO>>) -> ConnectionValues {
        stream.io().values.clone()
    }
}
