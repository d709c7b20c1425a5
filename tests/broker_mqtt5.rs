//! MQTT 5 features, each checked on the wire with a raw client: session expiry,
//! Receive Maximum and Maximum Packet Size towards the client, subscription
//! options (No Local, Retain As Published, Retain Handling), subscription
//! identifiers, topic aliases both ways, message expiry, will delay, reason
//! strings, CONNACK properties, shared subscriptions and `$SYS`.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::raw::{prop, Ack, Connect, Packet, PropValue, Props, Publish, Raw, Sub, Will};
use common::*;

const QUIET: Duration = Duration::from_millis(400);

async fn publisher(gw: &TestGateway, id: &str) -> Raw {
    Raw::accepted(gw.mqtt_addr(), Connect::v5(id)).await.0
}

/// A QoS 1 publish, acknowledged with `reason`.
async fn publish1(raw: &mut Raw, p: Publish) -> u8 {
    let pkid = p.pkid;
    raw.publish(&p).await;
    raw.expect_ack(Ack::PubAck, pkid).await
}

// ---- session expiry -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_0_ends_the_session_at_disconnect() {
    let gw = start().await;
    let m = gw.gateway.management();
    let (mut c, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("se0")).await;
    c.subscribe_one("se0/t", 1).await;
    c.disconnect(0, Props::new()).await;
    assert!(eventually_async(5, || async { m.get_client("se0").await.is_none() }).await);
    let (_, present) = Raw::accepted(gw.mqtt_addr(), Connect::v5("se0").resume()).await;
    assert!(!present);
    assert_eq!(m.node_stats().subscriptions, 0);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_with_expiry_is_present_within_it_and_gone_after() {
    let gw = start().await;
    let m = gw.gateway.management();
    let connect = Connect::v5("se1").resume().expiry(1);
    let (mut c, present) = Raw::accepted(gw.mqtt_addr(), connect.clone()).await;
    assert!(!present);
    c.subscribe_one("se1/t", 1).await;
    c.disconnect(0, Props::new()).await;
    assert!(
        eventually_async(5, || async {
            m.get_client("se1").await.is_some_and(|c| !c.connected)
        })
        .await
    );
    // queued while offline, delivered on the resumed session
    let mut p = publisher(&gw, "se1-pub").await;
    assert_eq!(
        publish1(&mut p, Publish::new("se1/t", "kept", 1, 1)).await,
        0
    );
    let (mut c, present) = Raw::accepted(gw.mqtt_addr(), connect.clone()).await;
    assert!(present, "resumed within the expiry");
    let got = c.expect_publish().await;
    assert_eq!(got.text(), "kept");
    c.ack(Ack::PubAck, got.pkid).await;
    c.disconnect(0, Props::new()).await;
    let gone = Instant::now();
    assert!(
        eventually_async(5, || async { m.get_client("se1").await.is_none() }).await,
        "expired"
    );
    assert!(
        gone.elapsed() >= Duration::from_millis(900),
        "not before its expiry"
    );
    let (_, present) = Raw::accepted(gw.mqtt_addr(), connect).await;
    assert!(!present, "a new session after the expiry");
    drop(p);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_may_end_the_session_early_but_not_extend_an_expiry_of_0() {
    let gw = start().await;
    let m = gw.gateway.management();
    // 0 at CONNECT, 30 at DISCONNECT: a protocol error [MQTT-3.14.2-2]
    let (mut c, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("se-raise")).await;
    c.send_disconnect(
        0,
        Props::new().with(prop::SESSION_EXPIRY, PropValue::Four(30)),
    )
    .await;
    let (reason, why) = c.expect_disconnect().await;
    assert_eq!(reason, 0x82);
    assert!(why.is_some_and(|w| !w.is_empty()), "with a reason string");
    assert!(eventually_async(5, || async { m.get_client("se-raise").await.is_none() }).await);

    // 30 at CONNECT, 0 at DISCONNECT: the session ends now
    let connect = Connect::v5("se-lower").resume().expiry(30);
    let (mut c, _) = Raw::accepted(gw.mqtt_addr(), connect.clone()).await;
    c.subscribe_one("se/lower", 1).await;
    c.disconnect(
        0,
        Props::new().with(prop::SESSION_EXPIRY, PropValue::Four(0)),
    )
    .await;
    assert!(eventually_async(5, || async { m.get_client("se-lower").await.is_none() }).await);
    let (_, present) = Raw::accepted(gw.mqtt_addr(), connect).await;
    assert!(!present);
    gw.shutdown().await;
}

// ---- flow control towards the client --------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_maximum_bounds_unacknowledged_deliveries_to_the_client() {
    let gw = start().await;
    let connect = Connect::v5("rm-sub").prop(prop::RECEIVE_MAXIMUM, PropValue::Two(3));
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), connect).await;
    sub.subscribe_one("rm/t", 1).await;
    let mut p = publisher(&gw, "rm-pub").await;
    for i in 0..10u16 {
        assert_eq!(
            publish1(&mut p, Publish::new("rm/t", i.to_string(), 1, i + 1)).await,
            0
        );
    }
    let mut window = Vec::new();
    for _ in 0..3 {
        window.push(sub.expect_publish().await);
    }
    sub.silent(QUIET).await; // three in flight, no fourth
    let mut received: Vec<String> = window.iter().map(|p| p.text().to_string()).collect();
    // each PUBACK lets exactly one more through
    while received.len() < 10 {
        let oldest = window.remove(0);
        sub.ack(Ack::PubAck, oldest.pkid).await;
        let next = sub.expect_publish().await;
        received.push(next.text().to_string());
        window.push(next);
        if received.len() < 10 {
            sub.silent(Duration::from_millis(100)).await;
        }
    }
    let expected: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(received, expected);
    drop((sub, p));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_clients_maximum_packet_size_are_not_sent() {
    let gw = start().await;
    let m = gw.gateway.management();
    let connect = Connect::v5("mps-sub").prop(prop::MAXIMUM_PACKET_SIZE, PropValue::Four(128));
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), connect).await;
    sub.subscribe_one("mps/t", 1).await;
    let dropped = m.node_stats().messages_dropped;
    let mut p = publisher(&gw, "mps-pub").await;
    publish1(&mut p, Publish::new("mps/t", [b'x'; 200], 1, 1)).await;
    publish1(&mut p, Publish::new("mps/t", "small", 1, 2)).await;
    let got = sub.expect_publish().await;
    assert_eq!(
        got.text(),
        "small",
        "the large one was skipped [MQTT-3.1.2-25]"
    );
    sub.ack(Ack::PubAck, got.pkid).await;
    sub.silent(QUIET).await;
    assert_eq!(m.node_stats().messages_dropped, dropped + 1, "and counted");
    drop((sub, p));
    gw.shutdown().await;
}

// ---- subscription options -----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_keeps_a_clients_own_messages_from_it() {
    let gw = start().await;
    let (mut c, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("nl")).await;
    let codes = c
        .subscribe(
            1,
            &[Sub::new("nl/t", 0).no_local(), Sub::new("nl/other", 0)],
        )
        .await;
    assert_eq!(codes, vec![0, 0]);
    c.publish(&Publish::new("nl/t", "own", 0, 0)).await;
    c.publish(&Publish::new("nl/other", "own other", 0, 0))
        .await;
    assert_eq!(c.expect_publish().await.text(), "own other");
    c.silent(QUIET).await;
    let mut p = publisher(&gw, "nl-pub").await;
    p.publish(&Publish::new("nl/t", "theirs", 0, 0)).await;
    assert_eq!(c.expect_publish().await.text(), "theirs");
    drop((c, p));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_as_published_keeps_the_retain_flag_on_live_deliveries() {
    let gw = start().await;
    let (mut kept, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("rap-1")).await;
    kept.subscribe(1, &[Sub::new("rap/t", 0).retain_as_published()])
        .await;
    let (mut cleared, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("rap-0")).await;
    cleared.subscribe_one("rap/t", 0).await;
    let mut p = publisher(&gw, "rap-pub").await;
    p.publish(&Publish::new("rap/t", "r", 0, 0).retained())
        .await;
    assert!(kept.expect_publish().await.retain, "Retain As Published");
    assert!(!cleared.expect_publish().await.retain, "[MQTT-3.3.1-12]");
    drop((kept, cleared, p));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_0_1_2() {
    let gw = start().await;
    let mut p = publisher(&gw, "rh-pub").await;
    publish1(&mut p, Publish::new("rh/t", "kept", 1, 1).retained()).await;
    let (mut c, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("rh")).await;
    // 0: on every subscribe
    for pkid in [1, 2] {
        c.subscribe(pkid, &[Sub::new("rh/t", 0).retain_handling(0)])
            .await;
        assert_eq!(c.expect_publish().await.text(), "kept");
    }
    // 1: only when the subscription is new
    c.subscribe(3, &[Sub::new("rh/+", 0).retain_handling(1)])
        .await;
    assert_eq!(c.expect_publish().await.text(), "kept");
    c.subscribe(4, &[Sub::new("rh/+", 0).retain_handling(1)])
        .await;
    c.silent(QUIET).await;
    // 2: never
    c.subscribe(5, &[Sub::new("rh/#", 0).retain_handling(2)])
        .await;
    c.silent(QUIET).await;
    drop((c, p));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_delivery_carries_the_identifiers_of_every_matching_subscription() {
    let gw = start().await;
    let (mut c, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("sid")).await;
    c.subscribe_with(1, &[Sub::new("sid/+", 1)], Some(5)).await;
    c.subscribe_with(2, &[Sub::new("sid/#", 0)], Some(268_435_455))
        .await;
    c.subscribe(3, &[Sub::new("sid/t", 0)]).await;
    let mut p = publisher(&gw, "sid-pub").await;
    publish1(&mut p, Publish::new("sid/t", "x", 1, 1)).await;
    let got = c.expect_publish().await;
    let ids: BTreeSet<u32> = got
        .props
        .numbers(prop::SUBSCRIPTION_ID)
        .into_iter()
        .collect();
    assert_eq!(ids, BTreeSet::from([5, 268_435_455]));
    assert_eq!(got.qos, 1, "the highest QoS of the three");
    c.ack(Ack::PubAck, got.pkid).await;
    c.silent(QUIET).await;
    // a topic only `sid/#` matches: its identifier alone
    publish1(&mut p, Publish::new("sid", "y", 1, 2)).await;
    let got = c.expect_publish().await;
    assert_eq!(got.props.numbers(prop::SUBSCRIPTION_ID), vec![268_435_455]);
    drop((c, p));
    gw.shutdown().await;
}

// ---- topic aliases -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_aliases_from_the_client_are_resolved_and_bounded() {
    let gw = start_with(|c| c.mqtt.topic_alias_maximum = 4).await;
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("ta-sub")).await;
    sub.subscribe_one("ta/#", 0).await;
    let (mut p, _, _, connack) = Raw::connect(gw.mqtt_addr(), Connect::v5("ta-pub")).await;
    assert_eq!(connack.number(prop::TOPIC_ALIAS_MAXIMUM), Some(4));
    let alias = |n| PropValue::Two(n);
    p.publish(&Publish::new("ta/one", "a", 0, 0).prop(prop::TOPIC_ALIAS, alias(1)))
        .await;
    p.publish(&Publish::new("", "b", 0, 0).prop(prop::TOPIC_ALIAS, alias(1)))
        .await;
    // an alias may be set again to another topic
    p.publish(&Publish::new("ta/two", "c", 0, 0).prop(prop::TOPIC_ALIAS, alias(1)))
        .await;
    p.publish(&Publish::new("", "d", 0, 0).prop(prop::TOPIC_ALIAS, alias(1)))
        .await;
    for (topic, payload) in [
        ("ta/one", "a"),
        ("ta/one", "b"),
        ("ta/two", "c"),
        ("ta/two", "d"),
    ] {
        let got = sub.expect_publish().await;
        assert_eq!((got.topic.as_str(), got.text()), (topic, payload));
    }
    // beyond the maximum: DISCONNECT 0x94
    p.publish(&Publish::new("ta/x", "e", 0, 0).prop(prop::TOPIC_ALIAS, alias(5)))
        .await;
    assert_eq!(p.expect_disconnect().await.0, 0x94);
    // an alias never set: protocol error
    let mut p = publisher(&gw, "ta-pub2").await;
    p.publish(&Publish::new("", "f", 0, 0).prop(prop::TOPIC_ALIAS, alias(2)))
        .await;
    assert_eq!(p.expect_disconnect().await.0, 0x82);
    sub.silent(QUIET).await;
    drop(sub);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_uses_topic_aliases_towards_a_client_that_allows_them() {
    let gw = start().await;
    let connect = Connect::v5("tb-sub").prop(prop::TOPIC_ALIAS_MAXIMUM, PropValue::Two(2));
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), connect).await;
    sub.subscribe_one("tb/#", 0).await;
    let (mut plain, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("tb-plain")).await;
    plain.subscribe_one("tb/#", 0).await;
    let mut p = publisher(&gw, "tb-pub").await;
    for topic in ["tb/a", "tb/a", "tb/b", "tb/c", "tb/c", "tb/b"] {
        p.publish(&Publish::new(topic, topic, 0, 0)).await;
    }
    let mut seen = Vec::new();
    for _ in 0..6 {
        let got = sub.expect_publish().await;
        let alias = got.props.number(prop::TOPIC_ALIAS);
        seen.push((got.topic.clone(), alias, got.text().to_string()));
        let plain_got = plain.expect_publish().await;
        assert!(!plain_got.props.has(prop::TOPIC_ALIAS), "no alias unasked");
        assert_eq!(plain_got.topic, plain_got.text());
    }
    let s = |t: &str| t.to_string();
    assert_eq!(
        seen,
        vec![
            (s("tb/a"), Some(1), s("tb/a")),
            (s(""), Some(1), s("tb/a")),
            (s("tb/b"), Some(2), s("tb/b")),
            (s("tb/c"), None, s("tb/c")), // both aliases in use
            (s("tb/c"), None, s("tb/c")),
            (s(""), Some(2), s("tb/b")),
        ]
    );
    drop((sub, plain, p));
    gw.shutdown().await;
}

// ---- message expiry and wills ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_expired_in_an_offline_queue_is_not_delivered_and_the_rest_of_the_interval_is_sent(
) {
    let gw = start().await;
    let connect = Connect::v5("me-sub").resume().expiry(60);
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), connect.clone()).await;
    sub.subscribe_one("me/t", 1).await;
    sub.disconnect(0, Props::new()).await;
    // queued while offline, not sent to the connection that is closing
    let m = gw.gateway.management();
    let offline = eventually_async(5, || async {
        m.get_client("me-sub").await.is_some_and(|c| !c.connected)
    })
    .await;
    assert!(offline, "the session is offline");
    let mut p = publisher(&gw, "me-pub").await;
    let expiry = |secs| PropValue::Four(secs);
    publish1(
        &mut p,
        Publish::new("me/t", "short", 1, 1).prop(prop::MESSAGE_EXPIRY, expiry(1)),
    )
    .await;
    publish1(
        &mut p,
        Publish::new("me/t", "long", 1, 2).prop(prop::MESSAGE_EXPIRY, expiry(10)),
    )
    .await;
    publish1(&mut p, Publish::new("me/t", "forever", 1, 3)).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let (mut sub, present) = Raw::accepted(gw.mqtt_addr(), connect).await;
    assert!(present);
    let long = sub.expect_publish().await;
    assert_eq!(long.text(), "long", "the expired message is skipped");
    let left = long
        .props
        .number(prop::MESSAGE_EXPIRY)
        .expect("expiry sent");
    assert!(
        (7..=9).contains(&left),
        "the remaining interval, not 10: {left}"
    );
    let forever = sub.expect_publish().await;
    assert_eq!(forever.text(), "forever");
    assert!(!forever.props.has(prop::MESSAGE_EXPIRY));
    drop((sub, p));
    gw.shutdown().await;
}

/// A client with a will on `wd/{id}`, connected with `expiry` and dropped.
async fn dying(gw: &TestGateway, id: &str, will_delay: u32, expiry: u32) -> Connect {
    let mut will = Will::new(&format!("wd/{id}"), id);
    will.props = Props::new().with(prop::WILL_DELAY, PropValue::Four(will_delay));
    let connect = Connect::v5(id).resume().expiry(expiry).will(will);
    let (raw, _) = Raw::accepted(gw.mqtt_addr(), connect.clone()).await;
    drop(raw);
    connect
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_will_goes_at_the_earlier_of_will_delay_and_session_end() {
    let gw = start().await;
    let (mut watcher, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("wd-watch")).await;
    watcher.subscribe_one("wd/+", 0).await;
    let dropped = Instant::now();
    dying(&gw, "session-ends-now", 5, 0).await;
    dying(&gw, "session-ends-first", 10, 1).await;
    dying(&gw, "delay-ends-first", 1, 10).await;
    let back = dying(&gw, "comes-back", 1, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // reconnecting within the delay cancels the will [MQTT-3.1.3-9]
    let (back, present) = Raw::accepted(gw.mqtt_addr(), back).await;
    assert!(present);

    let mut arrivals = Vec::new();
    while let Some(p) = watcher.recv(Duration::from_millis(2500)).await {
        if let Packet::Publish(p) = p {
            arrivals.push((p.text().to_string(), dropped.elapsed()));
        }
        if arrivals.len() == 3 {
            break;
        }
    }
    let names: Vec<&str> = arrivals.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 3, "three wills: {arrivals:?}");
    assert_eq!(names[0], "session-ends-now", "{arrivals:?}");
    assert!(arrivals[0].1 < Duration::from_millis(800), "{arrivals:?}");
    for (name, at) in &arrivals[1..] {
        assert!(
            ["session-ends-first", "delay-ends-first"].contains(&name.as_str()),
            "{arrivals:?}"
        );
        assert!(
            *at >= Duration::from_millis(900) && *at < Duration::from_millis(2800),
            "{name} after about a second: {arrivals:?}"
        );
    }
    watcher.silent(Duration::from_millis(800)).await;
    drop((watcher, back));
    gw.shutdown().await;
}

// ---- what the broker tells the client --------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnects_from_the_broker_carry_reason_strings() {
    let gw = start().await;
    let addr = gw.mqtt_addr();
    // a protocol error: a second CONNECT
    let (mut c, _) = Raw::accepted(addr, Connect::v5("why-1")).await;
    c.send(&Connect::v5("why-1").encode()).await;
    let (reason, why) = c.expect_disconnect().await;
    assert_eq!(reason, 0x82);
    assert!(
        why.is_some_and(|w| w.contains("CONNECT")),
        "says what was wrong"
    );
    // a takeover
    let (first, _) = Raw::accepted(addr, Connect::v5("why-2")).await;
    let (second, _) = Raw::accepted(addr, Connect::v5("why-2")).await;
    let (reason, why) = first.expect_disconnect().await;
    assert_eq!(reason, 0x8E);
    assert!(why.is_some_and(|w| !w.is_empty()));
    // an administrator's kick
    let (kicked, _) = Raw::accepted(addr, Connect::v5("why-3")).await;
    gw.gateway
        .management()
        .kick("why-3", mqgate_kit::KickOptions::default())
        .await
        .unwrap();
    let (reason, why) = kicked.expect_disconnect().await;
    assert_eq!(reason, 0x98);
    assert!(why.is_some_and(|w| !w.is_empty()));
    drop(second);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_carries_the_limits_and_an_assigned_client_identifier() {
    let gw = start_with(|c| {
        c.mqtt.receive_maximum = 77;
        c.mqtt.topic_alias_maximum = 9;
        c.mqtt.max_packet_size = 4096;
    })
    .await;
    let (assigned_client, present, code, props) =
        Raw::connect(gw.mqtt_addr(), Connect::v5("")).await;
    assert_eq!((present, code), (false, 0));
    assert_eq!(props.number(prop::RECEIVE_MAXIMUM), Some(77));
    assert_eq!(props.number(prop::TOPIC_ALIAS_MAXIMUM), Some(9));
    assert_eq!(props.number(prop::MAXIMUM_PACKET_SIZE), Some(4096));
    let assigned = props
        .text(prop::ASSIGNED_CLIENT_ID)
        .expect("an id assigned for the empty one")
        .to_string();
    assert!(!assigned.is_empty());
    assert!(gw
        .gateway
        .management()
        .get_client(&assigned)
        .await
        .is_some());
    // a client that named itself is not assigned one
    let (named, _, _, props) = Raw::connect(gw.mqtt_addr(), Connect::v5("named")).await;
    assert!(!props.has(prop::ASSIGNED_CLIENT_ID));
    drop((assigned_client, named));
    gw.shutdown().await;
}

// ---- shared subscriptions, $SYS and $ topics ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_subscription_delivers_each_message_to_one_member() {
    let gw = start().await;
    let mut p = publisher(&gw, "sh-pub").await;
    publish1(&mut p, Publish::new("sh/0", "retained", 1, 1).retained()).await;
    let mut members = Vec::new();
    for id in ["sh-a", "sh-b"] {
        let (mut m, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5(id)).await;
        m.subscribe_one("$share/g/sh/+", 1).await;
        members.push(m);
    }
    let (mut plain, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("sh-plain")).await;
    plain
        .subscribe(1, &[Sub::new("sh/+", 1).retain_handling(2)])
        .await;
    for i in 0..20u16 {
        publish1(
            &mut p,
            Publish::new(&format!("sh/{i}"), i.to_string(), 1, i + 2),
        )
        .await;
    }
    let mut per_member = Vec::new();
    for m in &mut members {
        let mut got = BTreeSet::new();
        while let Some(Packet::Publish(d)) = m.recv(QUIET).await {
            m.ack(Ack::PubAck, d.pkid).await;
            assert!(!d.retain, "no retained message for a shared subscription");
            got.insert(d.text().to_string());
        }
        per_member.push(got);
    }
    assert!(per_member[0].is_disjoint(&per_member[1]));
    assert_eq!(per_member[0].len() + per_member[1].len(), 20);
    assert!(per_member.iter().all(|g| !g.is_empty()), "{per_member:?}");
    for _ in 0..20 {
        let d = plain.expect_publish().await;
        plain.ack(Ack::PubAck, d.pkid).await;
    }
    drop((p, members, plain));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_are_subscribable_and_clients_cannot_publish_under_dollar() {
    let gw = start_with(|c| c.mqtt.sys_interval_secs = 1).await;
    let (mut sys, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("sys-watch")).await;
    sys.subscribe_one("$SYS/#", 0).await;
    let (mut everything, _) = Raw::accepted(gw.mqtt_addr(), Connect::v5("sys-all")).await;
    everything.subscribe_one("#", 0).await;
    let mut p = publisher(&gw, "sys-pub").await;
    assert_eq!(
        publish1(&mut p, Publish::new("$SYS/broker/version", "fake", 1, 1)).await,
        0x87,
        "not authorized"
    );
    assert_eq!(
        publish1(&mut p, Publish::new("$own/x", "fake", 1, 2)).await,
        0x87
    );
    let mut topics = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_millis(2500);
    while let Some(packet) = sys
        .recv(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        let Packet::Publish(d) = packet else { continue };
        assert_ne!(d.text(), "fake", "a client's $SYS publish was refused");
        topics.insert(d.topic);
    }
    for topic in [
        "$SYS/broker/version",
        "$SYS/broker/uptime",
        "$SYS/broker/clients/connected",
        "$SYS/broker/messages/received",
        "$SYS/broker/subscriptions/count",
    ] {
        assert!(topics.contains(topic), "{topic} in {topics:?}");
    }
    // `#` does not match `$` topics [MQTT-4.7.2-1]
    everything.silent(Duration::from_millis(100)).await;
    drop((sys, everything, p));
    gw.shutdown().await;
}
