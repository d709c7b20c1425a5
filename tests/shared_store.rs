//! `[store] backend = "postgres"`: two `mqgate` processes on one PostgreSQL
//! database (`mqgate-pgtest` starts a throwaway server; SKIPPED without Debian's
//! `postgresql`, a failure under `MQGATE_REQUIRE_POSTGRES=1`). What one process
//! writes, the other acts on at once: RealMQ devices log in, are refused once
//! disabled or deleted, and Easemob tokens are accepted by either. A database that
//! cannot be reached stops the start with a message; one that goes away at run
//! time gives each vendor's error shape, and service resumes when it is back.

mod spawned;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rumqttc::ConnectReturnCode;
use serde_json::{json, Value};
use spawned::{Options, Spawned};

const EASEMOB_APP: &str = "mq7g4e";

/// A gateway process on the database at `url`, anonymous MQTT off (a deleted
/// device's credentials are then refused rather than let in as anonymous).
fn gateway(url: &str) -> Spawned {
    Spawned::start(Options {
        env: vec![
            ("MQGATE__STORE__BACKEND", "postgres"),
            ("MQGATE__STORE__POSTGRES_URL", url),
            ("MQGATE__STORE__CONNECT_TIMEOUT_SECS", "2"),
            ("MQGATE__MQTT__ALLOW_ANONYMOUS", "false"),
        ],
        ..Options::default()
    })
}

async fn call(
    gw: &Spawned,
    dialect: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{path}", gw.addr(dialect)))
        .timeout(Duration::from_secs(20));
    request = match dialect {
        "realmq" => request.basic_auth("root", Some("123456")),
        _ => request,
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn realmq(
    gw: &Spawned,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    call(gw, "realmq", method, path, body).await
}

/// Registers product `p-<name>` and device `<name>` (username `u-<name>`, client
/// id `c-<name>`, password `pw-<name>`) through `gw`; returns the device id.
async fn device(gw: &Spawned, name: &str) -> i64 {
    let (status, product) = realmq(
        gw,
        Method::POST,
        "/api/v1/products",
        Some(json!({"name": format!("p-{name}")})),
    )
    .await;
    assert_eq!(status, 200, "{product}");
    let key = product["data"]["product_key"].as_str().unwrap();
    let body = json!({
        "name": name, "product_key": key, "username": format!("u-{name}"),
        "mqtt_client_id": format!("c-{name}"), "password": format!("pw-{name}"),
    });
    let (status, answer) = realmq(gw, Method::POST, "/api/v1/devices", Some(body)).await;
    assert_eq!((status.as_u16(), answer), (200, json!({"code": 0})));
    let (_, list) = realmq(
        gw,
        Method::GET,
        &format!("/api/v1/devices?device_name={name}"),
        None,
    )
    .await;
    list["data"][0]["id"].as_i64().unwrap()
}

/// The CONNACK code `addr` answers an MQTT 3.1.1 CONNECT with.
async fn connack(
    addr: SocketAddr,
    client_id: &str,
    username: &str,
    password: &str,
) -> ConnectReturnCode {
    let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_credentials(username, password);
    let (_client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => return ack.code,
                Ok(_) => continue,
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("no CONNACK from {addr}: {e:?}"),
            }
        }
    })
    .await
    .expect("a CONNACK in time")
}

async fn device_login(gw: &Spawned, name: &str) -> ConnectReturnCode {
    connack(
        gw.addr("mqtt.tcp"),
        &format!("c-{name}"),
        &format!("u-{name}"),
        &format!("pw-{name}"),
    )
    .await
}

async fn easemob_token(
    gw: &Spawned,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{}{path}", gw.addr("easemob")))
        .timeout(Duration::from_secs(20))
        .json(&body);
    if let Some(token) = token {
        request = request.header("Authorization", token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn app_token(gw: &Spawned) -> (StatusCode, Value) {
    let secret = json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"});
    easemob_token(gw, "/openapi/rm/app/token", None, secret).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_one_process_writes_the_other_acts_on_at_once() {
    let Some(pg) = mqgate_pgtest::server("two processes on one database") else {
        return;
    };
    let url = pg.database();
    let (a, b) = (gateway(&url), gateway(&url));

    // created through A, logs in through B at once (no wait, no retry)
    let id = device(&a, "d1").await;
    assert_eq!(device_login(&b, "d1").await, ConnectReturnCode::Success);
    let (_, listed) = realmq(&b, Method::GET, &format!("/api/v1/devices/{id}"), None).await;
    assert_eq!(listed["data"][0]["username"], "u-d1", "{listed}");
    // a name A took is refused by B with the vendor's code
    let (status, taken) = realmq(
        &b,
        Method::POST,
        "/api/v1/products",
        Some(json!({"name": "p-d1"})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), taken["code"].as_i64()),
        (400, Some(113)),
        "{taken}"
    );

    // disabled through B: A refuses it at once
    let change = json!({"name": "d1", "enable": false});
    let (status, answer) = realmq(
        &b,
        Method::PUT,
        &format!("/api/v1/devices/{id}"),
        Some(change),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        device_login(&a, "d1").await,
        ConnectReturnCode::NotAuthorized
    );
    let change = json!({"name": "d1", "enable": true});
    realmq(
        &a,
        Method::PUT,
        &format!("/api/v1/devices/{id}"),
        Some(change),
    )
    .await;
    assert_eq!(device_login(&b, "d1").await, ConnectReturnCode::Success);

    // deleted through B: A refuses the next CONNECT and no longer lists it
    let (status, answer) = realmq(&b, Method::DELETE, &format!("/api/v1/devices/{id}"), None).await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(device_login(&a, "d1").await, ConnectReturnCode::Success);
    let (status, gone) = realmq(&a, Method::GET, &format!("/api/v1/devices/{id}"), None).await;
    assert_eq!(status, 404, "{gone}");

    // Easemob: an app token issued by A is accepted by B's API, and a user token
    // issued by B logs the user's client in on A
    let (status, app) = app_token(&a).await;
    assert_eq!(status, 200, "{app}");
    let app = app["body"]["access_token"].as_str().unwrap().to_string();
    let (status, user) = easemob_token(
        &b,
        "/openapi/rm/user/token",
        Some(&app),
        json!({"username": "alice"}),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    let user = user["body"]["access_token"].as_str().unwrap().to_string();
    let client = format!("phone@{EASEMOB_APP}");
    assert_eq!(
        connack(a.addr("mqtt.tcp"), &client, "alice", &user).await,
        ConnectReturnCode::Success
    );
    assert_ne!(
        connack(a.addr("mqtt.tcp"), &client, "alice", "not-the-token").await,
        ConnectReturnCode::Success
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gives_vendor_errors_then_service_resumes() {
    let Some(pg) = mqgate_pgtest::server("database outage") else {
        return;
    };
    let url = pg.database();
    let database = url.rsplit('/').next().unwrap().to_string();
    let gw = gateway(&url);
    device(&gw, "d2").await;
    assert_eq!(device_login(&gw, "d2").await, ConnectReturnCode::Success);

    pg.admin(&format!(
        "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
    ));
    let (status, error) = realmq(&gw, Method::GET, "/api/v1/products", None).await;
    assert_eq!(status, 500, "{error}");
    assert_eq!(error["code"], 101, "RealMQ's envelope: {error}");
    assert!(
        error["message"].as_str().unwrap().contains("database"),
        "{error}"
    );
    // a device the process knows is not judged by a copy it cannot check
    assert_eq!(
        device_login(&gw, "d2").await,
        ConnectReturnCode::ServiceUnavailable
    );
    let (status, error) = app_token(&gw).await;
    assert!(status.is_server_error(), "{status} {error}");
    assert!(
        error.get("code").is_some() && error.get("msg").is_some(),
        "Easemob's envelope: {error}"
    );

    pg.admin(&format!(
        "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, list) = realmq(&gw, Method::GET, "/api/v1/products", None).await;
        if status == 200 {
            assert_eq!(list["data"][0]["name"], "p-d2", "{list}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the store did not come back: {status} {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(device_login(&gw, "d2").await, ConnectReturnCode::Success);
    assert!(!gw.log_text().contains("panicked"), "{}", gw.log_text());
}

/// Runs the binary with `args` and `env` until it exits (within 30 s); its exit
/// code and stderr.
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = spawned::command(dir.path());
    command
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("mqgate did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_unreachable_or_malformed_postgres_url_stops_the_start_with_a_message() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // nothing listens there once the probe socket is closed
    let url = format!("postgres://mqgate@127.0.0.1:{port}/mqgate");
    let postgres = [
        ("MQGATE__STORE__BACKEND", "postgres"),
        ("MQGATE__STORE__POSTGRES_URL", url.as_str()),
        ("MQGATE__STORE__CONNECT_TIMEOUT_SECS", "2"),
    ];
    let started = Instant::now();
    let (code, stderr) = run_to_exit(&[], &postgres);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("mqgate: store: PostgreSQL: database unreachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "gave up in {:?}",
        started.elapsed()
    );

    let malformed = [
        ("MQGATE__STORE__BACKEND", "postgres"),
        ("MQGATE__STORE__POSTGRES_URL", "postgres://h:notaport/db"),
    ];
    let (code, stderr) = run_to_exit(&["check-config"], &malformed);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("store.postgres_url"), "{stderr}");
    let (code, stderr) = run_to_exit(&[], &[("MQGATE__STORE__BACKEND", "postgres")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("needs postgres_url"), "{stderr}");
}
