//! The two browser dashboards written for the vendors, replayed page by page against
//! a whole default gateway: each test sends what one page sends when it opens and
//! when its buttons are used (method, path, query, body, Content-Type, Basic
//! credentials, in the page's order, parallel requests in parallel), with real MQTT
//! clients connected first, and checks every response field that page reads.
//!
//! The request sequences were recorded from the dashboards' sources at:
//! - lets-mica/mica-mqtt-dashboard 792ae9114924bf9602509a3419babdcf819e22ab (mica
//!   listener, Basic `mica:mica`; axios, which labels a JSON body
//!   `application/json` and sends no Content-Type without a body);
//! - werecloud/nanomq-admin f321de0495052f746d6c4b82a154b9a1e46d131f (NanoMQ v4 API
//!   under `<url>/api/v4`, Basic `admin:public`; axios likewise, the login check
//!   through `fetch` with `Content-Type: application/json` on a GET).

mod common;

use std::time::Duration;

use common::{connect_v4, eventually_async, next_publish, TestGateway, V4Client};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use rumqttc::{Event, Packet, QoS};
use serde_json::{json, Value};

/// One dashboard's HTTP client as its pages use it.
struct Page {
    base: String,
    http: reqwest::Client,
    user: &'static str,
    password: &'static str,
}

enum Body {
    None,
    Json(Value),
    Text(String),
}

impl Page {
    fn mica(gw: &TestGateway) -> Page {
        Page::new(gw.base_url("mica"), "mica", "mica")
    }

    /// nanomq-admin with the URL typed on its login page (`http://host:port`).
    fn nanomq_admin(gw: &TestGateway) -> Page {
        Page::new(
            format!("{}/api/v4", gw.base_url("nanomq")),
            "admin",
            "public",
        )
    }

    fn new(base: String, user: &'static str, password: &'static str) -> Page {
        Page {
            base,
            http: reqwest::Client::new(),
            user,
            password,
        }
    }

    async fn send(&self, method: Method, path: &str, body: Body) -> (u16, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(self.user, Some(self.password));
        request = match body {
            Body::None => request,
            Body::Json(value) => request
                .header(CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::Text(text) => request.header(CONTENT_TYPE, "text/plain").body(text),
        };
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status().as_u16();
        (status, response.text().await.expect("a body"))
    }

    /// A 200 answer with a JSON body, as every page needs to show anything.
    async fn json(&self, method: Method, path: &str, body: Body) -> Value {
        let (status, text) = self.send(method, path, body).await;
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"))
    }

    async fn get(&self, path: &str) -> Value {
        self.json(Method::GET, path, Body::None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.json(Method::POST, path, Body::Json(body)).await
    }

    /// An axios POST without data: no body, no Content-Type.
    async fn post_empty(&self, path: &str) -> Value {
        self.json(Method::POST, path, Body::None).await
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `value[key]` is a JSON number (the pages format it or do arithmetic on it).
fn number(value: &Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {value}"))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {value}"))
}

/// The entry of `list` whose `key` is `id`.
fn find<'a>(list: &'a Value, key: &str, id: &str) -> Option<&'a Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|entry| entry[key] == id)
}

async fn client_with_login(gw: &TestGateway, id: &str, user: &str) -> V4Client {
    let mut options = gw.v4_options(id);
    options.set_credentials(user, "any");
    connect_v4(options).await
}

async fn subscribed(gw: &TestGateway, id: &str, filter: &str, qos: QoS) -> V4Client {
    let mut c = connect_v4(gw.v4_options(id)).await;
    c.client.subscribe(filter, qos).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.events.recv()).await {
            Ok(Some(Event::Incoming(Packet::SubAck(_)))) => return c,
            Ok(Some(_)) => continue,
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

/// The client's connection has been closed by the broker.
async fn disconnected(c: V4Client) {
    let ended = tokio::time::timeout(Duration::from_secs(5), c.task).await;
    assert!(
        matches!(ended, Ok(Ok(Some(_)))),
        "the kicked client is still connected"
    );
}

// ---- mica-mqtt-dashboard -------------------------------------------------------------

/// Login: the credentials are checked with `GET /api/v1/stats`; 401 is "wrong
/// username or password", 200 stores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mica_login_page() {
    let gw = common::start().await;
    let wrong = Page::new(gw.base_url("mica"), "mica", "nope");
    let (status, _) = wrong.send(Method::GET, "/api/v1/stats", Body::None).await;
    assert_eq!(status, 401);
    let answer = Page::mica(&gw).get("/api/v1/stats").await;
    assert_eq!(answer["code"], 1);
    gw.shutdown().await;
}

/// Dashboard: `GET /api/v1/stats` and `GET /api/v1/clients?_page=1&_limit=5` at once;
/// ten counters, then the connected clients sorted by `connectedAt`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mica_dashboard_page() {
    let gw = common::start().await;
    let _alice = client_with_login(&gw, "dash-alice", "alice").await;
    let _bob = connect_v4(gw.v4_options("dash-bob")).await;
    let page = Page::mica(&gw);
    let (stats, clients) = tokio::join!(
        page.get("/api/v1/stats"),
        page.get("/api/v1/clients?_page=1&_limit=5")
    );
    assert_eq!(stats["code"], 1);
    let stats = &stats["data"];
    for key in ["clientNodes", "connections", "users"] {
        number(&stats["nodes"], key);
    }
    assert_eq!(number(&stats["connections"], "size"), 2.0);
    assert!(number(&stats["connections"], "accepted") >= 2.0);
    number(&stats["connections"], "closed");
    for key in [
        "receivedPackets",
        "sendPackets",
        "receivedBytes",
        "sendBytes",
    ] {
        assert!(
            number(&stats["messages"], key) > 0.0,
            "{key}: CONNECT/CONNACK counted"
        );
    }

    assert_eq!(clients["code"], 1);
    let data = &clients["data"];
    assert_eq!(number(data, "pageNumber"), 1.0);
    // mica-mqtt's `pageSize` is min(_limit, totalRow).
    assert_eq!(number(data, "pageSize"), 2.0);
    assert_eq!(number(data, "totalRow"), 2.0);
    let alice = find(&data["list"], "clientId", "dash-alice").expect("alice listed");
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["ipAddress"], "127.0.0.1");
    assert_eq!(alice["connected"], true);
    let connected_at = number(alice, "connectedAt") as i64;
    assert!(
        (now_ms() - connected_at).abs() < 60_000,
        "connectedAt in ms: {connected_at}"
    );
    assert!(find(&data["list"], "clientId", "dash-bob").is_some());
    gw.shutdown().await;
}

/// Clients: `GET /api/v1/clients?_page=1&_limit=20` (then other pages and sizes),
/// the table's columns, and the kick button: `POST /api/v1/clients/delete?clientId=`
/// without a body, then the same list again, which must no longer show the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mica_clients_page() {
    let gw = common::start().await;
    let alice = client_with_login(&gw, "clients-alice", "alice").await;
    let _bob = connect_v4(gw.v4_options("clients-bob")).await;
    let page = Page::mica(&gw);
    let list = page.get("/api/v1/clients?_page=1&_limit=20").await;
    assert_eq!(list["code"], 1);
    assert_eq!(number(&list["data"], "totalRow"), 2.0);
    let row = find(&list["data"]["list"], "clientId", "clients-alice").expect("listed");
    assert_eq!(row["username"], "alice");
    assert_eq!(row["ipAddress"], "127.0.0.1");
    assert!(number(row, "port") > 0.0);
    assert_eq!(number(row, "keepAlive"), 30.0);
    assert_eq!(row["protoFullName"], "MQTT 3.1.1");
    assert_eq!(row["connected"], true);
    number(row, "connectedAt");

    // The pager: page 2 of size 1.
    let second = page.get("/api/v1/clients?_page=2&_limit=1").await;
    assert_eq!(number(&second["data"], "pageNumber"), 2.0);
    assert_eq!(number(&second["data"], "pageSize"), 1.0);
    assert_eq!(number(&second["data"], "totalRow"), 2.0);
    assert_eq!(second["data"]["list"].as_array().unwrap().len(), 1);

    let kicked = page
        .post_empty("/api/v1/clients/delete?clientId=clients-alice")
        .await;
    assert_eq!(kicked["code"], 1);
    let list = page.get("/api/v1/clients?_page=1&_limit=20").await;
    assert!(
        find(&list["data"]["list"], "clientId", "clients-alice").is_none(),
        "the refreshed list still shows the kicked client: {list}"
    );
    assert_eq!(number(&list["data"], "totalRow"), 1.0);
    disconnected(alice).await;
    gw.shutdown().await;
}

/// Client detail: `GET /api/v1/clients/info?clientId=` and
/// `GET /api/v1/client/subscriptions?clientId=` at once; subscribe on the client's
/// behalf (`POST /api/v1/mqtt/subscribe` `{clientId,topic,qos}`), reload, unsubscribe
/// (`POST /api/v1/mqtt/unsubscribe` `{clientId,topic}`), reload, then kick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mica_client_detail_page() {
    let gw = common::start().await;
    let mut device = subscribed(&gw, "detail-device", "detail/own", QoS::AtMostOnce).await;
    let publisher = connect_v4(gw.v4_options("detail-publisher")).await;
    let page = &Page::mica(&gw);
    let load = move || async move {
        let (info, subs) = tokio::join!(
            page.get("/api/v1/clients/info?clientId=detail-device"),
            page.get("/api/v1/client/subscriptions?clientId=detail-device")
        );
        assert_eq!((&info["code"], &subs["code"]), (&json!(1), &json!(1)));
        (info["data"].clone(), subs["data"].clone())
    };
    let (info, subs) = load().await;
    assert_eq!(info["clientId"], "detail-device");
    assert_eq!(info["connected"], true);
    assert_eq!(info["ipAddress"], "127.0.0.1");
    assert_eq!(info["protoFullName"], "MQTT 3.1.1");
    assert_eq!(
        (&info["webSocket"], &info["ssl"]),
        (&json!(false), &json!(false))
    );
    for key in [
        "port",
        "keepAlive",
        "decodeQueueSize",
        "handlerQueueSize",
        "sendQueueSize",
    ] {
        number(&info, key);
    }
    assert!(number(&info, "createdAt") <= number(&info, "connectedAt"));
    let own = find(&subs, "topicFilter", "detail/own").expect("own subscription shown");
    assert_eq!(number(own, "mqttQoS"), 0.0);

    let answer = page
        .post(
            "/api/v1/mqtt/subscribe",
            json!({"clientId": "detail-device", "topic": "detail/proxy/#", "qos": 1}),
        )
        .await;
    assert_eq!(answer["code"], 1);
    let (_, subs) = load().await;
    let proxy = find(&subs, "topicFilter", "detail/proxy/#").expect("proxy subscription shown");
    assert_eq!(number(proxy, "mqttQoS"), 1.0);
    publisher
        .client
        .publish("detail/proxy/a", QoS::AtLeastOnce, false, "to the device")
        .await
        .unwrap();
    let delivered = next_publish(&mut device, 5)
        .await
        .expect("delivered to the device");
    assert_eq!(delivered.topic, "detail/proxy/a");

    let answer = page
        .post(
            "/api/v1/mqtt/unsubscribe",
            json!({"clientId": "detail-device", "topic": "detail/proxy/#"}),
        )
        .await;
    assert_eq!(answer["code"], 1);
    let (_, subs) = load().await;
    assert!(find(&subs, "topicFilter", "detail/proxy/#").is_none());
    assert!(find(&subs, "topicFilter", "detail/own").is_some());

    let kicked = page
        .post_empty("/api/v1/clients/delete?clientId=detail-device")
        .await;
    assert_eq!(kicked["code"], 1);
    disconnected(device).await;
    gw.shutdown().await;
}

/// Monitor: `GET /api/v1/stats` on opening, then every five seconds; each poll is a
/// chart point of `connections.size` and the message packet and byte counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mica_monitor_page() {
    let gw = common::start().await;
    let mut subscriber = subscribed(&gw, "monitor-sub", "monitor/#", QoS::AtMostOnce).await;
    let publisher = connect_v4(gw.v4_options("monitor-pub")).await;
    let page = Page::mica(&gw);
    let first = page.get("/api/v1/stats").await["data"].clone();
    assert_eq!(number(&first["connections"], "size"), 2.0);
    for _ in 0..3 {
        publisher
            .client
            .publish("monitor/t", QoS::AtMostOnce, false, "x")
            .await
            .unwrap();
        next_publish(&mut subscriber, 5).await.expect("delivered");
    }
    let second = page.get("/api/v1/stats").await["data"].clone();
    for key in [
        "receivedPackets",
        "receivedBytes",
        "sendPackets",
        "sendBytes",
    ] {
        assert!(
            number(&second["messages"], key) >= number(&first["messages"], key) + 3.0,
            "{key}: {} then {}",
            first["messages"],
            second["messages"]
        );
    }
    drop(publisher);
    gw.shutdown().await;
}

/// MQTT debug: MQTT.js in the browser with only host and port connects to
/// `ws://host:8083/` (subprotocol `mqtt`, client id `mica_web_<ms>`, clean session,
/// keepalive 60), then subscribes and publishes; its own message comes back and a TCP
/// client sees it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mica_debug_page() {
    let gw = common::start().await;
    let mut tcp = subscribed(&gw, "debug-tcp", "debug/#", QoS::AtMostOnce).await;
    let addr = gw.ws_addr();
    let id = format!("mica_web_{}", now_ms());
    let mut options = rumqttc::MqttOptions::new(&id, format!("ws://{addr}/"), addr.port());
    options.set_transport(rumqttc::Transport::Ws);
    options.set_keep_alive(Duration::from_secs(60));
    options.set_clean_session(true);
    let mut browser = connect_v4(options).await;
    browser
        .client
        .subscribe("debug/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    browser
        .client
        .publish("debug/hello", QoS::AtLeastOnce, false, "from the page")
        .await
        .unwrap();
    let echoed = next_publish(&mut browser, 5)
        .await
        .expect("own message back");
    assert_eq!(&echoed.payload[..], b"from the page");
    let seen = next_publish(&mut tcp, 5).await.expect("seen over TCP");
    assert_eq!(seen.topic, "debug/hello");
    let info = Page::mica(&gw)
        .get(&format!("/api/v1/clients/info?clientId={id}"))
        .await;
    assert_eq!(info["data"]["webSocket"], true);
    gw.shutdown().await;
}

// ---- nanomq-admin --------------------------------------------------------------------

/// Login: `fetch` `GET <url>/api/v4/brokers` with Basic credentials and
/// `Content-Type: application/json`; anything but 2xx is an error message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_login_page() {
    let gw = common::start().await;
    let url = format!("{}/api/v4/brokers", gw.base_url("nanomq"));
    let http = reqwest::Client::new();
    for (password, status) in [("wrong", 401), ("public", 200)] {
        let response = http
            .get(&url)
            .basic_auth("admin", Some(password))
            .header(CONTENT_TYPE, "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{password}");
    }
    gw.shutdown().await;
}

/// The store's `refreshMetrics`, used by the Dashboard, Monitoring and Statistics pages:
/// `/metrics`, `/prometheus`, `/nodes` and `/subscriptions` at once.
async fn refresh_metrics(page: &Page) -> (Value, String, Value, Value) {
    let (metrics, prometheus, nodes, subscriptions) = tokio::join!(
        page.get("/metrics"),
        page.send(Method::GET, "/prometheus", Body::None),
        page.get("/nodes"),
        page.get("/subscriptions"),
    );
    assert_eq!(prometheus.0, 200);
    (metrics, prometheus.1, nodes, subscriptions)
}

/// The Prometheus sample `name`, as the page's parser reads it.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (metric, value) = line.rsplit_once(' ')?;
            (metric.split('{').next()? == name).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {name} sample in:\n{text}"))
}

/// `nodes[0].uptime` as the pages parse it: "N Hours, N minutes, N seconds".
fn uptime_seconds(uptime: &str) -> u64 {
    let words: Vec<&str> = uptime.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    assert_eq!(words.len(), 6, "{uptime}");
    let unit = |i: usize, name: &str| {
        assert!(words[i + 1].to_lowercase().starts_with(name), "{uptime}");
        words[i].parse::<u64>().unwrap()
    };
    unit(0, "hour") * 3600 + unit(2, "minute") * 60 + unit(4, "second")
}

/// The fields `refreshMetrics` reads, with `connections` and `subscriptions` expected.
fn assert_metrics(
    (metrics, prometheus, nodes, subscriptions): &(Value, String, Value, Value),
    connections: f64,
) {
    let raw = if metrics.get("data").is_some_and(Value::is_object) {
        &metrics["data"]
    } else {
        metrics
    };
    let cpu = text(raw, "cpuinfo");
    assert!(
        cpu.ends_with('%') && cpu.trim_end_matches('%').parse::<f64>().is_ok(),
        "{cpu}"
    );
    assert!(text(raw, "memory").parse::<u64>().unwrap() > 0);
    assert_eq!(number(raw, "connections"), connections);
    assert_eq!(sample(prometheus, "nanomq_connections_count"), connections);
    assert!(sample(prometheus, "nanomq_connections_max") >= connections);
    let subscribed = subscriptions["data"]
        .as_array()
        .expect("subscriptions")
        .len() as f64;
    assert_eq!(sample(prometheus, "nanomq_subscribers_count"), subscribed);
    assert!(sample(prometheus, "nanomq_subscribers_max") >= subscribed);
    for name in [
        "nanomq_messages_received",
        "nanomq_messages_sent",
        "nanomq_messages_dropped",
        "nanomq_cpu_usage",
    ] {
        sample(prometheus, name);
    }
    assert!(sample(prometheus, "nanomq_memory_usage") > 0.0);
    let node = &nodes["data"][0];
    assert_eq!(number(node, "connections"), connections);
    uptime_seconds(text(node, "uptime"));
}

/// Dashboard: `refreshData`: `GET /brokers` (must say `code` 0), then brokers, nodes,
/// clients, subscriptions and the metrics set at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_dashboard_page() {
    let gw = common::start().await;
    let _alice = client_with_login(&gw, "admin-dash-alice", "alice").await;
    let _sub = subscribed(&gw, "admin-dash-sub", "dash/+/t", QoS::AtLeastOnce).await;
    let page = Page::nanomq_admin(&gw);
    assert_eq!(page.get("/brokers").await["code"], 0);
    let (brokers, nodes, clients, subscriptions, metrics) = tokio::join!(
        page.get("/brokers"),
        page.get("/nodes"),
        page.get("/clients"),
        page.get("/subscriptions"),
        refresh_metrics(&page),
    );
    let broker = &brokers["data"][0];
    for key in ["version", "node_status", "sysdescr"] {
        assert!(!text(broker, key).is_empty(), "{key}");
    }
    uptime_seconds(text(broker, "uptime"));
    let node = &nodes["data"][0];
    assert_eq!(number(node, "connections"), 2.0);
    assert_eq!(text(node, "node_status"), "Running");
    let alice = find(&clients["data"], "client_id", "admin-dash-alice").expect("listed");
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["proto_name"], "MQTT");
    assert_eq!(alice["conn_state"], "connected");
    let sub = find(&subscriptions["data"], "clientid", "admin-dash-sub").expect("listed");
    assert_eq!(
        (&sub["topic"], &sub["qos"]),
        (&json!("dash/+/t"), &json!(1))
    );
    assert_metrics(&metrics, 2.0);
    gw.shutdown().await;
}

/// Clients: `GET /clients`; each row's id, username, protocol name and version,
/// state, keep-alive and clean start. (The page's "messages" column reads
/// `recv_msg`, which NanoMQ does not send: it stays empty against NanoMQ too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_clients_page() {
    let gw = common::start().await;
    let _alice = client_with_login(&gw, "admin-clients-alice", "alice").await;
    let _bob = connect_v4(gw.v4_options("admin-clients-bob")).await;
    let clients = Page::nanomq_admin(&gw).get("/clients").await;
    assert_eq!(clients["data"].as_array().unwrap().len(), 2);
    let row = find(&clients["data"], "client_id", "admin-clients-alice").expect("listed");
    assert_eq!(row["username"], "alice");
    assert_eq!(
        (&row["proto_name"], &row["proto_ver"]),
        (&json!("MQTT"), &json!(4))
    );
    assert_eq!(row["conn_state"], "connected");
    assert_eq!(number(row, "keepalive"), 30.0);
    assert_eq!(row["clean_start"], true);
    gw.shutdown().await;
}

/// Subscriptions: `GET /subscriptions`; client id, topic (wildcards marked) and QoS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_subscriptions_page() {
    let gw = common::start().await;
    let _a = subscribed(&gw, "admin-subs-a", "plant/+/temp", QoS::ExactlyOnce).await;
    let _b = subscribed(&gw, "admin-subs-b", "plant/1/temp", QoS::AtMostOnce).await;
    let subscriptions = Page::nanomq_admin(&gw).get("/subscriptions").await;
    assert_eq!(subscriptions["code"], 0);
    let a = find(&subscriptions["data"], "clientid", "admin-subs-a").expect("a listed");
    assert_eq!(
        (&a["topic"], &a["qos"]),
        (&json!("plant/+/temp"), &json!(2))
    );
    let b = find(&subscriptions["data"], "clientid", "admin-subs-b").expect("b listed");
    assert_eq!(
        (&b["topic"], &b["qos"]),
        (&json!("plant/1/temp"), &json!(0))
    );
    gw.shutdown().await;
}

/// Publish: `POST /mqtt/publish` with the form's fields (`topic` or `topics`,
/// optional `clientid`, `payload`, `encoding`, `qos`, `retain`, optional
/// `properties`); `code` 0 is success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_publish_page() {
    let gw = common::start().await;
    let mut sub = subscribed(&gw, "admin-pub-sub", "admin/pub/#", QoS::AtLeastOnce).await;
    let page = Page::nanomq_admin(&gw);
    let forms = [
        (
            json!({"topic": "admin/pub/a", "payload": "plain text", "encoding": "plain", "qos": 1, "retain": false}),
            "admin/pub/a",
            &b"plain text"[..],
        ),
        (
            // NanoMQ's `encoding: base64` encodes the given payload before publishing.
            json!({"topic": "admin/pub/b", "clientid": "admin-page", "payload": "hello", "encoding": "base64", "qos": 0, "retain": false}),
            "admin/pub/b",
            &b"aGVsbG8="[..],
        ),
        (
            json!({"topics": "admin/pub/c", "payload": "{\"v\":1}", "encoding": "plain", "qos": 2, "retain": false, "properties": {"content_type": "application/json"}}),
            "admin/pub/c",
            &b"{\"v\":1}"[..],
        ),
    ];
    for (form, topic, payload) in forms {
        let answer = page.post("/mqtt/publish", form.clone()).await;
        assert_eq!(answer["code"], 0, "{form}: {answer}");
        let p = next_publish(&mut sub, 5)
            .await
            .unwrap_or_else(|| panic!("{form} not delivered"));
        assert_eq!((p.topic.as_str(), &p.payload[..]), (topic, payload));
    }
    // Retained: a subscriber arriving later gets it.
    let form = json!({"topic": "admin/pub/kept", "payload": "kept", "encoding": "plain", "qos": 1, "retain": true});
    assert_eq!(page.post("/mqtt/publish", form).await["code"], 0);
    next_publish(&mut sub, 5).await.expect("live copy");
    let mut late = subscribed(&gw, "admin-pub-late", "admin/pub/kept", QoS::AtLeastOnce).await;
    let kept = next_publish(&mut late, 5).await.expect("retained copy");
    assert!(kept.retain);
    gw.shutdown().await;
}

/// Monitoring (polls every five seconds) and Statistics (once): `refreshMetrics`;
/// the message counters move with traffic between two polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_monitoring_and_statistics_pages() {
    let gw = common::start().await;
    let mut sub = subscribed(&gw, "admin-mon-sub", "mon/#", QoS::AtMostOnce).await;
    let publisher = connect_v4(gw.v4_options("admin-mon-pub")).await;
    let page = Page::nanomq_admin(&gw);
    let first = refresh_metrics(&page).await;
    assert_metrics(&first, 2.0);
    for _ in 0..4 {
        publisher
            .client
            .publish("mon/t", QoS::AtMostOnce, false, "x")
            .await
            .unwrap();
        next_publish(&mut sub, 5).await.expect("delivered");
    }
    let second = refresh_metrics(&page).await;
    assert_metrics(&second, 2.0);
    for name in ["nanomq_messages_received", "nanomq_messages_sent"] {
        assert!(
            sample(&second.1, name) >= sample(&first.1, name) + 4.0,
            "{name} did not move"
        );
    }
    gw.shutdown().await;
}

/// Configuration: `GET /reload` and `GET /get_file?default=true` at once; saving the
/// hot settings posts `{"data": <the form>}` to `/reload` and reloads both;
/// saving the file posts it as `text/plain` to `/config_update`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_configuration_page() {
    let gw = common::start().await;
    let page = &Page::nanomq_admin(&gw);
    let load = move || async move {
        tokio::join!(page.get("/reload"), page.get("/get_file?default=true"))
    };
    let (reload, file) = load().await;
    let form = reload["data"].clone();
    for key in [
        "property_size",
        "msq_len",
        "qos_duration",
        "max_packet_size",
        "client_max_packet_size",
        "keepalive_backoff",
    ] {
        number(&form, key);
    }
    assert!(form["allow_anonymous"].is_boolean());
    assert_eq!(file["code"], 0);
    let content = text(&file["data"], "content").to_string();
    assert!(content.contains("allow_anonymous = true"), "{content}");

    let mut changed = form.clone();
    changed["msq_len"] = json!(number(&form, "msq_len") as u64 + 1);
    let saved = page.post("/reload", json!({ "data": changed })).await;
    assert_eq!(saved["code"], 0);
    let (reload, _) = load().await;
    assert_eq!(reload["data"]["msq_len"], changed["msq_len"]);

    let updated = page
        .json(
            Method::POST,
            "/config_update",
            Body::Text(content.trim().to_string()),
        )
        .await;
    assert_eq!(updated["code"], 0);
    let (_, file) = load().await;
    assert_eq!(text(&file["data"], "content").trim(), content.trim());
    gw.shutdown().await;
}

/// Rules: `GET /rules`; a NanoMQ built without the rule engine answers `code` 111 and
/// no `data`, which the page shows as an empty list. Bridges: `GET /bridges`; the
/// page reads `data.bridge.nodes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_rules_and_bridges_pages() {
    let gw = common::start().await;
    let page = Page::nanomq_admin(&gw);
    let rules = page.get("/rules").await;
    assert_eq!(rules, json!({"code": 111}));
    let bridges = page.get("/bridges").await;
    assert_eq!(bridges["code"], 0);
    assert_eq!(bridges["data"]["bridge"]["nodes"], json!([]));
    gw.shutdown().await;
}

/// Access, with `[mqtt] password_file` and `acl_file` configured (a default gateway
/// uses the data directory's files: `tests/nanomq.rs`,
/// `the_access_page_works_without_access_files_configured`): both files read at
/// once by NanoMQ's default paths; saving writes one (`POST /write_file` `{"data":{"path","content"}}`),
/// restarts the broker (`POST /ctrl/restart`, no body), posts the auth options to
/// `/configuration/auth` (not wrapped in `data`) and reads them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_access_page() {
    let (_files, gw) = common::start_with_access_files("pwd.conf").await;
    let page = Page::nanomq_admin(&gw);
    let (pwd, acl) = tokio::join!(
        page.get("/get_file?path=%2Fetc%2Fnanomq_pwd.conf"),
        page.get("/get_file?path=%2Fetc%2Fnanomq_acl.conf"),
    );
    assert_eq!((&pwd["code"], &acl["code"]), (&json!(0), &json!(0)));
    assert_eq!(pwd["data"]["content"], "\"admin\": \"public\"\n");
    assert!(text(&acl["data"], "content").contains("\"permit\": \"allow\""));

    let users = "\"admin\": \"public\"\n\"meter\": \"m-pass\"";
    let written = page
        .post(
            "/write_file",
            json!({"data": {"path": "/etc/nanomq_pwd.conf", "content": users}}),
        )
        .await;
    assert_eq!(written["code"], 0);
    let before = gw.gateway.management().node_stats().started_at_ms;
    assert_eq!(page.post_empty("/ctrl/restart").await["code"], 0);
    let gateway = &gw.gateway;
    let restarted = eventually_async(10, move || {
        let changed = gateway.management().node_stats().started_at_ms != before;
        async move { changed }
    })
    .await;
    assert!(restarted, "the broker restarted");
    let options = json!({
        "allow_anonymous": false,
        "no_match": "deny",
        "deny_action": "ignore",
        "password": {"include": "/etc/nanomq_pwd.conf"},
        "acl": {"include": "/etc/nanomq_acl.conf"},
    });
    assert_eq!(page.post("/configuration/auth", options).await["code"], 0);
    // NanoMQ's answer carries `auth` as a list (`[]`); the page then finds the options
    // not applied, tries once more and reports success.
    let read_back = page.get("/configuration/auth").await;
    assert_eq!(read_back["code"], 0);
    assert!(read_back["data"]["auth"].is_array(), "{read_back}");

    // The saved user is in force after the restart.
    let mut meter = gw.v4_options("access-meter");
    meter.set_credentials("meter", "m-pass");
    connect_v4(meter).await;
    let mut wrong = gw.v4_options("access-meter");
    wrong.set_credentials("meter", "nope");
    assert_eq!(
        common::try_connect_v4(wrong).await,
        Ok(rumqttc::ConnectReturnCode::BadUserNamePassword)
    );
    gw.shutdown().await;
}
