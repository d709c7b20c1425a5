//! `[records] sync = true`: a recorded client's publish is answered only once its
//! record is committed — checked in-process against `sync = false`, and against a
//! real crash: the built binary is killed with SIGKILL in the middle of a stream of
//! Easemob REST publishes, started again, and every acknowledged message must be
//! on record.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate_kit::{PublishProperties, PublishRequest};
use serde_json::{json, Value};

const APP_ID: &str = "mq7g4e";
const CLIENT_ID: &str = "YXA6mQgAtE7eAsEmObApPcLiEn";
const CLIENT_SECRET: &str = "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1";

fn publish(sender: &str) -> PublishRequest {
    PublishRequest {
        topic: "durable/1".into(),
        payload: Bytes::from_static(b"x"),
        qos: 1,
        retain: false,
        properties: PublishProperties::default(),
        sender: Some(sender.into()),
        mountpoint: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_sync_a_publish_is_answered_after_its_record_is_committed() {
    for sync in [false, true] {
        let gw = common::start_with(|c| {
            c.records.sync = sync;
            // Without sync, records wait a minute for their batch.
            c.records.batch_interval_ms = 60_000;
        })
        .await;
        let mgmt = gw.gateway.management();
        let history = mgmt.history().unwrap();
        let recorded = mgmt
            .publish(publish(&format!("d1@{APP_ID}")))
            .await
            .unwrap();
        let on_record = history.stored_message(recorded).unwrap().is_some();
        assert_eq!(on_record, sync, "sync = {sync}");
        // A sender outside the scope is not recorded, sync or not.
        let other = mgmt.publish(publish("plain-client")).await.unwrap();
        drop((mgmt, history));
        let common::TestGateway { gateway, data_dir } = gw;
        gateway.shutdown().await;
        let gw = common::start_with(|c| c.data_dir = data_dir.path().to_path_buf()).await;
        let history = gw.gateway.management().history().unwrap();
        assert!(
            history.stored_message(recorded).unwrap().is_some(),
            "flushed at stop"
        );
        assert!(history.stored_message(other).unwrap().is_none());
        drop(history);
        gw.shutdown().await;
    }
}

/// Starts the binary with only the Easemob dialect (and MQTT TCP), records synced.
fn spawn(dir: &Path, port: u16) -> common::Process {
    let config = format!(
        r#"data_dir = "{data}"
[mqtt.tcp]
listen = "127.0.0.1:0"
[mqtt.ws]
enabled = false
[docs]
enabled = false
[mica]
enabled = false
[nanomq]
enabled = false
[realmq]
enabled = false
[records]
sync = true
[easemob]
listen = "127.0.0.1:{port}"
"#,
        data = dir.join("data").display()
    );
    common::spawn_mqgate(dir, &format!("mqgate-{port}"), &config)
}

/// Waits for the gateway and returns an app token.
async fn app_token(http: &reqwest::Client, base: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let answer = http
            .post(format!("{base}/openapi/rm/app/token"))
            .json(&json!({"appClientId": CLIENT_ID, "appClientSecret": CLIENT_SECRET}))
            .send()
            .await;
        if let Ok(r) = answer {
            let body: Value = r.json().await.unwrap();
            return body["body"]["access_token"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway at {base} did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_are_on_record_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut gateway = spawn(dir.path(), port);
    let token = app_token(&http, &base).await;

    // Four senders publish as fast as they are answered.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url, token, acked) = (
            http.clone(),
            format!("{base}/openapi/v1/rm/chat/publish"),
            token.clone(),
            acknowledged.clone(),
        );
        writers.push(tokio::spawn(async move {
            loop {
                let body = json!({"clientid": format!("dev{w}@{APP_ID}"), "topics": [format!("t/{w}")], "payload": "x", "qos": 1});
                let answer = http
                    .post(&url)
                    .header("Authorization", &token)
                    .json(&body)
                    .send()
                    .await;
                let Ok(answer) = answer else { return };
                let Ok(reply) = answer.json::<Value>().await else { return };
                let mid = reply["body"]["mids"][0].as_str().expect("a message id");
                acked.lock().unwrap().push(mid.to_string());
            }
        }));
    }
    let started = Instant::now();
    while acknowledged.lock().unwrap().len() < 300 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGKILL: no shutdown path runs, nothing is flushed.
    gateway.0.kill().unwrap();
    gateway.0.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 300,
        "only {} publishes",
        acknowledged.len()
    );

    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _gateway = spawn(dir.path(), port);
    let token = app_token(&http, &base).await;
    let mut lost = Vec::new();
    for mid in &acknowledged {
        let reply: Value = http
            .get(format!("{base}/openapi/rm/message/message"))
            .header("Authorization", &token)
            .query(&[("messageId", mid.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if reply["code"] != 200 {
            lost.push(mid.clone());
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged publishes not on record: {lost:?}",
        lost.len(),
        acknowledged.len()
    );
}
