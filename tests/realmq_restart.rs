//! `ctrl/restart` builds every dialect anew in the same process. The RealMQ
//! dialect's presence thread of the old instance must end with it (issue: each
//! restart left one `realmq-presence` thread behind), nothing the dialects hand
//! the broker may keep the old instance alive (the Easemob CONNECT authenticator
//! once held the management handle, which holds the broker, which held the
//! authenticator: the old store and record writer lived on), and the new
//! instance must record presence again. Its own test binary: it counts the
//! process's threads.

mod common;

use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::{ControlAction, DialectContext, Store};
use serde_json::{json, Value};

/// Threads of this process named `name` (as `/proc` shows them, 15 bytes at most).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String, body: Value) -> Value {
    http.request(method, url)
        .basic_auth("root", Some("123456"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_one_presence_thread_and_shutdown_ends_it() {
    const PRESENCE: &str = "realmq-presence";
    let gw = common::start().await;
    assert!(common::eventually(5, || threads_named(PRESENCE) == 1).await);

    for round in 0..3 {
        let old = gw.gateway.management();
        old.control(ControlAction::Restart).unwrap();
        let replaced =
            common::eventually(10, || !Arc::ptr_eq(&gw.gateway.management(), &old)).await;
        assert!(replaced, "round {round}: the gateway restarted");
        let released = Arc::downgrade(&old);
        drop(old);
        assert!(
            common::eventually(5, || released.upgrade().is_none()).await,
            "round {round}: the old instance's management handle (and broker) is released"
        );
        // The old instance's thread was joined before the new instance started;
        // the new one names itself once it runs.
        assert!(
            common::eventually(5, || threads_named(PRESENCE) == 1).await,
            "round {round}: {} presence threads",
            threads_named(PRESENCE)
        );
    }

    // The restarted dialect records presence: a device that connects and leaves
    // is "offline" (2), not "never connected" (1).
    let http = reqwest::Client::new();
    let base = gw.base_url("realmq");
    let created = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/api/v1/products"),
        json!({"name": "p", "product_key": "restarted1"}),
    )
    .await;
    assert_eq!(created["code"], 0, "{created}");
    let device = json!({"name": "d", "product_key": "restarted1", "username": "d",
        "mqtt_client_id": "d", "password": "pw"});
    let answer = call(
        &http,
        reqwest::Method::POST,
        format!("{base}/api/v1/devices"),
        device,
    )
    .await;
    assert_eq!(answer, json!({"code": 0}));
    let mut options = gw.v4_options("d");
    options.set_credentials("d", "pw");
    let client = common::connect_v4(options).await;
    client.client.disconnect().await.unwrap();
    let mut status = Value::Null;
    for _ in 0..250 {
        let list = call(
            &http,
            reqwest::Method::GET,
            format!("{base}/api/v1/devices"),
            Value::Null,
        )
        .await;
        status = list["data"][0]["status"].clone();
        if status == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        status, 2,
        "the device's connect and disconnect were recorded"
    );

    let management = gw.gateway.management();
    gw.gateway.shutdown().await;
    assert_eq!(threads_named(PRESENCE), 0, "shutdown ends the thread");

    // Outside a gateway too: the thread lives exactly as long as the dialect.
    let data_dir = tempfile::tempdir().unwrap();
    let dialect = mqgate_realmq::build(
        &mqgate_realmq::Config::default(),
        DialectContext {
            management,
            store: Store::open(data_dir.path()).unwrap(),
            data_dir: data_dir.path().to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
        },
    )
    .unwrap();
    assert!(common::eventually(5, || threads_named(PRESENCE) == 1).await);
    drop(dialect);
    assert_eq!(
        threads_named(PRESENCE),
        0,
        "dropping the dialect ends the thread"
    );
}
