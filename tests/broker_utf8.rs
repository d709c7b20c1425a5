//! Topics whose first character is multi-byte UTF-8 (`é/x`, `日本/+`, emoji) are
//! valid MQTT. Under rumqttd's router one such PUBLISH panicked the router thread
//! (`topic[..1]`) and stopped MQTT for everyone; here every way a message enters
//! the broker (a client, a will, a retained message, a shared subscription, each
//! vendor's HTTP publish API) routes them, and the broker keeps serving.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::raw::{Ack, Connect, Publish, Raw};
use common::*;
use rumqttc::{Event, LastWill, Packet, QoS};
use serde_json::{json, Value};

async fn subscribed(gw: &TestGateway, id: &str, filters: &[&str]) -> V4Client {
    let mut c = connect_v4(gw.v4_options(id)).await;
    for f in filters {
        c.client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let ev = tokio::time::timeout_at(deadline, c.events.recv())
                .await
                .expect("SUBACK in time")
                .expect("event loop alive");
            if let Event::Incoming(Packet::SubAck(ack)) = ev {
                assert!(
                    matches!(
                        ack.return_codes[0],
                        rumqttc::SubscribeReasonCode::Success(_)
                    ),
                    "{f} refused"
                );
                break;
            }
        }
    }
    c
}

/// (topic, payload) of every publish arriving within `millis` of the previous one.
async fn drain(c: &mut V4Client, millis: u64) -> Vec<(String, String)> {
    let mut got = Vec::new();
    while let Ok(Some(p)) =
        tokio::time::timeout(Duration::from_millis(millis), c.publishes.recv()).await
    {
        got.push((
            p.topic.clone(),
            String::from_utf8(p.payload.to_vec()).unwrap(),
        ));
    }
    got
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(t, p)| (t.to_string(), p.to_string()))
        .collect()
}

/// A new client can connect, subscribe and receive: MQTT still works for everyone.
async fn assert_still_serving(gw: &TestGateway, tag: &str) {
    let mut c = subscribed(gw, &format!("alive-{tag}"), &["alive/t"]).await;
    let p = connect_v4(gw.v4_options(&format!("alive-pub-{tag}"))).await;
    p.client
        .publish("alive/t", QoS::AtLeastOnce, false, "still here")
        .await
        .unwrap();
    let m = next_publish(&mut c, 5)
        .await
        .expect("the broker still routes");
    assert_eq!(&m.payload[..], b"still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multibyte_topics_and_filters_route_exactly_and_the_broker_keeps_serving() {
    let gw = start().await;
    let mut exact = subscribed(&gw, "u-exact", &["é/x"]).await;
    let mut plus = subscribed(&gw, "u-plus", &["日本/+"]).await;
    let mut plus_first = subscribed(&gw, "u-plus-first", &["+/東京"]).await;
    let mut emoji = subscribed(&gw, "u-emoji", &["🚀/#"]).await;
    let mut all = subscribed(&gw, "u-all", &["#"]).await;
    let publisher = connect_v4(gw.v4_options("u-pub")).await;
    for (topic, payload) in [
        ("é/x", "1"),
        ("日本/東京", "2"),
        ("🚀/a/b", "3"),
        ("e/x", "4"),
        ("🚀", "5"),
    ] {
        publisher
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    assert_eq!(drain(&mut all, 1000).await.len(), 5, "# sees every topic");
    assert_eq!(drain(&mut exact, 200).await, pairs(&[("é/x", "1")]));
    assert_eq!(drain(&mut plus, 200).await, pairs(&[("日本/東京", "2")]));
    assert_eq!(
        drain(&mut plus_first, 200).await,
        pairs(&[("日本/東京", "2")])
    );
    assert_eq!(
        drain(&mut emoji, 200).await,
        pairs(&[("🚀/a/b", "3"), ("🚀", "5")]),
        "`🚀/#` matches `🚀` itself too"
    );

    // an MQTT 5 client's QoS 2 publish on a multi-byte topic completes
    let (mut v5, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("u-v5")).await;
    v5.publish(&Publish::new("é/x", "v5", 2, 1)).await;
    assert_eq!(v5.expect_ack(Ack::PubRec, 1).await, 0);
    v5.ack(Ack::PubRel, 1).await;
    assert_eq!(v5.expect_ack(Ack::PubComp, 1).await, 0);
    assert_eq!(drain(&mut exact, 1000).await, pairs(&[("é/x", "v5")]));
    assert_still_serving(&gw, "topics").await;
    drop(v5);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multibyte_will_is_published() {
    let gw = start().await;
    let mut watcher = subscribed(&gw, "w-watch", &["é/will/+"]).await;
    let mut o = gw.v4_options("w-dies");
    o.set_last_will(LastWill::new("é/will/日本", "😵", QoS::AtLeastOnce, false));
    let dying = connect_v4(o).await;
    dying.task.abort(); // the socket closes without DISCONNECT
    assert_eq!(
        drain(&mut watcher, 2000).await,
        pairs(&[("é/will/日本", "😵")])
    );
    assert_still_serving(&gw, "will").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multibyte_retained_message_reaches_wildcard_subscribers_and_is_cleared() {
    let gw = start().await;
    let m = gw.gateway.management();
    let publisher = connect_v4(gw.v4_options("r-pub")).await;
    publisher
        .client
        .publish("日本/東京/温度", QoS::AtLeastOnce, true, "21")
        .await
        .unwrap();
    assert!(eventually(5, || m.node_stats().retained == 1).await);
    for (i, filter) in ["日本/東京/温度", "日本/+/温度", "日本/#", "+/東京/+", "#"]
        .into_iter()
        .enumerate()
    {
        let mut late = subscribed(&gw, &format!("r-late-{i}"), &[filter]).await;
        let got = next_publish(&mut late, 5)
            .await
            .unwrap_or_else(|| panic!("retained message for {filter}"));
        assert_eq!(
            (got.topic.as_str(), &got.payload[..]),
            ("日本/東京/温度", &b"21"[..])
        );
        assert!(got.retain, "{filter}: replayed with RETAIN set");
    }
    // an empty retained publish clears it
    publisher
        .client
        .publish("日本/東京/温度", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    assert!(eventually(5, || m.node_stats().retained == 0).await);
    let mut after = subscribed(&gw, "r-after", &["日本/#"]).await;
    assert!(
        next_publish(&mut after, 1).await.is_none(),
        "nothing retained any more"
    );
    assert_still_serving(&gw, "retained").await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multibyte_shared_subscription_delivers_each_message_to_one_member() {
    let gw = start().await;
    let mut a = subscribed(&gw, "s-a", &["$share/组/é/+"]).await;
    let mut b = subscribed(&gw, "s-b", &["$share/组/é/+"]).await;
    let mut other_group = subscribed(&gw, "s-c", &["$share/グループ/é/+"]).await;
    let publisher = connect_v4(gw.v4_options("s-pub")).await;
    for i in 0..20 {
        publisher
            .client
            .publish(format!("é/{i}"), QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let got_a: BTreeSet<_> = drain(&mut a, 1000).await.into_iter().collect();
    let got_b: BTreeSet<_> = drain(&mut b, 300).await.into_iter().collect();
    assert!(got_a.is_disjoint(&got_b), "no message reached both members");
    assert_eq!(
        got_a.len() + got_b.len(),
        20,
        "every message reached one member"
    );
    assert!(
        !got_a.is_empty() && !got_b.is_empty(),
        "both members served"
    );
    assert_eq!(
        drain(&mut other_group, 300).await.len(),
        20,
        "another group gets every message too"
    );
    assert_still_serving(&gw, "shared").await;
    gw.shutdown().await;
}

// ---- the HTTP publish APIs ---------------------------------------------------

async fn post(url: String, basic: (&str, &str), body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(&url)
        .basic_auth(basic.0, Some(basic.1))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url}: not JSON: {text}"))
}

/// An Easemob client (`deviceID@AppID` with a user token) subscribed to `filter`,
/// and the app token the Easemob APIs take.
async fn easemob_client(gw: &TestGateway, filter: &str) -> (V4Client, String) {
    const APP_ID: &str = "mq7g4e";
    let app_token = gw.easemob_app_token().await;
    let user_token = gw.easemob_user_token(&app_token, "utf8-user").await;
    let mut o = gw.v4_options(&format!("utf8-recv@{APP_ID}"));
    o.set_credentials("utf8-user", user_token);
    let mut c = connect_v4(o).await;
    c.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !matches!(
        tokio::time::timeout_at(deadline, c.events.recv()).await,
        Ok(Some(Event::Incoming(Packet::SubAck(_))))
    ) {}
    (c, app_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_publish_api_routes_multibyte_topics() {
    let gw = start().await;
    let mut sub = subscribed(&gw, "h-sub", &["é/+", "日本/+", "🚀/+"]).await;

    let mica = gw.base_url("mica");
    let reply = post(
        format!("{mica}/api/v1/mqtt/publish"),
        ("mica", "mica"),
        json!({"topic": "é/mica", "clientId": "httpApi", "payload": "m", "qos": 1}),
    )
    .await;
    assert_eq!(reply["code"], 1, "mica: {reply}");
    let reply = post(
        format!("{mica}/api/v1/mqtt/publish/batch"),
        ("mica", "mica"),
        json!([{"topic": "é/mica-batch", "clientId": "httpApi", "payload": "mb", "qos": 1}]),
    )
    .await;
    assert_eq!(reply["code"], 1, "mica batch: {reply}");

    let nanomq = gw.base_url("nanomq");
    let reply = post(
        format!("{nanomq}/api/v4/mqtt/publish"),
        ("admin", "public"),
        json!({"topic": "日本/nanomq", "payload": "n", "qos": 1, "clientid": "api"}),
    )
    .await;
    assert_eq!(reply, json!({"code": 0}), "nanomq");
    let reply = post(
        format!("{nanomq}/api/v4/mqtt/publish_batch"),
        ("admin", "public"),
        json!([{"topics": "日本/batch,🚀/nanomq", "payload": "nb", "qos": 1}]),
    )
    .await;
    assert_eq!(reply["data"][0]["code"], 0, "nanomq batch: {reply}");

    let realmq = gw.base_url("realmq");
    let reply = post(
        format!("{realmq}/api/v1/mqtt/publish"),
        ("root", "123456"),
        json!({"topic": "🚀/realmq", "payload": "r", "qos": 1, "clientid": "root"}),
    )
    .await;
    assert_eq!(reply, json!({"code": 0}), "realmq");
    let reply = post(
        format!("{realmq}/api/v1/mqtt/publish_batch"),
        ("root", "123456"),
        json!([{"topic": "🚀/realmq-batch", "payload": "rb", "qos": 1, "clientid": "root"}]),
    )
    .await;
    assert_eq!(reply["data"][0]["code"], 0, "realmq batch: {reply}");

    let mut got = drain(&mut sub, 1000).await;
    got.sort();
    let mut expected = pairs(&[
        ("é/mica", "m"),
        ("é/mica-batch", "mb"),
        ("日本/nanomq", "n"),
        ("日本/batch", "nb"),
        ("🚀/nanomq", "nb"),
        ("🚀/realmq", "r"),
        ("🚀/realmq-batch", "rb"),
    ]);
    expected.sort();
    assert_eq!(got, expected);

    // Easemob publishes on behalf of its own clients, to its own clients
    let (mut easemob_sub, app_token) = easemob_client(&gw, "é/easemob/日本").await;
    let response = reqwest::Client::new()
        .post(format!("{}/openapi/v1/rm/chat/publish", gw.base_url("easemob")))
        .header("Authorization", &app_token)
        .json(&json!({"clientid": "utf8-send@mq7g4e", "topics": ["é/easemob/日本"], "payload": "e", "qos": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(
        reply["body"]["mids"].as_array().map(Vec::len),
        Some(1),
        "{reply}"
    );
    assert_eq!(
        drain(&mut easemob_sub, 1000).await,
        pairs(&[("é/easemob/日本", "e")])
    );
    assert_still_serving(&gw, "http").await;
    gw.shutdown().await;
}
