//! No acknowledged message is lost. Under rumqttd's router, 100 publishers → 1
//! subscriber lost 86% of the messages it had PUBACKed (a per-filter commit log
//! that a slow reader silently skipped). Here a subscriber that cannot keep up
//! slows its publishers down instead, and one that stops reading altogether is
//! disconnected after `mqtt.slow_subscriber_timeout_ms` (MQTT 5: DISCONNECT 0x97),
//! counted, while its publishers carry on.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::{Ack, Connect, Packet, Publish, Raw};
use common::*;
use rumqttc::{Event, QoS};

const PUBLISHERS: usize = 20;
const EACH: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_publishers_to_one_subscriber_lose_nothing_acknowledged() {
    let gw = start().await;
    let mut sub = connect_v4(gw.v4_options("fan-in-sub")).await;
    sub.client.subscribe("t/+", QoS::AtLeastOnce).await.unwrap();
    assert!(
        eventually(5, || gw.gateway.management().node_stats().subscriptions
            == 1)
        .await,
        "subscribed"
    );

    let mut publishers = Vec::new();
    for i in 0..PUBLISHERS {
        let mut p = connect_v4(gw.v4_options(&format!("fan-in-pub-{i}"))).await;
        publishers.push(tokio::spawn(async move {
            let client = p.client.clone();
            let sending = tokio::spawn(async move {
                for seq in 0..EACH {
                    let payload = format!("{i}:{seq}");
                    client
                        .publish(format!("t/{i}"), QoS::AtLeastOnce, false, payload)
                        .await
                        .unwrap();
                }
            });
            let mut acked = 0;
            while acked < EACH {
                match tokio::time::timeout(Duration::from_secs(30), p.events.recv()).await {
                    Ok(Some(Event::Incoming(rumqttc::Packet::PubAck(_)))) => acked += 1,
                    Ok(Some(_)) => {}
                    other => panic!("publisher {i}: {acked} PUBACKs, then {other:?}"),
                }
            }
            sending.await.unwrap();
            acked
        }));
    }

    // every message PUBACKed to its publisher arrives once, in its publisher's order
    let mut next_seq: HashMap<usize, usize> = HashMap::new();
    let total = PUBLISHERS * EACH;
    for received in 0..total {
        let p = tokio::time::timeout(Duration::from_secs(30), sub.publishes.recv())
            .await
            .unwrap_or_else(|_| panic!("only {received} of {total} messages arrived"))
            .expect("subscriber alive");
        let text = std::str::from_utf8(&p.payload).unwrap();
        let (publisher, seq) = text.split_once(':').unwrap();
        let (publisher, seq): (usize, usize) = (publisher.parse().unwrap(), seq.parse().unwrap());
        let expected = next_seq.entry(publisher).or_default();
        assert_eq!(
            seq, *expected,
            "publisher {publisher}: in order, no gap, no duplicate"
        );
        *expected += 1;
    }
    for p in publishers {
        assert_eq!(p.await.unwrap(), EACH, "every message was acknowledged");
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), sub.publishes.recv())
            .await
            .is_err(),
        "nothing beyond the messages sent"
    );
    assert_eq!(gw.gateway.management().node_stats().messages_dropped, 0);
    gw.shutdown().await;
}

/// A subscriber that acknowledges each QoS 1 delivery only after `delay`; returns
/// the payloads, and the client still connected.
fn slow_reader(
    mut raw: Raw,
    count: usize,
    delay: Duration,
    acked: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<(Vec<String>, Raw)> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < count {
            let p = raw.expect_publish().await;
            tokio::time::sleep(delay).await;
            acked.fetch_add(1, Ordering::SeqCst);
            raw.ack(Ack::PubAck, p.pkid).await;
            got.push(p.text().to_string());
        }
        (got, raw)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_slows_its_publisher_down_and_loses_nothing() {
    const COUNT: usize = 300;
    const INFLIGHT: usize = 10;
    const QUEUED: usize = 20;
    let gw = start_with(|c| {
        c.mqtt.max_inflight = INFLIGHT as u16;
        c.mqtt.slow_subscriber_timeout_ms = 10_000;
    })
    .await;
    let m = gw.gateway.management();
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("slow-sub")).await;
    sub.subscribe_one("slow/t", 1).await;
    // the queue bound, changed live, applies to the connected subscriber
    m.update_config(mqgate_kit::HotConfigPatch {
        max_queued_messages: Some(QUEUED as u32),
        ..Default::default()
    })
    .unwrap();
    let acked = Arc::new(AtomicUsize::new(0));
    let reader = slow_reader(sub, COUNT, Duration::from_millis(2), Arc::clone(&acked));

    let (mut publisher, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("slow-pub")).await;
    let mut furthest_ahead = 0;
    for i in 0..COUNT {
        let pkid = (i % 60_000 + 1) as u16;
        publisher
            .publish(&Publish::new("slow/t", i.to_string(), 1, pkid))
            .await;
        assert_eq!(publisher.expect_ack(Ack::PubAck, pkid).await, 0);
        // PUBACKed means queued for the subscriber: at most the window and the
        // queue ahead of what it has taken
        let ahead = (i + 1).saturating_sub(acked.load(Ordering::SeqCst));
        furthest_ahead = furthest_ahead.max(ahead);
        assert!(
            ahead <= INFLIGHT + QUEUED + 2,
            "message {i} acknowledged {ahead} messages ahead of the subscriber"
        );
    }
    let (got, sub) = reader.await.unwrap();
    let expected: Vec<String> = (0..COUNT).map(|i| i.to_string()).collect();
    assert_eq!(got, expected, "everything, once, in order");
    assert!(
        furthest_ahead >= QUEUED,
        "the publisher did run ahead up to the bound ({furthest_ahead})"
    );
    assert_eq!(m.node_stats().messages_dropped, 0);
    assert!(
        m.get_client("slow-sub").await.unwrap().connected,
        "not disconnected"
    );
    drop((publisher, sub));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_is_disconnected_and_its_publisher_carries_on() {
    const COUNT: usize = 100;
    let gw = start_with(|c| {
        c.mqtt.max_inflight = 10;
        c.mqtt.max_queued_messages = 20;
        c.mqtt.slow_subscriber_timeout_ms = 300;
        c.mqtt.sys_interval_secs = 1;
    })
    .await;
    let addr = gw.mqtt_addr();
    let (mut stuck, _) = Raw::accepted(addr, Connect::v5("stuck-sub")).await;
    stuck.subscribe_one("stuck/t", 1).await;
    let mut healthy = connect_v4(gw.v4_options("healthy-sub")).await;
    healthy
        .client
        .subscribe("stuck/t", QoS::AtLeastOnce)
        .await
        .unwrap();
    let (mut sys, _) = Raw::accepted(addr, Connect::v4("slow-watch")).await;
    sys.subscribe_one("$SYS/broker/clients/slow/disconnected", 0)
        .await;
    assert_eq!(sys.expect_publish().await.text(), "0");
    assert!(
        eventually(5, || gw.gateway.management().node_stats().subscriptions
            == 3)
        .await
    );

    let started = Instant::now();
    let (mut publisher, _) = Raw::accepted(addr, Connect::v4("stuck-pub")).await;
    for i in 0..COUNT {
        let pkid = i as u16 + 1;
        publisher
            .publish(&Publish::new("stuck/t", i.to_string(), 1, pkid))
            .await;
        assert_eq!(publisher.expect_ack(Ack::PubAck, pkid).await, 0);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(1500),
        "the publisher waited for the stuck subscriber once, not per message: {took:?}"
    );

    // the stuck subscriber had its window of messages, then DISCONNECT 0x97
    let seen = stuck
        .until_closed(Duration::from_secs(5))
        .await
        .expect("the stuck subscriber was disconnected");
    let publishes = seen
        .iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .count();
    assert!(
        (1..=10).contains(&publishes),
        "{publishes} deliveries in its window"
    );
    match seen.last() {
        Some(Packet::Disconnect { reason, props }) => {
            assert_eq!(*reason, 0x97, "quota exceeded");
            assert!(props.has(common::raw::prop::REASON_STRING));
        }
        other => panic!("DISCONNECT expected last, got {other:?}"),
    }
    // counted once, and published under $SYS
    let mut counted = String::from("0");
    while counted == "0" {
        counted = sys.expect_publish().await.text().to_string();
    }
    assert_eq!(counted, "1", "one subscriber was disconnected as too slow");
    assert_eq!(sys.expect_publish().await.text(), "1", "and counted once");
    // the other subscriber got everything; the publisher goes on
    for i in 0..COUNT {
        let p = next_publish(&mut healthy, 5)
            .await
            .expect("healthy subscriber served");
        assert_eq!(p.payload, i.to_string());
    }
    publisher
        .publish(&Publish::new("stuck/t", "after", 1, 999))
        .await;
    assert_eq!(publisher.expect_ack(Ack::PubAck, 999).await, 0);
    assert_eq!(
        &next_publish(&mut healthy, 5).await.unwrap().payload[..],
        b"after"
    );
    drop((stuck, sys, publisher));
    gw.shutdown().await;
}
