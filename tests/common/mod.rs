//! Shared harness of the end-to-end tests: a whole gateway in-process, every
//! listener on an ephemeral loopback port, a fresh data directory, and helpers for
//! real MQTT (rumqttc) and HTTP (reqwest) clients.
#![allow(dead_code)]

pub mod haproxy;
pub mod pki;
pub mod raw;

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

/// `[mqtt] password_file` (`admin`/`public`, named `password_name`) and `acl_file`
/// (allow all, `acl.conf`) written to a directory of their own.
pub struct AccessFiles {
    pub password_file: std::path::PathBuf,
    pub acl_file: std::path::PathBuf,
    pub dir: tempfile::TempDir,
}

/// A gateway configured with [`AccessFiles`].
pub async fn start_with_access_files(password_name: &str) -> (AccessFiles, TestGateway) {
    let dir = tempfile::tempdir().expect("temp dir");
    let password_file = dir.path().join(password_name);
    let acl_file = dir.path().join("acl.conf");
    std::fs::write(&password_file, "\"admin\": \"public\"\n").unwrap();
    std::fs::write(&acl_file, "rules = [\n\t{\"permit\": \"allow\"}\n]\n").unwrap();
    let (pwd, acl) = (password_file.clone(), acl_file.clone());
    let gw = start_with(move |c| {
        c.mqtt.password_file = Some(pwd);
        c.mqtt.acl_file = Some(acl);
    })
    .await;
    let files = AccessFiles {
        password_file,
        acl_file,
        dir,
    };
    (files, gw)
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

    /// An app token of the default Easemob application.
    pub async fn easemob_app_token(&self) -> String {
        let reply = self
            .easemob_post(
                "/openapi/rm/app/token",
                None,
                serde_json::json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}),
            )
            .await;
        reply["body"]["access_token"].as_str().unwrap().to_string()
    }

    /// A user token MQTT clients of the default Easemob application log in with.
    pub async fn easemob_user_token(&self, app_token: &str, username: &str) -> String {
        let reply = self
            .easemob_post(
                "/openapi/rm/user/token",
                Some(app_token),
                serde_json::json!({ "username": username }),
            )
            .await;
        reply["body"]["access_token"].as_str().unwrap().to_string()
    }

    async fn easemob_post(
        &self,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.base_url("easemob")))
            .json(&body);
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        request.send().await.unwrap().json().await.unwrap()
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

/// Runs `check` every 20 ms until it returns true or `secs` pass.
pub async fn eventually_async<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}

/// One request as Swagger UI's "Try it out" pre-fills it from an OpenAPI document:
/// parameters and bodies from their examples, defaults, or type placeholders.
#[derive(Debug, Clone)]
pub struct ExampleRequest {
    pub method: String,
    /// The path with its parameters filled in, and the query string.
    pub target: String,
    pub body: Option<(String, serde_json::Value)>,
}

/// Every operation of `doc` as Swagger UI pre-fills it, in document order.
pub fn example_requests(doc: &serde_json::Value) -> Vec<ExampleRequest> {
    let mut requests = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let mut target = path.clone();
            let mut query = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                // An optional parameter is sent only when it has an example.
                let example = p.get("example").or_else(|| p["schema"].get("example"));
                let value = match (example, p["required"].as_bool()) {
                    (Some(example), _) => example.clone(),
                    (None, Some(true)) => example_of(doc, &p["schema"]),
                    (None, _) => continue,
                };
                let text = match &value {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let name = p["name"].as_str().expect("parameter name");
                match p["in"].as_str() {
                    Some("path") => target = target.replace(&format!("{{{name}}}"), &text),
                    Some("query") => query.push(format!("{name}={text}")),
                    _ => {}
                }
            }
            if !query.is_empty() {
                target = format!("{target}?{}", query.join("&"));
            }
            let body = op["requestBody"]["content"]
                .as_object()
                .and_then(|c| c.iter().next())
                .map(|(content_type, media)| {
                    let value = media
                        .get("example")
                        .cloned()
                        .unwrap_or_else(|| example_of(doc, &media["schema"]));
                    (content_type.clone(), value)
                });
            requests.push(ExampleRequest {
                method: method.to_uppercase(),
                target,
                body,
            });
        }
    }
    requests
}

/// A schema's sample as Swagger UI makes it: example, default, or a placeholder.
fn example_of(doc: &serde_json::Value, schema: &serde_json::Value) -> serde_json::Value {
    use serde_json::{json, Value};
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.rsplit('/').next().unwrap_or_default();
        return example_of(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(example) = schema["examples"].get(0) {
        return example.clone();
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(choices) = schema["oneOf"].as_array() {
        let choice = choices.iter().find(|c| c["type"] != "null");
        return choice.map_or(Value::Null, |c| example_of(doc, c));
    }
    if let Some(values) = schema["enum"].as_array() {
        return values.first().cloned().unwrap_or(Value::Null);
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types.iter().find(|t| *t != "null").cloned(),
        other => Some(other.clone()),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("object") => Value::Object(
            schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), example_of(doc, v)))
                .collect(),
        ),
        Some("array") => json!([example_of(doc, &schema["items"])]),
        Some("string") => json!("string"),
        Some("integer") => json!(0),
        Some("number") => json!(0.0),
        Some("boolean") => json!(true),
        _ => Value::Null,
    }
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

/// A `nats-server` child process on a free loopback port, its files in a
/// temporary directory; killed when dropped.
pub struct NatsServer {
    pub url: String,
    pub port: u16,
    binary: &'static str,
    process: Option<Process>,
    dir: tempfile::TempDir,
}

/// Starts `nats-server` (Debian's package) and waits until it accepts
/// connections. `None` when it is not installed, unless `MQGATE_REQUIRE_NATS=1`
/// (CI sets it), where a missing server fails the test.
pub async fn nats_server() -> Option<NatsServer> {
    let binary = ["/usr/sbin/nats-server", "/usr/bin/nats-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(
            std::env::var("MQGATE_REQUIRE_NATS").as_deref() != Ok("1"),
            "nats-server is not installed and MQGATE_REQUIRE_NATS=1"
        );
        eprintln!("SKIPPED: nats-server is not installed (apt-get install nats-server)");
        return None;
    };
    let port = free_port();
    let mut server = NatsServer {
        url: format!("nats://127.0.0.1:{port}"),
        port,
        binary,
        process: None,
        dir: tempfile::tempdir().expect("temp dir"),
    };
    server.start().await;
    Some(server)
}

impl NatsServer {
    /// Starts the server (again) on its port.
    pub async fn start(&mut self) {
        let child = std::process::Command::new(self.binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--pid")
            .arg(self.dir.path().join("nats.pid"))
            .arg("-l")
            .arg(self.dir.path().join("nats.log"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        self.process = Some(Process(child));
        let port = self.port;
        let up = eventually_async(10, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "nats-server listens on {port}");
    }

    /// Kills the server (its clients see the connection drop).
    pub fn kill(&mut self) {
        self.process.take();
    }
}
