//! MQTT over TLS (`[mqtt.tls]`) and over secure WebSocket (`[mqtt.wss]`), with
//! certificates generated here and rumqttc clients over rustls.

mod common;

use std::time::Duration;

use common::pki::Pki;
use common::{connect_v4, next_publish, TestGateway};
use rumqttc::{QoS, TlsConfiguration, Transport};

fn pki() -> Pki {
    // rumqttc's rustls builds its client configuration with the process default
    // provider; this test binary links two, so one is named (the server names its own)
    let _ = rustls::crypto::ring::default_provider().install_default();
    Pki::generate()
}

async fn gateway(pki: &Pki, mutual: bool) -> TestGateway {
    common::start_with(|c| {
        for tls in [&mut c.mqtt.tls, &mut c.mqtt.wss] {
            tls.enabled = true;
            tls.listen = "127.0.0.1:0".parse().unwrap();
            tls.cert = Some(pki.server_cert.clone());
            tls.key = Some(pki.server_key.clone());
            tls.client_ca = mutual.then(|| pki.ca_file.clone());
        }
    })
    .await
}

fn tls_options(
    gw: &TestGateway,
    pki: &Pki,
    id: &str,
    listener: mqgate::listener::Listener,
    with_client_cert: bool,
) -> rumqttc::MqttOptions {
    let addr = gw.gateway.addr(listener).expect("TLS listener");
    let tls = TlsConfiguration::Simple {
        ca: pki.ca_pem.clone(),
        alpn: None,
        client_auth: with_client_cert
            .then(|| (pki.client_cert_pem.clone(), pki.client_key_pem.clone())),
    };
    let mut o = match listener {
        mqgate::listener::Listener::MqttWss => {
            let mut o = rumqttc::MqttOptions::new(id, format!("wss://{addr}/mqtt"), addr.port());
            o.set_transport(Transport::wss_with_config(tls));
            o
        }
        _ => {
            let mut o = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
            o.set_transport(Transport::tls_with_config(tls));
            o
        }
    };
    o.set_keep_alive(Duration::from_secs(30));
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_wss_clients_exchange_messages_with_plain_ones() {
    let pki = pki();
    let gw = gateway(&pki, false).await;
    use mqgate::listener::Listener;
    let mut over_tls =
        connect_v4(tls_options(&gw, &pki, "over-tls", Listener::MqttTls, false)).await;
    let mut over_wss =
        connect_v4(tls_options(&gw, &pki, "over-wss", Listener::MqttWss, false)).await;
    over_tls
        .client
        .subscribe("sec/t", QoS::AtLeastOnce)
        .await
        .unwrap();
    over_wss
        .client
        .subscribe("sec/t", QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let plain = connect_v4(gw.v4_options("plain")).await;
    plain
        .client
        .publish("sec/t", QoS::AtLeastOnce, false, "hello")
        .await
        .unwrap();
    for c in [&mut over_tls, &mut over_wss] {
        let got = next_publish(c, 5).await.expect("delivered over TLS");
        assert_eq!(&got.payload[..], b"hello");
    }
    // plain MQTT on the TLS port gets nowhere, and the broker lives on
    let addr = gw.gateway.addr(Listener::MqttTls).unwrap();
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raw.write_all(&[0x10, 0x0c, 0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 0])
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let answer = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf)).await;
    assert!(
        !matches!(answer, Ok(Ok(n)) if n >= 4 && buf[0] == 0x20),
        "a CONNACK over plain TCP on the TLS port"
    );
    connect_v4(tls_options(&gw, &pki, "again", Listener::MqttTls, false)).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = pki();
    let gw = gateway(&pki, true).await;
    use mqgate::listener::Listener;
    let without = tls_options(&gw, &pki, "no-cert", Listener::MqttTls, false);
    assert!(common::try_connect_v4(without).await.is_err());
    connect_v4(tls_options(&gw, &pki, "with-cert", Listener::MqttTls, true)).await;
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_certificate_stops_the_start_naming_the_key() {
    let data = tempfile::tempdir().unwrap();
    let mut config = mqgate::config::Config::for_tests(data.path());
    config.mqtt.tls.enabled = true;
    config.mqtt.tls.cert = Some(data.path().join("missing.pem"));
    config.mqtt.tls.key = Some(data.path().join("missing-key.pem"));
    let err = mqgate::gateway::Gateway::start(config).await.err().unwrap();
    assert!(err.to_string().contains("mqtt.tls.cert"), "{err}");
    let mut config = mqgate::config::Config::for_tests(data.path());
    config.mqtt.wss.enabled = true;
    let err = mqgate::gateway::Gateway::start(config).await.err().unwrap();
    assert!(err.to_string().contains("mqtt.wss"), "{err}");
}
