//! The mica-mqtt dialect end to end: a whole gateway, real MQTT clients (rumqttc
//! and scripted raw bytes), real HTTP (reqwest). Expected shapes come from the
//! mica-mqtt docs (tests/fixtures/mica/docs-examples.json) and from what the
//! real 2.6.8.3 server answers (research note, §7 error table).

mod common;

use std::time::{Duration, Instant};

use common::{connect_v4, eventually, next_publish, TestGateway, V4Client};
use reqwest::header::{HeaderMap, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use rumqttc::{Event, LastWill, Packet, QoS};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DOCS: &str = include_str!("fixtures/mica/docs-examples.json");
const ENDPOINTS: &str = include_str!("fixtures/mica/endpoints-2.6.8.3.json");

fn docs() -> Value {
    serde_json::from_str(DOCS).unwrap()
}

fn doc_body(name: &str) -> String {
    docs()[name]["body"].as_str().unwrap().to_string()
}

/// An HTTP client of the mica listener.
struct Mica {
    base: String,
    http: reqwest::Client,
}

/// One answer, with the body parsed when it is JSON.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Status, JSON body and mica's bare `application/json` content type.
    fn assert(&self, status: u16, body: Value) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.json(), body);
        assert_eq!(self.headers[CONTENT_TYPE], "application/json");
        if status == 401 {
            assert_eq!(
                self.headers[WWW_AUTHENTICATE],
                "Basic realm=\"Mica mqtt realm\""
            );
        } else {
            assert!(self.headers.get(WWW_AUTHENTICATE).is_none());
        }
    }
}

enum Auth {
    Mica,
    None,
    Header(&'static str),
}

impl Mica {
    fn new(gw: &TestGateway) -> Mica {
        Mica {
            base: gw.base_url("mica"),
            http: reqwest::Client::new(),
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        auth: Auth,
        content_type: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        request = match auth {
            Auth::Mica => request.basic_auth("mica", Some("mica")),
            Auth::None => request,
            Auth::Header(value) => request.header("Authorization", value),
        };
        if let Some(ct) = content_type {
            request = request.header(CONTENT_TYPE, ct);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.expect("an HTTP answer");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            text,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, Auth::Mica, None, None).await
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        self.send(Method::POST, path, Auth::Mica, None, Some(body))
            .await
    }

    async fn post_json(&self, path: &str, body: &str) -> Answer {
        self.send(
            Method::POST,
            path,
            Auth::Mica,
            Some("application/json"),
            Some(body),
        )
        .await
    }

    async fn stats(&self) -> Value {
        let answer = self.get("/api/v1/stats").await;
        assert_eq!(answer.status, StatusCode::OK);
        answer.json()["data"].clone()
    }

    async fn subscriptions(&self, client_id: &str) -> Value {
        let answer = self
            .get(&format!(
                "/api/v1/client/subscriptions?clientId={client_id}"
            ))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()
    }
}

async fn subscriber(gw: &TestGateway, id: &str, filter: &str, qos: QoS) -> V4Client {
    let c = connect_v4(gw.v4_options(id)).await;
    c.client.subscribe(filter, qos).await.unwrap();
    let mut c = c;
    wait_suback(&mut c).await;
    c
}

async fn wait_suback(c: &mut V4Client) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, c.events.recv()).await {
            Ok(Some(Event::Incoming(Packet::SubAck(_)))) => return,
            Ok(Some(_)) => continue,
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

/// Every event seen so far; fails the test on an unsolicited SUBACK.
fn assert_no_suback(c: &mut V4Client) {
    while let Ok(event) = c.events.try_recv() {
        assert!(
            !matches!(event, Event::Incoming(Packet::SubAck(_))),
            "the client saw a SUBACK it never asked for"
        );
    }
}

async fn no_publish(c: &mut V4Client, millis: u64) {
    if let Ok(Some(p)) =
        tokio::time::timeout(Duration::from_millis(millis), c.publishes.recv()).await
    {
        panic!("unexpected publish on {}: {:?}", p.topic, p.payload);
    }
}

// ---- routing and authentication ------------------------------------------------

#[tokio::test]
async fn endpoints_lists_all_thirteen_routes_in_mica_order() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let answer = mica.get("/api/v1/endpoints").await;
    answer.assert(200, serde_json::from_str(ENDPOINTS).unwrap());
    // The docs example (older HashMap order, without the SSE route) names the same routes.
    let listed = answer.json()["data"].as_array().unwrap().clone();
    for route in docs()["endpoints"]["response"]["data"].as_array().unwrap() {
        assert!(listed.contains(route), "{route} missing");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods_are_404_before_auth() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let cases = [
        (Method::GET, "/api/v1/nothing"),
        (Method::GET, "/"),
        (Method::GET, "/api/v1/Stats"),
        (Method::POST, "/api/v1/clients"),
        (Method::POST, "/api/v1/clients/info?clientId=x"),
        (Method::GET, "/api/v1/clients/delete?clientId=x"),
        (Method::GET, "/api/v1/mqtt/publish"),
        (Method::PUT, "/api/v1/mqtt/publish"),
        (Method::DELETE, "/api/v1/clients"),
        (Method::OPTIONS, "/api/v1/stats"),
        (Method::from_bytes(b"FOO").unwrap(), "/api/v1/stats"),
    ];
    for (method, path) in cases {
        for auth in [
            Auth::None,
            Auth::Mica,
            Auth::Header("Basic d3Jvbmc6d3Jvbmc="),
        ] {
            let answer = mica.send(method.clone(), path, auth, None, None).await;
            answer.assert(404, json!({"code": 404}));
        }
    }
    // HEAD: same status and headers, no body by definition.
    let head = mica
        .send(Method::HEAD, "/api/v1/stats", Auth::Mica, None, None)
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    assert_eq!(head.headers[CONTENT_TYPE], "application/json");
    gw.shutdown().await;
}

#[tokio::test]
async fn basic_auth_failures_are_401_with_the_mica_realm() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    // base64("mica:mica") = bWljYTptaWNh
    let refused = [
        Auth::None,
        Auth::Header(""),
        Auth::Header("Basic"),
        Auth::Header("Basic "),
        Auth::Header("Basic bWljYTpvdGhlcg=="),
        Auth::Header("Basic !!!"),
        Auth::Header("Bearer bWljYTptaWNh"),
    ];
    for auth in refused {
        for (method, path) in [
            (Method::GET, "/api/v1/stats"),
            (Method::GET, "/api/v1/stats/sse"),
            (Method::POST, "/api/v1/mqtt/publish"),
            (Method::GET, "/api/v1/clients"),
        ] {
            let answer = mica.send(method, path, auth_clone(&auth), None, None).await;
            answer.assert(401, json!({"code": 103}));
        }
    }
    // mica never reads the scheme word: any six characters before the token pass.
    for value in [
        "basic bWljYTptaWNh",
        "xxxxx bWljYTptaWNh",
        "Basic bWljYTptaWNh",
    ] {
        let answer = mica
            .send(
                Method::GET,
                "/api/v1/endpoints",
                Auth::Header(value),
                None,
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{value}");
        assert_eq!(answer.json()["code"], 1);
    }
    gw.shutdown().await;
}

fn auth_clone(auth: &Auth) -> Auth {
    match auth {
        Auth::Mica => Auth::Mica,
        Auth::None => Auth::None,
        Auth::Header(v) => Auth::Header(v),
    }
}

#[tokio::test]
async fn credentials_come_from_the_mica_config_section() {
    let gw = common::start_with(|c| {
        c.mica.username = "ops".into();
        c.mica.password = "s3cret".into();
    })
    .await;
    let mica = Mica::new(&gw);
    mica.get("/api/v1/stats")
        .await
        .assert(401, json!({"code": 103}));
    // base64("ops:s3cret")
    let answer = mica
        .send(
            Method::GET,
            "/api/v1/endpoints",
            Auth::Header("Basic b3BzOnMzY3JldA=="),
            None,
            None,
        )
        .await;
    answer.assert(200, serde_json::from_str(ENDPOINTS).unwrap());
    gw.shutdown().await;
}

#[tokio::test]
async fn trailing_and_duplicate_slashes_reach_the_route() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    for path in [
        "/api/v1/endpoints/",
        "//api/v1/endpoints",
        "/api//v1///endpoints//",
    ] {
        mica.get(path)
            .await
            .assert(200, serde_json::from_str(ENDPOINTS).unwrap());
    }
    let answer = mica.get("/api/v1/clients/info/?clientId=nobody").await;
    answer.assert(400, json!({"code": 101}));
    gw.shutdown().await;
}

// ---- publish -------------------------------------------------------------------

#[tokio::test]
async fn publish_doc_example_reaches_a_subscriber() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-pub", "a/b/c", QoS::AtLeastOnce).await;
    // The docs' curl sends the body untyped (-d means form-urlencoded): read as JSON anyway.
    let answer = mica
        .send(
            Method::POST,
            "/api/v1/mqtt/publish",
            Auth::Mica,
            Some("application/x-www-form-urlencoded"),
            Some(&doc_body("publish")),
        )
        .await;
    answer.assert(200, docs()["publish"]["response"].clone());
    let p = next_publish(&mut sub, 5).await.expect("delivered");
    assert_eq!(p.topic, "a/b/c");
    assert_eq!(&p.payload[..], b"Hello World");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert!(!p.retain);
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_encodings_qos_downgrade_and_empty_payload() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-enc", "enc/#", QoS::AtMostOnce).await;
    let cases: [(&str, &[u8]); 6] = [
        (
            r#"{"topic":"enc/hex","clientId":"httpApi","payload":"48690a","encoding":"hex","qos":2}"#,
            b"Hi\n",
        ),
        (
            r#"{"topic":"enc/b64","clientId":"httpApi","payload":"SGk=","encoding":"BASE64"}"#,
            b"Hi",
        ),
        (
            r#"{"topic":"enc/b64","clientId":"httpApi","payload":"SGk","encoding":"base64"}"#,
            b"Hi",
        ),
        (
            r#"{"topic":"enc/unknown","clientId":"httpApi","payload":"48","encoding":"utf8"}"#,
            b"48",
        ),
        (r#"{"topic":"enc/none","clientId":"httpApi"}"#, b""),
        (
            r#"{"topic":"enc/blank","clientId":"httpApi","payload":"  ","encoding":"hex"}"#,
            b"",
        ),
    ];
    for (body, expected) in cases {
        mica.post_json("/api/v1/mqtt/publish", body)
            .await
            .assert(200, json!({"code": 1}));
        let p = next_publish(&mut sub, 5).await.expect(body);
        assert_eq!(&p.payload[..], expected, "{body}");
        // Subscribed at QoS 0: a QoS 2 message is downgraded.
        assert_eq!(p.qos, QoS::AtMostOnce);
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_qos_out_of_range_is_accepted_and_delivers_nothing() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-qos", "q/#", QoS::ExactlyOnce).await;
    for qos in [3, -1, 128] {
        let body = format!(r#"{{"topic":"q/x","clientId":"httpApi","payload":"p","qos":{qos}}}"#);
        mica.post_json("/api/v1/mqtt/publish", &body)
            .await
            .assert(200, json!({"code": 1}));
    }
    no_publish(&mut sub, 500).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_retained_is_stored_and_live_subscribers_see_retain_0() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut live = subscriber(&gw, "sub-live", "r/t", QoS::AtLeastOnce).await;
    mica.post_json(
        "/api/v1/mqtt/publish",
        r#"{"topic":"r/t","clientId":"httpApi","payload":"kept","qos":1,"retain":true}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let p = next_publish(&mut live, 5).await.expect("live delivery");
    assert_eq!(&p.payload[..], b"kept");
    assert!(!p.retain);
    let mut late = subscriber(&gw, "sub-late", "r/t", QoS::AtLeastOnce).await;
    let p = next_publish(&mut late, 5).await.expect("retained delivery");
    assert_eq!(&p.payload[..], b"kept");
    assert!(p.retain);
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_errors_use_mica_codes() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-err", "#", QoS::AtMostOnce).await;
    let cases: [(Option<&str>, u16, i64); 16] = [
        (None, 400, 101),
        (Some("null"), 400, 101),
        (Some(r#"{"topic":"a","payload":"x"}"#), 400, 101),
        (
            Some(r#"{"topic":"a","clientId":"  ","payload":"x"}"#),
            400,
            101,
        ),
        (Some(r#"{"clientId":"c","payload":"x"}"#), 400, 101),
        (Some(r#"{"topic":"","clientId":"c"}"#), 400, 101),
        (Some(r#"{"topic":"a/+","clientId":"c"}"#), 400, 102),
        (Some(r##"{"topic":"a/#","clientId":"c"}"##), 400, 102),
        (Some("{\"topic\":"), 500, 105),
        (Some("   "), 500, 105),
        (Some(r#"[{"topic":"a","clientId":"c"}]"#), 500, 105),
        (
            Some(r#"{"topic":"a","clientId":"c","qos":"abc"}"#),
            500,
            105,
        ),
        (Some("topic=a&clientId=c&payload=x"), 500, 105),
        (
            Some(r#"{"topic":"a","clientId":"c","payload":"486","encoding":"hex"}"#),
            500,
            105,
        ),
        (
            Some(r#"{"topic":"a","clientId":"c","payload":"SGk==","encoding":"base64"}"#),
            500,
            105,
        ),
        (
            Some(r#"{"topic":"a","clientId":"c","payload":"S-k_","encoding":"base64"}"#),
            500,
            105,
        ),
    ];
    for (body, status, code) in cases {
        let answer = mica
            .send(
                Method::POST,
                "/api/v1/mqtt/publish",
                Auth::Mica,
                Some("application/json"),
                body,
            )
            .await;
        assert_eq!(answer.status.as_u16(), status, "{body:?}");
        answer.assert(status, json!({"code": code}));
    }
    no_publish(&mut sub, 300).await;
    // An unknown encoding is plain, the unknown fields are ignored.
    mica.post(
        "/api/v1/mqtt/publish",
        r#"{"topic":"ok","clientId":"c","payload":"SGk==","encoding":"rot13","extra":[1]}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let p = next_publish(&mut sub, 5).await.expect("published");
    assert_eq!(&p.payload[..], b"SGk==");
    gw.shutdown().await;
}

#[tokio::test]
async fn a_body_with_double_equals_never_drops_the_connection() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-eq", "eq", QoS::AtMostOnce).await;
    // mica parses every body as urlencoded too and drops the socket on `a==b`.
    let body = r#"{"topic":"eq","clientId":"c","payload":"YQ==","encoding":"base64"}"#;
    for content_type in [Some("application/json"), None, Some("text/plain")] {
        mica.send(
            Method::POST,
            "/api/v1/mqtt/publish",
            Auth::Mica,
            content_type,
            Some(body),
        )
        .await
        .assert(200, json!({"code": 1}));
        let p = next_publish(&mut sub, 5).await.expect("published");
        assert_eq!(&p.payload[..], b"a");
    }
    // Same for a query with two `=` in one pair, or a bad `%` escape.
    for path in [
        "/api/v1/clients/info?clientId=a=b",
        "/api/v1/clients/info?clientId=%zz",
    ] {
        mica.get(path).await.assert(400, json!({"code": 101}));
    }
    mica.send(
        Method::POST,
        "/api/v1/clients/delete",
        Auth::Mica,
        None,
        Some("clientId=%zz&x==y"),
    )
    .await
    .assert(200, json!({"code": 1}));
    // A body over mica's 2 MiB limit gets an answer too.
    let huge = format!(
        r#"{{"topic":"eq","clientId":"c","payload":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    mica.post_json("/api/v1/mqtt/publish", &huge)
        .await
        .assert(500, json!({"code": 105}));
    no_publish(&mut sub, 300).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_batch_doc_example_delivers_in_order() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-batch", "a/b/c", QoS::AtLeastOnce).await;
    mica.post("/api/v1/mqtt/publish/batch", &doc_body("publish_batch"))
        .await
        .assert(200, docs()["publish_batch"]["response"].clone());
    let first = next_publish(&mut sub, 5).await.expect("first");
    let second = next_publish(&mut sub, 5).await.expect("second");
    assert_eq!(
        (&first.payload[..], first.qos),
        (&b"Hello World"[..], QoS::AtLeastOnce)
    );
    // Only the order and payload: the broker delivers at the subscription's QoS
    // (a known ceiling of the router), where MQTT says min(message, subscription).
    assert_eq!(&second.payload[..], b"Hello World Again");
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_batch_is_all_or_nothing() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut sub = subscriber(&gw, "sub-atomic", "t/#", QoS::AtMostOnce).await;
    let good = r#"{"topic":"t/1","clientId":"c","payload":"one"}"#;
    let cases = [
        (
            format!(
                r#"[{good},{{"topic":"t/2","clientId":"c","payload":"%%","encoding":"base64"}}]"#
            ),
            500,
            105,
        ),
        (
            format!(r#"[{good},{{"topic":"t/2","clientId":"c","payload":"zz","encoding":"hex"}}]"#),
            500,
            105,
        ),
        (
            format!(r#"[{good},{{"topic":"t/+","clientId":"c"}}]"#),
            400,
            102,
        ),
        (format!(r#"[{good},{{"topic":"t/2"}}]"#), 400, 101),
        (format!(r#"[{good},null]"#), 400, 101),
        (
            format!(r#"[{good},{{"topic":"t/2","clientId":"c","qos":"x"}}]"#),
            500,
            105,
        ),
        (good.to_string(), 500, 105),
        ("[]".to_string(), 400, 101),
        ("null".to_string(), 400, 101),
        ("".to_string(), 400, 101),
        ("[".to_string(), 500, 105),
    ];
    for (body, status, code) in cases {
        mica.post("/api/v1/mqtt/publish/batch", &body)
            .await
            .assert(status, json!({"code": code}));
    }
    no_publish(&mut sub, 500).await;
    gw.shutdown().await;
}

// ---- subscriptions on behalf ---------------------------------------------------

#[tokio::test]
async fn subscribe_doc_example_for_a_connected_client() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut example = connect_v4(gw.v4_options("example")).await;
    mica.post("/api/v1/mqtt/subscribe", &doc_body("subscribe"))
        .await
        .assert(200, docs()["subscribe"]["response"].clone());
    // Effective at once: the subscription list already shows it.
    assert_eq!(
        mica.subscriptions("example").await,
        json!({"data":[{"topicFilter":"a/b/c","clientId":"example","mqttQoS":1,"noLocal":false}],"code":1})
    );
    let publisher = connect_v4(gw.v4_options("publisher")).await;
    publisher
        .client
        .publish("a/b/c", QoS::ExactlyOnce, false, "via mqtt")
        .await
        .unwrap();
    let p = next_publish(&mut example, 5).await.expect("delivered");
    assert_eq!(
        (&p.payload[..], p.qos),
        (&b"via mqtt"[..], QoS::AtLeastOnce)
    );
    mica.post(
        "/api/v1/mqtt/publish",
        r#"{"topic":"a/b/c","clientId":"example","payload":"via http"}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let p = next_publish(&mut example, 5).await.expect("delivered");
    assert_eq!(&p.payload[..], b"via http");
    assert_no_suback(&mut example);
    gw.shutdown().await;
}

#[tokio::test]
async fn subscribe_and_unsubscribe_batches_doc_examples() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut example = connect_v4(gw.v4_options("example")).await;
    mica.post("/api/v1/mqtt/subscribe/batch", &doc_body("subscribe_batch"))
        .await
        .assert(200, docs()["subscribe_batch"]["response"].clone());
    let mut filters = topic_filters(&mica.subscriptions("example").await);
    filters.sort();
    assert_eq!(filters, ["a", "b", "c"]);
    mica.post(
        "/api/v1/mqtt/unsubscribe/batch",
        &doc_body("unsubscribe_batch"),
    )
    .await
    .assert(200, docs()["unsubscribe_batch"]["response"].clone());
    assert_eq!(
        mica.subscriptions("example").await,
        json!({"data":[{"topicFilter":"c","clientId":"example","mqttQoS":1,"noLocal":false}],"code":1})
    );
    let publisher = connect_v4(gw.v4_options("publisher")).await;
    for topic in ["a", "b", "c"] {
        publisher
            .client
            .publish(topic, QoS::AtLeastOnce, false, topic)
            .await
            .unwrap();
    }
    let p = next_publish(&mut example, 5).await.expect("c delivered");
    assert_eq!(p.topic, "c");
    no_publish(&mut example, 300).await;
    // The single unsubscribe example, and an unsubscribe of nothing: both 1.
    mica.post("/api/v1/mqtt/unsubscribe", &doc_body("unsubscribe"))
        .await
        .assert(200, docs()["unsubscribe"]["response"].clone());
    mica.post(
        "/api/v1/mqtt/unsubscribe",
        r#"{"topic":"c","clientId":"example"}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    mica.post(
        "/api/v1/mqtt/unsubscribe",
        r#"{"topic":"x","clientId":"nobody"}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    assert_eq!(
        mica.subscriptions("example").await,
        json!({"data":[],"code":1})
    );
    assert_no_suback(&mut example);
    gw.shutdown().await;
}

fn topic_filters(answer: &Value) -> Vec<String> {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["topicFilter"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn resubscribing_keeps_the_higher_qos() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let _c = connect_v4(gw.v4_options("c1")).await;
    mica.post(
        "/api/v1/mqtt/subscribe",
        r##"{"topic":"x/#","clientId":"c1","qos":2}"##,
    )
    .await
    .assert(200, json!({"code": 1}));
    mica.post(
        "/api/v1/mqtt/subscribe",
        r##"{"topic":"x/#","clientId":"c1","qos":0}"##,
    )
    .await
    .assert(200, json!({"code": 1}));
    assert_eq!(
        mica.subscriptions("c1").await,
        json!({"data":[{"topicFilter":"x/#","clientId":"c1","mqttQoS":2,"noLocal":false}],"code":1})
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn subscribe_errors_use_mica_codes_and_batches_apply_nothing() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let _c = connect_v4(gw.v4_options("c1")).await;
    let single: [(&str, u16, i64); 11] = [
        ("", 400, 101),
        ("null", 400, 101),
        (r#"{"topic":"a","qos":1}"#, 400, 101),
        (r#"{"clientId":"c1"}"#, 400, 101),
        (r#"{"topic":"a","clientId":"c1","qos":3}"#, 400, 101),
        (r#"{"topic":"a","clientId":"c1","qos":-1}"#, 400, 101),
        (r##"{"topic":"a/#/b","clientId":"c1"}"##, 400, 102),
        (r#"{"topic":"a+","clientId":"c1"}"#, 400, 102),
        (r#"{"topic":"a","clientId":"c1","qos":"abc"}"#, 500, 105),
        (r#"[{"topic":"a","clientId":"c1"}]"#, 500, 105),
        ("{oops", 500, 105),
    ];
    for (body, status, code) in single {
        mica.post("/api/v1/mqtt/subscribe", body)
            .await
            .assert(status, json!({"code": code}));
    }
    let good = r#"{"topic":"ok","clientId":"c1"}"#;
    let batch: [(String, u16, i64); 6] = [
        ("[]".into(), 400, 101),
        (
            format!(r#"[{good},{{"topic":"b","clientId":"c1","qos":5}}]"#),
            400,
            101,
        ),
        (
            format!(r##"[{good},{{"topic":"b/#/c","clientId":"c1"}}]"##),
            400,
            102,
        ),
        (format!(r#"[{good},{{"topic":"b"}}]"#), 400, 101),
        (good.to_string(), 500, 105),
        (format!(r#"[{good},7]"#), 500, 105),
    ];
    for (body, status, code) in batch {
        mica.post("/api/v1/mqtt/subscribe/batch", &body)
            .await
            .assert(status, json!({"code": code}));
    }
    for (body, status, code) in [
        (r#"{"clientId":"c1"}"#, 400, 101),
        (r##"{"topic":"a/#/b","clientId":"c1"}"##, 400, 102),
        (r#"[{"topic":"a","clientId":"c1"}]"#, 500, 105),
    ] {
        mica.post("/api/v1/mqtt/unsubscribe", body)
            .await
            .assert(status, json!({"code": code}));
    }
    mica.post(
        "/api/v1/mqtt/unsubscribe/batch",
        r##"[{"topic":"a","clientId":"c1"},{"topic":"#/a","clientId":"c1"}]"##,
    )
    .await
    .assert(400, json!({"code": 102}));
    // Nothing of the failed calls was applied.
    assert_eq!(mica.subscriptions("c1").await, json!({"data":[],"code":1}));
    gw.shutdown().await;
}

#[tokio::test]
async fn subscribe_on_behalf_of_an_offline_persistent_session() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut options = gw.v4_options("persist-1");
    options.set_clean_session(false);
    let first = connect_v4(options.clone()).await;
    first.client.disconnect().await.unwrap();
    assert!(
        eventually(5, || first.task.is_finished()).await,
        "client gone"
    );
    let probe = Mica::new(&gw);
    let mut offline = false;
    for _ in 0..100 {
        if probe
            .get("/api/v1/clients/info?clientId=persist-1")
            .await
            .status
            == StatusCode::BAD_REQUEST
        {
            offline = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(offline, "the session went offline");

    mica.post(
        "/api/v1/mqtt/subscribe",
        r#"{"topic":"away/t","clientId":"persist-1","qos":1}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    assert_eq!(
        mica.subscriptions("persist-1").await,
        json!({"data":[{"topicFilter":"away/t","clientId":"persist-1","mqttQoS":1,"noLocal":false}],"code":1})
    );
    mica.post(
        "/api/v1/mqtt/publish",
        r#"{"topic":"away/t","clientId":"httpApi","payload":"while away","qos":1}"#,
    )
    .await
    .assert(200, json!({"code": 1}));

    let mut back = connect_v4(options).await;
    mica.post(
        "/api/v1/mqtt/publish",
        r#"{"topic":"away/t","clientId":"httpApi","payload":"after","qos":1}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    // mica drops what is published while the client is away; a broker that queues
    // it delivers it first. Either way the subscription made while offline holds.
    let mut p = next_publish(&mut back, 5).await.expect("a delivery");
    if &p.payload[..] == b"while away" {
        p = next_publish(&mut back, 5).await.expect("live delivery");
    }
    assert_eq!(&p.payload[..], b"after");
    no_publish(&mut back, 300).await;
    assert_no_suback(&mut back);
    gw.shutdown().await;
}

#[tokio::test]
async fn subscribe_on_behalf_of_an_unknown_client_waits_for_it() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    mica.post(
        "/api/v1/mqtt/subscribe",
        r#"{"topic":"later/t","clientId":"later-1","qos":1}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let mut later = connect_v4(gw.v4_options("later-1")).await;
    mica.post(
        "/api/v1/mqtt/publish",
        r#"{"topic":"later/t","clientId":"httpApi","payload":"hello later"}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let p = next_publish(&mut later, 5).await.expect("delivered");
    assert_eq!(&p.payload[..], b"hello later");
    assert_no_suback(&mut later);
    gw.shutdown().await;
}

#[tokio::test]
async fn client_subscriptions_doc_example_and_errors() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let c = connect_v4(gw.v4_options("123")).await;
    c.client.subscribe("#", QoS::AtMostOnce).await.unwrap();
    c.client
        .subscribe("testtopic/#", QoS::AtMostOnce)
        .await
        .unwrap();
    let mut c = c;
    wait_suback(&mut c).await;
    wait_suback(&mut c).await;
    let mut answer = mica.subscriptions("123").await;
    answer["data"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|s| s["topicFilter"].as_str().unwrap().to_string());
    let mut expected = docs()["client_subscriptions"]["response"].clone();
    for s in expected["data"].as_array_mut().unwrap() {
        s["noLocal"] = json!(false);
    }
    assert_eq!(answer, expected);
    // clientId from a urlencoded body of a GET, as mica's own request collection does.
    let form = mica
        .send(
            Method::GET,
            "/api/v1/client/subscriptions",
            Auth::Mica,
            Some("application/x-www-form-urlencoded"),
            Some("clientId=123"),
        )
        .await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.json()["data"].as_array().unwrap().len(), 2);
    mica.get("/api/v1/client/subscriptions?clientId=nobody")
        .await
        .assert(200, json!({"data":[],"code":1}));
    mica.get("/api/v1/client/subscriptions")
        .await
        .assert(400, json!({"code": 101}));
    // A JSON body is not read for this endpoint.
    mica.send(
        Method::GET,
        "/api/v1/client/subscriptions",
        Auth::Mica,
        Some("application/json"),
        Some(r#"{"clientId":"123"}"#),
    )
    .await
    .assert(400, json!({"code": 101}));
    gw.shutdown().await;
}

// ---- clients -------------------------------------------------------------------

const CLIENT_INFO_KEYS: [&str; 16] = [
    "clientId",
    "username",
    "keepAlive",
    "connected",
    "protoName",
    "protoVer",
    "protoFullName",
    "webSocket",
    "ssl",
    "ipAddress",
    "port",
    "connectedAt",
    "createdAt",
    "decodeQueueSize",
    "handlerQueueSize",
    "sendQueueSize",
];

#[tokio::test]
async fn clients_info_doc_example_for_a_v5_client() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let before = now_ms();
    let mut options = gw.v5_options("mqttx_5fe4cfcf");
    options.set_credentials("alice", "pw");
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 10);
    let task = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let mut answer = None;
    for _ in 0..100 {
        let a = mica
            .get("/api/v1/clients/info?clientId=mqttx_5fe4cfcf")
            .await;
        if a.status == StatusCode::OK {
            answer = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let answer = answer.expect("the client shows up");
    assert_eq!(answer.headers[CONTENT_TYPE], "application/json");
    let body = answer.json();
    assert_eq!(body["code"], 1);
    let data = body["data"].as_object().unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    let mut expected_keys = CLIENT_INFO_KEYS.to_vec();
    expected_keys.sort();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, expected_keys);
    // The docs example's fields, plus the ones 2.6.8.3 adds.
    let doc = &docs()["clients_info"]["response"]["data"];
    assert_eq!(data["clientId"], doc["clientId"]);
    assert_eq!(data["connected"], true);
    assert_eq!(data["protoName"], doc["protoName"]);
    assert_eq!(data["protoVer"], doc["protoVer"]);
    assert_eq!(data["ipAddress"], doc["ipAddress"]);
    assert!(data["port"].as_u64().unwrap() > 0);
    assert_eq!(data["username"], "alice");
    assert_eq!(data["keepAlive"], 30);
    assert_eq!(data["protoFullName"], "MQTT 5.0");
    assert_eq!(data["webSocket"], false);
    assert_eq!(data["ssl"], false);
    assert_eq!(data["decodeQueueSize"], 0);
    assert_eq!(data["handlerQueueSize"], 0);
    assert!(data["sendQueueSize"].is_u64());
    let created = data["createdAt"].as_i64().unwrap();
    assert_eq!(data["connectedAt"], created);
    assert!(created >= before - 1000 && created <= now_ms());
    // The same client through the list.
    // The docs' list example, by GET: the same client, one row.
    let list = mica.get("/api/v1/clients?_page=1&_limit=100").await.json();
    assert_eq!(list["data"]["list"][0], Value::Object(data.clone()));
    let doc_page = &docs()["clients"]["response"]["data"];
    for key in ["pageNumber", "pageSize", "totalRow"] {
        assert_eq!(list["data"][key], doc_page[key], "{key}");
    }
    assert_eq!(list["code"], 1);
    client.disconnect().await.unwrap();
    let _ = task.await;
    gw.shutdown().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn clients_info_errors() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    for path in [
        "/api/v1/clients/info",
        "/api/v1/clients/info?clientId=",
        "/api/v1/clients/info?clientId=%20%20",
        "/api/v1/clients/info?clientId=nobody",
    ] {
        mica.get(path).await.assert(400, json!({"code": 101}));
    }
    // A client without a username: the field is left out, not null.
    let _c = connect_v4(gw.v4_options("anon-1")).await;
    let answer = mica
        .send(
            Method::GET,
            "/api/v1/clients/info",
            Auth::Mica,
            Some("application/x-www-form-urlencoded"),
            Some("clientId=anon-1"),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let data = answer.json()["data"].clone();
    assert_eq!(data["clientId"], "anon-1");
    assert_eq!(data["protoVer"], 4);
    assert_eq!(data["protoFullName"], "MQTT 3.1.1");
    assert!(data.get("username").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn clients_paging_edge_cases() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let page = |q: &'static str| {
        let mica = &mica;
        async move {
            let a = mica.get(&format!("/api/v1/clients{q}")).await;
            assert_eq!(a.status, StatusCode::OK, "{q}: {}", a.text);
            assert_eq!(a.headers[CONTENT_TYPE], "application/json");
            let mut body = a.json();
            assert_eq!(body["code"], 1);
            let ids: Vec<String> = body["data"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["clientId"].as_str().unwrap().to_string())
                .collect();
            body["data"]["list"] = json!(ids.len());
            (body["data"].clone(), ids)
        }
    };
    let meta = |n: usize, page: u64, size: u64, total: u64, pages: u64, first: bool, last: bool| {
        json!({"list": n, "pageNumber": page, "pageSize": size, "totalRow": total,
               "totalPage": pages, "firstPage": first, "lastPage": last})
    };
    assert_eq!(page("").await.0, meta(0, 1, 0, 0, 0, true, true));

    let mut clients = Vec::new();
    for id in ["p1", "p2", "p3"] {
        clients.push(connect_v4(gw.v4_options(id)).await);
    }
    // A socket that never sends CONNECT is not a client: it is not listed.
    let _silent = TcpStream::connect(gw.mqtt_addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (all, mut ids) = page("?_page=1&_limit=100").await;
    assert_eq!(all, meta(3, 1, 3, 3, 1, true, true));
    ids.sort();
    assert_eq!(ids, ["p1", "p2", "p3"]);
    assert_eq!(page("").await.0, meta(3, 1, 3, 3, 1, true, true));
    let (first, a) = page("?_page=1&_limit=2").await;
    assert_eq!(first, meta(2, 1, 2, 3, 2, true, false));
    let (second, b) = page("?_page=2&_limit=2").await;
    assert_eq!(second, meta(1, 2, 2, 3, 2, false, true));
    let mut together: Vec<String> = a.into_iter().chain(b).collect();
    together.sort();
    assert_eq!(together, ["p1", "p2", "p3"]);
    // _page below 1 is page 1; _limit below 1 is 20; non-numbers are the defaults.
    assert_eq!(
        page("?_page=0&_limit=2").await.0,
        meta(2, 1, 2, 3, 2, true, false)
    );
    assert_eq!(
        page("?_page=-3&_limit=2").await.0,
        meta(2, 1, 2, 3, 2, true, false)
    );
    assert_eq!(page("?_limit=0").await.0, meta(3, 1, 3, 3, 1, true, true));
    assert_eq!(
        page("?_page=x&_limit=y").await.0,
        meta(3, 1, 3, 3, 1, true, true)
    );
    // Past the end: empty list, the page asked for, the real total.
    assert_eq!(
        page("?_page=5&_limit=2").await.0,
        meta(0, 5, 2, 3, 2, false, true)
    );
    // Paging parameters from a urlencoded body.
    let form = mica
        .send(
            Method::GET,
            "/api/v1/clients",
            Auth::Mica,
            Some("application/x-www-form-urlencoded"),
            Some("_page=2&_limit=1"),
        )
        .await;
    assert_eq!(form.json()["data"]["pageNumber"], 2);
    assert_eq!(form.json()["data"]["list"].as_array().unwrap().len(), 1);
    // The docs' POST form of this call is refused like the real server does.
    mica.send(
        Method::POST,
        "/api/v1/clients?_page=1&_limit=100",
        Auth::Mica,
        None,
        None,
    )
    .await
    .assert(404, json!({"code": 404}));
    gw.shutdown().await;
}

#[tokio::test]
async fn kick_closes_the_socket_fires_the_will_and_ends_the_session() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut watcher = subscriber(&gw, "watcher", "will/#", QoS::AtLeastOnce).await;
    let mut options = gw.v4_options("victim");
    options.set_clean_session(false);
    options.set_last_will(LastWill::new(
        "will/victim",
        "gone",
        QoS::AtLeastOnce,
        false,
    ));
    let victim = connect_v4(options.clone()).await;
    victim
        .client
        .subscribe("victim/inbox", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut victim = victim;
    wait_suback(&mut victim).await;

    mica.post("/api/v1/clients/delete?clientId=victim", "")
        .await
        .assert(200, json!({"code": 1}));
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut victim.task)
        .await
        .expect("socket closed by the broker")
        .unwrap();
    assert!(
        ended.is_some(),
        "the event loop ended on a connection error"
    );
    let will = next_publish(&mut watcher, 5).await.expect("will published");
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("will/victim", &b"gone"[..])
    );
    // The session went with the connection.
    let mut gone = false;
    for _ in 0..100 {
        if mica.subscriptions("victim").await == json!({"data":[],"code":1}) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "subscriptions discarded");
    mica.get("/api/v1/clients/info?clientId=victim")
        .await
        .assert(400, json!({"code": 101}));
    gw.shutdown().await;
}

#[tokio::test]
async fn kick_doc_example_and_parameter_sources() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    mica.post("/api/v1/clients/delete?clientId=123", "")
        .await
        .assert(200, docs()["clients_delete"]["response"].clone());
    let mut c = connect_v4(gw.v4_options("form-kick")).await;
    mica.send(
        Method::POST,
        "/api/v1/clients/delete",
        Auth::Mica,
        Some("application/x-www-form-urlencoded"),
        Some("clientId=form-kick"),
    )
    .await
    .assert(200, json!({"code": 1}));
    tokio::time::timeout(Duration::from_secs(5), &mut c.task)
        .await
        .expect("kicked")
        .unwrap();
    for (ct, body) in [
        (None, None),
        (Some("application/json"), Some(r#"{"clientId":"x"}"#)),
    ] {
        mica.send(Method::POST, "/api/v1/clients/delete", Auth::Mica, ct, body)
            .await
            .assert(400, json!({"code": 101}));
    }
    gw.shutdown().await;
}

// ---- stats ---------------------------------------------------------------------

/// A raw MQTT 3.1.1 exchange with known sizes, each step waiting for its answer so
/// that every packet arrives in its own socket read.
struct RawClient {
    stream: TcpStream,
}

impl RawClient {
    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn expect(&mut self, bytes: &[u8]) {
        let mut buf = vec![0u8; bytes.len()];
        tokio::time::timeout(Duration::from_secs(5), self.stream.read_exact(&mut buf))
            .await
            .expect("answer in time")
            .unwrap();
        assert_eq!(buf, bytes);
    }
}

#[tokio::test]
async fn stats_counters_follow_a_scripted_exchange() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let zero = mica.stats().await;
    let answer = mica.get("/api/v1/stats").await;
    answer.assert(200, json!({"data": zero, "code": 1}));
    assert!(
        answer.text.contains("\"bytesPerTcpReceive\":0.0"),
        "{}",
        answer.text
    );
    assert_eq!(
        zero,
        json!({"connections":{"accepted":0,"size":0,"closed":0},
               "messages":{"handledPackets":0,"handledBytes":0,"receivedPackets":0,"receivedBytes":0,
                           "sendPackets":0,"sendBytes":0,"bytesPerTcpReceive":0.0,"packetsPerTcpReceive":0.0},
               "nodes":{"clientNodes":0,"connections":0,"users":0}})
    );

    // A socket that never says CONNECT counts as accepted and open.
    let silent = TcpStream::connect(gw.mqtt_addr()).await.unwrap();
    let mut raw = RawClient {
        stream: TcpStream::connect(gw.mqtt_addr()).await.unwrap(),
    };
    // CONNECT: v3.1.1, clean session, keepalive 60, client id "s1", username "alice".
    let connect = [
        0x10, 0x15, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x82, 0x00, 0x3c, 0x00, 0x02, b's',
        b'1', 0x00, 0x05, b'a', b'l', b'i', b'c', b'e',
    ];
    raw.send(&connect).await;
    raw.expect(&[0x20, 0x02, 0x00, 0x00]).await;
    // SUBSCRIBE id 1 to "t/1" at QoS 0 → SUBACK.
    raw.send(&[0x82, 0x08, 0x00, 0x01, 0x00, 0x03, b't', b'/', b'1', 0x00])
        .await;
    raw.expect(&[0x90, 0x03, 0x00, 0x01, 0x00]).await;
    // PUBLISH QoS 0 "hi" to "t/1": comes back to the same client.
    let publish = [0x30, 0x07, 0x00, 0x03, b't', b'/', b'1', b'h', b'i'];
    raw.send(&publish).await;
    raw.expect(&publish).await;
    // PINGREQ → PINGRESP.
    raw.send(&[0xc0, 0x00]).await;
    raw.expect(&[0xd0, 0x00]).await;

    let connected = mica.stats().await;
    assert_eq!(
        connected["connections"],
        json!({"accepted": 2, "size": 2, "closed": 0})
    );
    assert_eq!(
        connected["nodes"],
        json!({"clientNodes": 2, "connections": 2, "users": 1})
    );
    let m = &connected["messages"];
    assert_eq!(m["receivedPackets"], 4);
    assert_eq!(m["handledPackets"], 4);
    assert_eq!(m["receivedBytes"], 23 + 10 + 9 + 2);
    assert_eq!(m["handledBytes"], 23 + 10 + 9 + 2);
    assert_eq!(m["sendPackets"], 4);
    assert_eq!(m["sendBytes"], 4 + 5 + 9 + 2);
    assert_eq!(m["bytesPerTcpReceive"], json!(44.0 / 4.0));
    assert_eq!(m["packetsPerTcpReceive"], json!(1.0));

    // DISCONNECT, then the silent socket goes too.
    raw.send(&[0xe0, 0x00]).await;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.stream.read_to_end(&mut rest)).await;
    drop(silent);
    let mut last = Value::Null;
    for _ in 0..100 {
        last = mica.stats().await;
        if last["connections"]["closed"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        last["connections"],
        json!({"accepted": 2, "size": 0, "closed": 2})
    );
    assert_eq!(
        last["nodes"],
        json!({"clientNodes": 0, "connections": 0, "users": 0})
    );
    assert_eq!(last["messages"]["receivedPackets"], 5);
    assert_eq!(last["messages"]["receivedBytes"], 46);
    assert_eq!(last["messages"]["sendPackets"], 4);
    assert_eq!(last["messages"]["sendBytes"], 20);
    // HTTP traffic is not MQTT traffic.
    assert_eq!(mica.stats().await["messages"], last["messages"]);
    gw.shutdown().await;
}

#[tokio::test]
async fn stats_sse_framing_and_period() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let started = Instant::now();
    let mut response = mica
        .http
        .get(format!("{}/api/v1/stats/sse?delay=200", mica.base))
        .basic_auth("mica", Some("mica"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut text = String::new();
    let mut first_at = None;
    while started.elapsed() < Duration::from_millis(1150) {
        let left = Duration::from_millis(1150).saturating_sub(started.elapsed());
        match tokio::time::timeout(left, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                first_at.get_or_insert(started.elapsed());
                text.push_str(std::str::from_utf8(&chunk).unwrap());
            }
            Ok(other) => panic!("stream ended: {other:?}"),
            Err(_) => break,
        }
    }
    let first_at = first_at.expect("an event");
    assert!(
        first_at >= Duration::from_millis(150),
        "the first event waits one period, came after {first_at:?}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text:?}");
    let events: Vec<&str> = text.split_terminator("\r\n\r\n").collect();
    assert!(
        (4..=6).contains(&events.len()),
        "{} events in 1.15 s at 200 ms: {text:?}",
        events.len()
    );
    for event in events {
        let json = event.strip_prefix("data: ").expect("a data line");
        let stats: Value = serde_json::from_str(json).unwrap();
        // The bare StatVo, not the envelope.
        assert!(stats.get("code").is_none());
        assert_eq!(stats["connections"]["size"], 0);
        assert!(stats["messages"]["bytesPerTcpReceive"].is_f64());
        assert!(stats["nodes"]["users"].is_u64());
    }
    drop(response);

    // A delay that is not a number means 3000 ms: nothing within one second.
    let mut slow = mica
        .http
        .get(format!("{}/api/v1/stats/sse?delay=soon", mica.base))
        .basic_auth("mica", Some("mica"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), StatusCode::OK);
    assert!(
        tokio::time::timeout(Duration::from_millis(1000), slow.chunk())
            .await
            .is_err(),
        "no event before the default period"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn websocket_clients_are_flagged() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let addr = gw.ws_addr();
    let mut options = rumqttc::MqttOptions::new("ws-1", format!("ws://{addr}/mqtt"), addr.port());
    options.set_transport(rumqttc::Transport::Ws);
    options.set_keep_alive(Duration::from_secs(45));
    let _ws = connect_v4(options).await;
    let answer = mica.get("/api/v1/clients/info?clientId=ws-1").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let data = answer.json()["data"].clone();
    assert_eq!(data["webSocket"], true);
    assert_eq!(data["ssl"], false);
    assert_eq!(data["keepAlive"], 45);
    assert_eq!(data["protoFullName"], "MQTT 3.1.1");
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_retained_with_a_lifetime_prefix() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    mica.post_json(
        "/api/v1/mqtt/publish",
        r#"{"topic":"$retain/60/rt/x","clientId":"httpApi","payload":"for a minute","retain":true}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let mut late = subscriber(&gw, "sub-rt", "rt/x", QoS::AtLeastOnce).await;
    let p = next_publish(&mut late, 5).await.expect("retained delivery");
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("rt/x", &b"for a minute"[..])
    );
    assert!(p.retain);
    // Without retain the prefix is an ordinary topic; a malformed one with retain is refused.
    mica.post_json(
        "/api/v1/mqtt/publish",
        r#"{"topic":"$retain/soon/rt/x","clientId":"httpApi","payload":"p","retain":true}"#,
    )
    .await
    .assert(400, json!({"code": 102}));
    no_publish(&mut late, 300).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn kick_of_an_offline_persistent_session_discards_it() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut options = gw.v4_options("offline-kick");
    options.set_clean_session(false);
    let c = connect_v4(options.clone()).await;
    c.client
        .subscribe("mine/t", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut c = c;
    wait_suback(&mut c).await;
    c.client.disconnect().await.unwrap();
    assert!(eventually(5, || c.task.is_finished()).await);
    let mut offline = false;
    for _ in 0..100 {
        if mica
            .get("/api/v1/clients/info?clientId=offline-kick")
            .await
            .status
            == StatusCode::BAD_REQUEST
        {
            offline = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(offline);
    assert_eq!(
        topic_filters(&mica.subscriptions("offline-kick").await),
        ["mine/t"]
    );
    mica.post("/api/v1/clients/delete?clientId=offline-kick", "")
        .await
        .assert(200, json!({"code": 1}));
    assert_eq!(
        mica.subscriptions("offline-kick").await,
        json!({"data":[],"code":1})
    );
    // Back with clean_session=false: no session to resume, nothing subscribed.
    let mut back = connect_v4(options).await;
    let mut present = None;
    while let Ok(event) = back.events.try_recv() {
        if let Event::Incoming(Packet::ConnAck(ack)) = event {
            present = Some(ack.session_present);
        }
    }
    assert_eq!(present, Some(false));
    let publisher = connect_v4(gw.v4_options("pub-ok")).await;
    publisher
        .client
        .publish("mine/t", QoS::AtLeastOnce, false, "x")
        .await
        .unwrap();
    no_publish(&mut back, 500).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn shared_subscriptions_on_behalf_keep_their_prefix() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let mut worker = connect_v4(gw.v4_options("worker")).await;
    mica.post(
        "/api/v1/mqtt/subscribe",
        r#"{"topic":"$share/g1/jobs/+","clientId":"worker","qos":1}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    assert_eq!(
        mica.subscriptions("worker").await,
        json!({"data":[{"topicFilter":"$share/g1/jobs/+","clientId":"worker","mqttQoS":1,"noLocal":false}],"code":1})
    );
    mica.post(
        "/api/v1/mqtt/publish",
        r#"{"topic":"jobs/1","clientId":"httpApi","payload":"job","qos":1}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    let p = next_publish(&mut worker, 5).await.expect("shared delivery");
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("jobs/1", &b"job"[..]));
    mica.post(
        "/api/v1/mqtt/unsubscribe",
        r#"{"topic":"$share/g1/jobs/+","clientId":"worker"}"#,
    )
    .await
    .assert(200, json!({"code": 1}));
    assert_eq!(
        mica.subscriptions("worker").await,
        json!({"data":[],"code":1})
    );
    assert_no_suback(&mut worker);
    gw.shutdown().await;
}

/// Swagger UI's "Try it out", pre-filled from the OpenAPI document, succeeds against a
/// default gateway for every operation (one MQTT client `example` connected, as the
/// `clients/info` example needs a connected client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openapi_example_succeeds() {
    let gw = common::start().await;
    let mica = Mica::new(&gw);
    let doc = serde_json::to_value(mqgate_mica::openapi(&gw.base_url("mica"))).unwrap();
    let _example = connect_v4(gw.v4_options("example")).await;
    let mut requests = common::example_requests(&doc);
    assert_eq!(requests.len(), 13);
    // The kick ends the example client's connection: last.
    requests.sort_by_key(|r| r.target.starts_with("/api/v1/clients/delete"));
    for request in requests {
        if request.target.starts_with("/api/v1/stats/sse") {
            continue; // never ends
        }
        let method = Method::from_bytes(request.method.as_bytes()).unwrap();
        let (content_type, body) = match &request.body {
            Some((content_type, body)) => (Some(content_type.as_str()), Some(body.to_string())),
            None => (None, None),
        };
        let answer = mica
            .send(
                method,
                &request.target,
                Auth::Mica,
                content_type,
                body.as_deref(),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{request:?}: {}",
            answer.text
        );
        assert_eq!(answer.json()["code"], 1, "{request:?}");
    }
    gw.shutdown().await;
}
