//! `[mqtt] acl_file`, `password_file`, `no_match` and `deny_action`: NanoMQ-format
//! access files enforced on real MQTT 3.1.1 and 5 clients.

mod common;

use std::time::Duration;

use common::{connect_v4, next_publish, try_connect_v4, TestGateway};
use mqgate::config::{AclDenyAction, AclPermit};
use rumqttc::v5::mqttbytes::v5::{Packet as V5Packet, PubAckReason, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS as V5QoS;
use rumqttc::QoS;

const ACL: &str = r##"
rules = [
    {"permit": "deny", "action": "subscribe", "topics": ["test/nosubscribe"]}
    {"permit": "deny", "action": "publish", "topics": ["locked/#"]}
    {"permit": "allow", "username": "ops", "topics": ["ops/#"]}
    {"permit": "deny", "topics": ["ops/#"]}
    {"permit": "allow", "topics": ["own/${clientid}/#"]}
    {"permit": "deny", "topics": ["own/#"]}
]
"##;

async fn gateway(deny_action: AclDenyAction) -> (TestGateway, tempfile::TempDir) {
    let files = tempfile::tempdir().unwrap();
    let acl = files.path().join("acl.conf");
    let passwords = files.path().join("pwd.conf");
    std::fs::write(&acl, ACL).unwrap();
    std::fs::write(&passwords, "\"ops\": \"s3cret\"\n").unwrap();
    let gw = common::start_with(|c| {
        c.mqtt.acl_file = Some(acl);
        c.mqtt.password_file = Some(passwords);
        c.mqtt.no_match = AclPermit::Allow;
        c.mqtt.deny_action = deny_action;
    })
    .await;
    (gw, files)
}

async fn suback_v4(c: &mut common::V4Client) -> Vec<rumqttc::SubscribeReasonCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), c.events.recv()).await {
            Ok(Some(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(ack)))) => {
                return ack.return_codes
            }
            Ok(Some(_)) => continue,
            other => panic!("no SUBACK: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_denied_filters_get_0x80_and_denied_publishes_are_dropped() {
    let (gw, _files) = gateway(AclDenyAction::Ignore).await;
    let mut c = connect_v4(gw.v4_options("acl-v4")).await;
    c.client
        .subscribe_many([
            rumqttc::SubscribeFilter::new("test/nosubscribe".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("locked/#".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("own/acl-v4/#".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("own/someone-else/#".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("ops/#".into(), QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    use rumqttc::SubscribeReasonCode::{Failure, Success};
    assert_eq!(
        suback_v4(&mut c).await,
        [
            Failure,
            Success(QoS::AtLeastOnce),
            Success(QoS::AtLeastOnce),
            Failure,
            Failure
        ]
    );
    // a denied publish is acknowledged (3.1.1 has no refusal) and reaches nobody
    c.client
        .publish("locked/door", QoS::AtLeastOnce, false, "open")
        .await
        .unwrap();
    c.client
        .publish("own/acl-v4/x", QoS::AtLeastOnce, false, "mine")
        .await
        .unwrap();
    let got = next_publish(&mut c, 5).await.expect("the allowed one");
    assert_eq!(got.topic, "own/acl-v4/x");
    assert!(
        next_publish(&mut c, 1).await.is_none(),
        "locked/door was delivered"
    );
    // the password file's user: its password is checked, its rules apply
    let mut ops = gw.v4_options("acl-ops");
    ops.set_credentials("ops", "wrong");
    assert_eq!(
        try_connect_v4(ops.clone()).await,
        Ok(rumqttc::ConnectReturnCode::BadUserNamePassword)
    );
    ops.set_credentials("ops", "s3cret");
    let mut o = connect_v4(ops).await;
    o.client.subscribe("ops/#", QoS::AtMostOnce).await.unwrap();
    assert_eq!(suback_v4(&mut o).await, [Success(QoS::AtMostOnce)]);
    gw.shutdown().await;
}

/// A v5 client driven by hand: every incoming packet on a channel, and the
/// event loop's final error (a server DISCONNECT ends up there).
async fn v5_client(
    gw: &TestGateway,
    id: &str,
) -> (
    rumqttc::v5::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<V5Packet>,
    tokio::sync::oneshot::Receiver<rumqttc::v5::ConnectionError>,
) {
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(gw.v5_options(id), 100);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (end_tx, end) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(p)) => {
                    let _ = tx.send(p);
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = end_tx.send(e);
                    return;
                }
            }
        }
    });
    (client, rx, end)
}

async fn next_packet(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<V5Packet>,
    wanted: impl Fn(&V5Packet) -> bool,
) -> V5Packet {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(p)) if wanted(&p) => return p,
            Ok(Some(_)) => continue,
            other => panic!("packet not received: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_denials_carry_0x87() {
    let (gw, _files) = gateway(AclDenyAction::Ignore).await;
    let (client, mut rx, _) = v5_client(&gw, "acl-v5").await;
    client
        .subscribe_many([
            rumqttc::v5::mqttbytes::v5::Filter::new("test/nosubscribe", V5QoS::AtLeastOnce),
            rumqttc::v5::mqttbytes::v5::Filter::new("locked/#", V5QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    let V5Packet::SubAck(ack) = next_packet(&mut rx, |p| matches!(p, V5Packet::SubAck(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        ack.return_codes,
        [
            SubscribeReasonCode::NotAuthorized,
            SubscribeReasonCode::Success(V5QoS::AtLeastOnce)
        ]
    );
    client
        .publish("locked/door", V5QoS::AtLeastOnce, false, "open")
        .await
        .unwrap();
    let V5Packet::PubAck(ack) = next_packet(&mut rx, |p| matches!(p, V5Packet::PubAck(_))).await
    else {
        unreachable!()
    };
    assert_eq!(ack.reason, PubAckReason::NotAuthorized);
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_action_disconnect_closes_the_publisher() {
    let (gw, _files) = gateway(AclDenyAction::Disconnect).await;
    let (client, _, end) = v5_client(&gw, "acl-rude").await;
    client
        .publish("locked/door", V5QoS::AtLeastOnce, false, "open")
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), end)
        .await
        .expect("disconnected in time")
        .unwrap();
    assert!(
        matches!(
            end,
            rumqttc::v5::ConnectionError::MqttState(rumqttc::v5::StateError::ServerDisconnect {
                reason_code: rumqttc::v5::mqttbytes::v5::DisconnectReasonCode::NotAuthorized,
                ..
            })
        ),
        "{end:?}"
    );
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_acl_file_stops_the_start_and_refuses_a_restart() {
    let files = tempfile::tempdir().unwrap();
    let acl = files.path().join("acl.conf");
    std::fs::write(&acl, "rules = 5").unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = mqgate::config::Config::for_tests(data.path());
    config.mqtt.acl_file = Some(acl.clone());
    let err = mqgate::gateway::Gateway::start(config).await.err().unwrap();
    assert!(err.to_string().contains("mqtt.acl_file"), "{err}");

    std::fs::write(&acl, "rules = []").unwrap();
    let gw = common::start_with(|c| c.mqtt.acl_file = Some(acl.clone())).await;
    std::fs::write(&acl, "rules = 5").unwrap();
    let refused = gw
        .gateway
        .management()
        .control(mqgate_kit::ControlAction::Restart);
    assert!(matches!(
        refused,
        Err(mqgate_kit::MgmtError::InvalidSetting(_))
    ));
    // still serving
    connect_v4(gw.v4_options("still-here")).await;
    gw.shutdown().await;
}
