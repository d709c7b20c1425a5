//! Shared harness of the end-to-end tests: a whole gateway in-process, every
//! listener on an ephemeral loopback port, a fresh data directory, and helpers for
//! real MQTT (rumqttc) and HTTP (reqwest) clients.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mqgate::config::Config;
use mqgate::gateway::{Gateway, RunningGateway};

pub struct TestGateway {
    pub gateway: RunningGateway,
    pub data_dir: tempfile::TempDir,
}

/// A gateway on the embedded defaults, moved to ephemeral ports.
pub async fn start() -> TestGateway {
    start_with(|_| {}).await
}

/// As [`start`], after `adjust` has changed the configuration.
pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestGateway {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(data_dir.path());
    adjust(&mut config);
    let gateway = Gateway::start(config).await.expect("gateway starts");
    TestGateway { gateway, data_dir }
}

impl TestGateway {
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.gateway.mqtt_addr().expect("tcp listener")
    }

    pub fn ws_addr(&self) -> SocketAddr {
        self.gateway.ws_addr().expect("ws listener")
    }

    /// `http://127.0.0.1:<port>` of a dialect's listener.
    pub fn base_url(&self, dialect: &str) -> String {
        format!(
            "http://{}",
            self.gateway.dialect_addr(dialect).expect("dialect enabled")
        )
    }

    /// MQTT 3.1.1 options for this gateway.
    pub fn v4_options(&self, client_id: &str) -> rumqttc::MqttOptions {
        let addr = self.mqtt_addr();
        let mut o = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    /// MQTT 5 options for this gateway.
    pub fn v5_options(&self, client_id: &str) -> rumqttc::v5::MqttOptions {
        let addr = self.mqtt_addr();
        let mut o = rumqttc::v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        o.set_keep_alive(Duration::from_secs(30));
        o
    }

    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
    }
}

/// An MQTT 3.1.1 client whose event loop runs in the background; incoming
/// publishes and every other event are forwarded to channels.
pub struct V4Client {
    pub client: rumqttc::AsyncClient,
    pub publishes: tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
    pub events: tokio::sync::mpsc::UnboundedReceiver<rumqttc::Event>,
    pub task: tokio::task::JoinHandle<Option<rumqttc::ConnectionError>>,
}

/// Connects and waits for the CONNACK; panics if the broker refuses.
pub async fn connect_v4(options: rumqttc::MqttOptions) -> V4Client {
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
    let (pub_tx, publishes) = tokio::sync::mpsc::unbounded_channel();
    let (ev_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    let mut ack_tx = Some(ack_tx);
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(event) => {
                    if let rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) = &event {
                        if let Some(tx) = ack_tx.take() {
                            let _ = tx.send(Ok(ack.code));
                        }
                    }
                    if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) = &event {
                        let _ = pub_tx.send(p.clone());
                    }
                    let _ = ev_tx.send(event);
                }
                Err(e) => {
                    if let Some(tx) = ack_tx.take() {
                        let _ = tx.send(Err(format!("{e:?}")));
                    }
                    return Some(e);
                }
            }
        }
    });
    let code = tokio::time::timeout(Duration::from_secs(5), ack_rx)
        .await
        .expect("CONNACK in time")
        .expect("event loop alive")
        .expect("connected");
    assert_eq!(code, rumqttc::ConnectReturnCode::Success);
    V4Client {
        client,
        publishes,
        events,
        task,
    }
}

/// Connects with a v3.1.1 client and returns the CONNACK code or the error text,
/// without keeping the connection.
pub async fn try_connect_v4(
    options: rumqttc::MqttOptions,
) -> Result<rumqttc::ConnectReturnCode, String> {
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    let result = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => return Ok(ack.code),
                Ok(_) => continue,
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Ok(code),
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
    .expect("answer in time");
    result
}

/// Waits up to `secs` for the next publish.
pub async fn next_publish(c: &mut V4Client, secs: u64) -> Option<rumqttc::Publish> {
    tokio::time::timeout(Duration::from_secs(secs), c.publishes.recv())
        .await
        .ok()
        .flatten()
}

/// Polls `check` every 20 ms until it returns true or `secs` pass.
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// The built `mqgate` binary as a child process; killed when dropped, so a
/// failing test leaves none behind.
pub struct Process(pub std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the `mqgate` binary with `config` (TOML) written to a file in `dir`.
pub fn spawn_mqgate(dir: &std::path::Path, name: &str, config: &str) -> Process {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_mqgate"))
        .arg("--config")
        .arg(&file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the mqgate binary starts");
    Process(child)
}
