//! The RealMQ dialect end to end: a whole gateway, real MQTT clients (rumqttc) and
//! real HTTP (reqwest). Expected shapes come from the RealMQ document's examples
//! (tests/fixtures/realmq/doc_examples.json); error bodies follow the table in
//! dialects/realmq/README.md.

mod common;

use std::time::Duration;

use common::{connect_v4, eventually, next_publish, try_connect_v4, TestGateway, V4Client};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use rumqttc::{ConnectReturnCode, Event, Packet, QoS};
use serde_json::{json, Value};

const EXAMPLES: &str = include_str!("fixtures/realmq/doc_examples.json");

/// How a request authenticates.
#[derive(Clone)]
enum Auth {
    None,
    Basic,
    Bearer(String),
    Header(String),
}

/// An HTTP client of the realmq listener.
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(gw: &TestGateway) -> Api {
        Api {
            base: gw.base_url("realmq"),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a request (body as raw text, with the JSON content type the document's
    /// curl examples send) and returns the status and the JSON answer.
    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header(CONTENT_TYPE, "application/json");
        request = match auth {
            Auth::None => request,
            Auth::Basic => request.basic_auth("root", Some("123456")),
            Auth::Bearer(t) => request.bearer_auth(t),
            Auth::Header(h) => request.header(AUTHORIZATION, h),
        };
        if let Some(b) = body {
            request = request.body(b.to_string());
        }
        let response = request.send().await.expect("HTTP answer");
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let text = response.text().await.unwrap();
        assert_eq!(content_type, "application/json", "{status} {text}");
        let value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"));
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, path, Auth::Basic, None).await
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, path, Auth::Basic, Some(&body.to_string()))
            .await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(Method::PUT, path, Auth::Basic, Some(&body.to_string()))
            .await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, path, Auth::Basic, None).await
    }

    /// Creates a product and returns `(id, product_key)`.
    async fn product(&self, name: &str) -> (i64, String) {
        let (status, created) = self.post("/api/v1/products", json!({ "name": name })).await;
        assert_eq!(status, 200, "{created}");
        let key = created["data"]["product_key"].as_str().unwrap().to_string();
        let (_, list) = self
            .get(&format!("/api/v1/products?product_name={name}&_limit=1000"))
            .await;
        let id = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["product_key"] == key.as_str())
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        (id, key)
    }

    /// Creates a device named `name` (username `u-<name>`, client id `c-<name>`)
    /// and returns its detail.
    async fn device(&self, name: &str, product_key: &str, password: Option<&str>) -> Value {
        let mut body = json!({
            "name": name,
            "product_key": product_key,
            "username": format!("u-{name}"),
            "mqtt_client_id": format!("c-{name}"),
        });
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        let (status, answer) = self.post("/api/v1/devices", body).await;
        assert_eq!((status.as_u16(), answer), (200, json!({"code":0})));
        self.device_named(name).await
    }

    async fn device_named(&self, name: &str) -> Value {
        let (_, list) = self
            .get(&format!("/api/v1/devices?device_name={name}&_limit=10000"))
            .await;
        let id = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("device {name} listed"))["id"]
            .as_i64()
            .unwrap();
        self.device_detail(id).await
    }

    async fn device_detail(&self, id: i64) -> Value {
        let (status, detail) = self.get(&format!("/api/v1/devices/{id}")).await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["data"].as_array().unwrap().len(), 1);
        detail["data"][0].clone()
    }
}

/// `expected` and `actual` have the same keys at every level and the same JSON
/// types (arrays: every element against the first expected element).
fn assert_shape(expected: &Value, actual: &Value, at: &str) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut ek: Vec<_> = e.keys().collect();
            let mut ak: Vec<_> = a.keys().collect();
            ek.sort();
            ak.sort();
            assert_eq!(ek, ak, "keys at {at}");
            for (k, v) in e {
                assert_shape(v, &a[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(e), Value::Array(a)) => {
            if let Some(first) = e.first() {
                for (i, v) in a.iter().enumerate() {
                    assert_shape(first, v, &format!("{at}[{i}]"));
                }
            }
        }
        (Value::Null, Value::Null)
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::String(_), Value::String(_)) => {}
        _ => panic!("type at {at}: expected like {expected}, got {actual}"),
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// `YYYY-MM-DD HH:MM:SS`.
fn is_datetime(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Subscribes and waits for the SUBACK.
async fn subscribe(c: &mut V4Client, filter: &str) {
    c.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let event = tokio::time::timeout_at(deadline, c.events.recv())
            .await
            .expect("SUBACK in time")
            .expect("client alive");
        if let Event::Incoming(Packet::SubAck(_)) = event {
            return;
        }
    }
}

async fn expect_publish(c: &mut V4Client, topic: &str, payload: &str) {
    let p = next_publish(c, 5)
        .await
        .unwrap_or_else(|| panic!("a publish on {topic}"));
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        (topic, payload.as_bytes())
    );
}

async fn expect_silence(c: &mut V4Client) {
    if let Some(p) = next_publish(c, 1).await {
        panic!("unexpected publish on {}: {:?}", p.topic, p.payload);
    }
}

/// Every curl example of the document, in order, against a fresh gateway. Where an
/// example names an id or product key of the document's own database, the value
/// this gateway issued is used instead; the answers must have the documented shape
/// and, where the document's values do not depend on its database, those values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_examples_in_order() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let fixture: Value = serde_json::from_str(EXAMPLES).unwrap();
    let examples = fixture["examples"].as_array().unwrap();
    let mut root = connect_v4(gw.v4_options("root")).await;
    subscribe(&mut root, "test/topic").await;
    let mut root1 = connect_v4(gw.v4_options("root1")).await;

    let mut product_id = 0i64;
    let mut product_key = String::new();
    let mut secret = String::new();
    let mut device_id = 0i64;
    let mut device_product_key = String::new();
    let mut password = String::new();

    for (n, example) in examples.iter().enumerate() {
        let title = example["title"].as_str().unwrap();
        let method: Method = example["method"].as_str().unwrap().parse().unwrap();
        let mut path = example["path"].as_str().unwrap().to_string();
        let mut body = example["body"].as_str().map(str::to_string);
        let expected: Value = serde_json::from_str(example["response"].as_str().unwrap()).unwrap();
        let on_devices = path.starts_with("/api/v1/devices");
        path = path.replace(
            "${id}",
            &(if on_devices { device_id } else { product_id }).to_string(),
        );
        if title == "创建设备" {
            // The product of the previous examples was deleted by them; the device
            // goes into a product of this gateway.
            let (_, key) = api.product("for-devices").await;
            device_product_key = key;
            body = body.map(|b| b.replace("0d2bf1f69d", &device_product_key));
        }
        let auth = if example["basic"].as_bool().unwrap() {
            Auth::Basic
        } else {
            Auth::None
        };
        let (status, answer) = api.send(method, &path, auth, body.as_deref()).await;
        assert_eq!(status, 200, "example {n} {title}: {answer}");
        assert_shape(&expected, &answer, title);

        match title {
            "登录" => {
                assert_eq!(answer["data"]["role"], "administrator");
                assert_eq!(answer["code"], 0);
                let token = answer["data"]["token"].as_str().unwrap().to_string();
                let (status, _) = api
                    .send(Method::GET, "/api/v1/products", Auth::Bearer(token), None)
                    .await;
                assert_eq!(status, 200);
            }
            "创建产品" => {
                product_key = answer["data"]["product_key"].as_str().unwrap().to_string();
                secret = answer["data"]["secret"].as_str().unwrap().to_string();
                assert!(is_hex(&product_key, 10), "{product_key}");
                assert!(is_hex(&secret, 16), "{secret}");
            }
            "获取产品列表" => {
                product_id = answer["data"][0]["id"].as_i64().unwrap();
                let created = answer["data"][0]["create_at"].as_str().unwrap();
                assert!(is_datetime(created), "{created}");
                let mut want = expected.clone();
                want["data"][0]["id"] = json!(product_id);
                want["data"][0]["product_key"] = json!(product_key);
                want["data"][0]["create_at"] = json!(created);
                want["data"][0]["device_count"] = json!(0);
                assert_eq!(answer, want);
            }
            "查看产品详情" => {
                let mut want = expected.clone();
                want["data"][0]["id"] = json!(product_id);
                want["data"][0]["product_key"] = json!(product_key);
                want["data"][0]["product_secret"] = json!(secret);
                want["data"][0]["create_at"] = answer["data"][0]["create_at"].clone();
                want["data"][0]["device_count"] = json!(0);
                want["data"][0]["online_count"] = json!(0);
                assert_eq!(answer, want);
            }
            "更新产品" => {
                assert_eq!(answer, expected);
                let (_, detail) = api.get(&format!("/api/v1/products/{product_id}")).await;
                assert_eq!(detail["data"][0]["name"], "test1");
                assert_eq!(detail["data"][0]["product_key"], product_key.as_str());
            }
            "删除产品" => {
                assert_eq!(answer, expected);
                let (status, gone) = api.get(&format!("/api/v1/products/{product_id}")).await;
                assert_eq!(status, 404);
                assert_eq!(gone["code"], 105);
            }
            "创建设备" => assert_eq!(answer, expected),
            "获取设备列表" => {
                device_id = answer["data"][0]["id"].as_i64().unwrap();
                let mut want = expected.clone();
                want["data"][0]["id"] = json!(device_id);
                want["data"][0]["product_key"] = json!(device_product_key);
                want["data"][0]["create_at"] = answer["data"][0]["create_at"].clone();
                assert!(is_datetime(
                    answer["data"][0]["create_at"].as_str().unwrap()
                ));
                assert_eq!(answer, want);
            }
            "获取设备详情" => {
                password = answer["data"][0]["password"].as_str().unwrap().to_string();
                assert!(is_hex(&password, 32), "{password}");
                let mut want = expected.clone();
                want["data"][0]["id"] = json!(device_id);
                want["data"][0]["product_key"] = json!(device_product_key);
                want["data"][0]["create_at"] = answer["data"][0]["create_at"].clone();
                want["data"][0]["password"] = json!(password);
                assert_eq!(answer, want);
            }
            "更新设备" => {
                assert_eq!(answer, expected);
                let d = api.device_detail(device_id).await;
                assert_eq!(
                    (
                        &d["name"],
                        &d["username"],
                        &d["mqtt_client_id"],
                        &d["password"]
                    ),
                    (
                        &json!("test1"),
                        &json!("test"),
                        &json!("test"),
                        &json!(password)
                    )
                );
            }
            "删除设备" => {
                assert_eq!(answer, expected);
                let (_, list) = api.get("/api/v1/devices").await;
                assert_eq!(list["meta"]["count"], 0);
            }
            "消息发布" => {
                assert_eq!(answer, expected);
                let p = next_publish(&mut root, 5).await.expect("published message");
                assert_eq!(
                    (p.topic.as_str(), &p.payload[..], p.qos),
                    ("test/topic", &b"Hello World"[..], QoS::AtLeastOnce)
                );
            }
            "代理客户端主题订阅" => {
                assert_eq!(answer, expected);
                for t in ["topic1", "topic2", "topic3"] {
                    api.post("/api/v1/mqtt/publish", json!({"topic": t, "payload": t}))
                        .await;
                    expect_publish(&mut root, t, t).await;
                }
            }
            "代理客户端取消订阅" => {
                assert_eq!(answer, expected);
                api.post(
                    "/api/v1/mqtt/publish",
                    json!({"topic": "topic1", "payload": "x"}),
                )
                .await;
                expect_silence(&mut root).await;
            }
            "消息批量发布" => {
                assert_eq!(answer, expected);
                // root is subscribed to topic2 only, now.
                expect_publish(&mut root, "topic2", "Hello World2").await;
                expect_silence(&mut root).await;
            }
            "主题批量订阅" => {
                assert_eq!(answer, expected);
                api.post(
                    "/api/v1/mqtt/publish",
                    json!({"topic": "topic1", "payload": "to root1"}),
                )
                .await;
                expect_publish(&mut root1, "topic1", "to root1").await;
            }
            "主题批量取消订阅" => {
                assert_eq!(answer, expected);
                api.post(
                    "/api/v1/mqtt/publish",
                    json!({"topic": "topic1", "payload": "none"}),
                )
                .await;
                expect_silence(&mut root1).await;
            }
            other => panic!("example {other} has no check"),
        }
    }
    gw.shutdown().await;
}

/// A request and the status and code it must get.
type ErrorCase = (Method, &'static str, Auth, Option<&'static str>, u16, u64);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_use_the_code_message_envelope() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (_, key) = api.product("p").await;
    api.device("d", &key, Some("pw")).await;

    let cases: Vec<ErrorCase> = vec![
        (Method::GET, "/api/v1/products", Auth::None, None, 401, 104),
        (
            Method::GET,
            "/api/v1/products",
            Auth::Header("Basic cm9vdDp3cm9uZw==".into()),
            None,
            401,
            103,
        ),
        (
            Method::GET,
            "/api/v1/products",
            Auth::Header("Basic !!!".into()),
            None,
            401,
            103,
        ),
        (
            Method::GET,
            "/api/v1/products",
            Auth::Header("Digest x".into()),
            None,
            401,
            103,
        ),
        (
            Method::GET,
            "/api/v1/products",
            Auth::Bearer("not.a.token".into()),
            None,
            401,
            103,
        ),
        (
            Method::POST,
            "/api/v1/auth",
            Auth::None,
            Some(r#"{"username":"root","password":"x"}"#),
            401,
            103,
        ),
        (
            Method::POST,
            "/api/v1/auth",
            Auth::None,
            Some(r#"{"username":"root"}"#),
            400,
            107,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some("{"),
            400,
            109,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some(""),
            400,
            109,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some("{}"),
            400,
            107,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some(r#"["p"]"#),
            400,
            108,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some(r#"{"name":"p"}"#),
            400,
            113,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some(r#"{"name":"q","type":"3"}"#),
            400,
            108,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some(r#"{"name":"q","auth_type":"2"}"#),
            400,
            108,
        ),
        (
            Method::POST,
            "/api/v1/products",
            Auth::Basic,
            Some(r#"{"name":5}"#),
            400,
            108,
        ),
        (
            Method::GET,
            "/api/v1/products/999",
            Auth::Basic,
            None,
            404,
            105,
        ),
        (
            Method::GET,
            "/api/v1/products/abc",
            Auth::Basic,
            None,
            404,
            105,
        ),
        (
            Method::PUT,
            "/api/v1/products/999",
            Auth::Basic,
            Some(r#"{"name":"z"}"#),
            404,
            105,
        ),
        (
            Method::DELETE,
            "/api/v1/devices/999",
            Auth::Basic,
            None,
            404,
            105,
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Auth::Basic,
            Some(r#"{"name":"e","product_key":"0000000000","username":"e","mqtt_client_id":"e"}"#),
            400,
            108,
        ),
        (
            Method::POST,
            "/api/v1/devices",
            Auth::Basic,
            Some(r#"{"name":"e","username":"e","mqtt_client_id":"e"}"#),
            400,
            107,
        ),
        (
            Method::GET,
            "/api/v1/devices?status=7",
            Auth::Basic,
            None,
            400,
            108,
        ),
        (
            Method::POST,
            "/api/v1/mqtt/publish",
            Auth::Basic,
            Some(r#"{"topic":"a/+","payload":"x"}"#),
            400,
            115,
        ),
        (
            Method::POST,
            "/api/v1/mqtt/publish",
            Auth::Basic,
            Some(r#"{"topic":"a","payload":"x","qos":3}"#),
            400,
            116,
        ),
        (
            Method::POST,
            "/api/v1/mqtt/publish",
            Auth::Basic,
            Some(r#"{"topic":"a"}"#),
            400,
            107,
        ),
        (
            Method::POST,
            "/api/v1/mqtt/subscribe",
            Auth::Basic,
            Some(r#"{"topic":"a"}"#),
            400,
            107,
        ),
        (
            Method::POST,
            "/api/v1/mqtt/subscribe",
            Auth::Basic,
            Some(r#"{"topic":"a/#/b","clientid":"c"}"#),
            400,
            115,
        ),
        (
            Method::POST,
            "/api/v1/mqtt/subscribe_batch",
            Auth::Basic,
            Some(r#"{"topic":"a","clientid":"c"}"#),
            400,
            108,
        ),
        (Method::GET, "/api/v1/nothing", Auth::Basic, None, 404, 105),
        (
            Method::PATCH,
            "/api/v1/products",
            Auth::Basic,
            None,
            404,
            105,
        ),
        (
            Method::GET,
            "/api/v1/devices/%FF",
            Auth::Basic,
            None,
            400,
            108,
        ),
    ];
    for (method, path, auth, body, status, code) in cases {
        let label = format!("{method} {path} {body:?}");
        let (s, answer) = api.send(method, path, auth, body).await;
        assert_eq!(s.as_u16(), status, "{label}: {answer}");
        assert_eq!(answer["code"], code, "{label}: {answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty(), "{label}");
        assert_eq!(answer.as_object().unwrap().len(), 2, "{label}: {answer}");
    }
    let huge = format!(r#"{{"topic":"a","payload":"{}"}}"#, "x".repeat(3 << 20));
    let (status, too_large) = api
        .send(
            Method::POST,
            "/api/v1/mqtt/publish",
            Auth::Basic,
            Some(&huge),
        )
        .await;
    assert_eq!(
        (status.as_u16(), too_large),
        (
            400,
            json!({"code":108,"message":"the request body is too large"})
        )
    );
    let (_, dup) = api
        .post(
            "/api/v1/devices",
            json!({"name":"d2","product_key":key,"username":"u-d","mqtt_client_id":"c-x"}),
        )
        .await;
    assert_eq!(
        dup,
        json!({"code":113,"message":"username already exists: u-d"})
    );
    let (_, dup) = api
        .post(
            "/api/v1/devices",
            json!({"name":"d2","product_key":key,"username":"u-x","mqtt_client_id":"c-d"}),
        )
        .await;
    assert_eq!(
        dup,
        json!({"code":113,"message":"mqtt_client_id already exists: c-d"})
    );

    // A product keeps its devices: deleting it is refused until they are gone.
    let (status, refused) = api.delete("/api/v1/products/1").await;
    assert_eq!((status.as_u16(), &refused["code"]), (400, &json!(117)));
    let (_, still) = api.get("/api/v1/products/1").await;
    assert_eq!(still["data"][0]["device_count"], 1);

    // publish_batch answers per topic, the good ones published.
    let mut sub = connect_v4(gw.v4_options("batch-watch")).await;
    subscribe(&mut sub, "ok/#").await;
    let (status, answer) = api
        .post(
            "/api/v1/mqtt/publish_batch",
            json!([
                {"topics": "ok/1,ok/2", "payload": "y"},
                {"topic": "bad/#", "payload": "n"},
                {"topic": "ok/3", "payload": "n", "qos": 5},
                {"payload": "n"}
            ]),
        )
        .await;
    assert_eq!(status, 200);
    let codes: Vec<(String, u64)> = answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["topic"].as_str().unwrap().to_string(),
                r["code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            ("ok/1".into(), 0),
            ("ok/2".into(), 0),
            ("bad/#".into(), 115),
            ("ok/3".into(), 116),
            ("".into(), 107)
        ]
    );
    assert_eq!(answer["code"], 0);
    expect_publish(&mut sub, "ok/1", "y").await;
    expect_publish(&mut sub, "ok/2", "y").await;
    expect_silence(&mut sub).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_encodings_retain_and_properties() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (status, answer) = api
        .post(
            "/api/v1/mqtt/publish",
            json!({"topic":"enc/b64","payload":"SGVsbG8=","encoding":"base64","retain":true,"qos":1}),
        )
        .await;
    assert_eq!((status.as_u16(), answer), (200, json!({"code":0})));
    let mut late = connect_v4(gw.v4_options("late")).await;
    subscribe(&mut late, "enc/#").await;
    let p = next_publish(&mut late, 5).await.expect("retained message");
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.retain),
        ("enc/b64", &b"Hello"[..], true)
    );

    // MQTT 5 properties reach a v5 subscriber.
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(gw.v5_options("v5-sub"), 10);
    client.subscribe("props/t", Q5::AtLeastOnce).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            let _ = tx.send(event);
        }
    });
    let subscribed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = rx.recv().await {
            if let rumqttc::v5::Event::Incoming(P5::SubAck(_)) = e {
                return;
            }
        }
    })
    .await;
    assert!(subscribed.is_ok(), "v5 SUBACK");
    let (status, _) = api
        .post(
            "/api/v1/mqtt/publish",
            json!({"topic":"props/t","payload":"p","properties":{
                "content_type":"text/plain","user_properties":{"k":"v"},"message_expiry_interval":60,
                "response_topic":"reply/here","correlation_data":"abc","payload_format_indicator":1}}),
        )
        .await;
    assert_eq!(status, 200);
    let publish = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = rx.recv().await {
            if let rumqttc::v5::Event::Incoming(P5::Publish(p)) = e {
                return p;
            }
        }
        panic!("v5 client ended")
    })
    .await
    .expect("v5 publish");
    let props = publish.properties.expect("properties");
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        props.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
    assert_eq!(props.response_topic.as_deref(), Some("reply/here"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"abc"[..]));
    assert_eq!(props.payload_format_indicator, Some(1));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_fuzzy_search_over_hundreds_of_devices() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (_, key_a) = api.product("Sensors-A").await;
    let (_, key_b) = api.product("gateways-B").await;
    for i in 0..300 {
        let (name, key) = if i % 3 == 0 {
            (format!("Temp-Sensor-{i:03}"), &key_b)
        } else {
            (format!("dev-{i:03}"), &key_a)
        };
        let (status, answer) = api
            .post(
                "/api/v1/devices",
                json!({"name": name, "product_key": key, "username": format!("user-{i}"), "mqtt_client_id": format!("cid-{i}")}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), answer),
            (200, json!({"code":0})),
            "{name}"
        );
    }
    let (_, first) = api.get("/api/v1/devices").await;
    assert_eq!(
        first["meta"],
        json!({"page":"1","limit":"10","hasnext":true,"count":300})
    );
    assert_eq!(first["data"].as_array().unwrap().len(), 10);
    assert_eq!(first["data"][0]["name"], "Temp-Sensor-000");
    let (_, last) = api.get("/api/v1/devices?_page=30&_limit=10").await;
    assert_eq!(
        last["meta"],
        json!({"page":"30","limit":"10","hasnext":false,"count":300})
    );
    assert_eq!(last["data"][9]["name"], "dev-299");
    let (_, beyond) = api.get("/api/v1/devices?_page=31&_limit=10").await;
    assert_eq!(
        beyond["meta"],
        json!({"page":"31","limit":"10","hasnext":false,"count":300})
    );
    assert_eq!(beyond["data"], json!([]));
    let (_, big) = api.get("/api/v1/devices?_page=2&_limit=250").await;
    assert_eq!(
        big["meta"],
        json!({"page":"2","limit":"250","hasnext":false,"count":300})
    );
    assert_eq!(big["data"].as_array().unwrap().len(), 50);
    let (_, lenient) = api.get("/api/v1/devices?_page=x&_limit=0").await;
    assert_eq!(
        lenient["meta"],
        json!({"page":"1","limit":"10","hasnext":true,"count":300})
    );

    // Ids ascend, no duplicates across pages.
    let mut ids = Vec::new();
    for page in 1..=3 {
        let (_, p) = api
            .get(&format!("/api/v1/devices?_page={page}&_limit=100"))
            .await;
        ids.extend(
            p["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_i64().unwrap()),
        );
    }
    assert_eq!(ids.len(), 300);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    let (_, fuzzy) = api.get("/api/v1/devices?device_name=sensor&_limit=5").await;
    assert_eq!(
        fuzzy["meta"],
        json!({"page":"1","limit":"5","hasnext":true,"count":100})
    );
    assert!(fuzzy["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["name"].as_str().unwrap().starts_with("Temp-Sensor-")));
    let (_, fuzzy) = api
        .get("/api/v1/devices?device_name=SENSOR-01&_limit=100")
        .await;
    let names: Vec<&str> = fuzzy["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["Temp-Sensor-012", "Temp-Sensor-015", "Temp-Sensor-018"]
    );
    let (_, by_product) = api
        .get(&format!("/api/v1/devices?product_key={key_a}&_limit=1"))
        .await;
    assert_eq!(by_product["meta"]["count"], 200);
    assert_eq!(by_product["data"][0]["product_key"], key_a.as_str());
    let (_, combined) = api
        .get(&format!(
            "/api/v1/devices?product_key={key_b}&device_name=dev"
        ))
        .await;
    assert_eq!(combined["meta"]["count"], 0);
    let (_, never) = api.get("/api/v1/devices?status=1&_limit=1").await;
    assert_eq!(never["meta"]["count"], 300);
    let (_, online) = api.get("/api/v1/devices?status=3").await;
    assert_eq!(online["meta"]["count"], 0);

    let (_, products) = api.get("/api/v1/products?product_name=SENS").await;
    assert_eq!(
        products["meta"],
        json!({"page":"1","limit":"10","hasnext":false,"count":1})
    );
    assert_eq!(products["data"][0]["device_count"], 200);
    let (_, products) = api.get("/api/v1/products?_limit=1&_page=2").await;
    assert_eq!(
        products["meta"],
        json!({"page":"2","limit":"1","hasnext":false,"count":2})
    );
    assert_eq!(products["data"][0]["name"], "gateways-B");
    assert_eq!(products["data"][0]["device_count"], 100);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_online_then_offline_with_times_and_ip() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (product_id, key) = api.product("live").await;
    let device = api.device("meter", &key, None).await;
    let id = device["id"].as_i64().unwrap();
    let password = device["password"].as_str().unwrap().to_string();
    assert_eq!(device["status"], 1);

    let mut options = gw.v4_options("c-meter");
    options.set_credentials("u-meter", password.clone());
    let mut client = connect_v4(options).await;
    let d = api.device_detail(id).await;
    assert_eq!(
        (d["status"].as_u64(), d["ip"].as_str()),
        (Some(3), Some("127.0.0.1"))
    );
    assert!(is_datetime(d["connected_at"].as_str().unwrap()), "{d}");
    assert_eq!(d["disconnected_at"], "");
    assert_eq!(d["offline_at"], "");
    assert!(
        d["online_at"].as_str().unwrap().parse::<u64>().is_ok(),
        "{d}"
    );
    let (_, online) = api.get("/api/v1/devices?status=3").await;
    assert_eq!(online["meta"]["count"], 1);
    assert_eq!(online["data"][0]["name"], "meter");
    let (_, product) = api.get(&format!("/api/v1/products/{product_id}")).await;
    assert_eq!(
        (
            &product["data"][0]["online_count"],
            &product["data"][0]["offline_count"]
        ),
        (&json!(1), &json!(0))
    );

    // The device works as a client.
    subscribe(&mut client, "meter/cmd").await;
    api.post(
        "/api/v1/mqtt/publish",
        json!({"topic":"meter/cmd","payload":"read"}),
    )
    .await;
    expect_publish(&mut client, "meter/cmd", "read").await;

    client.client.disconnect().await.unwrap();
    let mut detail = Value::Null;
    for _ in 0..100 {
        detail = api.device_detail(id).await;
        if detail["status"] == 2 && detail["disconnected_at"] != "" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(detail["status"], 2, "{detail}");
    assert_eq!(detail["ip"], "127.0.0.1");
    assert!(
        is_datetime(detail["connected_at"].as_str().unwrap()),
        "{detail}"
    );
    assert!(
        is_datetime(detail["disconnected_at"].as_str().unwrap()),
        "{detail}"
    );
    assert!(detail["connected_at"].as_str() <= detail["disconnected_at"].as_str());
    assert!(
        detail["online_at"].as_str().unwrap().parse::<u64>().is_ok(),
        "{detail}"
    );
    assert!(
        detail["offline_at"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .is_ok(),
        "{detail}"
    );
    let (_, product) = api.get(&format!("/api/v1/products/{product_id}")).await;
    assert_eq!(
        (
            &product["data"][0]["online_count"],
            &product["data"][0]["offline_count"]
        ),
        (&json!(0), &json!(1))
    );
    let (_, offline) = api.get("/api/v1/devices?status=2").await;
    assert_eq!(offline["meta"]["count"], 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_credentials_are_enforced_on_connect() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (_, key) = api.product("creds").await;
    let device = api.device("lock", &key, Some("s3cret")).await;
    let id = device["id"].as_i64().unwrap();

    let attempt = |client_id: &str, user: &str, pass: &str| {
        let mut o = gw.v4_options(client_id);
        o.set_credentials(user, pass);
        try_connect_v4(o)
    };
    assert_eq!(
        attempt("c-lock", "u-lock", "wrong").await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(
        attempt("other-id", "u-lock", "s3cret").await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    // The device's client id with anyone else's username would take its session over.
    assert_eq!(
        attempt("c-lock", "someone", "x").await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(
        try_connect_v4(gw.v4_options("c-lock")).await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    // Clients that are not devices follow the broker's policy (anonymous allowed).
    assert_eq!(
        try_connect_v4(gw.v4_options("plain-client")).await,
        Ok(ConnectReturnCode::Success)
    );
    assert_eq!(
        attempt("c-lock", "u-lock", "s3cret").await,
        Ok(ConnectReturnCode::Success)
    );

    let (status, _) = api
        .put(
            &format!("/api/v1/devices/{id}"),
            json!({"name":"lock","enable":false}),
        )
        .await;
    assert_eq!(status, 200);
    let d = api.device_detail(id).await;
    assert_eq!((&d["enable"], &d["status"]), (&json!(false), &json!(0)));
    assert_eq!(
        attempt("c-lock", "u-lock", "s3cret").await,
        Ok(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        attempt("c-lock", "u-lock", "wrong").await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    let (_, disabled) = api.get("/api/v1/devices?status=0").await;
    assert_eq!(disabled["meta"]["count"], 1);

    api.put(
        &format!("/api/v1/devices/{id}"),
        json!({"name":"lock","enable":true,"password":"n3w"}),
    )
    .await;
    assert_eq!(
        attempt("c-lock", "u-lock", "s3cret").await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(
        attempt("c-lock", "u-lock", "n3w").await,
        Ok(ConnectReturnCode::Success)
    );
    gw.shutdown().await;
}

/// Connects a device and returns the client.
async fn online(gw: &TestGateway, name: &str, password: &str) -> V4Client {
    let mut o = gw.v4_options(&format!("c-{name}"));
    o.set_credentials(format!("u-{name}"), password);
    connect_v4(o).await
}

async fn wait_closed(c: &V4Client, what: &str) {
    assert!(
        eventually(5, || c.task.is_finished()).await,
        "{what}: the session was not closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_disabling_or_repassing_a_device_kicks_it() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (_, key) = api.product("kicks").await;
    let mut ids = Vec::new();
    for name in ["del", "dis", "pwd", "keep"] {
        ids.push(
            api.device(name, &key, Some("pw")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let del = online(&gw, "del", "pw").await;
    let dis = online(&gw, "dis", "pw").await;
    let pwd = online(&gw, "pwd", "pw").await;
    let keep = online(&gw, "keep", "pw").await;

    let (status, _) = api.delete(&format!("/api/v1/devices/{}", ids[0])).await;
    assert_eq!(status, 200);
    wait_closed(&del, "delete").await;
    assert_eq!(
        try_connect_v4({
            let mut o = gw.v4_options("c-del");
            o.set_credentials("u-del", "pw");
            o
        })
        .await,
        Ok(ConnectReturnCode::Success),
        "a deleted device's credentials are nobody's business any more"
    );

    api.put(
        &format!("/api/v1/devices/{}", ids[1]),
        json!({"name":"dis","enable":0}),
    )
    .await;
    wait_closed(&dis, "disable").await;
    api.put(
        &format!("/api/v1/devices/{}", ids[2]),
        json!({"name":"pwd","password":"other"}),
    )
    .await;
    wait_closed(&pwd, "password change").await;
    // A change that leaves the credentials alone keeps the session.
    api.put(
        &format!("/api/v1/devices/{}", ids[3]),
        json!({"name":"keep","nickname":"kept"}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !keep.task.is_finished(),
        "an unrelated update kicked the device"
    );
    let d = api.device_detail(ids[3]).await;
    assert_eq!((&d["nickname"], &d["status"]), (&json!("kept"), &json!(3)));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_work_and_expire() {
    let gw = common::start_with(|c| c.realmq.token_lifetime_secs = 1).await;
    let api = Api::new(&gw);
    let (status, login) = api
        .send(
            Method::POST,
            "/api/v1/auth",
            Auth::None,
            Some(r#"{"username":"root","password":"123456"}"#),
        )
        .await;
    assert_eq!(status, 200);
    let token = login["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT");
    let (status, list) = api
        .send(
            Method::GET,
            "/api/v1/devices",
            Auth::Bearer(token.clone()),
            None,
        )
        .await;
    assert_eq!((status.as_u16(), &list["code"]), (200, &json!(0)));
    let (status, _) = api
        .send(
            Method::POST,
            "/api/v1/products",
            Auth::Header(format!("bearer {token}")),
            Some(r#"{"name":"by-token"}"#),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, expired) = api
        .send(Method::GET, "/api/v1/devices", Auth::Bearer(token), None)
        .await;
    assert_eq!(
        (status.as_u16(), expired),
        (401, json!({"code":103,"message":"token expired"}))
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_users_replace_the_default() {
    let gw = common::start_with(|c| {
        c.realmq.users = vec![mqgate_realmq::ManagementUser {
            username: "ops".into(),
            password: "pa:ss".into(),
        }]
    })
    .await;
    let api = Api::new(&gw);
    let (status, _) = api.get("/api/v1/products").await;
    assert_eq!(status, 401);
    let (status, _) = api
        .send(
            Method::GET,
            "/api/v1/products",
            Auth::Header("Basic b3BzOnBhOnNz".into()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, login) = api
        .send(
            Method::POST,
            "/api/v1/auth",
            Auth::None,
            Some(r#"{"username":"ops","password":"pa:ss"}"#),
        )
        .await;
    assert_eq!(
        (status.as_u16(), &login["data"]["role"]),
        (200, &json!("administrator"))
    );
    gw.shutdown().await;
}

/// Acknowledged creates, updates and deletes survive a restart on the same data
/// directory, with their ids, and so do login tokens and device credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let gw = mqgate::gateway::Gateway::start(mqgate::config::Config::for_tests(dir.path()))
        .await
        .unwrap();
    let base = format!("http://{}", gw.dialect_addr("realmq").unwrap());
    let api = Api {
        base,
        http: reqwest::Client::new(),
    };
    let (product_id, key) = api.product("durable").await;
    let mut before = Vec::new();
    for i in 0..40 {
        before.push(api.device(&format!("d{i}"), &key, None).await);
    }
    let (_, gone) = api
        .delete(&format!("/api/v1/devices/{}", before[0]["id"]))
        .await;
    assert_eq!(gone, json!({"code":0}));
    api.put(
        &format!("/api/v1/devices/{}", before[1]["id"]),
        json!({"name":"renamed"}),
    )
    .await;
    let (_, login) = api
        .send(
            Method::POST,
            "/api/v1/auth",
            Auth::None,
            Some(r#"{"username":"root","password":"123456"}"#),
        )
        .await;
    let token = login["data"]["token"].as_str().unwrap().to_string();
    let (_, list_before) = api.get("/api/v1/devices?_limit=100").await;
    gw.shutdown().await;

    let gw = mqgate::gateway::Gateway::start(mqgate::config::Config::for_tests(dir.path()))
        .await
        .unwrap();
    let api = Api {
        base: format!("http://{}", gw.dialect_addr("realmq").unwrap()),
        http: reqwest::Client::new(),
    };
    let (_, list_after) = api
        .send(
            Method::GET,
            "/api/v1/devices?_limit=100",
            Auth::Bearer(token),
            None,
        )
        .await;
    assert_eq!(list_after, list_before);
    assert_eq!(list_after["meta"]["count"], 39);
    assert_eq!(list_after["data"][0]["name"], "renamed");
    let (_, product) = api.get(&format!("/api/v1/products/{product_id}")).await;
    assert_eq!(product["data"][0]["product_key"], key.as_str());
    assert_eq!(product["data"][0]["device_count"], 39);
    let last = &before[39];
    let after = api.device_detail(last["id"].as_i64().unwrap()).await;
    assert_eq!(after, *last);
    // The reloaded index admits the device, and still refuses a wrong password.
    let mqtt = gw.mqtt_addr().unwrap();
    let mut o = rumqttc::MqttOptions::new("c-d39", mqtt.ip().to_string(), mqtt.port());
    o.set_credentials("u-d39", last["password"].as_str().unwrap());
    assert_eq!(
        try_connect_v4(o.clone()).await,
        Ok(ConnectReturnCode::Success)
    );
    o.set_credentials("u-d39", "nope");
    assert_eq!(
        try_connect_v4(o).await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    // New ids continue after the old ones.
    let newer = api.device("fresh", &key, None).await;
    assert!(newer["id"].as_i64().unwrap() > last["id"].as_i64().unwrap());
    gw.shutdown().await;
}

/// The CONNACK reason code an MQTT 5 client gets, or the error text.
async fn try_connect_v5(
    options: rumqttc::v5::MqttOptions,
) -> Result<rumqttc::v5::mqttbytes::v5::ConnectReturnCode, String> {
    use rumqttc::v5::mqttbytes::v5::Packet as P5;
    let (_client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 10);
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(P5::ConnAck(ack))) => return Ok(ack.code),
                Ok(_) => continue,
                Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => return Ok(code),
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
    .expect("answer in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_devices_get_reason_codes_0x86_and_0x87() {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as Reason;
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (_, key) = api.product("v5").await;
    let id = api.device("five", &key, Some("pw")).await["id"]
        .as_i64()
        .unwrap();
    let attempt = |pass: &str| {
        let mut o = gw.v5_options("c-five");
        o.set_credentials("u-five", pass);
        try_connect_v5(o)
    };
    assert_eq!(attempt("bad").await, Ok(Reason::BadUserNamePassword));
    assert_eq!(attempt("pw").await, Ok(Reason::Success));
    api.put(
        &format!("/api/v1/devices/{id}"),
        json!({"name":"five","enable":false}),
    )
    .await;
    assert_eq!(attempt("pw").await, Ok(Reason::NotAuthorized));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_a_client_that_is_not_connected_yet_applies_when_it_connects() {
    let gw = common::start().await;
    let api = Api::new(&gw);
    let (status, answer) = api
        .post(
            "/api/v1/mqtt/subscribe",
            json!({"topic":"later/t","qos":1,"clientid":"later"}),
        )
        .await;
    assert_eq!((status.as_u16(), answer), (200, json!({"code":0})));
    let mut later = connect_v4(gw.v4_options("later")).await;
    api.post(
        "/api/v1/mqtt/publish",
        json!({"topic":"later/t","payload":"waited","qos":1}),
    )
    .await;
    expect_publish(&mut later, "later/t", "waited").await;
    let (status, answer) = api
        .post(
            "/api/v1/mqtt/unsubscribe",
            json!({"topic":"later/t","clientid":"later"}),
        )
        .await;
    assert_eq!((status.as_u16(), answer), (200, json!({"code":0})));
    api.post(
        "/api/v1/mqtt/publish",
        json!({"topic":"later/t","payload":"gone"}),
    )
    .await;
    expect_silence(&mut later).await;
    // Unsubscribing a client nobody knows is not an error: nothing is subscribed.
    let (status, answer) = api
        .post(
            "/api/v1/mqtt/unsubscribe_batch",
            json!([{"topic":"x","clientid":"nobody"}]),
        )
        .await;
    assert_eq!((status.as_u16(), answer), (200, json!({"code":0})));
    gw.shutdown().await;
}
