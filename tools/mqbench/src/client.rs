//! One MQTT connection over tokio: connect, subscribe, and a reader that yields
//! whole packets out of a growing buffer.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::packet::{self, Incoming, Login, Version};

/// How to reach and log in to the broker under test.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub version: Version,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Appended to every client id (e.g. `@AppID` for Easemob clients).
    pub client_suffix: String,
}

/// Longest wait for a CONNACK or SUBACK.
const HANDSHAKE: Duration = Duration::from_secs(30);

pub struct Reader {
    half: OwnedReadHalf,
    buf: BytesMut,
    version: Version,
}

impl Reader {
    /// The next packet already in the buffer, without reading the socket.
    pub fn buffered(&mut self) -> io::Result<Option<Incoming>> {
        packet::read(&mut self.buf, self.version)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.0))
    }

    /// The next packet, reading the socket as needed.
    pub async fn next(&mut self) -> io::Result<Incoming> {
        loop {
            if let Some(p) = self.buffered()? {
                return Ok(p);
            }
            self.buf.reserve(64 * 1024);
            if self.half.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

pub struct Conn {
    pub reader: Reader,
    pub writer: OwnedWriteHalf,
    pub version: Version,
}

fn refused(what: &str, code: u8) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionRefused,
        format!("{what} refused with code 0x{code:02X}"),
    )
}

/// Opens a connection and logs in as `client_id` + the target's suffix.
pub async fn connect(target: &Target, client_id: &str, clean: bool) -> io::Result<Conn> {
    let stream = TcpStream::connect(&target.addr).await?;
    stream.set_nodelay(true)?;
    let (read, mut writer) = stream.into_split();
    let id = format!("{client_id}{}", target.client_suffix);
    let mut out = BytesMut::new();
    packet::connect(
        &mut out,
        target.version,
        &Login {
            client_id: &id,
            keepalive: 600,
            clean,
            username: target.username.as_deref(),
            password: target.password.as_deref(),
        },
    );
    writer.write_all(&out).await?;
    let mut reader = Reader {
        half: read,
        buf: BytesMut::with_capacity(64 * 1024),
        version: target.version,
    };
    match tokio::time::timeout(HANDSHAKE, reader.next()).await {
        Ok(Ok(Incoming::ConnAck { code: 0 })) => Ok(Conn {
            reader,
            writer,
            version: target.version,
        }),
        Ok(Ok(Incoming::ConnAck { code })) => Err(refused("CONNECT", code)),
        Ok(Ok(other)) => Err(io::Error::other(format!("{other:?} before CONNACK"))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}

impl Conn {
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> io::Result<()> {
        let mut out = BytesMut::new();
        packet::subscribe(&mut out, self.version, 1, filter, qos);
        self.writer.write_all(&out).await?;
        let wait = async {
            loop {
                match self.reader.next().await? {
                    Incoming::SubAck { codes, .. } => {
                        return match codes.first() {
                            Some(&c) if c < 0x80 => Ok(()),
                            c => Err(refused("SUBSCRIBE", c.copied().unwrap_or(0x80))),
                        };
                    }
                    Incoming::Publish { .. } | Incoming::PingResp => continue,
                    other => return Err(io::Error::other(format!("{other:?} before SUBACK"))),
                }
            }
        };
        tokio::time::timeout(HANDSHAKE, wait)
            .await
            .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))?
    }

    pub async fn disconnect(mut self) {
        let mut out = BytesMut::new();
        packet::disconnect(&mut out);
        let _ = self.writer.write_all(&out).await;
        let _ = self.writer.shutdown().await;
    }
}
