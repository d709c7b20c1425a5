//! QoS as MQTT defines it, checked on raw sockets: the delivery QoS is the lower of
//! the published and the granted QoS, QoS 2 is exactly once across reconnects of
//! publisher and subscriber, unacknowledged deliveries are resent with DUP in
//! order, and only a retained empty publish clears a retained message.

mod common;

use std::time::Duration;

use common::raw::{Ack, Connect, Packet, Publish, Raw, Sub};
use common::*;

const QUIET: Duration = Duration::from_millis(400);

/// Acknowledges a delivery as the client side of its QoS exchange.
async fn complete(raw: &mut Raw, p: &Publish) {
    match p.qos {
        1 => raw.ack(Ack::PubAck, p.pkid).await,
        2 => {
            raw.ack(Ack::PubRec, p.pkid).await;
            // later deliveries may come first: they are kept for later reads
            let pkid = p.pkid;
            let release = raw
                .expect_where(
                    |r| matches!(r, Packet::Ack { kind: Ack::PubRel, pkid: id, .. } if *id == pkid),
                )
                .await;
            assert_eq!(
                release,
                Packet::Ack {
                    kind: Ack::PubRel,
                    pkid,
                    reason: 0
                }
            );
            raw.ack(Ack::PubComp, p.pkid).await;
        }
        _ => {}
    }
}

/// The next delivery, acknowledged.
async fn take(raw: &mut Raw) -> Publish {
    let p = raw.expect_publish().await;
    complete(raw, &p).await;
    p
}

/// Publishes and completes the publisher's side of the exchange.
async fn publish(raw: &mut Raw, p: Publish) {
    raw.publish(&p).await;
    match p.qos {
        1 => assert_eq!(raw.expect_ack(Ack::PubAck, p.pkid).await, 0),
        2 => {
            assert_eq!(raw.expect_ack(Ack::PubRec, p.pkid).await, 0);
            raw.ack(Ack::PubRel, p.pkid).await;
            assert_eq!(raw.expect_ack(Ack::PubComp, p.pkid).await, 0);
        }
        _ => {}
    }
}

async fn subscriber(gw: &TestGateway, connect: Connect, filter: &str, qos: u8) -> Raw {
    let (mut raw, _) = Raw::accepted(gw.mqtt_addr(), connect).await;
    raw.subscribe_one(filter, qos).await;
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_qos_is_the_lower_of_published_and_granted() {
    let gw = start().await;
    let mut subs = Vec::new();
    for granted in 0..=2u8 {
        let id = format!("min-sub-{granted}");
        subs.push(subscriber(&gw, Connect::v4(&id), "min/t", granted).await);
    }
    let (mut publisher, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("min-pub")).await;
    for qos in 0..=2u8 {
        publish(&mut publisher, Publish::new("min/t", [qos], qos, 1)).await;
    }
    // [MQTT-3.8.4-6]: min(published, granted) for each pair
    for (granted, sub) in subs.iter_mut().enumerate() {
        for published in 0..=2u8 {
            let p = take(sub).await;
            assert_eq!(p.payload, [published]);
            assert_eq!(
                p.qos,
                published.min(granted as u8),
                "QoS {published} to a QoS {granted} subscription"
            );
        }
        sub.silent(QUIET).await;
    }
    drop((subs, publisher));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_deliver_once_at_the_highest_granted_qos() {
    let gw = start().await;
    let (mut sub, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("ovl-sub")).await;
    let codes = sub
        .subscribe(
            1,
            &[
                Sub::new("ovl/+", 0),
                Sub::new("ovl/#", 2),
                Sub::new("ovl/t", 1),
            ],
        )
        .await;
    assert_eq!(codes, vec![0, 2, 1]);
    let (mut publisher, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("ovl-pub")).await;
    publish(&mut publisher, Publish::new("ovl/t", "two", 2, 1)).await;
    let p = take(&mut sub).await;
    assert_eq!((p.text(), p.qos), ("two", 2));
    sub.silent(QUIET).await;
    publish(&mut publisher, Publish::new("ovl/t", "one", 1, 2)).await;
    let p = take(&mut sub).await;
    assert_eq!((p.text(), p.qos), ("one", 1));
    sub.silent(QUIET).await;
    drop((sub, publisher));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_from_a_publisher_that_reconnects_mid_exchange_is_delivered_exactly_once() {
    let gw = start().await;
    let addr = gw.mqtt_addr();
    let mut sub = subscriber(&gw, Connect::v4("x2-sub"), "x2/t", 2).await;

    // PUBLISH, PUBREC, connection lost; the DUP resend and PUBREL on a new connection
    let (mut publisher, present) = Raw::accepted(addr, Connect::v4("x2-pub").resume()).await;
    assert!(!present);
    publisher
        .publish(&Publish::new("x2/t", "resent", 2, 10))
        .await;
    assert_eq!(publisher.expect_ack(Ack::PubRec, 10).await, 0);
    drop(publisher);
    let (mut publisher, present) = Raw::accepted(addr, Connect::v4("x2-pub").resume()).await;
    assert!(present, "the publisher's session was kept");
    publisher
        .publish(&Publish::new("x2/t", "resent", 2, 10).dup())
        .await;
    assert_eq!(publisher.expect_ack(Ack::PubRec, 10).await, 0);
    publisher.ack(Ack::PubRel, 10).await;
    assert_eq!(publisher.expect_ack(Ack::PubComp, 10).await, 0);

    // PUBLISH, PUBREC, connection lost; only the PUBREL on the new connection
    publisher
        .publish(&Publish::new("x2/t", "released", 2, 11))
        .await;
    assert_eq!(publisher.expect_ack(Ack::PubRec, 11).await, 0);
    drop(publisher);
    let (mut publisher, present) = Raw::accepted(addr, Connect::v4("x2-pub").resume()).await;
    assert!(present);
    publisher.ack(Ack::PubRel, 11).await;
    assert_eq!(publisher.expect_ack(Ack::PubComp, 11).await, 0);
    // the packet id is free again: a new message may use it
    publish(&mut publisher, Publish::new("x2/t", "reused id", 2, 10)).await;

    for expected in ["resent", "released", "reused id"] {
        let p = take(&mut sub).await;
        assert_eq!((p.text(), p.qos), (expected, 2));
    }
    sub.silent(QUIET).await;
    drop((sub, publisher));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_subscriber_that_sent_pubrec_gets_pubrel_again_not_the_publish() {
    let gw = start().await;
    let addr = gw.mqtt_addr();
    let sub_connect = Connect::v4("rel-sub").resume();
    let mut sub = subscriber(&gw, sub_connect.clone(), "rel/t", 2).await;
    let (mut publisher, _) = Raw::accepted(addr, Connect::v4("rel-pub")).await;
    publish(&mut publisher, Publish::new("rel/t", "m", 2, 1)).await;

    let p = sub.expect_publish().await;
    assert_eq!((p.text(), p.qos, p.dup), ("m", 2, false));
    sub.ack(Ack::PubRec, p.pkid).await;
    assert_eq!(sub.expect_ack(Ack::PubRel, p.pkid).await, 0);
    drop(sub); // no PUBCOMP

    let (mut sub, present) = Raw::accepted(addr, sub_connect).await;
    assert!(present);
    assert_eq!(
        sub.expect_ack(Ack::PubRel, p.pkid).await,
        0,
        "PUBREL again [MQTT-4.4.0-1], not the PUBLISH"
    );
    sub.ack(Ack::PubComp, p.pkid).await;
    sub.silent(QUIET).await;
    drop((sub, publisher));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos2_subscriber_without_pubrec_gets_the_publish_again_with_dup() {
    let gw = start().await;
    let addr = gw.mqtt_addr();
    let sub_connect = Connect::v4("dup-sub").resume();
    let mut sub = subscriber(&gw, sub_connect.clone(), "dup/t", 2).await;
    let (mut publisher, _) = Raw::accepted(addr, Connect::v4("dup-pub")).await;
    publish(&mut publisher, Publish::new("dup/t", "again", 2, 1)).await;
    let first = sub.expect_publish().await;
    assert!(!first.dup);
    drop(sub);

    let (mut sub, present) = Raw::accepted(addr, sub_connect.clone()).await;
    assert!(present);
    let again = sub.expect_publish().await;
    assert_eq!(
        (again.text(), again.qos, again.pkid, again.dup),
        ("again", 2, first.pkid, true),
        "the same delivery, DUP set"
    );
    complete(&mut sub, &again).await;
    sub.silent(QUIET).await;
    drop(sub);
    // completed: nothing is resent on the next connection
    let (mut sub, present) = Raw::accepted(addr, sub_connect).await;
    assert!(present);
    sub.silent(QUIET).await;
    drop((sub, publisher));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_qos1_deliveries_are_resent_with_dup_in_order() {
    let gw = start().await;
    let addr = gw.mqtt_addr();
    let sub_connect = Connect::v4("q1-sub").resume();
    let mut sub = subscriber(&gw, sub_connect.clone(), "q1/t", 1).await;
    let (mut publisher, _) = Raw::accepted(addr, Connect::v4("q1-pub")).await;
    for i in 0..5u16 {
        publish(
            &mut publisher,
            Publish::new("q1/t", i.to_string(), 1, i + 1),
        )
        .await;
    }
    let mut first = Vec::new();
    for _ in 0..5 {
        first.push(sub.expect_publish().await);
    }
    assert!(first.iter().all(|p| !p.dup && p.qos == 1));
    sub.ack(Ack::PubAck, first[0].pkid).await;
    sub.ack(Ack::PubAck, first[1].pkid).await;
    // the PUBACKs are in before the connection goes
    sub.send(&[0xC0, 0]).await;
    sub.expect_where(|p| matches!(p, Packet::PingResp)).await;
    drop(sub);

    let (mut sub, present) = Raw::accepted(addr, sub_connect).await;
    assert!(present);
    for expected in &first[2..] {
        let p = sub.expect_publish().await;
        assert_eq!(
            (p.text(), p.pkid, p.dup),
            (expected.text(), expected.pkid, true),
            "resent in order, DUP set"
        );
        sub.ack(Ack::PubAck, p.pkid).await;
    }
    sub.silent(QUIET).await;
    publish(&mut publisher, Publish::new("q1/t", "new", 1, 9)).await;
    let p = take(&mut sub).await;
    assert_eq!((p.text(), p.dup), ("new", false));
    drop((sub, publisher));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_retained_empty_publish_clears_the_retained_message() {
    let gw = start().await;
    let m = gw.gateway.management();
    let (mut publisher, _) = Raw::accepted(gw.mqtt_addr(), Connect::v4("ret-pub")).await;
    let mut live = subscriber(&gw, Connect::v4("ret-live"), "ret/t", 1).await;
    publish(
        &mut publisher,
        Publish::new("ret/t", "kept", 1, 1).retained(),
    )
    .await;
    assert_eq!(take(&mut live).await.text(), "kept");

    // not retained, empty: delivered as a message, the retained one stays
    publish(&mut publisher, Publish::new("ret/t", "", 1, 2)).await;
    let p = take(&mut live).await;
    assert!(p.payload.is_empty() && !p.retain);
    assert_eq!(m.node_stats().retained, 1);
    let mut late = subscriber(&gw, Connect::v4("ret-late"), "ret/t", 1).await;
    let p = take(&mut late).await;
    assert_eq!((p.text(), p.retain), ("kept", true));

    // retained and empty: the retained message is gone [MQTT-3.3.1-10]
    publish(&mut publisher, Publish::new("ret/t", "", 1, 3).retained()).await;
    assert!(eventually(5, || m.node_stats().retained == 0).await);
    let mut later = subscriber(&gw, Connect::v4("ret-later"), "ret/t", 1).await;
    later.silent(QUIET).await;
    drop((publisher, live, late, later));
    gw.shutdown().await;
}
