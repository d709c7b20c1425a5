//! `[store] backend = "postgres"`: two `mqgate` processes on one PostgreSQL
//! database (`mqgate-pgtest` starts a throwaway server; SKIPPED without Debian's
//! `postgresql`, a failure under `MQGATE_REQUIRE_POSTGRES=1`). What one process
//! writes, the other acts on at once: RealMQ devices log in, are refused once
//! disabled or deleted, and Easemob tokens are accepted by either. A database that
//! cannot be reached stops the start with a message; one that goes away at run
//! time gives each vendor's error shape, and service resumes when it is back.
//! A password or ACL file written through one process's NanoMQ API is served and
//! enforced by the other.

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
        "nanomq" => request.basic_auth("admin", Some("public")),
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

/// How long a file written through one process may take to be enforced by another:
/// one `store.files_poll_ms` (1 s by default) and the reload, with room for a slow
/// machine.
const FILE_BOUND: Duration = Duration::from_secs(5);

const PASSWORD_FILE: &str = "/etc/nanomq_pwd.conf";
const ACL_FILE: &str = "/etc/nanomq_acl.conf";

async fn write_file(gw: &Spawned, path: &str, content: &str) {
    let body = json!({"data": {"path": path, "content": content}});
    let (status, answer) = call(gw, "nanomq", Method::POST, "/api/v4/write_file", Some(body)).await;
    assert_eq!((status.as_u16(), answer), (200, json!({"code": 0})));
}

async fn get_file(gw: &Spawned, path: &str) -> String {
    let query = format!("/api/v4/get_file?path={}", path.replace('/', "%2F"));
    let (status, answer) = call(gw, "nanomq", Method::GET, &query, None).await;
    assert_eq!(status, 200, "{answer}");
    answer["data"]["content"].as_str().unwrap().to_string()
}

/// The SUBACK code `addr` gives `username` for `filter`.
async fn suback(
    addr: SocketAddr,
    username: &str,
    password: &str,
    filter: &str,
) -> rumqttc::SubscribeReasonCode {
    let mut options = rumqttc::MqttOptions::new("sub-check", addr.ip().to_string(), addr.port());
    options.set_credentials(username, password);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    client
        .subscribe(filter, rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack))) => {
                    return ack.return_codes[0]
                }
                Ok(_) => continue,
                Err(e) => panic!("no SUBACK from {addr}: {e:?}"),
            }
        }
    })
    .await
    .expect("a SUBACK in time")
}

/// Checks `holds` every 50 ms until it is true; how long that took. Fails past
/// [`FILE_BOUND`].
async fn within_bound<F: std::future::Future<Output = bool>>(
    what: &str,
    mut holds: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    loop {
        if holds().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < FILE_BOUND,
            "{what}: not within {FILE_BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_and_acl_files_written_through_one_process_apply_on_the_other() {
    let Some(pg) = mqgate_pgtest::server("shared NanoMQ files") else {
        return;
    };
    let url = pg.database();
    let (a, b) = (gateway(&url), gateway(&url));
    let mqtt_b = b.addr("mqtt.tcp");
    use ConnectReturnCode::{BadUserNamePassword, NotAuthorized, Success};

    // nanomq-admin's Access page saves through A; B serves the file at once
    let users = "\"alice\": \"a-1\"\n\"bob\": \"b-1\"\n";
    write_file(&a, PASSWORD_FILE, users).await;
    assert_eq!(get_file(&b, PASSWORD_FILE).await, users);
    let took = within_bound("alice let in by B", || async {
        connack(mqtt_b, "alice-1", "alice", "a-1").await == Success
    })
    .await;
    println!("password file written through A, in force on B after {took:?}");
    assert_eq!(connack(mqtt_b, "bob-1", "bob", "b-1").await, Success);

    // the next file drops bob and changes alice's password
    write_file(&a, PASSWORD_FILE, "\"alice\": \"a-2\"\n").await;
    let took = within_bound("bob refused by B", || async {
        connack(mqtt_b, "bob-1", "bob", "b-1").await == NotAuthorized
    })
    .await;
    println!("user removed through A, refused by B after {took:?}");
    assert_eq!(connack(mqtt_b, "alice-1", "alice", "a-2").await, Success);
    assert_eq!(
        connack(mqtt_b, "alice-1", "alice", "a-1").await,
        BadUserNamePassword
    );
    // A, which wrote them, applies them too, without a restart
    assert_eq!(
        connack(a.addr("mqtt.tcp"), "bob-2", "bob", "b-1").await,
        NotAuthorized
    );

    let rules = "rules = [\n    {\"permit\": \"deny\", \"action\": \"subscribe\", \"topics\": [\"secret/#\"]}\n]\n";
    write_file(&a, ACL_FILE, rules).await;
    assert_eq!(get_file(&b, ACL_FILE).await, rules);
    let took = within_bound("subscription denied by B", || async {
        suback(mqtt_b, "alice", "a-2", "secret/x").await == rumqttc::SubscribeReasonCode::Failure
    })
    .await;
    println!("ACL file written through A, in force on B after {took:?}");
    // a file that does not parse is refused before it reaches the store
    let broken = json!({"data": {"path": ACL_FILE, "content": "rules = ["}});
    let (status, answer) = call(
        &a,
        "nanomq",
        Method::POST,
        "/api/v4/write_file",
        Some(broken),
    )
    .await;
    assert_eq!((status.as_u16(), answer), (400, json!({"code": 117})));
    assert_eq!(get_file(&b, ACL_FILE).await, rules);
    assert_eq!(
        suback(mqtt_b, "alice", "a-2", "open/x").await,
        rumqttc::SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)
    );

    // config_update through A is what B's get_file?default=true reads
    let conf = "mqtt {\n    max_mqueue_len = 300\n}\n";
    let response = reqwest::Client::new()
        .post(format!("http://{}/api/v4/config_update", a.addr("nanomq")))
        .basic_auth("admin", Some("public"))
        .body(conf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, file) = call(
        &b,
        "nanomq",
        Method::GET,
        "/api/v4/get_file?default=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["data"]["content"], conf, "{file}");

    // B restarted: the stored files are written over its own before it loads them
    let (status, answer) = call(&b, "nanomq", Method::POST, "/api/v4/ctrl/restart", None).await;
    assert_eq!(status, 200, "{answer}");
    b.wait_for_line(Duration::from_secs(30), |l| l.ends_with("restarted"))
        .unwrap_or_else(|| panic!("B did not restart:\n{}", b.log_text()));
    assert_eq!(connack(mqtt_b, "alice-1", "alice", "a-2").await, Success);
    assert_eq!(connack(mqtt_b, "bob-1", "bob", "b-1").await, NotAuthorized);
    assert_eq!(
        suback(mqtt_b, "alice", "a-2", "secret/x").await,
        rumqttc::SubscribeReasonCode::Failure
    );
    assert_eq!(get_file(&b, PASSWORD_FILE).await, "\"alice\": \"a-2\"\n");
    assert!(!b.log_text().contains("panicked"), "{}", b.log_text());
}
