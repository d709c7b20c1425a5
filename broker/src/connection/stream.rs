//! A socket carrying MQTT: plain TCP, WebSocket binary messages, or any other
//! byte stream the gateway hands over (TLS).

use std::io;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes read from a socket at a time, once it is in use.
const READ_CHUNK: usize = 4096;
/// Bytes read at a time while the buffer is empty: most reads are one small
/// packet, and an idle connection's buffer is freed between them.
const FIRST_READ: usize = 512;
/// Bytes of input discarded while a closing connection waits for the client's close.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// A byte stream the broker can serve MQTT on (e.g. TLS over TCP).
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

pub enum Stream {
    Tcp(TcpStream),
    Ws(Box<WebSocket>),
    Other(Box<dyn ByteStream>),
}

impl Stream {
    /// Reads more bytes into `buf`; 0 means the peer closed. A TCP socket's buffer
    /// is only allocated once data has arrived, so idle connections hold none.
    pub async fn read(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => loop {
                s.readable().await?;
                buf.reserve(if buf.capacity() == 0 {
                    FIRST_READ
                } else {
                    READ_CHUNK
                });
                match s.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    result => return result,
                }
            },
            Stream::Other(s) => {
                buf.reserve(READ_CHUNK);
                s.read_buf(buf).await
            }
            Stream::Ws(ws) => loop {
                match ws.recv().await {
                    Some(Ok(Message::Binary(data))) => {
                        buf.extend_from_slice(&data);
                        if !data.is_empty() {
                            return Ok(data.len());
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Text(_))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "MQTT over WebSocket uses binary messages",
                        ))
                    }
                    Some(Ok(Message::Close(_))) | None => return Ok(0),
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }

    /// Writes all of `data`; fails when the peer takes nothing for `stall`.
    pub async fn write_all(&mut self, data: &[u8], stall: Duration) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => write_with_progress(s, data, stall).await,
            Stream::Other(s) => {
                write_with_progress(s, data, stall).await?;
                tokio::time::timeout(stall, s.flush())
                    .await
                    .map_err(|_| io::ErrorKind::TimedOut)?
            }
            Stream::Ws(ws) => tokio::time::timeout(stall, ws.send(Message::Binary(data.to_vec())))
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
                .map_err(io::Error::other),
        }
    }

    /// Closes the socket, giving the peer at most `wait` to take the close.
    /// A TCP socket closed with unread input answers with a reset, which can
    /// destroy the last packets (a DISCONNECT) before the client reads them: so
    /// the write side is shut first and input is drained until the client closes.
    pub async fn close(&mut self, wait: Duration) {
        let close = async {
            match self {
                Stream::Tcp(s) => {
                    let _ = s.shutdown().await;
                    // on the heap: a buffer here would sit in every connection's task
                    let mut scratch = vec![0u8; 1024];
                    let mut drained = 0;
                    while drained < DRAIN_LIMIT {
                        match s.read(&mut scratch).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => drained += n,
                        }
                    }
                }
                Stream::Other(s) => {
                    let _ = s.shutdown().await;
                }
                Stream::Ws(ws) => {
                    let _ = ws.send(Message::Close(None)).await;
                }
            }
        };
        let _ = tokio::time::timeout(wait, close).await;
    }
}

async fn write_with_progress<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    mut data: &[u8],
    stall: Duration,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = tokio::time::timeout(stall, w.write(data))
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
    }
    Ok(())
}
