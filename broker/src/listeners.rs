//! MQTT listeners: TCP (plain or TLS), and WebSocket (binary messages, subprotocol
//! `mqtt`) on a list of URL paths.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use mqgate_kit::Transport;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::{rustls, TlsAcceptor};

use crate::connection::{self, Stream};
use crate::Broker;

/// Binds with SO_REUSEADDR so a restart can take the same port at once.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts MQTT over TCP, or over TLS with `tls`, until the broker shuts down.
/// A TLS handshake must finish within the CONNECT timeout.
pub fn spawn_tcp(
    broker: Arc<Broker>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    tokio::spawn(async move {
        let mut shutdown = broker.shutdown_signal();
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => {
                        let _ = socket.set_nodelay(true);
                        let broker = Arc::clone(&broker);
                        match &acceptor {
                            None => {
                                tokio::spawn(connection::serve(broker, Stream::Tcp(socket), peer, Transport::Tcp));
                            }
                            Some(acceptor) => {
                                tokio::spawn(serve_tls(broker, acceptor.clone(), socket, peer));
                            }
                        }
                    }
                    Err(e) => {
                        // out of file descriptors, typically: back off instead of spinning
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
    })
}

async fn serve_tls(
    broker: Arc<Broker>,
    acceptor: TlsAcceptor,
    socket: TcpStream,
    peer: SocketAddr,
) {
    let handshake = tokio::time::timeout(broker.settings.connect_timeout, acceptor.accept(socket));
    match handshake.await {
        Ok(Ok(tls)) => {
            connection::serve(broker, Stream::Other(Box::new(tls)), peer, Transport::Tcp).await
        }
        Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// The WebSocket endpoint on each of `paths` (a trailing slash is tolerated).
pub fn ws_router(broker: Arc<Broker>, paths: &[String]) -> axum::Router {
    let mut router = axum::Router::new();
    for path in paths {
        router = router.route(path, get(upgrade));
        let trimmed = path.trim_end_matches('/');
        let alternate = if path.ends_with('/') {
            trimmed.to_string()
        } else {
            format!("{path}/")
        };
        if !alternate.is_empty() && !paths.contains(&alternate) {
            router = router.route(&alternate, get(upgrade));
        }
    }
    router.with_state(broker)
}

async fn upgrade(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ws: WebSocketUpgrade,
) -> Response {
    let max = broker.settings.max_ws_message;
    ws.protocols(["mqtt", "mqttv3.1", "mqttv3.1.1"])
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| {
            connection::serve(
                broker,
                Stream::Ws(Box::new(socket)),
                peer,
                Transport::WebSocket,
            )
        })
}
