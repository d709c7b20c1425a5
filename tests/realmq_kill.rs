//! The RealMQ registry against a real crash: the built `mqgate` binary is killed
//! with SIGKILL in the middle of a stream of device creates, started again on the
//! same data directory, and every create that had been acknowledged must be there.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The gateway process; killed when dropped, so a failing test leaves none behind.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts the binary with only the MQTT TCP listener and the realmq dialect.
fn spawn(dir: &Path, port: u16) -> Process {
    let config = format!(
        r#"data_dir = "{data}"
[mqtt.tcp]
listen = "127.0.0.1:0"
[mqtt.ws]
enabled = false
[docs]
enabled = false
[mica]
enabled = false
[nanomq]
enabled = false
[easemob]
enabled = false
[realmq]
listen = "127.0.0.1:{port}"
"#,
        data = dir.join("data").display()
    );
    let file = dir.join(format!("mqgate-{port}.toml"));
    std::fs::write(&file, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_mqgate"))
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the mqgate binary starts");
    Process(child)
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let answer = http
            .get(format!("{base}/api/v1/products"))
            .basic_auth("root", Some("123456"))
            .send()
            .await;
        if matches!(answer, Ok(r) if r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway at {base} did not come up");
}

async fn post(http: &reqwest::Client, url: &str, body: Value) -> reqwest::Result<(u16, Value)> {
    let r = http
        .post(url)
        .basic_auth("root", Some("123456"))
        .json(&body)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_creates_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut gateway = spawn(dir.path(), port);
    wait_ready(&http, &base).await;
    let (status, product) = post(
        &http,
        &format!("{base}/api/v1/products"),
        json!({"name":"crash"}),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{product}");
    let key = product["data"]["product_key"].as_str().unwrap().to_string();

    // Four writers create devices as fast as they are answered.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url, key, acked) = (
            http.clone(),
            format!("{base}/api/v1/devices"),
            key.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let body = json!({"name": name, "product_key": key, "username": name, "mqtt_client_id": name});
                match post(&http, &url, body).await {
                    Ok((200, answer)) if answer == json!({"code":0}) => acked.lock().unwrap().push(name),
                    Ok((status, answer)) => panic!("create refused: {status} {answer}"),
                    Err(_) => return,
                }
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 150 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGKILL: no shutdown path runs.
    gateway.0.kill().unwrap();
    gateway.0.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 150,
        "only {} creates before the deadline",
        acknowledged.len()
    );

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _gateway = spawn(dir.path(), port);
    wait_ready(&http, &base).await;
    let list: Value = http
        .get(format!("{base}/api/v1/devices?_limit=100000"))
        .basic_auth("root", Some("123456"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|n| !stored.contains(&n.as_str()))
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    // At most the four creates in flight at the kill may have landed unacknowledged.
    let count = list["meta"]["count"].as_u64().unwrap() as usize;
    assert!(
        count >= acknowledged.len() && count <= acknowledged.len() + 4,
        "{count} vs {}",
        acknowledged.len()
    );

    // The store still takes writes, and ids go on.
    let (status, answer) = post(
        &http,
        &format!("{base}/api/v1/devices"),
        json!({"name":"after","product_key":key,"username":"after","mqtt_client_id":"after"}),
    )
    .await
    .unwrap();
    assert_eq!((status, answer), (200, json!({"code":0})));
}
