//! What every HTTP listener allows a client, with raw sockets against a whole
//! gateway: a request head and a body must arrive in time, keep-alive
//! connections idle out, each listener holds a capped number of connections
//! (503 beyond), and a restart closes the old instance's connections at once
//! while the answer to `ctrl/restart` still arrives.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const STATS: &str =
    "GET /api/v1/stats HTTP/1.1\r\nHost: t\r\nAuthorization: Basic bWljYTptaWNh\r\n";

/// Reads until the server closes; returns what it sent and how long that took.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open for {within:?}"
    );
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

async fn half_sent(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(STATS.as_bytes()).await.unwrap();
    stream
}

fn mica_addr(gw: &common::TestGateway) -> SocketAddr {
    gw.gateway.dialect_addr("mica").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_head_is_closed_after_the_header_timeout() {
    let gw = common::start_with(|c| c.http.header_read_timeout_secs = 1).await;
    let mut stream = half_sent(mica_addr(&gw)).await;
    let (_, took) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "closed after {took:?}, the timeout is 1 s"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keepalive_connection_is_closed_after_the_header_timeout() {
    let gw = common::start_with(|c| c.http.header_read_timeout_secs = 1).await;
    let mut stream = half_sent(mica_addr(&gw)).await;
    stream.write_all(b"\r\n").await.unwrap();
    let (answer, took) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "an idle keep-alive connection closed after {took:?}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_past_its_deadline_is_refused() {
    let gw = common::start_with(|c| {
        c.http.header_read_timeout_secs = 30;
        c.http.body_read_timeout_secs = 1;
    })
    .await;
    let mut stream = TcpStream::connect(mica_addr(&gw)).await.unwrap();
    let head =
        "POST /api/v1/mqtt/publish HTTP/1.1\r\nHost: t\r\nAuthorization: Basic bWljYTptaWNh\r\n\
                Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"topic\":";
    stream.write_all(head.as_bytes()).await.unwrap();
    // a byte every 300 ms: each frame arrives well within any per-frame timeout
    let trickle = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.write_all(b" ").await.is_err() {
                break;
            }
        }
    };
    let started = Instant::now();
    trickle.await;
    let (answer, _) = until_closed(&mut stream, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "the handler refused the body: {answer}"
    );
    assert!(
        !answer.contains("\"code\":1,"),
        "nothing published from a body that never arrived: {answer}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_503_and_the_place_frees_when_one_ends() {
    let gw = common::start_with(|c| {
        c.http.listeners.insert(
            "mica".into(),
            mqgate::config::HttpListenerConfig {
                max_connections: Some(2),
                ..Default::default()
            },
        );
    })
    .await;
    let addr = mica_addr(&gw);
    let first = half_sent(addr).await;
    let _second = half_sent(addr).await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/stats", gw.base_url("mica"));
    let refused = http
        .get(&url)
        .basic_auth("mica", Some("mica"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.text().await.unwrap(), "too many connections\n");
    // the other listeners are not affected
    let nanomq = http
        .get(format!("{}/api/v4/brokers", gw.base_url("nanomq")))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .unwrap();
    assert_eq!(nanomq.status(), 200);
    drop(first);
    let freed = common::eventually_async(5, || async {
        let answer = reqwest::Client::new()
            .get(&url)
            .basic_auth("mica", Some("mica"))
            .send()
            .await;
        answer.is_ok_and(|a| a.status() == 200)
    })
    .await;
    assert!(freed, "a place frees once a held connection ends");
    gw.shutdown().await;
}

/// The answer to `ctrl/restart` arrives; a connection that never completed a
/// request and an idle keep-alive one, both to the old instance, are closed at
/// once (not after the 5 s grace); the next request is served by the new
/// instance within a fraction of a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_closes_the_old_instances_connections_at_once() {
    let gw = common::start().await;
    let mica = mica_addr(&gw);
    let mut half = half_sent(mica).await;
    let mut idle = half_sent(mica).await;
    idle.write_all(b"\r\n").await.unwrap();
    let mut buf = [0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let old_instance = gw.gateway.management();

    let restart = reqwest::Client::new()
        .post(format!("{}/api/v4/ctrl/restart", gw.base_url("nanomq")))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .unwrap();
    let asked = Instant::now();
    assert_eq!(restart.status(), 200);
    let reply: serde_json::Value = restart.json().await.unwrap();
    assert_eq!(reply["code"], 0, "{reply}");

    for stream in [&mut half, &mut idle] {
        let (rest, took) = until_closed(stream, Duration::from_secs(4)).await;
        assert!(
            rest.is_empty(),
            "nothing more is sent to an old connection: {rest}"
        );
        assert!(took < Duration::from_secs(2), "closed after {took:?}");
    }
    let replaced = common::eventually(5, || {
        !std::sync::Arc::ptr_eq(&old_instance, &gw.gateway.management())
    })
    .await;
    assert!(replaced, "a new instance runs");
    let served = common::eventually_async(5, || async {
        reqwest::Client::new()
            .get(format!("http://{mica}/api/v1/stats"))
            .basic_auth("mica", Some("mica"))
            .send()
            .await
            .is_ok_and(|a| a.status() == 200)
    })
    .await;
    let outage = asked.elapsed();
    assert!(served);
    println!("restart: API answering again {outage:?} after the restart answer");
    assert!(outage < Duration::from_secs(3), "{outage:?}");
    gw.shutdown().await;
}

/// `mqgate::http::serve` is not tied to the dialects: any axum Router,
/// WebSocket upgrades included (how MQTT over WebSocket can get the same
/// limits), and its stop resolves once its connections have ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_carries_websocket_upgrades_and_stops_on_its_signal() {
    use axum::extract::ws::WebSocketUpgrade;
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let echo = axum::Router::new().route(
        "/echo",
        axum::routing::get(|ws: WebSocketUpgrade| async {
            ws.on_upgrade(|mut socket| async move {
                while let Some(Ok(message)) = socket.recv().await {
                    if socket.send(message).await.is_err() {
                        break;
                    }
                }
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = mqgate::http::HttpLimits {
        header_read_timeout: Duration::from_secs(5),
        body_read_timeout: Duration::from_secs(5),
        max_connections: 4,
        shutdown_grace: Duration::from_secs(1),
    };
    let (stop, signal) = tokio::sync::watch::channel(false);
    let mut serving = mqgate::http::serve("echo", listener, echo, limits, None, signal);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/echo"))
        .await
        .unwrap();
    ws.send(Message::text("over the upgrade")).await.unwrap();
    let back = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap();
    assert_eq!(back.unwrap().unwrap(), Message::text("over the upgrade"));

    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(2), serving.closed())
        .await
        .expect("the listening socket closes at once");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens any more"
    );
    tokio::time::timeout(Duration::from_secs(3), serving.ended())
        .await
        .expect("every connection has ended within the grace");
}
