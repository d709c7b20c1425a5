//! End-to-end tests of the Easemob dialect: the whole gateway, real HTTP and real
//! MQTT clients (rumqttc). Response shapes are compared with the document's
//! examples in tests/fixtures/easemob/doc_examples.json.

mod common;

use std::time::Duration;

use mqgate_kit::clock::now_ms;
use mqgate_kit::http::time::format_datetime;
use rumqttc::{ConnectReturnCode, QoS};
use serde_json::{json, Value};

use common::TestGateway;

const APP_ID: &str = "mq7g4e";

fn examples() -> Value {
    serde_json::from_str(include_str!("fixtures/easemob/doc_examples.json")).unwrap()
}

/// Every key of `example` (recursively, first element of arrays) is in `ours`,
/// and `ours` has no key the example lacks.
fn assert_same_keys(ours: &Value, example: &Value, at: &str) {
    match (ours, example) {
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<&String> = a.keys().collect();
            let mut kb: Vec<&String> = b.keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "keys at {at}");
            for (k, v) in b {
                if !v.is_null() && !a[k].is_null() {
                    assert_same_keys(&a[k], v, &format!("{at}.{k}"));
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let (Some(x), Some(y)) = (a.first(), b.first()) {
                assert_same_keys(x, y, &format!("{at}[0]"));
            }
        }
        _ => {}
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn new(gw: &TestGateway) -> Api {
        let mut api = Api {
            http: reqwest::Client::new(),
            base: gw.base_url("easemob"),
            token: String::new(),
        };
        let (status, body) = api
            .post_with(
                "/openapi/rm/app/token",
                None,
                json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        api.token = body["body"]["access_token"].as_str().unwrap().to_string();
        api
    }

    async fn post_with(&self, path: &str, auth: Option<&str>, body: Value) -> (u16, Value) {
        self.post_raw(path, auth, body.to_string()).await
    }

    async fn post_raw(&self, path: &str, auth: Option<&str>, body: String) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/json"
        );
        (status, response.json().await.unwrap())
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_with(path, Some(&self.token.clone()), body).await
    }

    async fn get_with(
        &self,
        path: &str,
        auth: Option<&str>,
        query: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.base)).query(query);
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        self.get_with(path, Some(&self.token.clone()), query).await
    }

    /// Polls a GET until `done` holds (records are written in batches).
    async fn get_until(
        &self,
        path: &str,
        query: &[(&str, &str)],
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (status, body) = self.get(path, query).await;
            assert_eq!(status, 200, "{path}: {body}");
            if done(&body) || tokio::time::Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn user_token(&self, username: &str, cid: Option<&str>) -> String {
        let mut body = json!({"username": username});
        if let Some(cid) = cid {
            body["cid"] = json!(cid);
        }
        let (status, reply) = self.post("/openapi/rm/user/token", body).await;
        assert_eq!(status, 200, "{reply}");
        reply["body"]["access_token"].as_str().unwrap().to_string()
    }
}

fn options(
    gw: &TestGateway,
    client_id: &str,
    username: &str,
    password: &str,
) -> rumqttc::MqttOptions {
    let mut o = gw.v4_options(client_id);
    o.set_credentials(username, password);
    o
}

fn err(code: u16, msg: &str) -> Value {
    json!({"code": code, "msg": msg, "body": null})
}

fn publish_err(msg: &str) -> Value {
    json!({"code": 400, "msg": msg, "body": {}})
}

/// A window around now, as the queries take it.
fn window() -> (String, String) {
    let now = now_ms();
    (format_datetime(now - 60_000), format_datetime(now + 60_000))
}

#[tokio::test]
async fn the_documented_flow_from_app_token_to_records() {
    let gw = common::start().await;
    let ex = examples();
    let api = Api::new(&gw).await;
    assert_eq!(api.token.len(), 130);
    assert!(api.token.starts_with("YWMt"));
    let (_, app_reply) = api
        .post_with(
            "/openapi/rm/app/token",
            None,
            json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}),
        )
        .await;
    assert_same_keys(&app_reply, &ex["app_token"], "app_token");
    assert_eq!(app_reply["body"]["expires_in"], 5183999);
    assert_eq!(
        app_reply["body"]["application"],
        "6d716761-7465-4e61-8065-6173656d6f62"
    );

    // User tokens, one bound to its client id.
    let sender_id = format!("sender@{APP_ID}");
    let receiver_id = format!("receiver@{APP_ID}");
    let (status, reply) = api
        .post(
            "/openapi/rm/user/token",
            json!({"username": "test1", "cid": sender_id}),
        )
        .await;
    assert_eq!(status, 200);
    assert_same_keys(&reply, &ex["mqtt_user_token"], "user_token");
    let sender_token = reply["body"]["access_token"].as_str().unwrap().to_string();
    assert_eq!(sender_token.len(), 27);
    assert_eq!(reply["body"]["expires_in"], 259200);
    assert_eq!(reply["body"]["user"]["username"], "test1");
    assert_eq!(reply["body"]["user"]["type"], "user");
    assert_eq!(reply["body"]["user"]["activated"], true);
    let receiver_token = api.user_token("test2", None).await;

    let mut receiver =
        common::connect_v4(options(&gw, &receiver_id, "test2", &receiver_token)).await;
    receiver
        .client
        .subscribe("room/1", QoS::AtLeastOnce)
        .await
        .unwrap();
    let sender = common::connect_v4(options(&gw, &sender_id, "test1", &sender_token)).await;
    // The SUBACK has arrived once the subscription is visible.
    let subscribed = api
        .get_until(
            "/openapi/rm/broker/clientInfo",
            &[("clientid", &receiver_id)],
            |b| b["body"]["total"] == 1,
        )
        .await;
    assert_eq!(
        subscribed["body"]["dataobject"],
        json!([{"topic": "room/1", "qos": 1}])
    );

    // Publish by HTTP to two topics: one id per topic.
    let (status, reply) = api
        .post(
            "/openapi/v1/rm/chat/publish",
            json!({"clientid": sender_id, "payload": "aGVsbG8=", "encoding": "base64", "topics": ["room/1", "room/2"], "qos": 1, "retain": 0}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_same_keys(&reply, &ex["publish"], "publish");
    let mids: Vec<String> = reply["body"]["mids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    assert_eq!(mids.len(), 2);
    for mid in &mids {
        assert_eq!(mid.len(), 16);
        assert!(
            mid.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "{mid}"
        );
    }
    assert_ne!(mids[0], mids[1]);
    let http_mid = mids[0].clone();
    let got = common::next_publish(&mut receiver, 5)
        .await
        .expect("HTTP message delivered");
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("room/1", &b"hello"[..])
    );

    // Publish by MQTT.
    sender
        .client
        .publish("room/1", QoS::AtLeastOnce, false, "from mqtt")
        .await
        .unwrap();
    let got = common::next_publish(&mut receiver, 5)
        .await
        .expect("MQTT message delivered");
    assert_eq!(&got.payload[..], b"from mqtt");

    let (begin, end) = window();
    let w = [("beginTime", begin.as_str()), ("endTime", end.as_str())];

    // Uplink history of the topic: both messages, newest first, with their contents.
    let messages = api
        .get_until(
            "/openapi/rm/message/messages",
            &[("topic", "room/1"), w[0], w[1], ("encode", "utf-8")],
            |b| b["body"]["total"] == 2,
        )
        .await;
    assert_same_keys(&messages, &ex["message_messages"], "messages");
    let list = messages["body"]["messages"].as_array().unwrap();
    assert_eq!(list[1]["messageId"], json!(http_mid));
    assert_eq!(list[1]["message"], "hello");
    assert_eq!(list[1]["connectionId"], "0000000000000000");
    assert_eq!(list[1]["clientId"], json!(sender_id));
    assert_eq!(list[0]["message"], "from mqtt");
    assert_ne!(list[0]["connectionId"], "0000000000000000");
    let mqtt_mid = list[0]["messageId"].as_str().unwrap().to_string();

    // Sender: two uplinks on room/1 plus one on room/2; receiver: two downlinks.
    let sent = api
        .get_until(
            "/openapi/rm/message/record",
            &[("clientid", &sender_id), w[0], w[1]],
            |b| b["body"]["totalCount"] == 3,
        )
        .await;
    assert_same_keys(&sent, &ex["message_record"], "message_record");
    let rows = sent["body"]["data"].as_array().unwrap();
    assert!(rows
        .iter()
        .all(|r| r["direction"] == "uplink" && r["cid"] == json!(sender_id)));
    let sent_mids: Vec<&str> = rows.iter().map(|r| r["mid"].as_str().unwrap()).collect();
    assert_eq!(
        sent_mids,
        vec![mids[0].as_str(), mids[1].as_str(), mqtt_mid.as_str()]
    );

    let received = api
        .get_until(
            "/openapi/rm/message/record",
            &[("clientid", &receiver_id), w[0], w[1], ("order", "DESC")],
            |b| b["body"]["totalCount"] == 2,
        )
        .await;
    let rows = received["body"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["direction"] == "downlink"));
    assert_eq!(
        rows[0]["mid"],
        json!(mqtt_mid),
        "DESC puts the newest first"
    );
    assert_eq!(rows[1]["mid"], json!(http_mid));

    // Per-message traces: the same ids on the publish and the delivery side.
    for (mid, connid_is_zero) in [(&http_mid, true), (&mqtt_mid, false)] {
        let trace = api
            .get_until(
                "/openapi/rm/message/publish",
                &[("clientid", &sender_id), ("messageid", mid)],
                |b| b["body"]["totalCount"] == 1,
            )
            .await;
        assert_same_keys(&trace, &ex["message_publish"], "message_publish");
        let row = &trace["body"]["data"][0];
        assert_eq!(row["mid"], json!(mid));
        assert_eq!(row["cid"], json!(sender_id));
        assert_eq!(row["topic"], "room/1");
        assert_eq!(row["qos"], 1);
        assert_eq!(row["status"], "normal");
        assert_eq!(row["connid"] == "0000000000000000", connid_is_zero);

        let delivered = api
            .get_until(
                "/openapi/rm/message/subscribe",
                &[("clientid", &sender_id), ("messageid", mid), w[0], w[1]],
                |b| b["body"]["totalCount"] == 1,
            )
            .await;
        assert_same_keys(&delivered, &ex["message_subscribe"], "message_subscribe");
        assert_eq!(delivered["body"]["data"][0]["cid"], json!(receiver_id));
        assert_eq!(delivered["body"]["data"][0]["qos"], 1);
    }

    // Message content by id, base64 by default.
    let (status, content) = api
        .get("/openapi/rm/message/message", &[("messageId", &http_mid)])
        .await;
    assert_eq!(status, 200);
    assert_same_keys(&content, &ex["message_message"], "message_message");
    assert_eq!(content["body"]["message"], "aGVsbG8=");
    assert_eq!(content["body"]["topic"], "room/1");

    // Connection records of the sender: a connect with the CONNECT's details.
    let records = api
        .get_until(
            "/openapi/rm/device/record",
            &[("clientid", &sender_id), w[0], w[1]],
            |b| b["body"]["totalCount"] == 1,
        )
        .await;
    assert_same_keys(&records, &ex["device_record"], "device_record");
    let row = &records["body"]["data"][0];
    assert_eq!(row["status"], "connect");
    assert_eq!(row["reason"], "normal");
    let detail: Value = serde_json::from_str(row["detail"].as_str().unwrap()).unwrap();
    assert_same_keys(
        &detail,
        &serde_json::from_str(
            ex["device_record"]["body"]["data"][0]["detail"]
                .as_str()
                .unwrap(),
        )
        .unwrap(),
        "detail",
    );
    assert_eq!(detail["version"], 4);
    assert_eq!(detail["keep_alive"], 30);
    assert_eq!(detail["network"], "mod_mqtt");
    assert_eq!(detail["clean_start"], true);

    // A disconnect is recorded too.
    sender.client.disconnect().await.unwrap();
    let records = api
        .get_until(
            "/openapi/rm/device/record",
            &[("clientid", &sender_id), w[0], w[1]],
            |b| b["body"]["totalCount"] == 2,
        )
        .await;
    assert_eq!(records["body"]["data"][1]["status"], "disconnect");
    assert_eq!(records["body"]["data"][1]["reason"], "normal");
    assert_eq!(
        records["body"]["data"][0]["connid"],
        records["body"]["data"][1]["connid"]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn app_token_errors_and_authorization_forms() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let ex = examples();
    let cases = [
        (json!({}), "app_client_id can not be empty"),
        (
            json!({"appClientId": "", "appClientSecret": "x"}),
            "app_client_id can not be empty",
        ),
        (
            json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn"}),
            "app_client_secret can not be empty",
        ),
        (
            json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "wrong"}),
            "app_client_id does not match",
        ),
        (
            json!({"appClientId": "YXA6other", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}),
            "app_client_id does not match",
        ),
    ];
    for (body, msg) in cases {
        let (status, reply) = api.post_with("/openapi/rm/app/token", None, body).await;
        assert_eq!((status, reply), (400, err(400, msg)));
    }
    assert_eq!(
        api.post_raw("/openapi/rm/app/token", None, "not json".into())
            .await,
        (400, ex["app_token_error"].clone())
    );

    // The raw token, with a leading space, or as Bearer.
    for header in [
        api.token.clone(),
        format!(" {}", api.token),
        format!("Bearer {}", api.token),
    ] {
        let (status, reply) = api
            .get_with("/openapi/rm/users/appid", Some(&header), &[])
            .await;
        assert_eq!((status, reply), (200, ex["users_empty"].clone()));
    }
    // Missing, unknown, or a user token instead of the app token: 403.
    let user_token = api.user_token("u", None).await;
    for header in [
        None,
        Some(""),
        Some("YWMtnotatoken"),
        Some(user_token.as_str()),
    ] {
        let (status, reply) = api.get_with("/openapi/rm/users/appid", header, &[]).await;
        assert_eq!((status, reply), (403, ex["access_deny"].clone()));
    }
    let (status, reply) = api
        .post_with("/openapi/rm/user/token", None, json!({"username": "a"}))
        .await;
    assert_eq!((status, reply), (403, ex["access_deny"].clone()));

    // Unknown paths and methods: JSON 404.
    let (status, reply) = api.get("/openapi/rm/nothing", &[]).await;
    assert_eq!((status, reply), (404, err(404, "page not found")));
    let (status, reply) = api.get("/openapi/rm/app/token", &[]).await;
    assert_eq!((status, reply), (404, err(404, "page not found")));

    // Under /app/{AppID}: ours works, another's is refused.
    let (status, _) = api
        .get(&format!("/app/{APP_ID}/openapi/rm/users/appid"), &[])
        .await;
    assert_eq!(status, 200);
    let (status, reply) = api.get("/app/zz99zz/openapi/rm/users/appid", &[]).await;
    assert_eq!(
        (status, reply),
        (400, err(400, "the appid cannnot use the service"))
    );
    let (status, reply) = api
        .post_with(
            &format!("/app/{APP_ID}/openapi/rm/app/token"),
            None,
            json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    gw.shutdown().await;
}

#[tokio::test]
async fn app_tokens_expire() {
    let gw = common::start_with(|c| c.easemob.app_token_ttl_secs = 1).await;
    let api = Api::new(&gw).await;
    let (status, _) = api.get("/openapi/rm/users/appid", &[]).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, reply) = api.get("/openapi/rm/users/appid", &[]).await;
    assert_eq!(
        (status, reply),
        (403, json!({"code": 403, "msg": "access deny"}))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn user_token_errors_and_im_tokens() {
    let gw = common::start_with(|c| {
        c.easemob.users = vec![mqgate_easemob::ConsoleUser {
            username: "test1".into(),
            password: "123456".into(),
        }]
    })
    .await;
    let api = Api::new(&gw).await;
    let ex = examples();
    let cases = [
        (json!({}), "username can not be empty"),
        (json!({"username": ""}), "username can not be empty"),
        (
            json!({"username": "test1", "password": ""}),
            "password can not be empty",
        ),
        (
            json!({"username": "test1", "password": "nope"}),
            "username and password don't match",
        ),
        (
            json!({"username": "nobody", "password": "123456"}),
            "username and password don't match",
        ),
        (
            json!({"username": "test1", "expires_in": 60}),
            "expires_in should be greater than 60 seconds",
        ),
        (
            json!({"username": "test1", "expires_in": -1}),
            "expires_in should be greater than 60 seconds",
        ),
    ];
    for (body, msg) in cases {
        let (status, reply) = api.post("/openapi/rm/user/token", body).await;
        assert_eq!((status, reply), (400, err(400, msg)));
    }

    // Lifetimes: 61 s is accepted; more than 3 days is cut to 3 days.
    let (_, reply) = api
        .post(
            "/openapi/rm/user/token",
            json!({"username": "a", "expires_in": 61}),
        )
        .await;
    assert_eq!(reply["body"]["expires_in"], 61);
    let (_, reply) = api
        .post(
            "/openapi/rm/user/token",
            json!({"username": "a", "expires_in": 999999}),
        )
        .await;
    assert_eq!(reply["body"]["expires_in"], 259200);

    // An IM token for a configured user; it logs in over MQTT too.
    let (status, reply) = api
        .post(
            "/openapi/rm/user/token",
            json!({"username": "test1", "password": "123456"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_same_keys(&reply, &ex["im_user_token"], "im_user_token");
    let im = reply["body"]["access_token"].as_str().unwrap();
    assert_eq!(im.len(), 130);
    assert!(im.starts_with("YWMt"));
    assert_eq!(reply["body"]["expires_in"], 5183999);
    assert_eq!(reply["body"]["user"]["uuid"].as_str().unwrap().len(), 36);
    let client = common::connect_v4(options(&gw, &format!("im@{APP_ID}"), "test1", im)).await;
    client.client.disconnect().await.unwrap();
    gw.shutdown().await;
}

#[tokio::test]
async fn mqtt_login_with_tokens() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let free = api.user_token("alice", None).await;
    let bound = api.user_token("alice", Some(&format!("d1@{APP_ID}"))).await;

    let attempt =
        |id: String, user: &str, pass: &str| common::try_connect_v4(options(&gw, &id, user, pass));
    assert_eq!(
        attempt(format!("any@{APP_ID}"), "alice", &free).await,
        Ok(ConnectReturnCode::Success)
    );
    assert_eq!(
        attempt(format!("d1@{APP_ID}"), "alice", &bound).await,
        Ok(ConnectReturnCode::Success)
    );
    // A token bound to another client id.
    assert_eq!(
        attempt(format!("d2@{APP_ID}"), "alice", &bound).await,
        Ok(ConnectReturnCode::NotAuthorized)
    );
    // Wrong user name, unknown token, the app token as password.
    assert_eq!(
        attempt(format!("d3@{APP_ID}"), "bob", &free).await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(
        attempt(
            format!("d3@{APP_ID}"),
            "alice",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA"
        )
        .await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    assert_eq!(
        attempt(format!("d3@{APP_ID}"), "alice", &api.token).await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    // Another application's client id; a client id over 64 characters.
    assert_eq!(
        attempt("d4@zz99zz".into(), "alice", &free).await,
        Ok(ConnectReturnCode::NotAuthorized)
    );
    assert_eq!(
        attempt(format!("{}@{APP_ID}", "d".repeat(58)), "alice", &free).await,
        Ok(ConnectReturnCode::BadClientId)
    );
    // Not an Easemob client id: the broker's general policy (anonymous allowed in tests).
    let mut plain = gw.v4_options("plain-client");
    plain.set_credentials("whoever", "whatever");
    assert_eq!(
        common::try_connect_v4(plain).await,
        Ok(ConnectReturnCode::Success)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn duplicate_client_ids_take_over_by_default() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let token = api.user_token("dup", None).await;
    let id = format!("twin@{APP_ID}");
    let mut first = common::connect_v4(options(&gw, &id, "dup", &token)).await;
    let _second = common::connect_v4(options(&gw, &id, "dup", &token)).await;
    // The first connection is closed by the takeover.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = first.events.recv().await {
            if matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::Disconnect)) {
                return true;
            }
        }
        true
    })
    .await;
    assert!(
        closed.is_ok() || first.task.is_finished(),
        "first connection still open"
    );
    let (_, reply) = api.get("/openapi/rm/users/appid", &[]).await;
    assert_eq!(reply["body"]["total"], 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn duplicate_client_ids_can_be_rejected() {
    let gw = common::start_with(|c| {
        c.easemob.duplicate_client_id = mqgate_easemob::DuplicateClientId::Reject
    })
    .await;
    let api = Api::new(&gw).await;
    let token = api.user_token("dup", None).await;
    let id = format!("twin@{APP_ID}");
    let first = common::connect_v4(options(&gw, &id, "dup", &token)).await;
    assert_eq!(
        common::try_connect_v4(options(&gw, &id, "dup", &token)).await,
        Ok(ConnectReturnCode::BadClientId)
    );
    assert!(!first.task.is_finished());
    let (_, info) = api
        .get("/openapi/rm/broker/clientInfo", &[("clientid", &id)])
        .await;
    assert_eq!(info["body"]["status"], "online");
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_errors_match_the_document() {
    let gw = common::start_with(|c| c.mqtt.max_packet_size = 1024).await;
    let api = Api::new(&gw).await;
    let me = format!("pub@{APP_ID}");
    let many: Vec<String> = (0..33).map(|i| format!("t/{i}")).collect();
    let cases = [
        (
            json!({"topics": ["a"], "payload": "x"}),
            "Missing required parameters clientid",
        ),
        (
            json!({"clientid": "", "topics": ["a"], "payload": "x"}),
            "clientid can not be empty",
        ),
        (
            json!({"clientid": "nodevice", "topics": ["a"], "payload": "x"}),
            "invalid clientid",
        ),
        (
            json!({"clientid": "d@zz99zz", "topics": ["a"], "payload": "x"}),
            "clientid and appid doesn't match",
        ),
        (
            json!({"clientid": me, "payload": "x"}),
            "Missing required parameters topics",
        ),
        (
            json!({"clientid": me, "topics": "a", "payload": "x"}),
            "topics must be an array",
        ),
        (
            json!({"clientid": me, "topics": [], "payload": "x"}),
            "topics array can not be empty",
        ),
        (
            json!({"clientid": me, "topics": many, "payload": "x"}),
            "topics array's size can not exceed 32",
        ),
        (
            json!({"clientid": me, "topics": ["a/+"], "payload": "x"}),
            "error_topics_format",
        ),
        (
            json!({"clientid": me, "topics": ["a"]}),
            "Missing required parameters payload",
        ),
        (
            json!({"clientid": me, "topics": ["a"], "payload": ""}),
            "payload can not be empty",
        ),
        (
            json!({"clientid": me, "topics": ["a"], "payload": "***", "encoding": "base64"}),
            "bad base64 payload type",
        ),
        (
            json!({"clientid": me, "topics": ["a"], "payload": "x", "qos": 5}),
            "invalid qos",
        ),
        (
            json!({"clientid": me, "topics": ["a"], "payload": "x".repeat(2000)}),
            "payload_too_larger",
        ),
    ];
    for (body, msg) in cases {
        let (status, reply) = api.post("/openapi/v1/rm/chat/publish", body).await;
        assert_eq!((status, reply), (400, publish_err(msg)));
    }
    let (status, reply) = api
        .post_raw(
            "/openapi/v1/rm/chat/publish",
            Some(&api.token),
            "{oops".into(),
        )
        .await;
    assert_eq!((status, reply), (400, publish_err("bad_json")));
    let (status, reply) = api
        .post(
            "/app/zz99zz/openapi/v1/rm/chat/publish",
            json!({"clientid": me, "topics": ["a"], "payload": "x"}),
        )
        .await;
    assert_eq!(
        (status, reply),
        (400, publish_err("the appid cannnot use the service"))
    );
    let (status, reply) = api
        .post_with(
            "/openapi/v1/rm/chat/publish",
            None,
            json!({"clientid": me, "topics": ["a"], "payload": "x"}),
        )
        .await;
    assert_eq!(
        (status, reply),
        (403, json!({"code": 403, "msg": "access deny"}))
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn publish_sets_retain_qos_and_message_expiry() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let me = format!("pub@{APP_ID}");
    let (status, reply) = api
        .post(
            "/openapi/v1/rm/chat/publish",
            json!({"clientid": me, "topics": ["keep/me"], "payload": "kept", "retain": 1, "qos": 1, "expire": 28000}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");

    // An MQTT 5 subscriber arriving later gets the retained message with its expiry
    // (28000 s is below the documented range and is raised to 86400 s).
    let token = api.user_token("v5", None).await;
    let mut o = gw.v5_options(&format!("late@{APP_ID}"));
    o.set_credentials("v5", token);
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(o, 10);
    client
        .subscribe("keep/me", rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .await
        .unwrap();
    let publish = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(p)) =
                eventloop.poll().await.expect("v5 connection")
            {
                return p;
            }
        }
    })
    .await
    .expect("retained message in time");
    assert_eq!(&publish.payload[..], b"kept");
    assert!(publish.retain);
    let expiry = publish
        .properties
        .and_then(|p| p.message_expiry_interval)
        .expect("message expiry interval");
    assert!((86_390..=86_400).contains(&expiry), "{expiry}");
    gw.shutdown().await;
}

#[tokio::test]
async fn record_queries_validate_their_parameters() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let me = format!("q@{APP_ID}");
    let (begin, end) = window();
    let b = ("beginTime", begin.as_str());
    let e = ("endTime", end.as_str());
    let mid = ("messageid", "0000000000000001");
    for path in [
        "/openapi/rm/device/record",
        "/openapi/rm/message/record",
        "/openapi/rm/message/subscribe",
        "/openapi/rm/message/publish",
        "/openapi/rm/broker/clientInfo",
    ] {
        let (s, r) = api.get(path, &[b, e, mid]).await;
        assert_eq!(
            (s, r),
            (400, err(400, "clientid can not be empty")),
            "{path}"
        );
        let (s, r) = api.get(path, &[("clientid", "nodevice"), b, e, mid]).await;
        assert_eq!((s, r), (400, err(400, "invalid clientid")), "{path}");
        let (s, r) = api.get(path, &[("clientid", "x@zz99zz"), b, e, mid]).await;
        assert_eq!(
            (s, r),
            (400, err(400, "clientid and appid doesn't match")),
            "{path}"
        );
        let (s, r) = api
            .get_with(path, None, &[("clientid", &me), b, e, mid])
            .await;
        assert_eq!(
            (s, r),
            (403, json!({"code": 403, "msg": "access deny"})),
            "{path}"
        );
    }
    for path in [
        "/openapi/rm/device/record",
        "/openapi/rm/message/record",
        "/openapi/rm/message/subscribe",
    ] {
        let (s, r) = api.get(path, &[("clientid", &me), b, mid]).await;
        assert_eq!(
            (s, r),
            (400, err(400, "beginTime and endTime can not be empty")),
            "{path}"
        );
        let (s, r) = api
            .get(
                path,
                &[
                    ("clientid", &me),
                    ("beginTime", &end),
                    ("endTime", &begin),
                    mid,
                ],
            )
            .await;
        assert_eq!(
            (s, r),
            (
                400,
                err(400, "end time must be greater than the start time")
            ),
            "{path}"
        );
    }
    for path in [
        "/openapi/rm/message/publish",
        "/openapi/rm/message/subscribe",
    ] {
        let (s, r) = api.get(path, &[("clientid", &me), b, e]).await;
        assert_eq!(
            (s, r),
            (400, err(400, "messageid can not be empty")),
            "{path}"
        );
    }
    let (s, r) = api.get("/openapi/rm/message/message", &[]).await;
    assert_eq!((s, r), (400, err(400, "messageId cannot be empty")));
    let (s, r) = api
        .get(
            "/openapi/rm/message/message",
            &[("messageId", "0000000000000001"), ("encode", "hex")],
        )
        .await;
    assert_eq!(
        (s, r),
        (400, err(400, "encode can only be utf-8 or base64"))
    );
    let (s, r) = api
        .get(
            "/openapi/rm/message/message",
            &[("messageId", "0000000000000001")],
        )
        .await;
    assert_eq!((s, r), (400, err(400, "messageId doesn't exist")));
    let (s, r) = api.get("/openapi/rm/message/messages", &[b, e]).await;
    assert_eq!((s, r), (400, err(400, "topic cannot be empty")));
    let (s, r) = api
        .get("/openapi/rm/message/messages", &[("topic", "t"), b])
        .await;
    assert_eq!(
        (s, r),
        (400, err(400, "beginTime and endTime can not be empty"))
    );
    let (s, r) = api
        .get(
            "/openapi/rm/message/messages",
            &[("topic", "t"), b, e, ("encode", "gzip")],
        )
        .await;
    assert_eq!(
        (s, r),
        (400, err(400, "encode can only be utf-8 or base64"))
    );
    let (s, r) = api
        .get("/openapi/rm/broker/clientInfo", &[("clientid", &me)])
        .await;
    assert_eq!((s, r), (400, examples()["client_info_error"].clone()));
    let (s, r) = api.get("/openapi/rm/users/topic", &[]).await;
    assert_eq!((s, r), (400, err(400, "topic cannot be empty")));
    let (s, r) = api
        .get("/openapi/rm/users/userid", &[("userid", " , ")])
        .await;
    assert_eq!((s, r), (400, err(400, "userid cannot be empty")));
    // A message id that names nothing is an empty result, not an error.
    let (s, r) = api
        .get(
            "/openapi/rm/message/publish",
            &[("clientid", &me), ("messageid", "zz")],
        )
        .await;
    assert_eq!(
        (s, r),
        (
            200,
            json!({"code": 200, "msg": "success", "body": {"data": [], "totalCount": 0}})
        )
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn record_queries_page_and_window() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let me = format!("pager@{APP_ID}");
    let before = now_ms();
    let mut mids = Vec::new();
    for i in 0..25 {
        let (status, reply) = api
            .post(
                "/openapi/v1/rm/chat/publish",
                json!({"clientid": me, "topics": ["paged"], "payload": format!("m{i}")}),
            )
            .await;
        assert_eq!(status, 200);
        mids.push(reply["body"]["mids"][0].as_str().unwrap().to_string());
    }
    let (begin, end) = window();
    let mids_of = |body: &Value| -> Vec<String> {
        body["body"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["mid"].as_str().unwrap().to_string())
            .collect()
    };
    let all_there = |b: &Value| b["body"]["totalCount"] == 25;
    let base = [
        ("clientid", me.as_str()),
        ("beginTime", begin.as_str()),
        ("endTime", end.as_str()),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v: Vec<(&str, &str)> = base.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let page3 = api
        .get_until(
            "/openapi/rm/message/record",
            &with(&[("currentPage", "3"), ("pageSize", "10"), ("order", "ASC")]),
            all_there,
        )
        .await;
    assert_eq!(mids_of(&page3), mids[20..].to_vec());
    let first_desc = api
        .get_until(
            "/openapi/rm/message/record",
            &with(&[("currentPage", "1"), ("pageSize", "3"), ("order", "desc")]),
            all_there,
        )
        .await;
    assert_eq!(
        mids_of(&first_desc),
        vec![mids[24].clone(), mids[23].clone(), mids[22].clone()]
    );
    // Defaults: page 1 of 10, oldest first.
    let default_page = api
        .get_until("/openapi/rm/message/record", &with(&[]), all_there)
        .await;
    assert_eq!(mids_of(&default_page), mids[..10].to_vec());

    // A window that ends before the messages: nothing.
    let early_end = format_datetime(before - 2_000);
    let early_begin = format_datetime(before - 3_600_000);
    let (s, r) = api
        .get(
            "/openapi/rm/message/record",
            &[
                ("clientid", &me),
                ("beginTime", &early_begin),
                ("endTime", &early_end),
            ],
        )
        .await;
    assert_eq!(
        (s, r),
        (
            200,
            json!({"code": 200, "msg": "success", "body": {"data": [], "totalCount": 0}})
        )
    );
    // Topic history pages, newest first by default.
    let (s, r) = api
        .get(
            "/openapi/rm/message/messages",
            &[
                ("topic", "paged"),
                ("beginTime", &begin),
                ("endTime", &end),
                ("pageSize", "5"),
                ("encode", "utf-8"),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["body"]["total"], 25);
    assert_eq!(r["body"]["messages"][0]["message"], "m24");
    assert_eq!(r["body"]["messages"].as_array().unwrap().len(), 5);
    gw.shutdown().await;
}

#[tokio::test]
async fn online_client_lists() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let ex = examples();
    let ta = api.user_token("ua", None).await;
    let tb = api.user_token("ub", None).await;
    let a = common::connect_v4(options(&gw, &format!("a@{APP_ID}"), "ua", &ta)).await;
    let b = common::connect_v4(options(&gw, &format!("b@{APP_ID}"), "ub", &tb)).await;
    let _outsider = common::connect_v4(gw.v4_options("outsider")).await;
    a.client.subscribe("x", QoS::AtMostOnce).await.unwrap();
    a.client.subscribe("y", QoS::AtLeastOnce).await.unwrap();
    b.client.subscribe("y", QoS::AtMostOnce).await.unwrap();

    let by_topic = api
        .get_until("/openapi/rm/users/topic", &[("topic", "x,y")], |r| {
            r["body"]["total"] == 3
        })
        .await;
    assert_same_keys(&by_topic, &ex["users_topic"], "users_topic");
    let rows = by_topic["body"]["data"].as_array().unwrap();
    assert_eq!(rows[0]["topic"], "x");
    assert_eq!(rows[0]["clientId"], json!(format!("a@{APP_ID}")));
    assert_eq!(rows[0]["userid"], "ua");
    assert_eq!(rows[0]["protocol"], "tcp");
    assert_eq!(rows[0]["version"], 4);
    assert_eq!(rows[0]["keepalive"], 30);
    let (_, paged) = api
        .get(
            "/openapi/rm/users/topic",
            &[("topic", "x,y"), ("pageSize", "2"), ("currentPage", "2")],
        )
        .await;
    assert_eq!(paged["body"]["total"], 3);
    assert_eq!(paged["body"]["data"].as_array().unwrap().len(), 1);
    let (_, none) = api
        .get("/openapi/rm/users/topic", &[("topic", "nobody/here")])
        .await;
    assert_eq!(none, ex["users_empty"]);

    let (_, by_user) = api
        .get("/openapi/rm/users/userid", &[("userid", "ub,nobody")])
        .await;
    assert_same_keys(&by_user, &ex["users_userid"], "users_userid");
    assert_eq!(by_user["body"]["total"], 1);
    assert_eq!(
        by_user["body"]["data"][0]["clientId"],
        json!(format!("b@{APP_ID}"))
    );

    // Only this application's clients: the outsider is not listed.
    let (_, all) = api.get("/openapi/rm/users/appid", &[]).await;
    assert_same_keys(&all, &ex["users_appid"], "users_appid");
    assert_eq!(all["body"]["total"], 2);
    assert_eq!(all["body"]["data"][0]["cleansession"], true);

    // Session info with paged subscriptions.
    let (_, info) = api
        .get(
            "/openapi/rm/broker/clientInfo",
            &[
                ("clientid", &format!("a@{APP_ID}")),
                ("pageSize", "1"),
                ("currentPage", "2"),
            ],
        )
        .await;
    assert_same_keys(&info, &ex["client_info"], "client_info");
    assert_eq!(info["body"]["status"], "online");
    assert_eq!(info["body"]["user"], "ua");
    assert_eq!(info["body"]["total"], 2);
    assert_eq!(info["body"]["pageSize"], 1);
    assert_eq!(info["body"]["currentPage"], 2);
    assert_eq!(info["body"]["dataobject"].as_array().unwrap().len(), 1);
    assert_eq!(info["body"]["clientID"], Value::Null);
    assert_eq!(info["body"]["will"], Value::Null);
    assert!(
        info["body"]["time"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > 0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn without_records_the_record_queries_fail_cleanly() {
    let gw = common::start_with(|c| c.records.scope = mqgate::recorder::RecordScope::Off).await;
    let api = Api::new(&gw).await;
    let (begin, end) = window();
    let (s, r) = api
        .get(
            "/openapi/rm/message/record",
            &[
                ("clientid", &format!("x@{APP_ID}")),
                ("beginTime", &begin),
                ("endTime", &end),
            ],
        )
        .await;
    assert_eq!((s, r), (500, err(500, "fail")));
    gw.shutdown().await;
}

/// Lifetimes are at least 61 s, so this test waits that long.
#[tokio::test]
async fn user_tokens_expire() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let (_, reply) = api
        .post(
            "/openapi/rm/user/token",
            json!({"username": "brief", "expires_in": 61}),
        )
        .await;
    let token = reply["body"]["access_token"].as_str().unwrap().to_string();
    let id = format!("brief@{APP_ID}");
    assert_eq!(
        common::try_connect_v4(options(&gw, &id, "brief", &token)).await,
        Ok(ConnectReturnCode::Success)
    );
    tokio::time::sleep(Duration::from_millis(61_200)).await;
    assert_eq!(
        common::try_connect_v4(options(&gw, &id, "brief", &token)).await,
        Ok(ConnectReturnCode::BadUserNamePassword)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn tokens_and_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let gw = common::start_with(|c| c.data_dir = path.clone()).await;
    let api = Api::new(&gw).await;
    let token = api.user_token("keeper", None).await;
    let id = format!("keeper@{APP_ID}");
    let client = common::connect_v4(options(&gw, &id, "keeper", &token)).await;
    let (begin, end) = window();
    let w = [
        ("clientid", id.as_str()),
        ("beginTime", begin.as_str()),
        ("endTime", end.as_str()),
    ];
    api.get_until("/openapi/rm/device/record", &w, |b| {
        b["body"]["totalCount"] == 1
    })
    .await;
    client.client.disconnect().await.unwrap();
    let app_token = api.token.clone();
    gw.shutdown().await;

    let gw = common::start_with(|c| c.data_dir = path.clone()).await;
    let api = Api {
        http: reqwest::Client::new(),
        base: gw.base_url("easemob"),
        token: app_token,
    };
    // The app token still authorizes, the user token still logs in, and the
    // connect and disconnect before the restart are still on record.
    let records = api.get("/openapi/rm/device/record", &w).await;
    assert_eq!(records.0, 200);
    assert_eq!(records.1["body"]["totalCount"], 2, "{}", records.1);
    assert_eq!(records.1["body"]["data"][1]["status"], "disconnect");
    assert_eq!(
        common::try_connect_v4(options(&gw, &id, "keeper", &token)).await,
        Ok(ConnectReturnCode::Success)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn websocket_clients_are_recorded_as_such() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let token = api.user_token("web", None).await;
    let id = format!("browser@{APP_ID}");
    let ws = gw.ws_addr();
    let mut o = rumqttc::MqttOptions::new(&id, format!("ws://{ws}/mqtt"), ws.port());
    o.set_transport(rumqttc::Transport::Ws);
    o.set_keep_alive(Duration::from_secs(60));
    o.set_credentials("web", token);
    let _client = common::connect_v4(o).await;
    let (begin, end) = window();
    let records = api
        .get_until(
            "/openapi/rm/device/record",
            &[
                ("clientid", id.as_str()),
                ("beginTime", begin.as_str()),
                ("endTime", end.as_str()),
            ],
            |b| b["body"]["totalCount"] == 1,
        )
        .await;
    let detail: Value =
        serde_json::from_str(records["body"]["data"][0]["detail"].as_str().unwrap()).unwrap();
    assert_eq!(detail["network"], "mod_mqtt_ws");
    assert_eq!(detail["keep_alive"], 60);
    let (_, all) = api.get("/openapi/rm/users/appid", &[]).await;
    assert_eq!(all["body"]["data"][0]["protocol"], "ws");
    gw.shutdown().await;
}

/// `user/info` (the server SDK's `queryMqttAppInfo`): the MQTT host and port, for
/// a live app token only; 403 otherwise, so that the SDK refreshes its token.
#[tokio::test]
async fn user_info_gives_the_mqtt_address_to_app_tokens_only() {
    let gw = common::start_with(|c| c.easemob.app_token_ttl_secs = 2).await;
    let api = Api::new(&gw).await;
    let port = gw.mqtt_addr().port().to_string();
    let expected = json!({"code": 200, "msg": "success",
        "body": {"domain": "127.0.0.1", "appid": APP_ID, "port": port}});
    for prefix in ["", &format!("/app/{APP_ID}")] {
        let path = format!("{prefix}/openapi/rm/user/info");
        let (status, reply) = api.get(&path, &[("appid", APP_ID)]).await;
        assert_eq!((status, &reply), (200, &expected), "{path}");
    }
    // The SDK sends the raw token; `Bearer ` is tolerated as everywhere else.
    let bearer = format!("Bearer {}", api.token);
    let (status, _) = api
        .get_with("/openapi/rm/user/info", Some(&bearer), &[("appid", APP_ID)])
        .await;
    assert_eq!(status, 200);

    let deny = json!({"code": 403, "msg": "access deny"});
    let user_token = api.user_token("u1", None).await;
    for auth in [None, Some("YWMtnot-a-token"), Some(user_token.as_str())] {
        let (status, reply) = api
            .get_with("/openapi/rm/user/info", auth, &[("appid", APP_ID)])
            .await;
        assert_eq!((status, &reply), (403, &deny), "{auth:?}");
    }
    let (status, reply) = api.get("/openapi/rm/user/info", &[]).await;
    assert_eq!((status, reply), (400, err(400, "appid can not be empty")));
    for (path, appid) in [
        ("/openapi/rm/user/info", "zz99zz"),
        ("/app/zz99zz/openapi/rm/user/info", APP_ID),
    ] {
        let (status, reply) = api.get(path, &[("appid", appid)]).await;
        assert_eq!(
            (status, reply),
            (400, err(400, "the appid cannnot use the service")),
            "{path} {appid}"
        );
    }
    // An expired app token is refused like an unknown one.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, reply) = api.get("/openapi/rm/user/info", &[("appid", APP_ID)]).await;
    assert_eq!((status, reply), (403, deny));
    gw.shutdown().await;
}

#[tokio::test]
async fn user_info_follows_the_host_asked_for_or_the_configured_address() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let port = gw.mqtt_addr().port().to_string();
    let url = format!("{}/openapi/rm/user/info", api.base);
    let reply: Value = api
        .http
        .get(&url)
        .query(&[("appid", APP_ID)])
        .header("Authorization", &api.token)
        .header("Host", "mqtt.example.com:8088")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply["body"],
        json!({"domain": "mqtt.example.com", "appid": APP_ID, "port": port})
    );
    gw.shutdown().await;

    let gw = common::start_with(|c| {
        c.easemob.advertised_host = Some("broker.example.net".into());
        c.easemob.advertised_port = Some(8883);
    })
    .await;
    let api = Api::new(&gw).await;
    let (status, reply) = api.get("/openapi/rm/user/info", &[("appid", APP_ID)]).await;
    assert_eq!(status, 200);
    assert_eq!(
        reply["body"],
        json!({"domain": "broker.example.net", "appid": APP_ID, "port": "8883"})
    );
    gw.shutdown().await;

    for (host, port, culprit) in [
        (Some("bad host"), None, "advertised_host"),
        (None, Some(0), "advertised_port"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = mqgate::config::Config::for_tests(dir.path());
        config.easemob.advertised_host = host.map(String::from);
        config.easemob.advertised_port = port;
        let refused = mqgate::gateway::Gateway::start(config).await.err();
        assert!(
            refused.is_some_and(|e| e.to_string().contains(culprit)),
            "{culprit} is checked"
        );
    }
}

/// The application's clients form a tenant: their messages and the REST publishes
/// reach each other only, never an outside client (even on `#`), and outside
/// publishes never reach them.
#[tokio::test]
async fn the_application_is_a_tenant_of_its_own() {
    let gw = common::start().await;
    let api = Api::new(&gw).await;
    let ta = api.user_token("ua", None).await;
    let tb = api.user_token("ub", None).await;
    let mut a = common::connect_v4(options(&gw, &format!("a@{APP_ID}"), "ua", &ta)).await;
    let b = common::connect_v4(options(&gw, &format!("b@{APP_ID}"), "ub", &tb)).await;
    let mut outsider = common::connect_v4(gw.v4_options("outsider")).await;
    a.client
        .subscribe("room/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    outsider
        .client
        .subscribe("#", QoS::AtLeastOnce)
        .await
        .unwrap();
    outsider
        .client
        .subscribe(format!("$easemob/{APP_ID}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let outsider_codes = loop {
        match tokio::time::timeout(Duration::from_secs(5), outsider.events.recv()).await {
            Ok(Some(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack))))
                if ack.return_codes.len() == 1
                    && ack.return_codes[0] == rumqttc::SubscribeReasonCode::Failure =>
            {
                break ack.return_codes
            }
            Ok(Some(_)) => continue,
            other => panic!("no refusal of the tenant's prefix: {other:?}"),
        }
    };
    assert_eq!(outsider_codes, [rumqttc::SubscribeReasonCode::Failure]);
    tokio::time::sleep(Duration::from_millis(200)).await;

    // a device of the application publishes: its fellow device gets it, the outsider not
    b.client
        .publish("room/1", QoS::AtLeastOnce, false, "from b")
        .await
        .unwrap();
    let got = common::next_publish(&mut a, 5).await.expect("b's message");
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("room/1", &b"from b"[..])
    );
    // the REST publish of the application reaches its devices only
    let (status, reply) = api
        .post(
            "/openapi/v1/rm/chat/publish",
            json!({"clientid": format!("b@{APP_ID}"), "payload": "rest", "topics": ["room/2"], "qos": 1}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let got = common::next_publish(&mut a, 5)
        .await
        .expect("the REST message");
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("room/2", &b"rest"[..])
    );
    // an outsider publishing on the same topic reaches no device
    outsider
        .client
        .publish("room/3", QoS::AtLeastOnce, false, "outside")
        .await
        .unwrap();
    let own = common::next_publish(&mut outsider, 5)
        .await
        .expect("its own");
    assert_eq!(own.topic, "room/3");
    assert!(common::next_publish(&mut a, 1).await.is_none());
    assert!(
        common::next_publish(&mut outsider, 1).await.is_none(),
        "the outsider saw a tenant's message"
    );
    gw.shutdown().await;
}
