//! The recorder inside a whole gateway: its writer thread lives exactly as long as
//! its instance (restarts leak none), `records.sync` answers a management publish
//! only once its record is committed, and only the configured scope is recorded.

mod common;

use bytes::Bytes;
use mqgate_kit::{ControlAction, PublishProperties, PublishRequest};

/// Threads of this process named `name` (from /proc/self/task/*/comm).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

fn publish(sender: &str, topic: &str) -> PublishRequest {
    PublishRequest {
        topic: topic.into(),
        payload: Bytes::from_static(b"on record"),
        qos: 1,
        retain: false,
        properties: PublishProperties::default(),
        sender: Some(sender.into()),
        mountpoint: None,
    }
}

/// The only test of this binary that starts gateways, so the thread count is
/// this test's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_leave_one_writer_thread_and_stop_ends_it() {
    assert_eq!(threads_named("records-writer"), 0);
    let gw = common::start().await;
    assert_eq!(threads_named("records-writer"), 1);
    for restart in 1..=3 {
        let before = gw.gateway.management();
        before.control(ControlAction::Restart).unwrap();
        let replaced = common::eventually(20, || {
            !std::sync::Arc::ptr_eq(&before, &gw.gateway.management())
        })
        .await;
        assert!(replaced, "restart {restart} did not finish");
        drop(before);
        assert_eq!(
            threads_named("records-writer"),
            1,
            "after restart {restart}"
        );
    }
    // Records written before a restart are there after it (the writer flushed).
    let mgmt = gw.gateway.management();
    let id = mgmt.publish(publish("d1@mq7g4e", "kept/1")).await.unwrap();
    mgmt.control(ControlAction::Restart).unwrap();
    assert!(
        common::eventually(20, || !std::sync::Arc::ptr_eq(
            &mgmt,
            &gw.gateway.management()
        ))
        .await
    );
    let history = gw.gateway.management().history().unwrap();
    assert!(history.stored_message(id).unwrap().is_some());
    assert_eq!(history.dropped_records(), 0);
    drop((mgmt, history));
    gw.shutdown().await;
    assert_eq!(threads_named("records-writer"), 0, "stop joins the writer");
}
