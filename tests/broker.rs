//! End-to-end tests of the MQTT broker itself: real rumqttc clients (v3.1.1 and
//! v5, TCP and WebSocket) and raw sockets where the exact bytes matter.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use mqgate_kit::{KickOptions, OnBehalf, SubscriptionRequest};
use rumqttc::{Event, LastWill, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn wait_suback(c: &mut V4Client) -> Vec<rumqttc::SubscribeReasonCode> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let ev = tokio::time::timeout_at(deadline, c.events.recv())
            .await
            .expect("SUBACK in time")
            .expect("event loop alive");
        if let Event::Incoming(Packet::SubAck(ack)) = ev {
            return ack.return_codes;
        }
    }
}

async fn subscribed(gw: &TestGateway, id: &str, filter: &str, qos: QoS) -> V4Client {
    let mut c = connect_v4(gw.v4_options(id)).await;
    c.client.subscribe(filter, qos).await.unwrap();
    wait_suback(&mut c).await;
    c
}

// ---- raw MQTT bytes ---------------------------------------------------------

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn mqtt_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn connect_bytes(level: u8, client_id: &str, keepalive: u16) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_str(if level == 3 { "MQIsdp" } else { "MQTT" }, &mut body);
    body.push(level);
    body.push(0x02); // clean session
    body.extend_from_slice(&keepalive.to_be_bytes());
    if level == 5 {
        body.push(0); // no properties
    }
    mqtt_str(client_id, &mut body);
    packet(0x10, &body)
}

async fn raw_connect(gw: &TestGateway, level: u8, client_id: &str, keepalive: u16) -> TcpStream {
    let mut s = TcpStream::connect(gw.mqtt_addr()).await.unwrap();
    s.write_all(&connect_bytes(level, client_id, keepalive))
        .await
        .unwrap();
    let connack = read_some(&mut s, Duration::from_secs(3)).await;
    assert_eq!(connack[0], 0x20, "CONNACK expected, got {connack:02x?}");
    assert_eq!(connack[3], 0, "accepted");
    s
}

/// Everything that arrives within `wait` (stops early at EOF).
async fn read_some(s: &mut TcpStream, wait: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if wait < Duration::from_secs(1) {
                    continue;
                }
                // got a first answer: collect what follows shortly after
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await
                {
                    out.extend_from_slice(&buf[..n]);
                }
                return out;
            }
        }
    }
}

/// True once the peer has closed the socket.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

// ---- tests ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_1_2_are_delivered() {
    let gw = start().await;
    let mut sub = subscribed(&gw, "sub-qos", "q/#", QoS::ExactlyOnce).await;
    let publisher = connect_v4(gw.v4_options("pub-qos")).await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publisher
            .client
            .publish(format!("q/{i}"), qos, false, format!("m{i}"))
            .await
            .unwrap();
        let p = next_publish(&mut sub, 5).await.expect("delivered");
        assert_eq!(p.topic, format!("q/{i}"));
        assert_eq!(p.payload, Bytes::from(format!("m{i}")));
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v4_and_v5_share_one_port_and_properties_reach_v5() {
    use rumqttc::v5::mqttbytes::v5::{Packet as P5, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as Q5;
    let gw = start().await;
    let (v5, mut ev5) = rumqttc::v5::AsyncClient::new(gw.v5_options("v5-sub"), 10);
    v5.subscribe("mix/t", Q5::AtLeastOnce).await.unwrap();
    let (got_tx, mut got) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = ev5.poll().await {
            if let rumqttc::v5::Event::Incoming(P5::Publish(p)) = ev {
                let _ = got_tx.send(p);
            }
        }
    });
    assert!(
        eventually_async(5, || async {
            gw.gateway
                .management()
                .get_client("v5-sub")
                .await
                .is_some_and(|c| c.subscription_count == 1)
        })
        .await
    );
    // a v4 client publishes, the v5 client receives
    let v4 = connect_v4(gw.v4_options("v4-pub")).await;
    v4.client
        .publish("mix/t", QoS::AtLeastOnce, false, "from v4")
        .await
        .unwrap();
    let p = tokio::time::timeout(Duration::from_secs(5), got.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.payload, Bytes::from("from v4"));
    // a v5 publisher's user property reaches the v5 subscriber
    let (v5p, mut evp) = rumqttc::v5::AsyncClient::new(gw.v5_options("v5-pub"), 10);
    tokio::spawn(async move { while evp.poll().await.is_ok() {} });
    let props = PublishProperties {
        user_properties: vec![("k".into(), "v".into())],
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    v5p.publish_with_properties("mix/t", Q5::AtLeastOnce, false, "from v5", props)
        .await
        .unwrap();
    let p = tokio::time::timeout(Duration::from_secs(5), got.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.payload, Bytes::from("from v5"));
    let props = p.properties.expect("properties forwarded");
    assert_eq!(
        props.user_properties,
        vec![("k".to_string(), "v".to_string())]
    );
    assert_eq!(props.content_type.as_deref(), Some("text/plain"));
    let info = gw.gateway.management().get_client("v5-sub").await.unwrap();
    assert_eq!(info.proto_ver, 5);
    assert_eq!(
        gw.gateway
            .management()
            .get_client("v4-pub")
            .await
            .unwrap()
            .proto_ver,
        4
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_pub_sub() {
    let gw = start().await;
    let mut sub = subscribed(&gw, "tcp-sub", "ws/#", QoS::AtLeastOnce).await;
    let addr = gw.ws_addr();
    let mut o = rumqttc::MqttOptions::new("ws-client", format!("ws://{addr}/mqtt"), addr.port());
    o.set_transport(rumqttc::Transport::Ws);
    o.set_keep_alive(Duration::from_secs(30));
    let ws = connect_v4(o).await;
    ws.client
        .publish("ws/hello", QoS::AtLeastOnce, false, "over ws")
        .await
        .unwrap();
    let p = next_publish(&mut sub, 5).await.expect("delivered from ws");
    assert_eq!(p.payload, Bytes::from("over ws"));
    let info = gw
        .gateway
        .management()
        .get_client("ws-client")
        .await
        .unwrap();
    assert_eq!(info.transport, mqgate_kit::Transport::WebSocket);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_message_reaches_late_subscriber() {
    let gw = start().await;
    let p = connect_v4(gw.v4_options("ret-pub")).await;
    p.client
        .publish("ret/t", QoS::AtLeastOnce, true, "kept")
        .await
        .unwrap();
    assert!(eventually(5, || gw.gateway.management().node_stats().retained == 1).await);
    let mut late = subscribed(&gw, "ret-sub", "ret/#", QoS::AtLeastOnce).await;
    let m = next_publish(&mut late, 5)
        .await
        .expect("retained delivered");
    assert_eq!(m.payload, Bytes::from("kept"));
    assert!(m.retain);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_on_abrupt_close_and_on_kick() {
    let gw = start().await;
    let mut watcher = subscribed(&gw, "watcher", "wills/#", QoS::AtLeastOnce).await;
    let mut o = gw.v4_options("dies");
    o.set_last_will(LastWill::new("wills/dies", "gone", QoS::AtLeastOnce, false));
    let dying = connect_v4(o).await;
    dying.task.abort(); // socket dropped without DISCONNECT
    let w = next_publish(&mut watcher, 5).await.expect("will published");
    assert_eq!(
        (w.topic.as_str(), &w.payload[..]),
        ("wills/dies", &b"gone"[..])
    );

    let mut o = gw.v4_options("kicked");
    o.set_last_will(LastWill::new(
        "wills/kicked",
        "kicked out",
        QoS::AtMostOnce,
        false,
    ));
    let mut kicked = connect_v4(o).await;
    let outcome = gw
        .gateway
        .management()
        .kick(
            "kicked",
            KickOptions {
                discard_session: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(outcome, mqgate_kit::KickOutcome::Disconnected);
    let w = next_publish(&mut watcher, 5).await.expect("will on kick");
    assert_eq!(w.topic, "wills/kicked");
    let err = tokio::time::timeout(Duration::from_secs(5), &mut kicked.task)
        .await
        .unwrap()
        .unwrap();
    assert!(err.is_some(), "kicked client's connection ended");
    assert!(gw.gateway.management().get_client("kicked").await.is_none());

    // a clean DISCONNECT publishes no will
    let mut o = gw.v4_options("polite");
    o.set_last_will(LastWill::new("wills/polite", "x", QoS::AtMostOnce, false));
    let polite = connect_v4(o).await;
    polite.client.disconnect().await.unwrap();
    assert!(next_publish(&mut watcher, 1).await.is_none());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_client_id_takes_over() {
    let gw = start().await;
    let mut first = connect_v4(gw.v4_options("twin")).await;
    let mut second = subscribed(&gw, "twin", "twin/t", QoS::AtLeastOnce).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), &mut first.task).await;
    assert!(ended.is_ok(), "first connection closed by takeover");
    let p = connect_v4(gw.v4_options("twin-pub")).await;
    p.client
        .publish("twin/t", QoS::AtLeastOnce, false, "to second")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut second, 5).await.unwrap().payload,
        Bytes::from("to second")
    );
    let page = gw
        .gateway
        .management()
        .list_clients(
            &mqgate_kit::ClientFilter {
                client_id: Some("twin".into()),
                ..Default::default()
            },
            mqgate_kit::PageRequest::ALL,
        )
        .await;
    assert_eq!(page.total, 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_timeout_closes_silent_client() {
    let gw = start().await;
    let started = std::time::Instant::now();
    let mut s = raw_connect(&gw, 4, "sleepy", 1).await;
    assert!(
        closed_within(&mut s, Duration::from_secs(4)).await,
        "closed for silence"
    );
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(1400),
        "not before 1.5 x keepalive: {after:?}"
    );
    // keepalive 0 means no timeout
    let mut s = raw_connect(&gw, 4, "no-keepalive", 0).await;
    assert!(!closed_within(&mut s, Duration::from_secs(2)).await);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_statistics_are_served_and_other_dollar_filters_refused_without_disconnect() {
    let gw = start().await;
    let mut c = connect_v4(gw.v4_options("sys-curious")).await;
    c.client
        .subscribe_many([
            rumqttc::SubscribeFilter::new("$SYS/broker/version".into(), QoS::AtMostOnce),
            rumqttc::SubscribeFilter::new("$internal/#".into(), QoS::AtMostOnce),
            rumqttc::SubscribeFilter::new("plain/t".into(), QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    let codes = wait_suback(&mut c).await;
    assert_eq!(
        codes,
        vec![
            rumqttc::SubscribeReasonCode::Success(QoS::AtMostOnce),
            rumqttc::SubscribeReasonCode::Failure,
            rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)
        ]
    );
    // $SYS messages are retained: the version arrives at once
    let version = next_publish(&mut c, 5).await.expect("$SYS/broker/version");
    assert_eq!(version.topic, "$SYS/broker/version");
    assert!(std::str::from_utf8(&version.payload)
        .unwrap()
        .starts_with("mqgate "));
    let p = connect_v4(gw.v4_options("sys-pub")).await;
    p.client
        .publish("plain/t", QoS::AtLeastOnce, false, "still here")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut c, 5).await.unwrap().payload,
        Bytes::from("still here")
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_of_two_filters_gets_exactly_one_unsuback() {
    let gw = start().await;
    let mut s = raw_connect(&gw, 4, "unsub-raw", 60).await;
    // SUBSCRIBE pkid 1: a/1, a/2 at QoS 1
    let mut body = vec![0x00, 0x01];
    for f in ["a/1", "a/2"] {
        mqtt_str(f, &mut body);
        body.push(1);
    }
    s.write_all(&packet(0x82, &body)).await.unwrap();
    assert_eq!(
        read_some(&mut s, Duration::from_secs(3)).await,
        vec![0x90, 0x04, 0x00, 0x01, 0x01, 0x01]
    );
    // UNSUBSCRIBE pkid 2: a/1, a/2 -> one UNSUBACK
    let mut body = vec![0x00, 0x02];
    mqtt_str("a/1", &mut body);
    mqtt_str("a/2", &mut body);
    s.write_all(&packet(0xA2, &body)).await.unwrap();
    assert_eq!(
        read_some(&mut s, Duration::from_secs(3)).await,
        vec![0xB0, 0x02, 0x00, 0x02]
    );
    // UNSUBSCRIBE of a filter never subscribed -> still exactly one UNSUBACK
    let mut body = vec![0x00, 0x03];
    mqtt_str("never/subscribed", &mut body);
    s.write_all(&packet(0xA2, &body)).await.unwrap();
    assert_eq!(
        read_some(&mut s, Duration::from_secs(3)).await,
        vec![0xB0, 0x02, 0x00, 0x03]
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_3_1_gets_unacceptable_protocol_version() {
    let gw = start().await;
    let mut s = TcpStream::connect(gw.mqtt_addr()).await.unwrap();
    s.write_all(&connect_bytes(3, "old", 60)).await.unwrap();
    assert_eq!(
        read_some(&mut s, Duration::from_secs(3)).await,
        vec![0x20, 0x02, 0x00, 0x01]
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ids_with_slashes_and_dollars_work() {
    let gw = start().await;
    let mut c = subscribed(&gw, "site/1/$dev#+", "odd/t", QoS::AtLeastOnce).await;
    let p = connect_v4(gw.v4_options("site/2")).await;
    p.client
        .publish("odd/t", QoS::AtLeastOnce, false, "ok")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut c, 5).await.unwrap().payload,
        Bytes::from("ok")
    );
    assert!(gw
        .gateway
        .management()
        .get_client("site/1/$dev#+")
        .await
        .is_some());
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_server_packets_is_dropped_and_the_broker_lives_on() {
    let gw = start().await;
    for bytes in [
        vec![0x20, 0x02, 0x00, 0x00],
        vec![0xB0, 0x02, 0x00, 0x01],
        vec![0x82, 0x03, 0x00, 0x00, 0xff],
    ] {
        let mut s = raw_connect(&gw, 5, "rogue", 60).await;
        s.write_all(&bytes).await.unwrap();
        assert!(
            closed_within(&mut s, Duration::from_secs(3)).await,
            "not closed after {bytes:02x?}"
        );
    }
    let mut c = subscribed(&gw, "after-rogue", "ok/t", QoS::AtMostOnce).await;
    let p = connect_v4(gw.v4_options("after-rogue-pub")).await;
    p.client
        .publish("ok/t", QoS::AtMostOnce, false, "alive")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut c, 5).await.unwrap().payload,
        Bytes::from("alive")
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_on_behalf_of_connected_client_without_suback() {
    let gw = start().await;
    let mut c = connect_v4(gw.v4_options("proxied")).await;
    let m = gw.gateway.management();
    let outcome = m
        .subscribe(
            "proxied",
            vec![SubscriptionRequest {
                topic_filter: "inj/#".into(),
                qos: 1,
            }],
            OnBehalf::ExistingSession,
        )
        .await
        .unwrap();
    assert_eq!(outcome, mqgate_kit::SubscribeOutcome::Live);
    let p = connect_v4(gw.v4_options("proxied-pub")).await;
    p.client
        .publish("inj/a", QoS::AtLeastOnce, false, "injected")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut c, 5).await.unwrap().payload,
        Bytes::from("injected")
    );
    // the client never saw a SUBACK it did not ask for
    while let Ok(ev) = c.events.try_recv() {
        assert!(
            !matches!(ev, Event::Incoming(Packet::SubAck(_))),
            "unsolicited SUBACK"
        );
    }
    // unsubscribe on behalf: nothing more arrives
    assert_eq!(
        m.unsubscribe("proxied", vec!["inj/#".into()])
            .await
            .unwrap(),
        vec![true]
    );
    p.client
        .publish("inj/b", QoS::AtLeastOnce, false, "not for you")
        .await
        .unwrap();
    assert!(next_publish(&mut c, 1).await.is_none());
    // an unknown client is an error in ExistingSession mode
    assert_eq!(
        m.subscribe(
            "nobody",
            vec![SubscriptionRequest {
                topic_filter: "x".into(),
                qos: 0
            }],
            OnBehalf::ExistingSession
        )
        .await,
        Err(mqgate_kit::MgmtError::ClientNotFound)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_on_behalf_of_offline_persistent_session() {
    let gw = start().await;
    let mut o = gw.v4_options("sleeper");
    o.set_clean_session(false);
    let c = connect_v4(o.clone()).await;
    c.client.disconnect().await.unwrap();
    let m = gw.gateway.management();
    assert!(
        eventually_async(5, || async {
            m.get_client("sleeper").await.is_some_and(|c| !c.connected)
        })
        .await
    );
    let outcome = m
        .subscribe(
            "sleeper",
            vec![SubscriptionRequest {
                topic_filter: "later/#".into(),
                qos: 1,
            }],
            OnBehalf::ExistingSession,
        )
        .await
        .unwrap();
    assert_eq!(outcome, mqgate_kit::SubscribeOutcome::Offline);
    let mut back = connect_v4(o).await;
    assert!(
        eventually_async(5, || async {
            m.get_client("sleeper").await.is_some_and(|c| c.connected)
        })
        .await
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let p = connect_v4(gw.v4_options("sleeper-pub")).await;
    p.client
        .publish("later/x", QoS::AtLeastOnce, false, "welcome back")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut back, 5).await.unwrap().payload,
        Bytes::from("welcome back")
    );
    while let Ok(ev) = back.events.try_recv() {
        assert!(
            !matches!(ev, Event::Incoming(Packet::SubAck(_))),
            "unsolicited SUBACK"
        );
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_sends_v5_disconnect_0x8b() {
    let gw = start().await;
    let mut s = raw_connect(&gw, 5, "v5-raw", 60).await;
    let shutdown = tokio::spawn(async move { gw.shutdown().await });
    let bytes = read_some(&mut s, Duration::from_secs(5)).await;
    // DISCONNECT, reason 0x8B (server shutting down), with a reason string property
    assert_eq!(bytes[0], 0xE0);
    assert_eq!(bytes[2], 0x8B);
    assert_eq!(bytes[4], 0x1F, "reason string property: {bytes:?}");
    assert_eq!(bytes.len(), 2 + bytes[1] as usize);
    shutdown.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_refused_when_disallowed_and_configured_users_checked() {
    let gw = start_with(|c| {
        c.mqtt.allow_anonymous = false;
        c.mqtt.users = vec![mqgate::config::MqttUser {
            username: "u".into(),
            password: "p".into(),
        }];
    })
    .await;
    assert_eq!(
        try_connect_v4(gw.v4_options("anon")).await,
        Ok(rumqttc::ConnectReturnCode::NotAuthorized)
    );
    let mut o = gw.v4_options("wrong");
    o.set_credentials("u", "nope");
    assert_eq!(
        try_connect_v4(o).await,
        Ok(rumqttc::ConnectReturnCode::BadUserNamePassword)
    );
    let mut o = gw.v4_options("right");
    o.set_credentials("u", "p");
    assert_eq!(
        try_connect_v4(o).await,
        Ok(rumqttc::ConnectReturnCode::Success)
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_an_exchange() {
    let gw = start().await;
    let m = gw.gateway.management();
    let before = m.node_stats();
    let mut sub = subscribed(&gw, "stat-sub", "stat/t", QoS::AtMostOnce).await;
    let p = connect_v4(gw.v4_options("stat-pub")).await;
    for _ in 0..3 {
        p.client
            .publish("stat/t", QoS::AtMostOnce, false, "x")
            .await
            .unwrap();
        next_publish(&mut sub, 5).await.unwrap();
    }
    let after = m.node_stats();
    assert_eq!(after.sockets_accepted - before.sockets_accepted, 2);
    assert_eq!(after.connections, 2);
    assert_eq!(after.messages_received - before.messages_received, 3);
    assert_eq!(after.messages_sent - before.messages_sent, 3);
    assert_eq!(after.subscriptions, 1);
    assert_eq!(after.topics, 1);
    assert_eq!(
        after.messages_dropped, before.messages_dropped,
        "all had a subscriber"
    );
    p.client
        .publish("nobody/listens", QoS::AtMostOnce, false, "lost")
        .await
        .unwrap();
    assert!(
        eventually(5, || m.node_stats().messages_dropped
            == before.messages_dropped + 1)
        .await
    );
    assert!(after.bytes_received > before.bytes_received);
    assert!(after.packets_received - before.packets_received >= 2 + 1 + 3);
    p.client.disconnect().await.unwrap();
    assert!(
        eventually(5, || m.node_stats().sockets_closed
            == before.sockets_closed + 1)
        .await
    );
    assert_eq!(m.node_stats().connections, 1);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_addresses_and_serves_again() {
    let gw = start().await;
    let addr = gw.mqtt_addr();
    gw.gateway
        .management()
        .control(mqgate_kit::ControlAction::Restart)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(eventually(10, || gw.gateway.management().node_stats().uptime_ms < 2000).await);
    assert_eq!(gw.mqtt_addr(), addr);
    let mut c = subscribed(&gw, "after-restart", "r/t", QoS::AtMostOnce).await;
    let p = connect_v4(gw.v4_options("after-restart-pub")).await;
    p.client
        .publish("r/t", QoS::AtMostOnce, false, "back")
        .await
        .unwrap();
    assert_eq!(
        next_publish(&mut c, 5).await.unwrap().payload,
        Bytes::from("back")
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_served_on_the_docs_listener_and_in_node_status() {
    let gw = start().await;
    let docs = gw.gateway.docs_addr().unwrap();
    let health = reqwest::get(format!("http://{docs}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(gw.gateway.management().node_stats().healthy);
    let nodes: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v4/nodes", gw.base_url("nanomq")))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodes["data"][0]["node_status"], "Running");
    gw.shutdown().await;
}
