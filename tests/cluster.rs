//! Cluster mode end to end: two or three whole gateways in this process, each
//! on its own ports and data directory, linked through a real `nats-server`
//! child process; real MQTT clients (rumqttc) on different nodes.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use common::{connect_v4, next_publish, start_with, NatsServer, TestGateway, V4Client};
use rumqttc::QoS;

/// `n` gateways in one cluster, or `None` without nats-server (see `nats_server`).
async fn cluster(n: usize) -> Option<(NatsServer, Vec<TestGateway>)> {
    cluster_with(n, |_| {}).await
}

async fn cluster_with(
    n: usize,
    adjust: impl Fn(&mut mqgate::config::Config) + Clone + Send + 'static,
) -> Option<(NatsServer, Vec<TestGateway>)> {
    let nats = common::nats_server().await?;
    let mut nodes = Vec::new();
    for i in 0..n {
        nodes.push(node(&nats, i, adjust.clone()).await);
    }
    Some((nats, nodes))
}

/// One more node of the cluster on `nats`.
async fn node(
    nats: &NatsServer,
    i: usize,
    adjust: impl Fn(&mut mqgate::config::Config) + Send + 'static,
) -> TestGateway {
    let url = nats.url.clone();
    start_with(move |c| {
        c.cluster.enabled = true;
        c.cluster.node_name = format!("node-{i}");
        c.cluster.nats_url = url;
        c.cluster.reconnect_max_delay_ms = 200;
        c.mqtt.sys_interval_secs = 1;
        adjust(c);
    })
    .await
}

/// Subscriptions reach NATS a moment after their SUBACK.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(700)).await;
}

async fn subscribe(c: &V4Client, filters: &[&str], qos: QoS) {
    for f in filters {
        c.client.subscribe(*f, qos).await.unwrap();
    }
}

/// Every publish that arrives within `secs`, stopping early once `until` have come.
async fn collect(c: &mut V4Client, until: usize, secs: u64) -> Vec<rumqttc::Publish> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while got.len() < until {
        match tokio::time::timeout_at(deadline, c.publishes.recv()).await {
            Ok(Some(p)) => got.push(p),
            _ => break,
        }
    }
    // anything more (a duplicate) would arrive right behind
    while let Some(p) = next_publish(c, 1).await {
        got.push(p);
    }
    got
}

fn qos_of(n: u8) -> QoS {
    match n {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_nodes_at_every_qos_and_filter_form_once() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut exact = connect_v4(b.v4_options("exact")).await;
    subscribe(&exact, &["c/exact"], QoS::ExactlyOnce).await;
    // overlapping filters on one session: one delivery per message
    let mut wild = connect_v4(b.v4_options("wild")).await;
    subscribe(&wild, &["c/+/x", "c/#"], QoS::ExactlyOnce).await;
    let mut utf = connect_v4(b.v4_options("utf")).await;
    subscribe(&utf, &["é/日本/+", "sp ace/a.b/*/>"], QoS::ExactlyOnce).await;
    // the publisher's node has a subscriber too: no echo comes back to it
    let mut local = connect_v4(a.v4_options("local")).await;
    subscribe(&local, &["c/#"], QoS::ExactlyOnce).await;
    settle().await;
    let publisher = connect_v4(a.v4_options("publisher")).await;
    for qos in 0..=2u8 {
        for topic in ["c/exact", "c/y/x", "c", "é/日本/🚀", "sp ace/a.b/*/>"] {
            let payload = format!("{topic}|{qos}");
            publisher
                .client
                .publish(topic, qos_of(qos), false, payload)
                .await
                .unwrap();
        }
    }
    let summary = |got: Vec<rumqttc::Publish>| -> Vec<(String, String, QoS)> {
        let mut v: Vec<_> = got
            .into_iter()
            .map(|p| {
                let payload = String::from_utf8(p.payload.to_vec()).unwrap();
                (p.topic, payload, p.qos)
            })
            .collect();
        v.sort_by(|x, y| x.1.cmp(&y.1));
        v
    };
    let got = summary(collect(&mut exact, 3, 10).await);
    assert_eq!(got.len(), 3, "{got:?}");
    for (i, (topic, payload, qos)) in got.iter().enumerate() {
        assert_eq!(topic, "c/exact");
        assert_eq!(payload, &format!("c/exact|{i}"));
        assert_eq!(*qos, qos_of(i as u8), "delivered at the published QoS");
    }
    let got = summary(collect(&mut wild, 9, 10).await);
    let payloads: Vec<&str> = got.iter().map(|g| g.1.as_str()).collect();
    assert_eq!(
        payloads,
        [
            "c/exact|0",
            "c/exact|1",
            "c/exact|2",
            "c/y/x|0",
            "c/y/x|1",
            "c/y/x|2",
            "c|0",
            "c|1",
            "c|2"
        ],
        "once each, `#` matching its parent level"
    );
    let got = summary(collect(&mut utf, 6, 10).await);
    let topics: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(
        topics,
        [
            "sp ace/a.b/*/>",
            "sp ace/a.b/*/>",
            "sp ace/a.b/*/>",
            "é/日本/🚀",
            "é/日本/🚀",
            "é/日本/🚀"
        ]
    );
    let got = collect(&mut local, 9, 10).await;
    assert_eq!(got.len(), 9, "the local subscriber gets each message once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_properties_cross_nodes() {
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let (sub, mut events) = rumqttc::v5::AsyncClient::new(nodes[1].v5_options("v5-sub"), 10);
    sub.subscribe("props/t", Q5::AtLeastOnce).await.unwrap();
    let (got_tx, mut got) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = events.poll().await {
            if let rumqttc::v5::Event::Incoming(P5::Publish(p)) = ev {
                let _ = got_tx.send(p);
            }
        }
    });
    settle().await;
    let (publisher, mut pe) = rumqttc::v5::AsyncClient::new(nodes[0].v5_options("v5-pub"), 10);
    tokio::spawn(async move { while pe.poll().await.is_ok() {} });
    let props = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(600),
        content_type: Some("text/plain".into()),
        response_topic: Some("props/reply".into()),
        correlation_data: Some(Bytes::from_static(b"\x00corr")),
        user_properties: vec![("k".into(), "v".into()), ("k".into(), "w".into())],
        ..Default::default()
    };
    publisher
        .publish_with_properties("props/t", Q5::AtLeastOnce, false, "hi", props)
        .await
        .unwrap();
    let p = tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("delivered across nodes")
        .unwrap();
    assert_eq!(p.payload, Bytes::from("hi"));
    let props = p.properties.expect("properties");
    assert_eq!(props.payload_format_indicator, Some(1));
    assert!(props
        .message_expiry_interval
        .is_some_and(|s| s > 590 && s <= 600));
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    assert_eq!(props.response_topic.as_deref(), Some("props/reply"));
    assert_eq!(
        props.correlation_data,
        Some(Bytes::from_static(b"\x00corr"))
    );
    assert_eq!(
        props.user_properties,
        vec![
            ("k".to_string(), "v".to_string()),
            ("k".to_string(), "w".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_subscription_spreads_over_the_cluster_once_per_message() {
    let Some((_nats, nodes)) = cluster(3).await else {
        return;
    };
    let mut m0 = connect_v4(nodes[0].v4_options("member-0")).await;
    let mut m1 = connect_v4(nodes[1].v4_options("member-1")).await;
    subscribe(&m0, &["$share/g/s/+"], QoS::AtLeastOnce).await;
    subscribe(&m1, &["$share/g/s/+"], QoS::AtLeastOnce).await;
    let mut plain = connect_v4(nodes[2].v4_options("plain")).await;
    subscribe(&plain, &["s/#"], QoS::AtLeastOnce).await;
    settle().await;
    // from a node without a member, then from a node with one
    let p2 = connect_v4(nodes[2].v4_options("pub-2")).await;
    let p0 = connect_v4(nodes[0].v4_options("pub-0")).await;
    for i in 0..60 {
        let publisher = if i < 40 { &p2 } else { &p0 };
        publisher
            .client
            .publish(format!("s/{i}"), QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let got_plain = collect(&mut plain, 60, 10).await;
    assert_eq!(got_plain.len(), 60);
    let got0 = collect(&mut m0, 60, 3).await;
    let got1 = collect(&mut m1, 60, 1).await;
    let mut seen: HashMap<Bytes, usize> = HashMap::new();
    for p in got0.iter().chain(&got1) {
        *seen.entry(p.payload.clone()).or_default() += 1;
    }
    assert_eq!(seen.len(), 60, "every message reached the group");
    assert!(seen.values().all(|n| *n == 1), "and exactly one member");
    assert!(
        !got0.is_empty() && !got1.is_empty(),
        "spread over both nodes: {} and {}",
        got0.len(),
        got1.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_are_cluster_wide() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let publisher = connect_v4(nodes[0].v4_options("retainer")).await;
    publisher
        .client
        .publish("state/lamp", QoS::AtLeastOnce, true, "on")
        .await
        .unwrap();
    let stored = common::eventually(5, || {
        nodes[1].gateway.management().node_stats().retained == 1
    })
    .await;
    assert!(stored, "node 1 keeps the retained message");
    let mut late = connect_v4(nodes[1].v4_options("late")).await;
    subscribe(&late, &["state/+"], QoS::AtLeastOnce).await;
    let p = next_publish(&mut late, 5).await.expect("retained replayed");
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.retain),
        ("state/lamp", &b"on"[..], true)
    );
    // an empty retained publish clears it everywhere
    publisher
        .client
        .publish("state/lamp", QoS::AtLeastOnce, true, "")
        .await
        .unwrap();
    let cleared = common::eventually(5, || {
        nodes[1].gateway.management().node_stats().retained == 0
    })
    .await;
    assert!(cleared, "the clearing publish reached node 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_later_gets_the_retained_messages_of_the_others() {
    let Some((nats, nodes)) = cluster(1).await else {
        return;
    };
    let publisher = connect_v4(nodes[0].v4_options("early")).await;
    for (topic, payload) in [("keep/a", "1"), ("keep/b", "2")] {
        publisher
            .client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
    }
    let a = nodes[0].gateway.management();
    assert!(common::eventually(5, || a.node_stats().retained == 2).await);
    let late = node(&nats, 1, |_| {}).await;
    let b = late.gateway.management();
    assert!(
        common::eventually(5, || b.node_stats().retained == 2).await,
        "the late node asked for them"
    );
    let mut sub = connect_v4(late.v4_options("late-sub")).await;
    subscribe(&sub, &["keep/#"], QoS::AtLeastOnce).await;
    let mut got: Vec<(String, Bytes, bool)> = collect(&mut sub, 2, 5)
        .await
        .into_iter()
        .map(|p| (p.topic, p.payload, p.retain))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("keep/a".to_string(), Bytes::from("1"), true),
            ("keep/b".to_string(), Bytes::from("2"), true)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_connecting_on_another_node_takes_the_session_over() {
    use rumqttc::v5::mqttbytes::v5::{DisconnectReasonCode, Packet as P5};
    use rumqttc::v5::StateError;
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let (first, mut first_events) = rumqttc::v5::AsyncClient::new(nodes[0].v5_options("dup"), 10);
    let (reason_tx, mut reason) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match first_events.poll().await {
                Ok(rumqttc::v5::Event::Incoming(P5::Disconnect(d))) => {
                    let _ = reason_tx.send(Some(d.reason_code));
                    return;
                }
                Ok(_) => {}
                // rumqttc reports a server's DISCONNECT as an error
                Err(rumqttc::v5::ConnectionError::MqttState(StateError::ServerDisconnect {
                    reason_code,
                    ..
                })) => {
                    let _ = reason_tx.send(Some(reason_code));
                    return;
                }
                Err(_) => {
                    let _ = reason_tx.send(None);
                    return;
                }
            }
        }
    });
    first
        .subscribe("x", rumqttc::v5::mqttbytes::QoS::AtMostOnce)
        .await
        .unwrap();
    let a = nodes[0].gateway.management();
    assert!(common::eventually_async(5, || async { a.get_client("dup").await.is_some() }).await);
    settle().await;
    let second = connect_v4(nodes[1].v4_options("dup")).await;
    let code = tokio::time::timeout(Duration::from_secs(5), reason.recv())
        .await
        .expect("the first connection is told")
        .unwrap();
    assert_eq!(code, Some(DisconnectReasonCode::SessionTakenOver));
    assert!(
        common::eventually(5, || a.node_stats().sessions == 0).await,
        "the session is gone from the first node"
    );
    let b = nodes[1].gateway.management();
    assert!(b.get_client("dup").await.is_some_and(|c| c.connected));
    // and a look-up through the first node finds it on the second
    assert!(a.get_client("dup").await.is_some_and(|c| c.connected));
    drop(second);
}

/// The value of a `$SYS` topic on one node, as its next statistics round says.
async fn sys_value(node: &TestGateway, id: &str, topic: &str) -> u64 {
    let mut c = connect_v4(node.v4_options(id)).await;
    subscribe(&c, &[topic], QoS::AtMostOnce).await;
    let p = next_publish(&mut c, 5).await.expect("$SYS statistics");
    String::from_utf8(p.payload.to_vec())
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_subscribers_receives_nothing() {
    let Some((_nats, nodes)) = cluster(3).await else {
        return;
    };
    let mut sub = connect_v4(nodes[1].v4_options("only-b")).await;
    subscribe(&sub, &["only/b"], QoS::AtLeastOnce).await;
    settle().await;
    let publisher = connect_v4(nodes[0].v4_options("pub")).await;
    for i in 0..10 {
        publisher
            .client
            .publish("only/b", QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    assert_eq!(collect(&mut sub, 10, 10).await.len(), 10);
    let received = "$SYS/broker/cluster/messages/received";
    assert!(sys_value(&nodes[1], "sys-b", received).await >= 10);
    assert_eq!(sys_value(&nodes[2], "sys-c", received).await, 0);
    let forwarded = "$SYS/broker/cluster/messages/forwarded";
    assert!(sys_value(&nodes[0], "sys-a", forwarded).await >= 10);

    // each node's Prometheus samples say which node they come from
    for (i, node) in nodes.iter().enumerate() {
        let text = prometheus_text(node).await;
        let label = format!("{{node=\"node-{i}\"}}");
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 15, "{text}");
        assert!(samples.iter().all(|l| l.contains(&label)), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nats_nodes_serve_alone_and_link_again_when_it_is_back() {
    let Some((mut nats, nodes)) = cluster(2).await else {
        return;
    };
    let mut here = connect_v4(nodes[0].v4_options("here")).await;
    let mut there = connect_v4(nodes[1].v4_options("there")).await;
    subscribe(&here, &["d/t"], QoS::AtLeastOnce).await;
    subscribe(&there, &["d/t"], QoS::AtLeastOnce).await;
    settle().await;
    let publisher = connect_v4(nodes[0].v4_options("pub")).await;
    let publish = |payload: &'static str| {
        let client = publisher.client.clone();
        async move {
            client
                .publish("d/t", QoS::AtLeastOnce, false, payload)
                .await
                .unwrap()
        }
    };
    publish("before").await;
    assert_eq!(
        &next_publish(&mut here, 5).await.unwrap().payload[..],
        b"before"
    );
    assert_eq!(
        &next_publish(&mut there, 5).await.unwrap().payload[..],
        b"before"
    );

    nats.kill();
    let connected = "$SYS/broker/cluster/connected";
    let node0 = &nodes[0];
    let down = common::eventually_async(10, || async move {
        sys_value(node0, "sys-down", connected).await == 0
    })
    .await;
    assert!(down, "the link says it is down");
    publish("during").await;
    assert_eq!(
        &next_publish(&mut here, 5)
            .await
            .expect("local delivery goes on")
            .payload[..],
        b"during"
    );
    assert!(
        next_publish(&mut there, 1).await.is_none(),
        "nothing crosses without NATS"
    );
    assert_eq!(sys_value(&nodes[0], "sys-0", connected).await, 0);
    assert!(sys_value(&nodes[0], "sys-1", "$SYS/broker/cluster/disconnects").await >= 1);
    assert!(sys_value(&nodes[0], "sys-2", "$SYS/broker/cluster/messages/dropped").await >= 1);

    nats.start().await;
    for (i, node) in nodes.iter().enumerate() {
        let back = common::eventually_async(15, || async move {
            sys_value(node, &format!("sys-up-{i}"), connected).await == 1
        })
        .await;
        assert!(back, "node {i} linked again");
    }
    settle().await;
    publish("after").await;
    assert_eq!(
        &next_publish(&mut here, 5).await.unwrap().payload[..],
        b"after"
    );
    assert_eq!(
        &next_publish(&mut there, 5)
            .await
            .expect("subscriptions restored")
            .payload[..],
        b"after"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_group_on_the_publishing_node_gets_what_follows_its_suback() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let mut member = connect_v4(nodes[0].v4_options("member")).await;
    member
        .client
        .subscribe("$share/g/own/t", QoS::AtLeastOnce)
        .await
        .unwrap();
    let suback = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = member.events.recv().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)) = event {
                return;
            }
        }
    })
    .await;
    assert!(suback.is_ok(), "SUBACK");
    // no pause: the link confirms the queue subscription before this publish
    let publisher = connect_v4(nodes[0].v4_options("pub")).await;
    for i in 0..20 {
        publisher
            .client
            .publish("own/t", QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let got = collect(&mut member, 20, 10).await;
    let payloads: Vec<String> = got
        .iter()
        .map(|p| String::from_utf8(p.payload.to_vec()).unwrap())
        .collect();
    let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(
        payloads, expected,
        "each once, in order, through NATS's pick"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_waits_for_a_full_link_instead_of_losing_messages() {
    let Some((_nats, nodes)) = cluster_with(2, |c| c.cluster.max_pending_messages = 8).await else {
        return;
    };
    let mut sub = connect_v4(nodes[1].v4_options("far")).await;
    subscribe(&sub, &["burst/t"], QoS::AtMostOnce).await;
    settle().await;
    let publisher = connect_v4(nodes[0].v4_options("burst")).await;
    // QoS 0 as fast as the client goes: only waiting keeps the link's queue bounded
    for i in 0..3000 {
        publisher
            .client
            .publish("burst/t", QoS::AtMostOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let got = collect(&mut sub, 3000, 20).await;
    assert_eq!(got.len(), 3000, "nothing dropped on the way to NATS");
    let dropped = "$SYS/broker/cluster/messages/dropped";
    assert_eq!(sys_value(&nodes[0], "sys-dropped", dropped).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_and_serves_alone_while_nats_is_not_there() {
    let port = common::free_port();
    let started = tokio::time::Instant::now();
    let node = start_with(move |c| {
        c.cluster.enabled = true;
        c.cluster.nats_url = format!("nats://127.0.0.1:{port}");
        c.cluster.connect_timeout_ms = 500;
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "start is not held up"
    );
    let mut sub = connect_v4(node.v4_options("alone-sub")).await;
    subscribe(&sub, &["alone/t", "$share/g/alone/s"], QoS::AtLeastOnce).await;
    settle().await;
    let publisher = connect_v4(node.v4_options("alone-pub")).await;
    for topic in ["alone/t", "alone/s"] {
        publisher
            .client
            .publish(topic, QoS::AtLeastOnce, false, "x")
            .await
            .unwrap();
    }
    let got = collect(&mut sub, 2, 5).await;
    let mut topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
    topics.sort();
    assert_eq!(
        topics,
        ["alone/s", "alone/t"],
        "local delivery, shared group included"
    );
}

/// A POST to a node's mica API; its JSON answer.
async fn mica_post(node: &TestGateway, path_and_query: &str, body: &str) -> serde_json::Value {
    let answer = reqwest::Client::new()
        .post(format!("{}{path_and_query}", node.base_url("mica")))
        .basic_auth("mica", Some("mica"))
        .body(body.to_string())
        .send()
        .await
        .expect("an HTTP answer");
    assert_eq!(answer.status(), 200);
    answer.json().await.expect("JSON")
}

async fn filters_of(node: &TestGateway, client_id: &str) -> Vec<String> {
    let filter = mqgate_kit::SubscriptionFilter {
        client_id: Some(client_id.into()),
        ..Default::default()
    };
    let page = node
        .gateway
        .management()
        .list_subscriptions(&filter, mqgate_kit::PageRequest::ALL)
        .await;
    page.items.into_iter().map(|s| s.topic_filter).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_another_node_is_subscribed_and_kicked_through_any_nodes_api() {
    use mqgate_kit::{KickOptions, KickOutcome};
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut far = connect_v4(b.v4_options("far")).await;
    let on_b = b.gateway.management();
    assert!(common::eventually_async(5, || async { on_b.get_client("far").await.is_some() }).await);
    settle().await;

    // subscribe on behalf through node A: the session on B holds it, A keeps nothing
    let body = r#"{"clientId":"far","topic":"s/+","qos":1}"#;
    let answer = mica_post(a, "/api/v1/mqtt/subscribe", body).await;
    assert_eq!(answer, serde_json::json!({"code": 1}));
    assert_eq!(filters_of(b, "far").await, ["s/+"]);
    let on_a = a.gateway.management();
    let here = on_a.node_stats();
    assert_eq!(
        (here.sessions, here.subscriptions),
        (0, 0),
        "no pending session made up on node A"
    );
    // looked up and listed through A, from B
    let seen_from_a = on_a.get_client("far").await.expect("found on node B");
    assert!(seen_from_a.connected);
    assert_eq!(filters_of(a, "far").await, ["s/+"]);
    settle().await;
    let publisher = connect_v4(a.v4_options("pub")).await;
    publisher
        .client
        .publish("s/1", QoS::AtLeastOnce, false, "to far")
        .await
        .unwrap();
    let p = next_publish(&mut far, 5)
        .await
        .expect("delivered on node B");
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("s/1", &b"to far"[..]));

    // unsubscribe through A: per filter, whether B's session had it
    let existed = on_a
        .unsubscribe("far", vec!["s/+".into(), "nope".into()])
        .await
        .unwrap();
    assert_eq!(existed, [true, false]);
    assert!(filters_of(b, "far").await.is_empty());

    // an id no node holds: "not found" at once, not after the timeout
    let started = std::time::Instant::now();
    let none = on_a.kick("nobody", KickOptions::default()).await.unwrap();
    assert_eq!(none, KickOutcome::NotFound);
    assert!(started.elapsed() < Duration::from_millis(1000));

    // kick through A's mica API: B closes the connection and ends the session
    let answer = mica_post(a, "/api/v1/clients/delete?clientId=far", "").await;
    assert_eq!(answer, serde_json::json!({"code": 1}));
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut far.task).await;
    assert!(ended.is_ok(), "the client on node B is disconnected");
    assert!(common::eventually_async(5, || async { on_b.get_client("far").await.is_none() }).await);
}

/// A node's NanoMQ Prometheus text.
async fn prometheus_text(node: &TestGateway) -> String {
    reqwest::Client::new()
        .get(format!("{}/api/v4/prometheus", node.base_url("nanomq")))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A GET on a node's dialect API; its JSON answer.
async fn api_get(node: &TestGateway, dialect: &str, path_and_query: &str) -> serde_json::Value {
    let (user, password) = match dialect {
        "mica" => ("mica", "mica"),
        _ => ("admin", "public"),
    };
    let answer = reqwest::Client::new()
        .get(format!("{}{path_and_query}", node.base_url(dialect)))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(answer.status(), 200, "{dialect} {path_and_query}");
    answer.json().await.expect("JSON")
}

fn texts(values: &serde_json::Value, key: &str) -> Vec<String> {
    let mut texts: Vec<String> = values
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|v| v[key].as_str().expect("a text").to_string())
        .collect();
    texts.sort();
    texts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_look_ups_and_figures_span_every_node_through_every_dialect() {
    let Some((_nats, nodes)) = cluster(3).await else {
        return;
    };
    // 3, 2 and 4 clients on nodes 0, 1 and 2, each subscribed to its own topic
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for (n, count) in [(0usize, 3usize), (1, 2), (2, 4)] {
        for k in 0..count {
            let id = format!("n{n}-c{k}");
            let c = connect_v4(nodes[n].v4_options(&id)).await;
            subscribe(&c, &[&format!("t/{id}")], QoS::AtLeastOnce).await;
            ids.push(id);
            clients.push(c);
        }
    }
    ids.sort();
    let counted = common::eventually(5, || {
        nodes
            .iter()
            .map(|n| n.gateway.management().node_stats().subscriptions)
            .sum::<u64>()
            == 9
    })
    .await;
    assert!(counted, "every subscription in place");
    let asked = &nodes[1];

    // mica pages of 4 through node 1: every client exactly once, in three pages
    let mut paged = Vec::new();
    for page in 1..=3 {
        let answer = api_get(
            asked,
            "mica",
            &format!("/api/v1/clients?_page={page}&_limit=4"),
        )
        .await;
        assert_eq!(answer["data"]["totalRow"], 9, "page {page}");
        let list = answer["data"]["list"].as_array().unwrap();
        assert_eq!(list.len(), if page < 3 { 4 } else { 1 }, "page {page}");
        paged.extend(
            list.iter()
                .map(|c| c["clientId"].as_str().unwrap().to_string()),
        );
    }
    paged.sort();
    assert_eq!(paged, ids, "no client missing or shown twice across pages");
    let info = api_get(asked, "mica", "/api/v1/clients/info?clientId=n2-c3").await;
    assert_eq!(
        info["data"]["clientId"], "n2-c3",
        "a client of node 2 looked up through node 1"
    );
    let subscriptions = api_get(asked, "mica", "/api/v1/client/subscriptions?clientId=n0-c1").await;
    assert_eq!(subscriptions["data"][0]["topicFilter"], "t/n0-c1");

    // NanoMQ: every client and subscription; every node with its own count
    let clients_v4 = api_get(asked, "nanomq", "/api/v4/clients").await;
    assert_eq!(texts(&clients_v4["data"], "client_id"), ids);
    let subs_v4 = api_get(asked, "nanomq", "/api/v4/subscriptions").await;
    assert_eq!(texts(&subs_v4["data"], "clientid"), ids);
    let nodes_v4 = api_get(asked, "nanomq", "/api/v4/nodes").await;
    let listed: Vec<(&str, u64)> = nodes_v4["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node"].as_str().unwrap(),
                n["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("node-1", 2), ("node-0", 3), ("node-2", 4)],
        "the node asked first"
    );
    let brokers = api_get(asked, "nanomq", "/api/v4/brokers").await;
    assert_eq!(brokers["data"].as_array().unwrap().len(), 3);

    // figures add up; Prometheus text stays the node's own, labelled
    let stats = api_get(asked, "mica", "/api/v1/stats").await;
    assert_eq!(stats["data"]["nodes"]["connections"], 9);
    let metrics = api_get(asked, "nanomq", "/api/v4/metrics").await;
    assert_eq!(metrics["connections"], 9);
    let text = prometheus_text(asked).await;
    assert!(
        text.contains("nanomq_connections_count{node=\"node-1\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("nanomq_subscribers_count{node=\"node-1\"} 2\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_leaves_the_lists_at_once() {
    let Some((_nats, mut nodes)) = cluster(2).await else {
        return;
    };
    let _a = connect_v4(nodes[0].v4_options("stays")).await;
    let _b = connect_v4(nodes[1].v4_options("goes")).await;
    let on_a = nodes[0].gateway.management();
    let all = mqgate_kit::PageRequest::ALL;
    let both = common::eventually_async(5, || async {
        on_a.list_clients(&Default::default(), all).await.total == 2
    })
    .await;
    assert!(both, "node A lists node B's client");
    nodes.pop().unwrap().shutdown().await;
    // B said it leaves: A neither lists its client nor waits for its answer
    let started = std::time::Instant::now();
    let page = on_a.list_clients(&Default::default(), all).await;
    let took = started.elapsed();
    let listed: Vec<&str> = page.items.iter().map(|c| c.client_id.as_str()).collect();
    assert_eq!(listed, ["stays"]);
    assert!(took < Duration::from_millis(500), "answered in {took:?}");
    assert_eq!(on_a.nodes().await.len(), 1);
}

/// Whether the CONNACK `c` got said "session present".
async fn session_present(c: &mut V4Client) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.events.recv()).await {
            Ok(Some(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)))) => {
                return ack.session_present
            }
            Ok(Some(_)) => continue,
            other => panic!("no CONNACK event: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_session_and_its_queue_follow_the_client_to_another_node() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let persistent = |node: &TestGateway| {
        let mut options = node.v4_options("roamer");
        options.set_clean_session(false);
        options
    };
    let roamer = connect_v4(persistent(&nodes[0])).await;
    subscribe(&roamer, &["roam/#"], QoS::AtLeastOnce).await;
    settle().await;
    roamer.client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(5), roamer.task).await;
    let m0 = nodes[0].gateway.management();
    let offline = common::eventually_async(5, || async {
        m0.get_client("roamer").await.is_some_and(|c| !c.connected)
    })
    .await;
    assert!(offline, "the session is offline on node 0");

    // queued on node 0 while the client is away: from node 0 and across from node 1
    let publishers = [
        connect_v4(nodes[0].v4_options("pub-0")).await,
        connect_v4(nodes[1].v4_options("pub-1")).await,
    ];
    for (n, publisher) in publishers.iter().enumerate() {
        for i in 0..3 {
            let payload = format!("while away {n}/{i}");
            publisher
                .client
                .publish(format!("roam/{n}"), QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    }
    let queued = common::eventually_async(5, || async {
        m0.get_client("roamer")
            .await
            .is_some_and(|c| c.send_queue_len == 6)
    })
    .await;
    assert!(queued, "six messages queued on node 0");

    // back, on node 1: the session, its queue and its subscription came along
    let mut back = connect_v4(persistent(&nodes[1])).await;
    assert!(session_present(&mut back).await, "session present");
    let got = collect(&mut back, 6, 5).await;
    let mut payloads: Vec<String> = got
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    payloads.sort();
    let expected: Vec<String> = (0..2)
        .flat_map(|n| (0..3).map(move |i| format!("while away {n}/{i}")))
        .collect();
    assert_eq!(payloads, expected, "every queued message, once");
    assert_eq!(
        m0.node_stats().sessions,
        1,
        "node 0 holds only its publisher"
    );
    settle().await;
    publishers[0]
        .client
        .publish("roam/later", QoS::AtLeastOnce, false, "after the move")
        .await
        .unwrap();
    let later = next_publish(&mut back, 5)
        .await
        .expect("routed to node 1 now");
    assert_eq!(&later.payload[..], b"after the move");

    // a clean start through node 0 takes nothing along
    drop(back);
    let mut clean = connect_v4(nodes[0].v4_options("roamer")).await;
    assert!(!session_present(&mut clean).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_exchanges_in_flight_resume_on_the_node_the_client_moves_to() {
    use common::raw::{Ack, Connect, Raw};
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let connect = Connect::v4("mover").resume();
    let (mut sub, _) = Raw::accepted(nodes[0].mqtt_addr(), connect.clone()).await;
    sub.subscribe_one("fly/t", 2).await;
    let publisher = connect_v4(nodes[0].v4_options("fly-pub")).await;
    for payload in ["released", "unanswered"] {
        publisher
            .client
            .publish("fly/t", QoS::ExactlyOnce, false, payload)
            .await
            .unwrap();
    }
    // the first is PUBREC'd (PUBREL comes, no PUBCOMP); the second not answered
    let first = sub.expect_publish().await;
    let second = sub.expect_publish().await;
    assert_eq!((first.text(), second.text()), ("released", "unanswered"));
    sub.ack(Ack::PubRec, first.pkid).await;
    assert_eq!(sub.expect_ack(Ack::PubRel, first.pkid).await, 0);
    drop(sub);

    // on node 1: PUBREL again for the first, the second again with DUP and its packet id
    let (mut sub, present) = Raw::accepted(nodes[1].mqtt_addr(), connect).await;
    assert!(present, "the session moved");
    assert_eq!(sub.expect_ack(Ack::PubRel, first.pkid).await, 0);
    sub.ack(Ack::PubComp, first.pkid).await;
    let again = sub.expect_publish().await;
    assert_eq!(
        (again.text(), again.pkid, again.dup, again.qos),
        ("unanswered", second.pkid, true, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_id_connecting_on_two_nodes_at_once_keeps_one_session() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    let ids: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let mut clients = Vec::new();
    for id in &ids {
        let (a, b) = tokio::join!(
            connect_v4(nodes[0].v4_options(id)),
            connect_v4(nodes[1].v4_options(id))
        );
        clients.push((a, b));
    }
    let sessions = || -> u64 {
        nodes
            .iter()
            .map(|n| n.gateway.management().node_stats().sessions)
            .sum()
    };
    let one_each = common::eventually(5, || sessions() == ids.len() as u64).await;
    assert!(one_each, "{} sessions for {} ids", sessions(), ids.len());
    let m = nodes[0].gateway.management();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let found = m.get_clients(&refs).await;
    assert!(found
        .iter()
        .all(|c| c.as_ref().is_some_and(|c| c.connected)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_made_for_an_id_before_it_connects_follow_it_to_its_node() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    // through node 0's mica API, for an id no node has seen yet
    let body = r#"{"clientId":"later","topic":"early/+","qos":1}"#;
    let answer = mica_post(&nodes[0], "/api/v1/mqtt/subscribe", body).await;
    assert_eq!(answer, serde_json::json!({"code": 1}));
    settle().await;

    let mut later = connect_v4(nodes[1].v4_options("later")).await;
    assert!(!session_present(&mut later).await, "a new session");
    assert_eq!(filters_of(&nodes[1], "later").await, ["early/+"]);
    settle().await;
    let publisher = connect_v4(nodes[0].v4_options("early-pub")).await;
    publisher
        .client
        .publish("early/1", QoS::AtLeastOnce, false, "kept for you")
        .await
        .unwrap();
    let p = next_publish(&mut later, 5)
        .await
        .expect("the subscription routes on node 1");
    assert_eq!(&p.payload[..], b"kept for you");
    // and nothing is left behind on node 0
    let here = mqgate_kit::SubscriptionFilter {
        client_id: Some("later".into()),
        ..Default::default()
    };
    let all = mqgate_kit::PageRequest::ALL;
    let listed = nodes[0]
        .gateway
        .management()
        .list_subscriptions(&here, all)
        .await;
    assert_eq!(listed.total, 1, "listed once, from node 1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setting_changed_through_one_node_applies_on_every_node() {
    let Some((_nats, nodes)) = cluster(2).await else {
        return;
    };
    settle().await;
    let before = nodes[1].gateway.management().config().hot;
    let answer = reqwest::Client::new()
        .post(format!(
            "{}/api/v4/configuration",
            nodes[0].base_url("nanomq")
        ))
        .basic_auth("admin", Some("public"))
        .body(r#"{"data":{"basic":{"allow_anonymous":false,"msq_len":321}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let m1 = nodes[1].gateway.management();
    let applied = common::eventually(5, || {
        let hot = m1.config().hot;
        !hot.allow_anonymous && hot.max_queued_messages == 321
    })
    .await;
    assert!(applied, "node 1 had {before:?}, now {:?}", m1.config().hot);
    // and it is in force there: an anonymous CONNECT is refused
    let refused = common::try_connect_v4(nodes[1].v4_options("anon")).await;
    assert_eq!(refused, Ok(rumqttc::ConnectReturnCode::NotAuthorized));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn easemob_rejects_an_id_connected_on_another_node_when_told_to() {
    const APP_ID: &str = "mq7g4e";
    let Some((_nats, nodes)) = cluster_with(2, |c| {
        c.easemob.duplicate_client_id = mqgate_easemob::DuplicateClientId::Reject
    })
    .await
    else {
        return;
    };
    let id = format!("twin@{APP_ID}");
    let mut clients = Vec::new();
    for node in &nodes {
        let app = node.easemob_app_token().await;
        let user = node.easemob_user_token(&app, "dup").await;
        let mut options = node.v4_options(&id);
        options.set_credentials("dup", user);
        clients.push(options);
    }
    let first = connect_v4(clients[0].clone()).await;
    settle().await;
    assert_eq!(
        common::try_connect_v4(clients[1].clone()).await,
        Ok(rumqttc::ConnectReturnCode::BadClientId),
        "refused on node 1: connected on node 0"
    );
    assert!(!first.task.is_finished(), "the first connection stays");
    // other ids are not looked up and connect as usual
    let mut other = clients[1].clone();
    other.set_client_id(format!("other@{APP_ID}"));
    let _other = connect_v4(other).await;
}

/// A GET of node `node`'s Easemob API with `token`, polled until `done` holds
/// (records are written in batches).
async fn easemob_get_until(
    node: &TestGateway,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reply: serde_json::Value = reqwest::Client::new()
            .get(format!("{}{path}", node.base_url("easemob")))
            .header("Authorization", token)
            .query(query)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&reply) || tokio::time::Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn easemob_records_are_shared_and_a_message_keeps_its_id_on_every_node() {
    const APP_ID: &str = "mq7g4e";
    let Some(pg) = mqgate_pgtest::server("shared records") else {
        return;
    };
    let database = pg.database();
    let url = database.clone();
    let Some((_nats, nodes)) = cluster_with(2, move |c| {
        c.store.backend = mqgate::config::StoreBackend::Postgres;
        c.store.postgres_url = Some(url.clone());
        c.records.batch_interval_ms = 20;
    })
    .await
    else {
        return;
    };
    // tokens are shared too: each node's app token serves on the other
    let app = nodes[0].easemob_app_token().await;
    let (sender_id, receiver_id) = (format!("sender@{APP_ID}"), format!("receiver@{APP_ID}"));
    let mut receiver_options = nodes[1].v4_options(&receiver_id);
    receiver_options.set_credentials("r", nodes[1].easemob_user_token(&app, "r").await);
    let mut receiver = connect_v4(receiver_options).await;
    subscribe(&receiver, &["room/shared"], QoS::AtLeastOnce).await;
    let mut sender_options = nodes[0].v4_options(&sender_id);
    sender_options.set_credentials("s", nodes[0].easemob_user_token(&app, "s").await);
    let sender = connect_v4(sender_options).await;
    settle().await;
    for text in ["one", "two", "three"] {
        sender
            .client
            .publish("room/shared", QoS::AtLeastOnce, false, text)
            .await
            .unwrap();
    }
    let got = collect(&mut receiver, 3, 10).await;
    assert_eq!(got.len(), 3, "delivered across the nodes once each");

    let now = mqgate_kit::clock::now_ms();
    let (begin, end) = (
        mqgate_kit::http::time::format_datetime(now - 60_000),
        mqgate_kit::http::time::format_datetime(now + 60_000),
    );
    let window = [("beginTime", begin.as_str()), ("endTime", end.as_str())];
    // through node 1: the sender's uplinks, recorded by node 0
    let sent = easemob_get_until(
        &nodes[1],
        &app,
        "/openapi/rm/message/record",
        &[("clientid", &sender_id), window[0], window[1]],
        |b| b["body"]["totalCount"] == 3,
    )
    .await;
    let rows = sent["body"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{sent}");
    let mids: Vec<String> = rows
        .iter()
        .map(|r| r["mid"].as_str().unwrap().to_string())
        .collect();
    // through node 0: the receiver's downlinks, recorded by node 1, same ids
    let received = easemob_get_until(
        &nodes[0],
        &app,
        "/openapi/rm/message/record",
        &[("clientid", &receiver_id), window[0], window[1]],
        |b| b["body"]["totalCount"] == 3,
    )
    .await;
    let received_mids: Vec<&str> = received["body"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["direction"], "downlink");
            r["mid"].as_str().unwrap()
        })
        .collect();
    assert_eq!(received_mids, mids, "{received}");
    // each message's trace through either node: its publish on node 0, its
    // delivery on node 1, and its content
    for (i, mid) in mids.iter().enumerate() {
        let node = &nodes[i % 2];
        let delivered = easemob_get_until(
            node,
            &app,
            "/openapi/rm/message/subscribe",
            &[
                ("clientid", &sender_id),
                ("messageid", mid),
                window[0],
                window[1],
            ],
            |b| b["body"]["totalCount"] == 1,
        )
        .await;
        assert_eq!(
            delivered["body"]["data"][0]["cid"],
            serde_json::json!(receiver_id)
        );
        let content = easemob_get_until(
            &nodes[(i + 1) % 2],
            &app,
            "/openapi/rm/message/message",
            &[("messageId", mid), ("encode", "utf-8")],
            |b| b["body"]["message"].is_string(),
        )
        .await;
        assert_eq!(
            content["body"]["message"],
            serde_json::json!(["one", "two", "three"][i]),
            "{content}"
        );
    }
    // the two nodes hold an id slot each, named after them
    let store = mqgate_kit::store::Store::connect(&mqgate_kit::store::PostgresOptions {
        url: database,
        pool_size: 1,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let holders = store
        .read(|tx| {
            tx.query(
                "SELECT holder FROM records_id_slots ORDER BY holder",
                &[],
                |r| r.get::<String>(0),
            )
        })
        .unwrap();
    assert_eq!(holders.len(), 2, "{holders:?}");
    assert!(holders[0].starts_with("node-0/") && holders[1].starts_with("node-1/"));
}
