//! End-to-end tests of the NanoMQ dialect: the captured transcripts of real NanoMQ
//! servers (tests/fixtures/nanomq/transcripts.md) replayed against mqgate with the same
//! MQTT clients connected, plus JWT, config_update, publish with MQTT 5 properties,
//! subscribe on behalf, ctrl, static files and CORS.
//!
//! Requests go over a raw TCP socket, byte for byte what curl sent (raw paths such as
//! `/api/v4/clients/client%2Dv5` or `/api/v4/../v4/nodes` must reach the server
//! unnormalised), and responses are compared on status, Content-Type and the JSON body:
//! keys in order, values equal, except values that depend on the moment (times,
//! versions, counters, addresses), which are compared by type.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TRANSCRIPTS: &str = include_str!("fixtures/nanomq/transcripts.md");
const JWT_PRIVATE_KEY: &[u8] = include_bytes!("fixtures/nanomq/jwt/private.pem");
const JWT_PUBLIC_KEY: &[u8] = include_bytes!("fixtures/nanomq/jwt/nanomq.pub");

// ---------------------------------------------------------------------------------
// JSON with key order kept (serde_json's Value sorts keys without preserve_order).

#[derive(Debug, Clone, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl<'de> Deserialize<'de> for J {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<J, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<J, E> {
                Ok(J::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<J, E> {
                Ok(J::Num(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<J, E> {
                Ok(J::Num(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<J, E> {
                Ok(J::Num(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<J, E> {
                Ok(J::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<J, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(J::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<J, A::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, J>()? {
                    fields.push((k, v));
                }
                Ok(J::Obj(fields))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_json(text: &[u8]) -> J {
    serde_json::from_slice(text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(text)))
}

fn same_kind(a: &J, b: &J) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// How strictly a transcript's values are compared.
#[derive(Clone, Copy)]
enum Strictness<'a> {
    /// Equal, except the keys named (compared by type).
    ExceptKeys(&'a [&'a str]),
    /// Only keys, their order and the types of values (configuration dumps).
    Shape,
}

/// Keys whose values depend on the moment or the machine.
const VOLATILE: &[&str] = &[
    "datetime",
    "uptime",
    "version",
    "connections",
    "cpuinfo",
    "memory",
    "client_size",
    "message_in",
    "message_out",
    "message_drop",
    "message_receive",
];

fn assert_like(expected: &J, actual: &J, path: &str, strictness: Strictness) {
    match (expected, actual) {
        (J::Obj(e), J::Obj(a)) => {
            let ek: Vec<&str> = e.iter().map(|(k, _)| k.as_str()).collect();
            let ak: Vec<&str> = a.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(ek, ak, "keys at {path}");
            for ((k, ev), (_, av)) in e.iter().zip(a) {
                let loose = match strictness {
                    Strictness::ExceptKeys(keys) => {
                        keys.contains(&k.as_str()) || VOLATILE.contains(&k.as_str())
                    }
                    Strictness::Shape => false,
                };
                let child = format!("{path}.{k}");
                if loose && !matches!(ev, J::Obj(_) | J::Arr(_)) {
                    assert!(same_kind(ev, av), "type at {child}: {ev:?} vs {av:?}");
                    if let (J::Str(e), J::Str(a)) = (ev, av) {
                        assert_eq!(e.is_empty(), a.is_empty(), "emptiness at {child}");
                    }
                } else {
                    assert_like(ev, av, &child, strictness);
                }
            }
        }
        (J::Arr(e), J::Arr(a)) => {
            assert_eq!(e.len(), a.len(), "length at {path}: {a:?}");
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                assert_like(ev, av, &format!("{path}[{i}]"), strictness);
            }
        }
        _ => match strictness {
            Strictness::Shape => assert!(
                same_kind(expected, actual)
                    || matches!(expected, J::Null)
                    || matches!(actual, J::Null),
                "type at {path}: {expected:?} vs {actual:?}"
            ),
            Strictness::ExceptKeys(_) => assert_eq!(expected, actual, "value at {path}"),
        },
    }
}

// ---------------------------------------------------------------------------------
// Transcripts and the requests they record.

#[derive(Debug, Clone)]
struct Transcript {
    line: usize,
    command: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Transcript {
    fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }
}

fn header_of<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn transcripts() -> Vec<Transcript> {
    let lines: Vec<&str> = TRANSCRIPTS.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("$ curl") {
            i += 1;
            continue;
        }
        let line = i + 1;
        let command = lines[i].to_string();
        i += 1;
        let status = lines
            .get(i)
            .and_then(|l| l.strip_prefix("HTTP/1.1 "))
            .and_then(|l| l.get(..3))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        if status != 0 {
            i += 1;
            while i < lines.len() && !lines[i].is_empty() {
                if let Some((k, v)) = lines[i].split_once(": ") {
                    headers.push((k.to_string(), v.to_string()));
                }
                i += 1;
            }
            i += 1;
        }
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("$ curl") && !lines[i].starts_with("```") {
            body.push(lines[i]);
            i += 1;
        }
        let body = body.join("\n").trim_end_matches('\n').to_string();
        out.push(Transcript {
            line,
            command,
            status,
            headers,
            body,
        });
    }
    out
}

fn transcript(line: usize) -> Transcript {
    transcripts()
        .into_iter()
        .find(|t| t.line == line)
        .unwrap_or_else(|| panic!("no transcript at line {line}"))
}

/// A request: what curl put on the wire.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut any = false;
    for c in command.chars() {
        match c {
            '\'' => {
                in_quotes = !in_quotes;
                any = true;
            }
            ' ' if !in_quotes => {
                if any {
                    words.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            _ => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(current);
    }
    words
}

fn basic(user_pass: &str) -> String {
    format!("Basic {}", base64_encode(user_pass.as_bytes(), false))
}

fn base64_encode(bytes: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if !url_safe {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn parse_curl(command: &str) -> Req {
    let words = shell_words(command);
    let mut method = None;
    let mut headers = Vec::new();
    let mut body = None;
    let mut head = false;
    let mut url = String::new();
    let mut it = words.into_iter().skip(2);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-sS" | "-i" => {}
            "-I" => head = true,
            "-u" => headers.push(("Authorization".to_string(), basic(&it.next().unwrap()))),
            "-X" => method = it.next(),
            "-H" => {
                let h = it.next().unwrap();
                match h.split_once(':') {
                    Some((k, v)) => headers.push((k.to_string(), v.trim_start().to_string())),
                    None => panic!("bad header {h}"),
                }
            }
            "-d" | "--data-binary" => body = Some(it.next().unwrap().into_bytes()),
            other => url = other.to_string(),
        }
    }
    if body.is_some() && header_of(&headers, "content-type").is_none() {
        headers.push((
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ));
    }
    let method = match (head, method) {
        (true, _) => "HEAD".to_string(),
        (false, Some(m)) => m,
        (false, None) if body.is_some() => "POST".to_string(),
        _ => "GET".to_string(),
    };
    let after_scheme = url.strip_prefix("http://").expect("http URL");
    let target = match after_scheme.find('/') {
        Some(i) => after_scheme[i..].to_string(),
        None => "/".to_string(),
    };
    Req {
        method,
        target,
        headers,
        body,
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        header_of(&self.headers, name)
    }
    fn json(&self) -> J {
        parse_json(&self.body)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw)).await;
    raw
}

fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Sends `req` on a fresh connection (closed after the answer) and reads the answer.
async fn send(addr: SocketAddr, req: &Req) -> Resp {
    let mut raw = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = &req.body {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let mut bytes = raw.into_bytes();
    if let Some(body) = &req.body {
        bytes.extend_from_slice(body);
    }
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(&bytes).await.expect("write");
    parse_response(&read_all(&mut stream).await)
}

fn get(target: &str) -> Req {
    Req {
        method: "GET".to_string(),
        target: target.to_string(),
        headers: vec![("Authorization".to_string(), basic("admin:public"))],
        body: None,
    }
}

fn post(target: &str, body: &str) -> Req {
    Req {
        method: "POST".to_string(),
        target: target.to_string(),
        headers: vec![
            ("Authorization".to_string(), basic("admin:public")),
            ("Content-Type".to_string(), "application/json".to_string()),
        ],
        body: Some(body.as_bytes().to_vec()),
    }
}

fn with_auth(mut req: Req, value: &str) -> Req {
    req.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
    req.headers
        .push(("Authorization".to_string(), value.to_string()));
    req
}

fn nanomq_addr(gw: &common::TestGateway) -> SocketAddr {
    gw.gateway.dialect_addr("nanomq").expect("nanomq enabled")
}

/// Replays one transcript and compares the answer with it.
async fn replay(addr: SocketAddr, t: &Transcript, strictness: Strictness<'_>) -> Resp {
    let got = send(addr, &parse_curl(&t.command)).await;
    let what = format!("transcript line {} ({})", t.line, t.command);
    assert_eq!(got.status, t.status, "status of {what}: {}", got.text());
    assert_eq!(
        got.header("content-type"),
        t.header("content-type"),
        "Content-Type of {what}"
    );
    assert_eq!(got.header("www-authenticate"), None, "{what}");
    if let Some(len) = got.header("content-length") {
        if t.command.contains(" -I ") {
            assert_eq!(Some(len), t.header("content-length"), "{what}");
        } else {
            assert_eq!(len, got.body.len().to_string(), "{what}");
        }
    }
    let expected = t.body.as_str();
    if expected.starts_with('{') || expected.starts_with('[') {
        assert_like(
            &parse_json(expected.as_bytes()),
            &got.json(),
            "$",
            strictness,
        );
    } else if expected.starts_with("# TYPE") {
        let e: Vec<&str> = expected.lines().collect();
        let text = got.text();
        let a: Vec<&str> = text.lines().collect();
        assert_eq!(e.len(), a.len(), "{what}");
        for (el, al) in e.iter().zip(&a) {
            if el.starts_with('#') {
                assert_eq!(el, al, "{what}");
            } else {
                let (en, _) = el.split_once(' ').unwrap();
                let (an, av) = al.split_once(' ').unwrap();
                assert_eq!(en, an, "{what}");
                assert!(av.parse::<f64>().is_ok(), "{what}: {al}");
            }
        }
        assert!(text.ends_with('\n'));
    } else if t.command.contains(" -I ") {
        assert!(got.body.is_empty(), "{what}");
    } else {
        // The fixture lost trailing newlines; its Content-Length still counts them.
        let mut expected = expected.to_string();
        let declared: Option<usize> = t.header("content-length").and_then(|l| l.parse().ok());
        while declared.is_some_and(|n| expected.len() < n)
            && expected.len() + 2 > declared.unwrap_or(0)
        {
            expected.push('\n');
        }
        assert_eq!(got.text(), expected, "body of {what}");
    }
    got
}

async fn replay_lines(addr: SocketAddr, lines: &[usize], strictness: Strictness<'_>) {
    for &line in lines {
        replay(addr, &transcript(line), strictness).await;
    }
}

// ---------------------------------------------------------------------------------
// The clients of the transcripts.

struct V5Client {
    client: rumqttc::v5::AsyncClient,
    publishes: tokio::sync::mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Publish>,
    _task: tokio::task::JoinHandle<()>,
}

async fn connect_v5(options: rumqttc::v5::MqttOptions) -> V5Client {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::Event;
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 100);
    let (tx, publishes) = tokio::sync::mpsc::unbounded_channel();
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    let mut ack_tx = Some(ack_tx);
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if let Some(t) = ack_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(p);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), ack_rx)
        .await
        .expect("CONNACK in time")
        .expect("connected");
    V5Client {
        client,
        publishes,
        _task: task,
    }
}

async fn wait_for_subscriptions(gw: &common::TestGateway, count: usize) {
    let addr = nanomq_addr(gw);
    for _ in 0..100 {
        let r = send(addr, &get("/api/v4/subscriptions")).await;
        if let J::Obj(fields) = r.json() {
            if let Some((_, J::Arr(rows))) = fields.iter().find(|(k, _)| k == "data") {
                if rows.len() == count {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the broker never showed {count} subscriptions");
}

/// `client-v5` (MQTT 5, user001, keepalive 60, `a/b/c` and `sensor/+/temp` at QoS 1) and
/// `client-v311` (3.1.1, no user, keepalive 30, clean session off, `a/b/c` at QoS 2),
/// connected and subscribed in that order, as in the transcripts.
async fn transcript_clients(gw: &common::TestGateway) -> (V5Client, common::V4Client) {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    let mut o5 = gw.v5_options("client-v5");
    o5.set_keep_alive(Duration::from_secs(60));
    o5.set_credentials("user001", "");
    let v5 = connect_v5(o5).await;
    v5.client
        .subscribe("a/b/c", QoS5::AtLeastOnce)
        .await
        .unwrap();
    v5.client
        .subscribe("sensor/+/temp", QoS5::AtLeastOnce)
        .await
        .unwrap();
    wait_for_subscriptions(gw, 2).await;
    let mut o4 = gw.v4_options("client-v311");
    o4.set_keep_alive(Duration::from_secs(30));
    o4.set_clean_session(false);
    let v4 = common::connect_v4(o4).await;
    v4.client
        .subscribe("a/b/c", rumqttc::QoS::ExactlyOnce)
        .await
        .unwrap();
    wait_for_subscriptions(gw, 3).await;
    (v5, v4)
}

// ---------------------------------------------------------------------------------
// Transcript replays.

/// 8.A: the read endpoints with the two transcript clients connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_read_transcripts_with_two_clients() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let _clients = transcript_clients(&gw).await;
    replay_lines(
        addr,
        &[
            15, 22, 29, 36, 43, 50, 57, 64, 70, 76, 83, 90, 97, 104, 111, 118, 184, 191, 198, 205,
            212, 238, 273, 280, 287,
        ],
        Strictness::ExceptKeys(&[]),
    )
    .await;
    // Settings: the same keys in the same order; the values are mqgate's own.
    replay_lines(
        addr,
        &[170, 177, 224, 231, 245, 252, 259, 266],
        Strictness::Shape,
    )
    .await;
    let reload = send(addr, &get("/api/v4/reload")).await;
    assert_eq!(
        reload.text(),
        r#"{"code":0,"data":{"property_size":32,"max_packet_size":1024,"client_max_packet_size":0,"msq_len":1000,"qos_duration":10,"keepalive_backoff":1.5,"allow_anonymous":true,"enable_mqtt_stream":false,"bridge_mode":false}}"#
    );
    let http = send(addr, &get("/api/v4/configuration/http_server")).await;
    assert_eq!(
        http.text(),
        format!(
            r#"{{"code":0,"data":{{"http_server":{{"enable":true,"port":{},"addr":"127.0.0.1","username":"admin","password":"public","auth_type":"basic"}}}}}}"#,
            addr.port()
        )
    );
    let basic = send(addr, &get("/api/v4/configuration/basic")).await.text();
    assert!(
        basic.contains(&format!("\"url\":\"nmq-tcp://{}\"", gw.mqtt_addr())),
        "{basic}"
    );
    gw.shutdown().await;
}

/// 8.C and 8.D: credentials, methods, paths, the write endpoints, with the subscribers
/// receiving what the publish transcripts sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_auth_write_and_routing_transcripts() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let (mut v5, mut v4) = transcript_clients(&gw).await;
    // 8.C: Basic failures, no WWW-Authenticate.
    replay_lines(
        addr,
        &[557, 563, 569, 576, 582, 589, 595, 601, 607, 613, 649, 659],
        Strictness::ExceptKeys(&[]),
    )
    .await;
    // Publish, then what the subscribers got.
    replay_lines(addr, &[718, 725], Strictness::ExceptKeys(&[])).await;
    let first = v5
        .publishes
        .recv()
        .await
        .expect("client-v5 gets the publish");
    assert_eq!(&first.topic[..], b"a/b/c");
    assert_eq!(&first.payload[..], b"Hello World");
    let props = first.properties.expect("MQTT 5 properties");
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    let mut user: Vec<(String, String)> = props.user_properties.clone();
    user.sort();
    assert_eq!(
        user,
        vec![
            ("foo".to_string(), "bar".to_string()),
            ("id".to_string(), "10010".to_string()),
            ("name".to_string(), "emqx".to_string()),
        ]
    );
    let got = common::next_publish(&mut v4, 5)
        .await
        .expect("client-v311 gets it");
    assert_eq!(&got.payload[..], b"Hello World");
    let mut decoded = Vec::new();
    for _ in 0..2 {
        let p = tokio::time::timeout(Duration::from_secs(5), v5.publishes.recv())
            .await
            .expect("in time")
            .expect("publish");
        decoded.push((
            String::from_utf8_lossy(&p.topic).into_owned(),
            p.payload.to_vec(),
        ));
    }
    decoded.sort();
    assert_eq!(
        decoded,
        vec![
            ("a/b/c".to_string(), b"Hello".to_vec()),
            ("sensor/1/temp".to_string(), b"Hello".to_vec()),
        ]
    );
    replay_lines(
        addr,
        &[
            732, 739, 746, 753, 760, 767, 773, 780, 820, 827, 834, 841, 848, 855, 880, 887, 894,
            901, 908, 922, 929, 936, 943, 950, 957, 968, 974, 980, 986, 992, 998, 1004, 1010, 1016,
            1023, 1029, 1036, 1043, 1050, 1056, 1063, 1069, 1075, 1085, 1091, 1097,
        ],
        Strictness::ExceptKeys(&[]),
    )
    .await;
    // Reload: NanoMQ takes any value; mqgate applies what it has and reports the rest.
    let t = transcript(799);
    let r = send(addr, &parse_curl(&t.command)).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("application/json"))
    );
    assert_eq!(
        r.text(),
        r#"{"code":0,"not_applied":["keepalive_backoff","property_size"]}"#
    );
    replay(
        addr,
        &transcript(806),
        Strictness::ExceptKeys(&["property_size", "keepalive_backoff"]),
    )
    .await;
    let t = transcript(813);
    let r = send(addr, &parse_curl(&t.command)).await;
    assert_eq!(r.text(), r#"{"code":0}"#);
    let reload = send(addr, &get("/api/v4/reload")).await.text();
    assert!(
        reload.contains(r#""max_packet_size":262144,"client_max_packet_size":262144"#),
        "{reload}"
    );
    assert!(
        reload.contains(r#""keepalive_backoff":1.25,"allow_anonymous":true"#),
        "{reload}"
    );
    // bridges/switch: 204 as NanoMQ, but without a body after it.
    let r = send(addr, &parse_curl(&transcript(915).command)).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), None);
    gw.shutdown().await;
}

/// The raw-bytes captures (8.E) that depend on exact paths and methods.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_raw_paths_and_connections() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let auth = "Authorization: Basic YWRtaW46cHVibGlj\r\n";
    let exchange = |raw: String| async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        read_all(&mut s).await
    };
    for (target, status, body) in [
        (
            "/api/v4/clients/client%2Dv5",
            200,
            r#"{"code":0,"data":[]}"#,
        ),
        ("/api/v4//nodes", 404, r#"{"code":102}"#),
        ("/api/v4/../v4/nodes", 404, r#"{"code":102}"#),
        ("/api/v4/clients//", 404, r#"{"code":102}"#),
        ("/api/v4/clients/a%FFb/", 200, r#"{"code":0,"data":[]}"#),
    ] {
        let raw = exchange(format!(
            "GET {target} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ))
        .await;
        let r = parse_response(&raw);
        assert_eq!((r.status, r.text().as_str()), (status, body), "{target}");
        assert_eq!(
            r.header("content-type").is_some(),
            status == 200,
            "{target}"
        );
    }
    // NanoMQ's headers: Content-Length, then Content-Type, nothing else (the HTTP
    // server's Date header aside).
    let raw = exchange(format!(
        "GET /api/v4/nodes HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    ))
    .await;
    assert!(raw.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let r = parse_response(&raw);
    let names: Vec<String> = r
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k != "date" && k != "connection")
        .collect();
    assert_eq!(names, ["content-length", "content-type"]);
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    // HTTP/1.0: answered, then closed.
    let raw = exchange(format!("GET /api/v4/nodes HTTP/1.0\r\n{auth}\r\n")).await;
    let r = parse_response(&raw);
    assert_eq!(r.status, 200);
    assert!(r
        .text()
        .starts_with(r#"{"code":0,"data":[{"connections":0,"node_status":"Running","uptime":""#));
    // Two pipelined requests on one kept-alive connection.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /api/v4/nodes HTTP/1.1\r\nHost: x\r\n{auth}\r\nGET /api/v4/foo HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let raw = String::from_utf8(read_all(&mut s).await).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(
        raw.contains("\r\n\r\n{\"code\":0,\"data\":[{\"connections\":0"),
        "{raw}"
    );
    assert!(raw.contains("HTTP/1.1 404 Not Found\r\n"), "{raw}");
    assert!(raw.ends_with("\r\n\r\n{\"code\":102}"), "{raw}");
    // A body over NanoMQ's 1 MiB limit: nng's HTML 400.
    let big = "x".repeat(1024 * 1024 + 1);
    let r = send(addr, &post("/api/v4/mqtt/publish", &big)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(r.body.len(), 373);
    gw.shutdown().await;
}

/// The clients transcripts taken with one client that has a will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_clients_with_a_will() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let mut o = gw.v4_options("client-will");
    o.set_keep_alive(Duration::from_secs(60));
    o.set_credentials("bob", "");
    o.set_last_will(rumqttc::LastWill::new(
        "will/t",
        "bye",
        rumqttc::QoS::AtMostOnce,
        false,
    ));
    let c = common::connect_v4(o).await;
    c.client
        .subscribe("x/y", rumqttc::QoS::AtMostOnce)
        .await
        .unwrap();
    wait_for_subscriptions(&gw, 1).await;
    replay_lines(
        addr,
        &[299, 306, 313, 319, 326, 333, 340],
        Strictness::ExceptKeys(&[]),
    )
    .await;
    gw.shutdown().await;
}

/// 8.B: the v1 RPC as NanoMQ 0.8.0 answered it, two 3.1.1 clients and one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_rpc_transcripts() {
    // The 0.8.0 server of the transcripts had no WebSocket listener.
    let gw = common::start_with(|c| c.mqtt.ws.enabled = false).await;
    let addr = nanomq_addr(&gw);
    let mut oa = gw.v4_options("client-a");
    oa.set_keep_alive(Duration::from_secs(60));
    oa.set_credentials("user001", "");
    let mut a = common::connect_v4(oa).await;
    a.client
        .subscribe("a/b/c", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    a.client
        .subscribe("sensor/+/temp", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for_subscriptions(&gw, 2).await;
    let mut ob = gw.v4_options("client-b");
    ob.set_keep_alive(Duration::from_secs(30));
    let mut b = common::connect_v4(ob).await;
    b.client
        .subscribe("a/b/c", rumqttc::QoS::ExactlyOnce)
        .await
        .unwrap();
    wait_for_subscriptions(&gw, 3).await;
    a.client
        .publish("a/b/c", rumqttc::QoS::AtMostOnce, false, "m")
        .await
        .unwrap();
    assert!(common::next_publish(&mut a, 5).await.is_some());
    assert!(common::next_publish(&mut b, 5).await.is_some());
    replay_lines(
        addr,
        &[
            354, 361, 368, 382, 394, 401, 408, 415, 422, 429, 436, 443, 450, 457, 464, 470, 477,
            483, 490, 497, 504, 511, 518, 542,
        ],
        Strictness::ExceptKeys(&[]),
    )
    .await;
    replay(addr, &transcript(375), Strictness::Shape).await;
    // NanoMQ 0.25 answers /api/v1 with nng's HTML pages; mqgate serves v1 there too.
    for (line, status, body) in [
        (619, 200, None),
        (629, 401, Some(r#"{"code":104,"seq":1111111,"rep":2}"#)),
        (639, 400, Some(r#"{"code":109,"seq":0}"#)),
    ] {
        let r = send(addr, &parse_curl(&transcript(line).command)).await;
        assert_eq!(r.status, status, "line {line}");
        match body {
            Some(body) => assert_eq!(r.text(), body),
            None => assert!(r
                .text()
                .starts_with(r#"{"code":0,"seq":1111111,"rep":2,"data":{"client_size":2,"#)),
        }
    }
    // req 12: msq_len applied; a changed value mqgate does not have is reported.
    let t = transcript(525);
    replay(addr, &t, Strictness::ExceptKeys(&[])).await;
    let mut req = parse_curl(&t.command);
    req.body = Some(
        br#"{"req":12,"seq":112,"data":{"msq_len":77,"property_size":64,"tls":{"enable":true}}}"#
            .to_vec(),
    );
    let r = send(addr, &req).await;
    assert_eq!(
        r.text(),
        r#"{"code":0,"seq":112,"rep":12,"not_applied":["property_size","tls.enable"]}"#
    );
    assert_eq!(gw.gateway.management().config().hot.max_queued_messages, 77);
    let r = send(addr, &post("/api/v1", r#"{"req":11,"seq":1}"#)).await;
    assert!(
        r.text().contains(r#""msq_len":77,"allow_anonymous":true"#),
        "{}",
        r.text()
    );
    gw.shutdown().await;
}

/// Started with `auth_type = no_auth`: no credentials needed, `basic` reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_mode() {
    let gw = common::start_with(|c| c.nanomq.auth_type = mqgate_nanomq::AuthType::NoAuth).await;
    let addr = nanomq_addr(&gw);
    replay(addr, &transcript(697), Strictness::ExceptKeys(&[])).await;
    let r = replay(
        addr,
        &transcript(704),
        Strictness::ExceptKeys(&["port", "addr"]),
    )
    .await;
    assert!(r.text().contains(r#""auth_type":"basic""#));
    gw.shutdown().await;
}

// ---------------------------------------------------------------------------------
// JWT.

fn jwt_gateway_config(dir: &std::path::Path) -> std::path::PathBuf {
    let keyfile = dir.join("nanomq.pub");
    std::fs::write(&keyfile, JWT_PUBLIC_KEY).unwrap();
    keyfile
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_accepts_only_valid_rs256_tokens() {
    let keys = tempfile::tempdir().unwrap();
    let keyfile = jwt_gateway_config(keys.path());
    let gw = common::start_with(|c| {
        c.nanomq.auth_type = mqgate_nanomq::AuthType::Jwt;
        c.nanomq.jwt_public_keyfile = Some(keyfile.clone());
    })
    .await;
    let addr = nanomq_addr(&gw);
    let nodes = get("/api/v4/nodes");

    let good = mqgate_nanomq::sign_token(JWT_PRIVATE_KEY, "nanomq.pub", 3600).unwrap();
    let r = send(addr, &with_auth(nodes.clone(), &bearer(&good))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().starts_with(r#"{"code":0,"data":[{"connections":"#));
    let r = send(
        addr,
        &with_auth(get("/api/v4/configuration/http_server"), &bearer(&good)),
    )
    .await;
    assert!(r.text().contains(r#""auth_type":"jwt""#), "{}", r.text());
    // v1 too.
    let r = send(
        addr,
        &with_auth(post("/api/v1", r#"{"req":2,"seq":5}"#), &bearer(&good)),
    )
    .await;
    assert_eq!(r.status, 200);

    let expect = |r: Resp, code: &str| {
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.text(), format!("{{\"code\":{code}}}"));
        assert_eq!(r.header("www-authenticate"), None);
    };
    // Expired.
    let now = jsonwebtoken::get_current_timestamp();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(JWT_PRIVATE_KEY).unwrap();
    let rs256 = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    let expired = jsonwebtoken::encode(
        &rs256,
        &serde_json::json!({"iss":"nanomq.pub","iat":now - 7200,"exp":now - 3600}),
        &key,
    )
    .unwrap();
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&expired))).await,
        "116",
    );
    // Not valid yet, and an array of issuers that contains the right one.
    for claims in [
        serde_json::json!({"iss":"nanomq.pub","iat":now,"nbf":now + 600,"exp":now + 3600}),
        serde_json::json!({"iss":["nanomq.pub"],"iat":now,"exp":now + 3600}),
    ] {
        let token = jsonwebtoken::encode(&rs256, &claims, &key).unwrap();
        expect(
            send(addr, &with_auth(nodes.clone(), &bearer(&token))).await,
            "103",
        );
    }
    let valid_now = jsonwebtoken::encode(
        &rs256,
        &serde_json::json!({"iss":"nanomq.pub","nbf":now - 1,"exp":now + 3600}),
        &key,
    )
    .unwrap();
    let r = send(addr, &with_auth(nodes.clone(), &bearer(&valid_now))).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // Wrong issuer.
    let other = mqgate_nanomq::sign_token(JWT_PRIVATE_KEY, "other.pub", 3600).unwrap();
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&other))).await,
        "103",
    );
    // Issuer that only starts with the right name.
    let longer = mqgate_nanomq::sign_token(JWT_PRIVATE_KEY, "nanomq.pub.x", 3600).unwrap();
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&longer))).await,
        "103",
    );
    // No exp.
    let no_exp =
        jsonwebtoken::encode(&rs256, &serde_json::json!({"iss":"nanomq.pub"}), &key).unwrap();
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&no_exp))).await,
        "103",
    );
    // alg none, unsigned.
    let claims = format!(r#"{{"iss":"nanomq.pub","iat":{now},"exp":{}}}"#, now + 3600);
    let none = format!(
        "{}.{}.",
        base64_encode(br#"{"alg":"none","typ":"JWT"}"#, true),
        base64_encode(claims.as_bytes(), true)
    );
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&none))).await,
        "103",
    );
    // A valid token with its signature stripped.
    let unsigned = format!("{}.", good.rsplit_once('.').unwrap().0);
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&unsigned))).await,
        "103",
    );
    // HS256 keyed with the public key.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"iss":"nanomq.pub","exp":now + 3600}),
        &jsonwebtoken::EncodingKey::from_secret(JWT_PUBLIC_KEY),
    )
    .unwrap();
    expect(
        send(addr, &with_auth(nodes.clone(), &bearer(&hs))).await,
        "103",
    );
    // Garbage, Basic, nothing.
    expect(
        send(addr, &with_auth(nodes.clone(), "Bearer abc.def.ghi")).await,
        "103",
    );
    expect(
        send(addr, &with_auth(nodes.clone(), &basic("admin:public"))).await,
        "104",
    );
    let mut bare = nodes.clone();
    bare.headers.clear();
    expect(send(addr, &bare).await, "104");
    gw.shutdown().await;
}

// ---------------------------------------------------------------------------------
// Writes with real effects.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_update_bad_hocon_leaves_the_broker_running() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let t = transcript(862);
    assert_eq!(t.status, 0, "NanoMQ died on this one");
    let r = send(addr, &parse_curl(&t.command)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.text(), r#"{"code":117}"#);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // Still serving HTTP and MQTT.
    let r = send(addr, &get("/api/v4/nodes")).await;
    assert_eq!(r.status, 200);
    let c = common::connect_v4(gw.v4_options("after-bad-hocon")).await;
    drop(c);
    assert!(!gw.data_dir.path().join("nanomq.conf").exists());

    // Valid HOCON: what maps is applied, the rest reported, the text kept.
    let hocon = "mqtt {\n  max_packet_size = 512KB\n  max_mqueue_len = 321\n  keepalive_multiplier = 2\n  property_size = 32\n}\nauth {\n  allow_anonymous = true\n}\nlog.level = warn\n";
    let mut req = post("/api/v4/config_update", hocon);
    req.headers.retain(|(k, _)| k != "Content-Type");
    req.headers
        .push(("Content-Type".to_string(), "text/plain".to_string()));
    let r = send(addr, &req).await;
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("application/json"))
    );
    assert_eq!(
        r.text(),
        r#"{"code":0,"not_applied":["log.level","mqtt.property_size"]}"#
    );
    let hot = gw.gateway.management().config().hot;
    assert_eq!(hot.max_packet_size, 512 * 1024);
    assert_eq!(hot.max_queued_messages, 321);
    assert_eq!(hot.keepalive_backoff, 2.0);
    let written = std::fs::read_to_string(gw.data_dir.path().join("nanomq.conf")).unwrap();
    assert_eq!(written, hocon);

    // A whole NanoMQ-style file, includes and all (mqgate never reads included files).
    let file = include_str!("fixtures/nanomq/nanomq.conf");
    let r = send(addr, &post("/api/v4/config_update", file)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with(r#"{"code":0,"not_applied":["#), "{text}");
    for reported in [
        "\"auth.password\"",
        "\"auth.acl\"",
        "\"listeners.tcp.bind\"",
        "\"http_server.jwt.public.keyfile\"",
        "\"mqtt.property_size\"",
    ] {
        assert!(text.contains(reported), "{reported} in {text}");
    }
    for applied in [
        "max_packet_size",
        "max_mqueue_len",
        "keepalive_multiplier",
        "allow_anonymous",
    ] {
        assert!(!text.contains(applied), "{applied} in {text}");
    }
    let hot = gw.gateway.management().config().hot;
    assert_eq!(
        (
            hot.max_packet_size,
            hot.max_queued_messages,
            hot.keepalive_backoff
        ),
        (260 * 1024 * 1024, 2048, 1.25)
    );
    assert_eq!(
        std::fs::read_to_string(gw.data_dir.path().join("nanomq.conf")).unwrap(),
        file
    );
    gw.shutdown().await;
}

/// The hardening issue's bodies: each is answered within 2 s (debug build), and
/// neither HTTP nor MQTT stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_update_answers_hostile_hocon_in_bounded_time() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let timed = |body: String| async move {
        let start = std::time::Instant::now();
        let r = send(addr, &post("/api/v4/config_update", &body)).await;
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
        r
    };
    let refused = [
        // ~3,000 dotted segments in 6 KB overflowed a worker's stack before.
        format!("{} = 1", vec!["a"; 3000].join(".")),
        // A one-line array of 32,000 elements took over 10 s before.
        format!("a = [{}]", vec!["1"; 32_000].join(",")),
        format!("a = {}", "[".repeat(20_000)),
        format!("{}{}", "a {".repeat(33), "}".repeat(33)),
        "a = 1\n".repeat(50_000),
    ];
    for body in refused {
        let r = timed(body).await;
        assert_eq!((r.status, r.text().as_str()), (400, r#"{"code":117}"#));
    }
    // Unquoted non-ASCII text is a string (it panicked inside the old parser).
    let r = timed("a = é\nmqtt.max_mqueue_len = 77\n".to_string()).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, r#"{"code":0,"not_applied":["a"]}"#)
    );
    assert_eq!(gw.gateway.management().config().hot.max_queued_messages, 77);
    let r = send(addr, &get("/api/v4/nodes")).await;
    assert_eq!(r.status, 200);
    drop(common::connect_v4(gw.v4_options("after-hostile-hocon")).await);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_with_properties_reaches_a_v5_subscriber() {
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let mut sub = connect_v5(gw.v5_options("props-sub")).await;
    sub.client
        .subscribe("props/#", QoS5::AtLeastOnce)
        .await
        .unwrap();
    wait_for_subscriptions(&gw, 1).await;
    let body = r#"{"topic":"props/t","payload":"SGk=","decoding":"base64","qos":1,"retain":false,"clientid":"api",
        "properties":{"payload_format_indicator":1,"message_expiry_interval":60,"response_topic":"props/reply",
        "correlation_data":"corr-1","content_type":"text/plain","user_properties":{"k1":"v1","n":7,"b":true}}}"#;
    let r = send(addr, &post("/api/v4/mqtt/publish", body)).await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"code":0}"#));
    let p = tokio::time::timeout(Duration::from_secs(5), sub.publishes.recv())
        .await
        .expect("in time")
        .expect("publish");
    assert_eq!(&p.topic[..], b"props/t");
    assert_eq!(&p.payload[..], b"Hi");
    let props = p.properties.expect("properties");
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("props/reply"));
    assert_eq!(props.correlation_data.as_deref(), Some(&b"corr-1"[..]));
    let expiry = props.message_expiry_interval.expect("expiry");
    assert!((59..=60).contains(&expiry), "{expiry}");
    let mut user = props.user_properties.clone();
    user.sort();
    assert_eq!(
        user,
        vec![
            ("b".to_string(), "true".to_string()),
            ("k1".to_string(), "v1".to_string()),
            ("n".to_string(), "7".to_string()),
        ]
    );
    // Bad values are 200 {"code":108}, and nothing is sent.
    for bad in [
        r#"{"topic":"props/t","payload":"x","qos":5}"#,
        r#"{"topic":"props/t","payload":"x","properties":{"user_properties":{"a":{"b":1}}}}"#,
        r#"{"topic":"props/t","payload":"!!","decoding":"base64"}"#,
        r#"{"topic":"props/#","payload":"x"}"#,
    ] {
        let r = send(addr, &post("/api/v4/mqtt/publish", bad)).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, r#"{"code":108}"#),
            "{bad}"
        );
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.publishes.recv())
            .await
            .is_err()
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_on_behalf_of_a_connected_client() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let mut target = common::connect_v4(gw.v4_options("target")).await;
    let publisher = common::connect_v4(gw.v4_options("publisher")).await;
    let r = send(
        addr,
        &post(
            "/api/v4/mqtt/subscribe",
            r#"{"topic":"obo/a","qos":1,"clientid":"target"}"#,
        ),
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"code":0}"#));
    let subs = send(addr, &get("/api/v4/subscriptions/target")).await;
    assert_eq!(
        subs.text(),
        r#"{"code":0,"data":[{"clientid":"target","topic":"obo/a","qos":1}]}"#
    );
    publisher
        .client
        .publish("obo/a", rumqttc::QoS::AtLeastOnce, false, "one")
        .await
        .unwrap();
    let p = common::next_publish(&mut target, 5)
        .await
        .expect("delivered");
    assert_eq!(&p.payload[..], b"one");

    let r = send(
        addr,
        &post(
            "/api/v4/mqtt/unsubscribe",
            r#"{"topic":"obo/a","clientid":"target"}"#,
        ),
    )
    .await;
    assert_eq!(r.text(), r#"{"code":0}"#);
    publisher
        .client
        .publish("obo/a", rumqttc::QoS::AtLeastOnce, false, "two")
        .await
        .unwrap();
    assert!(common::next_publish(&mut target, 1).await.is_none());

    let r = send(
        addr,
        &post(
            "/api/v4/mqtt/subscribe_batch",
            r#"[{"topics":"obo/b,obo/c","qos":0,"clientid":"target"},{"topic":"x","clientid":"ghost"},{"topic":"a/#/b","clientid":"target"},{"clientid":"target"}]"#,
        ),
    )
    .await;
    assert_eq!(
        r.text(),
        r#"{"data":[{"clientid":"target","topic":"obo/b,obo/c","code":0},{"clientid":"ghost","topic":"x","code":112},{"clientid":"target","topic":"a/#/b","code":115},{"clientid":"target","code":108}],"code":0}"#
    );
    let subs = send(addr, &get("/api/v4/subscriptions/target"))
        .await
        .text();
    assert!(subs.contains("obo/b") && subs.contains("obo/c"), "{subs}");
    let r = send(
        addr,
        &post(
            "/api/v4/mqtt/unsubscribe_batch",
            r#"[{"topics":"obo/b,obo/c","clientid":"target"}]"#,
        ),
    )
    .await;
    assert_eq!(
        r.text(),
        r#"{"data":[{"clientid":"target","topic":"obo/b,obo/c","code":0}],"code":0}"#
    );
    let subs = send(addr, &get("/api/v4/subscriptions/target")).await;
    assert_eq!(subs.text(), r#"{"code":0,"data":[]}"#);
    let r = send(addr, &post("/api/v4/mqtt/subscribe", "[1]")).await;
    assert_eq!((r.status, r.text().as_str()), (400, r#"{"code":109}"#));
    gw.shutdown().await;
}

/// NanoMQ's CI smoke script (`rest_api_test.py`): GETs and two POSTs to /reload, each
/// answering 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_ci_smoke_sequence() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    for path in [
        "/api/v4",
        "/api/v4/nodes",
        "/api/v4/brokers",
        "/api/v4/clients",
        "/api/v4/subscriptions",
        "/api/v4/reload",
        "/api/v4/configuration",
    ] {
        let r = send(addr, &get(path)).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.text().starts_with(r#"{"code":0,"data":"#),
            "{path}: {}",
            r.text()
        );
    }
    for body in [
        r#"{"data":{"property_size":32,"max_packet_size":1024,"client_max_packet_size":0,"msq_len":1000,"qos_duration":10,"keepalive_backoff":1.5,"allow_anonymous":true}}"#,
        r#"{"data":{"msq_len":2048,"allow_anonymous":true}}"#,
    ] {
        let r = send(addr, &post("/api/v4/reload", body)).await;
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, r#"{"code":0}"#),
            "{body}"
        );
    }
    assert_eq!(
        gw.gateway.management().config().hot.max_queued_messages,
        2048
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_restart_comes_back_and_stop_stops() {
    let mut gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let before = gw.gateway.management().node_stats().started_at_ms;
    let r = send(addr, &post("/api/v4/ctrl/Restart", "")).await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"code":0}"#));
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if gw.gateway.management().node_stats().started_at_ms != before {
            if let Ok(Ok(mut s)) =
                tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await
            {
                let req = "GET /api/v4/nodes HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46cHVibGlj\r\nConnection: close\r\n\r\n";
                if s.write_all(req.as_bytes()).await.is_ok() {
                    let raw = read_all(&mut s).await;
                    if raw.starts_with(b"HTTP/1.1 200") {
                        back = true;
                        break;
                    }
                }
            }
        }
    }
    assert!(back, "the gateway came back on the same address");
    common::connect_v4(gw.v4_options("after-restart")).await;
    replay(addr, &transcript(1170), Strictness::ExceptKeys(&[])).await;
    tokio::time::timeout(Duration::from_secs(10), gw.gateway.stopped())
        .await
        .expect("stopped in time");
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_dir_and_cors_are_opt_in() {
    // Off by default: NanoMQ's 401 preflight and HTML 404 for `/`.
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    replay(addr, &transcript(1159), Strictness::ExceptKeys(&[])).await;
    replay(addr, &transcript(649), Strictness::ExceptKeys(&[])).await;
    gw.shutdown().await;

    let dist = tempfile::tempdir().unwrap();
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>t</title>\n",
    )
    .unwrap();
    std::fs::create_dir(dist.path().join("assets")).unwrap();
    std::fs::write(dist.path().join("assets/app.js"), "console.log(1);\n").unwrap();
    let dir = dist.path().to_path_buf();
    std::fs::write(dist.path().join("x.json"), "{\"a\":1}").unwrap();
    let gw = common::start_with(|c| {
        c.nanomq.static_dir = Some(dir.clone());
        c.nanomq.cors_origins = vec!["http://localhost:5173".to_string()];
    })
    .await;
    let addr = nanomq_addr(&gw);
    // 8.D's static files, without credentials.
    replay_lines(addr, &[1108, 1116, 1132], Strictness::ExceptKeys(&[])).await;
    // JavaScript is labelled with today's registered type (RFC 9239), not nng's.
    let r = send(addr, &parse_curl(&transcript(1124).command)).await;
    assert_eq!(
        (r.status, r.header("content-type"), r.text().as_str()),
        (200, Some("text/javascript"), "console.log(1);\n")
    );
    replay(addr, &transcript(1139), Strictness::ExceptKeys(&[])).await;
    replay(addr, &transcript(1149), Strictness::ExceptKeys(&[])).await;
    // The preflight is answered for the configured origin, before auth.
    let mut preflight = parse_curl(&transcript(1159).command);
    preflight.target = "/api/v4/brokers".to_string();
    let r = send(addr, &preflight).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let mut cross = get("/api/v4/nodes");
    cross
        .headers
        .push(("Origin".to_string(), "http://localhost:5173".to_string()));
    let r = send(addr, &cross).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let mut other = get("/api/v4/nodes");
    other
        .headers
        .push(("Origin".to_string(), "http://evil.example".to_string()));
    let r = send(addr, &other).await;
    assert_eq!(r.header("access-control-allow-origin"), None);
    gw.shutdown().await;
}

#[test]
fn transcript_fixture_parses() {
    let all = transcripts();
    assert_eq!(all.len(), 150);
    let t = transcript(15);
    assert_eq!(t.status, 200);
    assert_eq!(t.header("Content-Length"), Some("4715"));
    let req = parse_curl(&transcript(450).command);
    assert_eq!(req.method, "POST");
    assert_eq!(req.target, "/api/v1");
    assert_eq!(req.body.as_deref(), Some(&b"not json"[..]));
    assert_eq!(
        header_of(&req.headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(basic("admin:public"), "Basic YWRtaW46cHVibGlj");
    assert_eq!(base64_encode(b"Hi", true), "SGk");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_writes_apply_or_report() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    // Writing back what was read is clean.
    let whole = send(addr, &get("/api/v4/configuration")).await.text();
    let data = &whole[whole.find("\"data\":").unwrap() + 7..whole.len() - 1];
    let r = send(
        addr,
        &post("/api/v4/configuration", &format!("{{\"data\":{data}}}")),
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"code":0}"#));
    // Changed values: applied where mqgate has the setting, reported otherwise.
    let r = send(
        addr,
        &post(
            "/api/v4/configuration/basic",
            r#"{"data":{"basic":{"msq_len":99,"allow_anonymous":false,"max_packet_size":2,"num_taskq_thread":1234},"http_server":{"port":1},"sqlite":{"enable":false},"webhook":{"enable":true}}}"#,
        ),
    )
    .await;
    assert_eq!(
        r.text(),
        r#"{"code":0,"not_applied":["basic.num_taskq_thread","http_server.port","webhook.enable"]}"#
    );
    let hot = gw.gateway.management().config().hot;
    assert_eq!(
        (
            hot.max_queued_messages,
            hot.allow_anonymous,
            hot.max_packet_size
        ),
        (99, false, 2048)
    );
    let r = send(addr, &get("/api/v4/configuration/basic")).await.text();
    assert!(
        r.contains(r#""max_packet_size":2,"client_max_packet_size":0,"msq_len":99"#),
        "{r}"
    );
    // A refused value is reported, the others still applied.
    let r = send(
        addr,
        &post(
            "/api/v4/reload",
            r#"{"data":{"keepalive_backoff":0.5,"msq_len":100,"allow_anonymous":"yes"}}"#,
        ),
    )
    .await;
    assert_eq!(
        r.text(),
        r#"{"code":0,"not_applied":["allow_anonymous","keepalive_backoff"]}"#
    );
    assert_eq!(
        gw.gateway.management().config().hot.max_queued_messages,
        100
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_control_and_limits() {
    let mut gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let r = send(addr, &post("/api/v1", r#"{"req":10,"seq":3}"#)).await;
    assert_eq!(
        (r.status, r.text().as_str(), r.header("content-type")),
        (
            400,
            r#"{"code":107,"seq":3,"rep":10}"#,
            Some("application/json")
        )
    );
    let big = format!(r#"{{"req":2,"seq":1,"pad":"{}"}}"#, "x".repeat(128 * 1024));
    let r = send(addr, &post("/api/v1", &big)).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
    let r = send(addr, &post("/api/v1", r#"{"req":13,"seq":4}"#)).await;
    assert_eq!(
        r.text(),
        r#"{"code":0,"seq":4,"rep":13,"data":[[{"topic":"","cld_cnt":0}]]}"#
    );
    let r = send(
        addr,
        &post("/api/v1", r#"{"req":10,"seq":5,"action":"stop"}"#),
    )
    .await;
    assert_eq!(r.text(), r#"{"code":0,"seq":5,"rep":10}"#);
    tokio::time::timeout(Duration::from_secs(10), gw.gateway.stopped())
        .await
        .expect("stopped by v1 req 10");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_persistent_sessions_are_listed_as_disconnected() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let mut o = gw.v4_options("sleeper");
    o.set_clean_session(false);
    let c = common::connect_v4(o).await;
    c.client
        .subscribe("sleep/t", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_for_subscriptions(&gw, 1).await;
    c.client.disconnect().await.unwrap();
    let mut listed = String::new();
    for _ in 0..100 {
        listed = send(addr, &get("/api/v4/clients?conn_state=disconnected"))
            .await
            .text();
        if listed.contains("sleeper") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        listed,
        r#"{"code":0,"data":[{"client_id":"sleeper","username":"","keepalive":30,"conn_state":"disconnected","clean_start":false,"proto_name":"MQTT","proto_ver":4}]}"#
    );
    let r = send(addr, &post("/api/v1", r#"{"req":5,"seq":1}"#)).await;
    assert!(r.text().contains(r#""connect_status":0"#), "{}", r.text());
    // Subscribing on behalf of the offline session works too.
    let r = send(
        addr,
        &post(
            "/api/v4/mqtt/subscribe",
            r#"{"topic":"sleep/u","clientid":"sleeper"}"#,
        ),
    )
    .await;
    assert_eq!(r.text(), r#"{"code":0}"#);
    gw.shutdown().await;
}

/// The v1 documentation's examples, as written (one client like the docs' own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_documentation_examples() {
    let gw = common::start().await;
    let addr = nanomq_addr(&gw);
    let mut o = gw.v4_options("nanomq-ebd54382");
    o.set_keep_alive(Duration::from_secs(60));
    o.set_credentials("nanmq", "");
    let c = common::connect_v4(o).await;
    c.client
        .subscribe("a/b/c", rumqttc::QoS::AtMostOnce)
        .await
        .unwrap();
    wait_for_subscriptions(&gw, 1).await;
    let doc = |command: &str| parse_curl(&format!("$ curl {command}"));
    let cases = [
        (
            r#"-i -u admin:public -X POST http://localhost:8081/api/v1 -d '{"req": 2,"seq": 1111111}'"#,
            r#"{"code":0,"seq":1111111,"rep":2,"data":{"client_size":1,"message_in":4,"message_out":0,"message_drop":4}}"#,
        ),
        (
            r#"-i -u admin:public -X POST http://localhost:8081/api/v1 -d '{"req": 4,"seq": 1111111}'"#,
            r#"{"code":0,"seq":1111111,"rep":4,"data":[{"client_id":"nanomq-ebd54382","subscriptions":[{"topic":"a/b/c","qos":0}]}]}"#,
        ),
        (
            r#"-i -u admin:public -X POST http://localhost:8081/api/v1 -d '{"req": 5,"seq": 1111111}'"#,
            r#"{"code":0,"seq":1111111,"rep":5,"data":[{"client_id":"nanomq-ebd54382","username":"nanmq","keepalive":60,"protocol":4,"connect_status":1,"message_receive":0}]}"#,
        ),
    ];
    for (command, expected) in cases {
        let r = send(addr, &doc(command)).await;
        assert_eq!(r.status, 200, "{command}");
        assert_like(
            &parse_json(expected.as_bytes()),
            &r.json(),
            "$",
            Strictness::ExceptKeys(&[]),
        );
    }
    // req 11 with GET and a JSON body, as the docs send it.
    let r = send(
        addr,
        &doc(r#"-X GET -H 'Authorization: Basic YWRtaW46cHVibGlj' -H 'Content-Type: application/json' http://localhost:8081/api/v1 -d '{"req": 11, "seq": 9999}'"#),
    )
    .await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    assert!(
        text.starts_with(r#"{"code":0,"seq":9999,"rep":11,"data":{"url":"nmq-tcp://"#),
        "{text}"
    );
    assert!(
        text.contains(r#""http_server":{"enable":true,"port":"#),
        "{text}"
    );
    // req 12 with the documented body: what mqgate has is applied, the rest reported.
    let mut req = doc(
        r#"-X POST -H 'Authorization: Basic YWRtaW46cHVibGlj' -H 'Content-Type: application/json' http://localhost:8081/api/v1"#,
    );
    req.body = Some(include_bytes!("fixtures/nanomq/v1-doc-req12.json").to_vec());
    let r = send(addr, &req).await;
    let text = r.text();
    assert!(
        text.starts_with(r#"{"code":0,"seq":111,"rep":12,"not_applied":["#),
        "{text}"
    );
    for reported in [
        "\"bridge.bridge_mode\"",
        "\"num_taskq_thread\"",
        "\"tls.url\"",
    ] {
        assert!(text.contains(reported), "{text}");
    }
    assert!(
        !text.contains("\"msq_len\"") && !text.contains("\"allow_anonymous\""),
        "{text}"
    );
    assert_eq!(gw.gateway.management().config().hot.max_queued_messages, 64);
    gw.shutdown().await;
}

// ---------------------------------------------------------------------------------
// get_file / write_file, as nanomq-admin's Configuration and Access pages use them.

/// nanomq-admin's HTTP client: axios with Basic auth and a default
/// `Content-Type: application/json` on every request, GET included.
fn nanomq_admin_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        basic("admin:public").parse().expect("header"),
    );
    headers.insert("content-type", "application/json".parse().expect("header"));
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn admin_call(response: reqwest::RequestBuilder) -> (u16, Option<String>, serde_json::Value) {
    let response = response.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.text().await.unwrap();
    let json = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (status, content_type, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanomq_admin_access_and_configuration_pages() {
    use serde_json::json;
    let (files, gw) = common::start_with_access_files("users.conf").await;
    let (password_file, acl_file) = (files.password_file.clone(), files.acl_file.clone());
    let api = format!("{}/api/v4", gw.base_url("nanomq"));
    let admin = nanomq_admin_client();

    // Configuration page: the broker's configuration file. None written yet: mqgate's
    // live settings, which config_update takes back without a complaint.
    let (status, content_type, body) =
        admin_call(admin.get(format!("{api}/get_file?default=true"))).await;
    assert_eq!(
        (status, content_type.as_deref()),
        (200, Some("application/json"))
    );
    assert_eq!(body["code"], 0);
    let config_path = gw.data_dir.path().join("nanomq.conf");
    assert_eq!(body["data"]["path"], config_path.display().to_string());
    let live = body["data"]["content"].as_str().unwrap().to_string();
    assert!(live.contains("max_mqueue_len = "), "{live}");
    let (status, _, body) = admin_call(
        admin
            .post(format!("{api}/config_update"))
            .header("content-type", "text/plain")
            .body(live.clone()),
    )
    .await;
    assert_eq!((status, body), (200, json!({"code": 0})));
    let (_, _, body) = admin_call(admin.get(format!("{api}/get_file?default=true"))).await;
    assert_eq!(body["data"]["content"], live.as_str());
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), live);

    // Access page: both files at once, by NanoMQ's default paths, `/` sent as `%2F`.
    let (pwd, acl) = tokio::join!(
        admin_call(admin.get(format!("{api}/get_file?path=%2Fetc%2Fnanomq_pwd.conf"))),
        admin_call(admin.get(format!("{api}/get_file?path=%2Fetc%2Fnanomq_acl.conf"))),
    );
    assert_eq!(
        pwd,
        (
            200,
            Some("application/json".to_string()),
            json!({"code":0,"data":{"path":"/etc/nanomq_pwd.conf","content":"\"admin\": \"public\"\n"}})
        )
    );
    assert_eq!(
        acl.2["data"]["content"],
        "rules = [\n\t{\"permit\": \"allow\"}\n]\n"
    );
    // Save: the files as nanomq-admin writes them, then a restart.
    let users = "\"admin\": \"public\"\n\"client\": \"s3cr\\\"et\"\n";
    let rules = "rules = [\n\t# ACL rules are matched top-to-bottom\n\t{\"permit\":\"allow\",\"username\":\"admin\",\"action\":\"pubsub\",\"topics\":[\"#\"]},\n\t{\"permit\":\"deny\",\"action\":\"subscribe\",\"topics\":[\"test/nosubscribe\"]}\n]";
    for (path, content) in [
        ("/etc/nanomq_pwd.conf", users),
        ("/etc/nanomq_acl.conf", rules),
    ] {
        let (status, _, body) = admin_call(
            admin
                .post(format!("{api}/write_file"))
                .json(&json!({"data": {"path": path, "content": content}})),
        )
        .await;
        assert_eq!((status, body), (200, json!({"code": 0})), "{path}");
    }
    assert_eq!(std::fs::read_to_string(&password_file).unwrap(), users);
    assert_eq!(std::fs::read_to_string(&acl_file).unwrap(), rules);
    // Read back as the page does after saving.
    let (_, _, body) =
        admin_call(admin.get(format!("{api}/get_file?path=%2Fetc%2Fnanomq_acl.conf"))).await;
    assert_eq!(body["data"]["content"], rules);

    // Refused: paths outside the allow-list, for reading and writing.
    let outside = files.dir.path().join("outside.conf");
    for query in [
        "path=%2Fetc%2Fpasswd".to_string(),
        format!("path={}", outside.display()),
        "path=..%2F..%2Fetc%2Fshadow".to_string(),
    ] {
        let (status, _, body) = admin_call(admin.get(format!("{api}/get_file?{query}"))).await;
        assert_eq!((status, body), (404, json!({"code": 102})), "{query}");
    }
    let (status, _, body) = admin_call(
        admin
            .post(format!("{api}/write_file"))
            .json(&json!({"data": {"path": outside.display().to_string(), "content": "a = 1"}})),
    )
    .await;
    assert_eq!((status, body), (404, json!({"code": 102})));
    assert!(!outside.exists());
    // NanoMQ's other answers.
    for (request, expected) in [
        (
            json!({"data": {"path": "/etc/nanomq_acl.conf", "content": "rules = ["}}),
            (400, 117),
        ),
        (
            json!({"data": {"path": "/etc/nanomq_acl.conf", "content": "[1]"}}),
            (400, 117),
        ),
        (
            json!({"data": {"path": "/etc/nanomq_acl.conf"}}),
            (400, 108),
        ),
        (json!({"data": {"content": "a = 1"}}), (400, 108)),
        (json!([1]), (400, 109)),
    ] {
        let (status, _, body) =
            admin_call(admin.post(format!("{api}/write_file")).json(&request)).await;
        assert_eq!(
            (status, body["code"].as_u64().unwrap()),
            (expected.0, expected.1 as u64)
        );
    }
    assert_eq!(std::fs::read_to_string(&acl_file).unwrap(), rules);
    let (status, _, body) = admin_call(admin.get(format!("{api}/get_file"))).await;
    assert_eq!((status, body), (400, json!({"code": 108})));
    std::fs::remove_file(&acl_file).unwrap();
    let (status, content_type, body) =
        admin_call(admin.get(format!("{api}/get_file?path=%2Fetc%2Fnanomq_acl.conf"))).await;
    assert_eq!(
        (status, content_type.as_deref(), body),
        (410, Some("application/json"), json!({"code": 108}))
    );
    let (status, _, body) =
        admin_call(reqwest::Client::new().get(format!("{api}/get_file?default=true"))).await;
    assert_eq!((status, body), (401, json!({"code": 104})));

    // The file back as the page saves it, then the page's last step: the broker
    // restarts with the new users and rules.
    let (status, _, body) = admin_call(
        admin
            .post(format!("{api}/write_file"))
            .json(&json!({"data": {"path": "/etc/nanomq_acl.conf", "content": rules}})),
    )
    .await;
    assert_eq!((status, body), (200, json!({"code": 0})));
    let before = gw.gateway.management().node_stats().started_at_ms;
    let (status, _, body) = admin_call(admin.post(format!("{api}/ctrl/restart"))).await;
    assert_eq!((status, body), (200, json!({"code": 0})));
    let restarted = async {
        while gw.gateway.management().node_stats().started_at_ms == before {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), restarted)
        .await
        .expect("the gateway restarted");
    // The saved files are in force: the password of `client`, the rule on test/nosubscribe.
    let mut options = gw.v4_options("access-check");
    options.set_credentials("client", "wrong");
    assert_eq!(
        common::try_connect_v4(options).await,
        Ok(rumqttc::ConnectReturnCode::BadUserNamePassword)
    );
    let mut options = gw.v4_options("access-check");
    options.set_credentials("client", "s3cr\"et");
    let mut c = common::connect_v4(options).await;
    c.client
        .subscribe("test/nosubscribe", rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    let codes = loop {
        match tokio::time::timeout(Duration::from_secs(5), c.events.recv()).await {
            Ok(Some(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack)))) => {
                break ack.return_codes
            }
            Ok(Some(_)) => continue,
            other => panic!("no SUBACK: {other:?}"),
        }
    };
    assert_eq!(codes, [rumqttc::SubscribeReasonCode::Failure]);
    gw.shutdown().await;
}

/// Without password and ACL files configured, the Access page works on the data
/// directory's `nanomq_pwd.conf` and `nanomq_acl.conf`: they read as empty until
/// saved, and once saved and restarted the broker enforces them. The Configuration
/// page works as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_page_works_without_access_files_configured() {
    use serde_json::json;
    let gw = common::start().await;
    let api = format!("{}/api/v4", gw.base_url("nanomq"));
    let admin = nanomq_admin_client();
    let read = |file: &str| admin.get(format!("{api}/get_file?path=%2Fetc%2F{file}"));
    let (_, _, pwd) = admin_call(read("nanomq_pwd.conf")).await;
    let (_, _, acl) = admin_call(read("nanomq_acl.conf")).await;
    assert_eq!(
        pwd,
        json!({"code": 0, "data": {"path": "/etc/nanomq_pwd.conf", "content": ""}})
    );
    assert_eq!(acl["data"]["content"], "rules = []\n");
    let (status, _, body) = admin_call(admin.get(format!("{api}/get_file/?default=true"))).await;
    assert_eq!(status, 200);
    assert!(body["data"]["content"]
        .as_str()
        .unwrap()
        .contains("allow_anonymous = true"));

    let saves = [
        ("/etc/nanomq_pwd.conf", "\"meter\": \"m-pass\"\n"),
        (
            "/etc/nanomq_acl.conf",
            "rules = [\n  {\"permit\": \"deny\", \"action\": \"subscribe\", \"topics\": [\"secret/#\"]}\n]\n",
        ),
    ];
    for (path, content) in saves {
        let save = admin.post(format!("{api}/write_file"));
        let (status, _, body) =
            admin_call(save.json(&json!({"data": {"path": path, "content": content}}))).await;
        assert_eq!((status, body), (200, json!({"code": 0})), "{path}");
    }
    let (_, _, pwd) = admin_call(read("nanomq_pwd.conf")).await;
    assert_eq!(pwd["data"]["content"], saves[0].1);
    let before = gw.gateway.management().node_stats().started_at_ms;
    let (_, _, body) = admin_call(admin.post(format!("{api}/ctrl/restart"))).await;
    assert_eq!(body["code"], 0);
    let gateway = &gw.gateway;
    assert!(
        common::eventually_async(10, move || {
            let changed = gateway.management().node_stats().started_at_ms != before;
            async move { changed }
        })
        .await
    );

    let mut wrong = gw.v4_options("access-meter");
    wrong.set_credentials("meter", "nope");
    assert_eq!(
        common::try_connect_v4(wrong).await,
        Ok(rumqttc::ConnectReturnCode::BadUserNamePassword)
    );
    let mut meter = gw.v4_options("access-meter");
    meter.set_credentials("meter", "m-pass");
    let mut meter = common::connect_v4(meter).await;
    for (filter, expected) in [
        ("secret/plans", rumqttc::SubscribeReasonCode::Failure),
        (
            "open/plans",
            rumqttc::SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce),
        ),
    ] {
        meter
            .client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .unwrap();
        let code = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack))) =
                    meter.events.recv().await
                {
                    return ack.return_codes[0];
                }
            }
        })
        .await
        .expect("SUBACK");
        assert_eq!(code, expected, "{filter}");
    }
    gw.shutdown().await;
}

/// Swagger UI's "Try it out", pre-filled from the OpenAPI document, gets NanoMQ's
/// success answer from a default gateway for every operation (with one MQTT client
/// `example` connected, the session the subscribe examples name); bridges and rules
/// answer as a NanoMQ without any. `ctrl` is left out: its example restarts the gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_openapi_example_succeeds() {
    let gw = common::start().await;
    let base = gw.base_url("nanomq");
    let doc = serde_json::to_value(mqgate_nanomq::openapi(&base)).unwrap();
    let _example = common::connect_v4(gw.v4_options("example")).await;
    let http = reqwest::Client::new();
    let mut tried = 0;
    for request in common::example_requests(&doc) {
        if request.target.starts_with("/api/v4/ctrl/") {
            continue;
        }
        tried += 1;
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
        let mut call = http
            .request(method, format!("{base}{}", request.target))
            .basic_auth("admin", Some("public"));
        if let Some((content_type, body)) = &request.body {
            let text = match body {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            call = call.header("content-type", content_type).body(text);
        }
        let response = call.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let code = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("code").cloned());
        let target = request.target.split('?').next().unwrap();
        let expected = match (request.method.as_str(), target) {
            (_, t) if t.starts_with("/api/v4/rules") => (200, Some(111)),
            ("PUT", "/api/v4/bridges/emqx") => (404, Some(115)),
            ("POST", "/api/v4/bridges/switch/emqx") => (204, None),
            ("POST", t) if t.starts_with("/api/v4/bridges/") => (404, Some(108)),
            (_, "/api/v4/metrics" | "/api/v4/prometheus") => (200, None),
            _ => (200, Some(0)),
        };
        assert_eq!(
            (status, code.and_then(|c| c.as_u64())),
            expected,
            "{request:?}: {text}"
        );
    }
    assert_eq!(tried, 38);
    gw.shutdown().await;
}
