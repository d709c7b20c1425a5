//! Resident memory of the mqgate process with many idle MQTT connections, and in
//! the same run of rumqttd's own `Broker` with the same router settings. Each
//! server runs as its own process (mqgate: the release binary; rumqttd: this
//! bench re-executed as a child); the bench opens raw TCP connections, sends
//! CONNECT (keepalive 600 s; rumqttd's server refuses 0) and keeps them open.
//!
//! Run: `cargo bench --bench idle_connections` (env: CONNECTIONS=10000).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x02, 0x58];
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let mut out = vec![0x10, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// Child mode: serve rumqttd's own broker on this port until killed.
const RUMQTTD_CHILD: &str = "IDLE_BENCH_RUMQTTD_PORT";

fn run_rumqttd(port: u16) -> ! {
    let defaults = mqgate::config::Config::default();
    let router = rumqttd::RouterConfig {
        max_connections: defaults.mqtt.max_connections + 2,
        max_outgoing_packet_count: defaults.mqtt.max_queued_messages as u64,
        // rumqttd's own defaults: with smaller segments its router drops messages
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: defaults.mqtt.max_packet_size as usize,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router,
        v4: Some(std::collections::HashMap::from([(
            "v4".to_string(),
            server,
        )])),
        ..Default::default()
    };
    rumqttd::Broker::new(config).start().unwrap();
    std::process::exit(0)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Connects `connections` idle clients to the server `pid` listens for on
/// `port`; prints its RSS before and after.
fn measure(name: &str, pid: u32, port: u16, connections: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let baseline = rss_kib(pid);
        let started = Instant::now();
        let mut sockets = Vec::with_capacity(connections);
        for i in 0..connections {
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            s.write_all(&connect_packet(&format!("idle-{i}"))).await.unwrap();
            let mut ack = [0u8; 4];
            s.read_exact(&mut ack).await.expect("CONNACK");
            assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
            sockets.push(s);
        }
        let connect_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let loaded = rss_kib(pid);
        println!(
            "{name:>14}: RSS {baseline} KiB idle, {loaded} KiB with {connections} idle MQTT connections \
             ({:.1} KiB per connection); {connections} sequential CONNECT/CONNACK in {connect_secs:.2} s ({:.0}/s)",
            (loaded.saturating_sub(baseline)) as f64 / connections as f64,
            connections as f64 / connect_secs
        );
        drop(sockets);
    });
}

fn main() {
    if let Some(port) = std::env::var(RUMQTTD_CHILD)
        .ok()
        .and_then(|p| p.parse().ok())
    {
        run_rumqttd(port);
    }
    let connections: usize = std::env::var("CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);

    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mqgate"))
        .arg("run")
        .env("RUST_LOG", "warn")
        .env("MQGATE__DATA_DIR", dir.path())
        .env("MQGATE__MQTT__TCP__LISTEN", format!("127.0.0.1:{port}"))
        .env("MQGATE__MQTT__WS__ENABLED", "false")
        .env("MQGATE__DOCS__ENABLED", "false")
        .env("MQGATE__MICA__ENABLED", "false")
        .env("MQGATE__NANOMQ__ENABLED", "false")
        .env("MQGATE__REALMQ__ENABLED", "false")
        .env("MQGATE__EASEMOB__ENABLED", "false")
        .spawn()
        .expect("mqgate binary");
    measure("mqgate", child.id(), port, connections);
    let _ = child.kill();
    let _ = child.wait();

    let port = free_port();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(RUMQTTD_CHILD, port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rumqttd child");
    measure("rumqttd Broker", child.id(), port, connections);
    let _ = child.kill();
    let _ = child.wait();
}
