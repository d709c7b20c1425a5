//! The accept loop and the connection task of an HTTP listener.
//!
//! Shutdown follows mini-redis: one watch signal tells the accept loop and
//! every connection to stop; each connection task holds a clone of an mpsc
//! sender, so the loop knows every connection has ended when its receiver
//! yields `None` (the last sender dropped). Nothing polls or sleeps.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::access_log;
use super::deadline::DeadlineBody;

/// What one HTTP listener allows a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request head must arrive within this from the connection's start (TLS
    /// handshake included) or from the previous response; hyper runs the same
    /// timer while a keep-alive connection waits, so it is the idle timeout too.
    pub header_read_timeout: Duration,
    /// The whole body must arrive within this once the head has.
    pub body_read_timeout: Duration,
    /// Connections held at once; beyond it new ones get 503 and are closed.
    pub max_connections: usize,
    /// At shutdown, requests in progress get this long to finish.
    pub shutdown_grace: Duration,
}

/// A listener being served. Stop it through the `shutdown` signal given to [`serve`].
pub struct Serving {
    closed: Option<oneshot::Receiver<()>>,
    ended: JoinHandle<()>,
}

impl Serving {
    /// Resolves once the listening socket is closed (after the shutdown
    /// signal), so the address can be bound again.
    pub async fn closed(&mut self) {
        if let Some(closed) = self.closed.take() {
            let _ = closed.await;
        }
    }

    /// Resolves once every connection has ended (at most the grace after the signal).
    pub async fn ended(self) {
        let _ = self.ended.await;
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) with `limits`,
/// until `shutdown` turns true. Requests are logged under `name`.
pub fn serve(
    name: &'static str,
    listener: TcpListener,
    router: axum::Router,
    limits: HttpLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: watch::Receiver<bool>,
) -> Serving {
    let site = Arc::new(Site {
        name,
        router: access_log::layer(router, name),
        tls: tls.map(TlsAcceptor::from),
        refusals: RefusalLog::default(),
        limits,
    });
    let (closed_tx, closed) = oneshot::channel();
    let ended = tokio::spawn(accept_loop(site, listener, shutdown, closed_tx));
    Serving {
        closed: Some(closed),
        ended,
    }
}

/// Everything the connections of one listener share.
struct Site {
    name: &'static str,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    limits: HttpLimits,
    refusals: RefusalLog,
}

/// Refusals slower than this are abandoned (the socket is dropped). A client
/// sends its request head with the handshake's last packet, so this is ample.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// Most bytes read from a refused client, before and after the answer.
const REFUSAL_READ: usize = 16 * 1024;
/// Refusals being written at once; beyond it (a flood whose heads never end
/// takes them all) a refused socket is just closed.
const REFUSALS_IN_FLIGHT: usize = 64;
/// Pause after a failed accept: errors such as "too many open files" persist,
/// and trying again at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

async fn accept_loop(
    site: Arc<Site>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    closed: oneshot::Sender<()>,
) {
    let permits = Arc::new(Semaphore::new(site.limits.max_connections));
    let refusal_slots = Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT));
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            _ = stop_signal(&mut shutdown) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("{}: accept failed: {e}", site.name);
                tokio::select! {
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    _ = stop_signal(&mut shutdown) => break,
                }
            }
        };
        match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let held = Held {
                    _permit: permit,
                    _alive: alive.clone(),
                };
                tokio::spawn(connection(
                    Arc::clone(&site),
                    stream,
                    peer,
                    shutdown.clone(),
                    held,
                ));
            }
            Err(_) => site.refuse(stream, peer, &refusal_slots),
        }
    }
    drop(listener);
    let _ = closed.send(());
    drop(alive);
    let _ = all_ended.recv().await;
}

/// Resolves once the shutdown signal is (or already was) given.
async fn stop_signal(shutdown: &mut watch::Receiver<bool>) {
    // the guard wait_for returns is not Send: drop it here
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What a connection task holds while it lives: a place under the cap, and a
/// sender whose drop tells the accept loop it has ended.
struct Held {
    _permit: OwnedSemaphorePermit,
    _alive: mpsc::Sender<()>,
}

async fn connection(
    site: Arc<Site>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    _held: Held,
) {
    let _ = stream.set_nodelay(true);
    let Some(acceptor) = site.tls.clone() else {
        return serve_connection(&site, stream, peer, shutdown).await;
    };
    let handshake = tokio::time::timeout(site.limits.header_read_timeout, acceptor.accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!("{}: TLS handshake with {peer} failed: {e}", site.name);
                return;
            }
            Err(_) => {
                tracing::debug!("{}: TLS handshake with {peer} timed out", site.name);
                return;
            }
        },
        _ = stop_signal(&mut shutdown) => return,
    };
    serve_connection(&site, stream, peer, shutdown).await
}

async fn serve_connection<IO>(
    site: &Arc<Site>,
    io: IO,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served_any = Arc::new(AtomicBool::new(false));
    let service = {
        let site = Arc::clone(site);
        let stopping = shutdown.clone();
        let served_any = Arc::clone(&served_any);
        hyper::service::service_fn(move |request| {
            served_any.store(true, Ordering::Relaxed);
            let site = Arc::clone(&site);
            let stopping = *stopping.borrow();
            async move { Ok::<_, Infallible>(site.answer(request, peer, stopping).await) }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(site.limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop_signal(&mut shutdown) => {
            // Nothing was ever asked on this connection (at most half a request
            // head): there is no answer to deliver, close it now. hyper itself
            // would keep it until the head completes or times out.
            if !served_any.load(Ordering::Relaxed) {
                return;
            }
            // idle connections close at once, a request in progress may finish
            connection.as_mut().graceful_shutdown();
            match tokio::time::timeout(site.limits.shutdown_grace, connection.as_mut()).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!("{}: connection from {peer} ended: {e}", site.name);
    }
}

impl Site {
    async fn answer(
        &self,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        stopping: bool,
    ) -> Response {
        if stopping {
            // a request begun after the signal is not served by an instance on its way out
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONNECTION, "close")],
                "shutting down\n",
            )
                .into_response();
        }
        request.extensions_mut().insert(ConnectInfo(peer));
        let deadline = tokio::time::Instant::now() + self.limits.body_read_timeout;
        let body = DeadlineBody::new(deadline);
        let expired = body.expired();
        let request = request.map(|incoming| axum::body::Body::new(body.wrap(incoming)));
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if expired.load(Ordering::Relaxed) {
            // whatever the handler made of a body cut short, the request timed out
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "request body not received in time\n",
            )
                .into_response();
        }
        response
    }

    /// Over the cap: a plain-text 503 on cleartext listeners, then close.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr, slots: &Arc<Semaphore>) {
        self.refusals
            .note(self.name, peer, self.limits.max_connections);
        if self.tls.is_some() {
            return;
        }
        let Ok(slot) = Arc::clone(slots).try_acquire_owned() else {
            return;
        };
        tokio::spawn(async move {
            let _slot = slot;
            let _ = tokio::time::timeout(REFUSAL_TIME, write_refusal(stream)).await;
        });
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n";

async fn write_refusal(mut stream: TcpStream) -> std::io::Result<()> {
    // An answer that comes before the request confuses HTTP clients (they
    // report an unexpected message, not the 503): read the head first.
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REFUSAL_READ {
        match stream.read(&mut buf).await? {
            0 => return Ok(()),
            n => head.extend_from_slice(&buf[..n]),
        }
    }
    stream.write_all(BUSY).await?;
    stream.shutdown().await?;
    // Read what else the client sent: closing with unread data would send a
    // reset that can destroy the answer before the client reads it.
    let mut left = REFUSAL_READ;
    while left > 0 {
        match stream.read(&mut buf).await? {
            0 => break,
            n => left -= n.min(left),
        }
    }
    Ok(())
}

/// Logs refusals at WARN at most every 10 s, with the count since the last line.
#[derive(Default)]
struct RefusalLog {
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl RefusalLog {
    fn note(&self, name: &str, peer: SocketAddr, max: usize) {
        let count = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock();
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            tracing::debug!("{name}: refused {peer}: {max} connections open");
            return;
        }
        *last = Some(Instant::now());
        self.since.store(0, Ordering::Relaxed);
        tracing::warn!("{name}: {max} connections open (http.max_connections): refused {count} since the last report");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_states_its_length() {
        let text = std::str::from_utf8(super::BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
}
