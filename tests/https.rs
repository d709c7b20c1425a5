//! HTTPS on the API and docs listeners (`[http.listeners.<name>] tls_cert`,
//! `tls_key`, `tls_client_ca`), with certificates generated here and reqwest
//! clients over rustls that trust only the generated CA.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::pki::Pki;
use mqgate::config::HttpListenerConfig;
use tokio::io::AsyncReadExt;

fn tls_listener(pki: &Pki, client_ca: Option<&Path>) -> HttpListenerConfig {
    HttpListenerConfig {
        tls_cert: Some(pki.server_cert.clone()),
        tls_key: Some(pki.server_key.clone()),
        tls_client_ca: client_ca.map(Path::to_path_buf),
        ..Default::default()
    }
}

fn trusting(pki: &Pki) -> reqwest::ClientBuilder {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_file).unwrap()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_and_docs_listeners_speak_https_with_the_configured_certificate() {
    let pki = Pki::generate();
    let gw = common::start_with(|c| {
        c.http.header_read_timeout_secs = 1;
        for name in ["mica", "docs"] {
            c.http
                .listeners
                .insert(name.into(), tls_listener(&pki, None));
        }
    })
    .await;
    let mica = gw.gateway.dialect_addr("mica").unwrap();
    let docs = gw.gateway.docs_addr().unwrap();
    let client = trusting(&pki).build().unwrap();
    for url in [
        format!("https://{mica}/api/v1/stats"),
        format!("https://{docs}/try/mica/api/v1/stats"),
    ] {
        let answer = client
            .get(&url)
            .basic_auth("mica", Some("mica"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{url}");
        let stats: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(stats["code"], 1, "mica's envelope over HTTPS: {stats}");
    }

    // cleartext HTTP on the TLS port gets no HTTP answer
    let plain = reqwest::Client::new()
        .get(format!("http://{mica}/api/v1/stats"))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // a client that does not trust the CA refuses the server
    let stranger = reqwest::Client::builder()
        .use_rustls_tls()
        .build()
        .unwrap()
        .get(format!("https://{mica}/api/v1/stats"))
        .send()
        .await;
    assert!(stranger.is_err(), "{stranger:?}");
    // the other listeners stay plain HTTP
    let nanomq = reqwest::Client::new()
        .get(format!("{}/api/v4/brokers", gw.base_url("nanomq")))
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .unwrap();
    assert_eq!(nanomq.status(), 200);

    // a client that never starts the handshake is closed after the header timeout
    let mut silent = tokio::net::TcpStream::connect(mica).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_wants_a_client_certificate_from_the_ca() {
    let pki = Pki::generate();
    let gw = common::start_with(|c| {
        c.http
            .listeners
            .insert("nanomq".into(), tls_listener(&pki, Some(&pki.ca_file)));
    })
    .await;
    let url = format!(
        "https://{}/api/v4/brokers",
        gw.gateway.dialect_addr("nanomq").unwrap()
    );
    let anonymous = trusting(&pki)
        .build()
        .unwrap()
        .get(&url)
        .basic_auth("admin", Some("public"))
        .send()
        .await;
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");

    let identity = reqwest::Identity::from_pem(&pki.client_identity()).unwrap();
    let answer = trusting(&pki)
        .identity(identity)
        .build()
        .unwrap()
        .get(&url)
        .basic_auth("admin", Some("public"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], 0, "{body}");
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_certificate_stops_the_start_and_names_the_key() {
    let pki = Pki::generate();
    let data = tempfile::tempdir().unwrap();
    let mut config = mqgate::config::Config::for_tests(data.path());
    let mut listener = tls_listener(&pki, None);
    // a key where the certificate should be
    listener.tls_cert = Some(pki.server_key.clone());
    config.http.listeners.insert("realmq".into(), listener);
    let err = match mqgate::gateway::Gateway::start(config).await {
        Ok(_) => panic!("started with a key as certificate"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.starts_with("bad configuration at `http.listeners.realmq.tls_cert`: "),
        "{err}"
    );
    assert!(err.contains("server-key.pem"), "{err}");
}
