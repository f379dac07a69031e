//! An accepted connection, plain or TLS, with the values its calls find in their
//! extensions (`grpc/connection.rs`): the listener puts its client certificate's principal
//! and its share of the buffered-bytes budget there. It holds its place on the listener
//! ([`Slot`]) and reports its traffic to it, and its reads fail once the listener has
//! closed it (evicted at the cap, or idle: `limit.rs`).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::limit::Slot;
use crate::grpc::connection::ConnectionValues;

/// A connection over `IO` (a `TcpStream`, or a TLS stream over one).
#[derive(Debug)]
pub struct Conn<IO> {
    io: IO,
    peer: SocketAddr,
    slot: Slot,
    /// What each of its calls is handed.
    pub values: ConnectionValues,
}

impl<IO> Conn<IO> {
    /// A connection from `peer` in `slot`, with no values yet.
    pub fn new(io: IO, peer: SocketAddr, slot: Slot) -> Conn<IO> {
        Conn {
            io,
            peer,
            slot,
            values: ConnectionValues::default(),
        }
    }

    /// The client's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl<IO: Send + Sync + 'static> tonic::transport::server::Connected for Conn<IO> {
    type ConnectInfo = ConnectionValues;

    fn connect_info(&self) -> ConnectionValues {
        self.values.clone()
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let activity = &self.slot.activity;
        activity.register(cx.waker());
        if activity.evicted() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed by the server: idle, or evicted at the connection limit",
            )));
        }
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.slot.activity.touch();
        }
        read
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.slot.activity.touch();
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.slot.activity.touch();
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
