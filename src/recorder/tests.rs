use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate_kit::history::{ConnectedEvent, ConnectionEventKind, MessageInEvent, SortOrder};
use mqgate_kit::{DisconnectReason, PageRequest, Transport};

use super::*;

fn open_with(config: RecordsConfig, clients: Clients) -> (tempfile::TempDir, Arc<Recorder>) {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(sqlite_at(&dir), &config, clients).unwrap();
    (dir, recorder)
}

/// The store a test of both runs on.
#[derive(Clone, Copy)]
enum On {
    Sqlite,
    Postgres(&'static mqgate_pgtest::TestServer),
}

/// What a recorder's store needs kept while the test runs.
#[allow(dead_code)]
enum Kept {
    Dir(tempfile::TempDir),
    Database(Arc<Store>),
}

impl On {
    fn open(self, config: RecordsConfig) -> (Kept, Arc<Recorder>) {
        self.open_with(config, Clients::OfApp("@app".into()))
    }

    /// A fresh file or database.
    fn open_with(self, config: RecordsConfig, clients: Clients) -> (Kept, Arc<Recorder>) {
        match self {
            On::Sqlite => {
                let (dir, recorder) = open_with(config, clients);
                (Kept::Dir(dir), recorder)
            }
            On::Postgres(server) => {
                let options = mqgate_kit::store::PostgresOptions {
                    url: server.database(),
                    pool_size: 4,
                    connect_timeout: Duration::from_secs(5),
                    statement_timeout: Duration::from_secs(30),
                };
                let store = Store::connect(&options).unwrap();
                let at = RecordsStore::Postgres {
                    store: &store,
                    options,
                    holder: "test-node",
                };
                let recorder = Recorder::start(at, &config, clients).unwrap();
                (Kept::Database(store), recorder)
            }
        }
    }
}

/// Each test named runs twice: on a SQLite file and on a PostgreSQL database
/// (where PostgreSQL is installed; see `mqgate_pgtest`).
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test]
            fn $test() {
                super::$test(super::On::Sqlite)
            })*
        }
        mod on_postgres {
            $(#[test]
            fn $test() {
                if let Some(server) = mqgate_pgtest::server(stringify!($test)) {
                    super::$test(super::On::Postgres(server))
                }
            })*
        }
    };
}

on_both_stores!(
    queued_events_are_written_by_flush_and_queried_back,
    a_clients_uplink_and_downlink_merge_in_time_order,
    windows_pages_and_order,
    only_clients_in_scope_are_recorded,
    a_full_queue_drops_and_counts_instead_of_blocking,
    retention_by_age,
    retention_by_rows,
    pages_and_counts_across_many_blocks_match_a_plain_list,
);

fn sqlite_at(dir: &tempfile::TempDir) -> RecordsStore<'_> {
    RecordsStore::Sqlite {
        data_dir: dir.path(),
    }
}

fn open(config: RecordsConfig) -> (tempfile::TempDir, Arc<Recorder>) {
    open_with(config, Clients::OfApp("@app".into()))
}

fn query(client: Option<&str>, from_ms: i64, to_ms: i64, page: usize, limit: usize) -> RecordQuery {
    RecordQuery {
        client_id: client.map(str::to_string),
        message_id: None,
        topic: None,
        from_ms,
        to_ms,
        page: PageRequest::new(page, limit),
        order: SortOrder::Asc,
    }
}

fn connected(client: &str, connection_id: u64, at_ms: i64) -> BrokerEvent<'static> {
    BrokerEvent::Connected(Box::new(ConnectedEvent {
        client_id: client.into(),
        connection_id,
        username: Some("u1".into()),
        peer: "127.0.0.1:5000".parse().unwrap(),
        transport: Transport::WebSocket,
        proto_ver: 5,
        keepalive: 60,
        clean_start: true,
        will: None,
        at_ms,
    }))
}

fn message_in<'a>(id: u64, client: Option<&'a str>, topic: &'a str, at_ms: i64) -> BrokerEvent<'a> {
    BrokerEvent::MessageIn(MessageInEvent {
        message_id: id,
        client_id: client,
        connection_id: client.map(|_| 7),
        topic,
        qos: 1,
        retain: false,
        payload: b"hello",
        at_ms,
    })
}

fn delivered(id: u64, client: &str, at_ms: i64) -> BrokerEvent<'_> {
    BrokerEvent::MessageDelivered {
        message_id: Some(id),
        client_id: client,
        connection_id: 8,
        topic: "t/1",
        qos: 1,
        at_ms,
    }
}

fn queued_events_are_written_by_flush_and_queried_back(on: On) {
    let (_dir, records) = on.open(RecordsConfig::default());
    records.on_event(&connected("a@app", 7, 1_000));
    records.on_event(&message_in(0xABCD, Some("a@app"), "t/1", 1_100));
    records.on_event(&delivered(0xABCD, "b@app", 1_200));
    records.on_event(&BrokerEvent::Disconnected {
        client_id: "a@app".into(),
        connection_id: 7,
        username: Some("u1".into()),
        at_ms: 1_300,
        reason: DisconnectReason::KeepaliveTimeout,
    });
    records.flush();

    let conns = records
        .connection_records(&query(Some("a@app"), 0, 10_000, 1, 10))
        .unwrap();
    assert_eq!(conns.total, 2);
    assert_eq!(conns.items[0].kind, ConnectionEventKind::Connect);
    assert_eq!(conns.items[0].transport, Some(Transport::WebSocket));
    assert_eq!(conns.items[0].peer.as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(conns.items[1].reason, "keepalive_timeout");

    let mut trace = query(None, 0, 10_000, 1, 10);
    trace.message_id = Some(0xABCD);
    let up = records.message_trace(&trace, Direction::Uplink).unwrap();
    assert_eq!(up.total, 1);
    assert_eq!(up.items[0].client_id, "a@app");
    let down = records.message_trace(&trace, Direction::Downlink).unwrap();
    assert_eq!(down.items[0].client_id, "b@app");
    assert_eq!(down.items[0].connection_id, Some(8));

    let stored = records.stored_message(0xABCD).unwrap().unwrap();
    assert_eq!(stored.payload, Bytes::from_static(b"hello"));
    assert_eq!(stored.client_id.as_deref(), Some("a@app"));
    assert!(records.stored_message(1).unwrap().is_none());
}

fn a_clients_uplink_and_downlink_merge_in_time_order(on: On) {
    let (_dir, records) = on.open(RecordsConfig::default());
    for i in 0..10u64 {
        let at = 1_000 + i as i64 * 10;
        if i % 2 == 0 {
            records.record_blocking(&message_in(100 + i, Some("c@app"), "room", at));
        } else {
            records.record_blocking(&delivered(100 + i, "c@app", at));
        }
    }
    records.flush();
    let page = records
        .message_records(&query(Some("c@app"), 1_020, 1_080, 2, 3))
        .unwrap();
    assert_eq!(page.total, 7);
    let rows: Vec<(u64, Direction)> = page
        .items
        .iter()
        .map(|m| (m.message_id, m.direction))
        .collect();
    assert_eq!(
        rows,
        vec![
            (105, Direction::Downlink),
            (106, Direction::Uplink),
            (107, Direction::Downlink)
        ]
    );
    let mut desc = query(Some("c@app"), 0, i64::MAX, 1, 2);
    desc.order = SortOrder::Desc;
    let ids: Vec<u64> = records
        .message_records(&desc)
        .unwrap()
        .items
        .iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, vec![109, 108]);
}

fn windows_pages_and_order(on: On) {
    let (_dir, records) = on.open(RecordsConfig::default());
    for i in 0..25 {
        records.record_blocking(&message_in(
            100 + i,
            Some("c@app"),
            "room",
            10_000 + i as i64 * 10,
        ));
    }
    records.flush();

    let page = records
        .message_records(&query(Some("c@app"), 10_050, 10_149, 2, 4))
        .unwrap();
    assert_eq!(page.total, 10);
    let ids: Vec<u64> = page.items.iter().map(|m| m.message_id).collect();
    assert_eq!(ids, vec![109, 110, 111, 112]);

    let mut q = query(None, 0, i64::MAX, 1, 3);
    q.topic = Some("room".into());
    q.order = SortOrder::Desc;
    let page = records.topic_messages(&q).unwrap();
    assert_eq!(page.total, 25);
    let ids: Vec<u64> = page.items.iter().map(|m| m.message_id).collect();
    assert_eq!(ids, vec![124, 123, 122]);

    let beyond = records
        .message_records(&query(Some("c@app"), 0, i64::MAX, 99, 10))
        .unwrap();
    assert_eq!(beyond.total, 25);
    assert!(beyond.items.is_empty());
}

fn only_clients_in_scope_are_recorded(on: On) {
    let (_dir, records) = on.open(RecordsConfig::default());
    records.on_event(&connected("plain", 1, 5));
    records.on_event(&connected("d@app", 2, 5));
    records.on_event(&message_in(1, Some("plain"), "t", 6));
    records.on_event(&message_in(2, None, "t", 6));
    records.on_event(&message_in(3, Some("d@app"), "t", 6));
    records.on_event(&delivered(1, "d@app", 7));
    records.on_event(&delivered(3, "plain", 7));
    records.flush();
    assert!(records.records_client("d@app"));
    assert!(!records.records_client("plain"));
    let all = query(None, 0, 100, 1, 10);
    assert_eq!(records.connection_records(&all).unwrap().total, 1);
    let mut on_t = all.clone();
    on_t.topic = Some("t".into());
    let stored = records.topic_messages(&on_t).unwrap();
    assert_eq!(
        stored
            .items
            .iter()
            .map(|m| m.message_id)
            .collect::<Vec<_>>(),
        [3]
    );
    // The delivery of an unrecorded sender's message to a recorded client is kept.
    let d = records
        .message_records(&query(Some("d@app"), 0, 100, 1, 10))
        .unwrap();
    assert_eq!(d.total, 2);
    assert_eq!(records.dropped(), 0);

    let (_dir, everything) = on.open_with(RecordsConfig::default(), Clients::All);
    everything.on_event(&message_in(2, None, "t", 6));
    everything.on_event(&delivered(2, "plain", 7));
    everything.flush();
    assert!(everything.stored_message(2).unwrap().is_some());
}

fn a_full_queue_drops_and_counts_instead_of_blocking(on: On) {
    let (_dir, records) = on.open(RecordsConfig {
        queue_capacity: 1,
        batch_interval_ms: 1000,
        when_full: WhenFull::Drop,
        ..RecordsConfig::default()
    });
    let start = Instant::now();
    for i in 0..1000 {
        records.on_event(&connected("a@app", i, i as i64));
    }
    assert!(start.elapsed() < Duration::from_secs(1));
    let dropped = records.dropped();
    assert!(dropped > 0);
    assert_eq!(records.dropped_records(), dropped);
    assert!(records.settled().is_none());
    records.flush();
    let kept = records
        .connection_records(&query(Some("a@app"), 0, 10_000, 1, 10))
        .unwrap()
        .total as u64;
    assert_eq!(
        kept + dropped,
        1000,
        "every event is either kept or counted"
    );
}

#[tokio::test]
async fn the_wait_policy_hands_out_a_future_that_waits_for_room() {
    let (_dir, records) = open(RecordsConfig {
        queue_capacity: 8,
        batch_interval_ms: 60_000,
        ..RecordsConfig::default()
    });
    for i in 0..5 {
        records.on_event(&connected("a@app", i, i as i64));
    }
    assert!(records.settled().is_none(), "5 of 8 waiting: go on");
    records.on_event(&connected("a@app", 5, 5));
    let settled = records
        .settled()
        .expect("6 of 8 waiting: the broker must wait");
    tokio::time::timeout(Duration::from_secs(5), settled)
        .await
        .expect("the writer makes room at once");
    assert_eq!(records.dropped(), 0);
}

#[tokio::test]
async fn under_sync_the_settled_future_resolves_once_committed() {
    let (dir, records) = open(RecordsConfig {
        sync: true,
        ..RecordsConfig::default()
    });
    records.on_event(&message_in(42, Some("a@app"), "t", 1));
    let settled = records.settled().expect("sync: always a future");
    tokio::time::timeout(Duration::from_secs(5), settled)
        .await
        .unwrap();
    // Committed: another connection to the file sees it.
    let other = sqlite::schema::open(dir.path(), 1024).unwrap();
    let n: i64 = other
        .query_row(
            "SELECT sum(messages) FROM blocks WHERE min_message = 42 AND max_message = 42",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn close_writes_what_waits_and_ends_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let config = RecordsConfig {
        batch_interval_ms: 60_000,
        ..RecordsConfig::default()
    };
    let records = Recorder::start(sqlite_at(&dir), &config, Clients::All).unwrap();
    records.on_event(&message_in(5, Some("x"), "t", 1));
    records.close();
    assert!(records.writer.lock().is_none());
    assert!(matches!(
        records.stored_message(5),
        Err(MgmtError::ShuttingDown)
    ));
    records.on_event(&message_in(6, Some("x"), "t", 1));
    assert_eq!(records.dropped(), 1);
    drop(records);
    let again = Recorder::start(sqlite_at(&dir), &config, Clients::All).unwrap();
    assert!(again.stored_message(5).unwrap().is_some());
}

fn retention_by_age(on: On) {
    let (_dir, records) = on.open(RecordsConfig {
        max_age_hours: 5,
        max_rows: 0,
        ..RecordsConfig::default()
    });
    for i in 0..10 {
        records.record_blocking(&message_in(i + 1, Some("c@app"), "t", i as i64 * 3_600_000));
        records.record_blocking(&delivered(i + 1, "c@app", i as i64 * 3_600_000));
    }
    records.flush();
    // now = hour 9: hours 4..=9 survive an age limit of 5 h.
    assert!(records.prune_now(9 * 3_600_000));
    let all = query(Some("c@app"), 0, i64::MAX, 1, 100);
    assert_eq!(records.message_records(&all).unwrap().total, 12);
    assert!(records.stored_message(4).unwrap().is_none());
    assert!(records.stored_message(5).unwrap().is_some());
}

fn retention_by_rows(on: On) {
    let (_dir, records) = on.open(RecordsConfig {
        max_age_hours: 0,
        max_rows: 2,
        ..RecordsConfig::default()
    });
    for i in 0..10 {
        records.record_blocking(&message_in(i + 1, Some("c@app"), "t", i as i64 * 3_600_000));
    }
    records.flush();
    assert!(records.prune_now(9 * 3_600_000));
    let left = records
        .message_records(&query(Some("c@app"), 0, i64::MAX, 1, 100))
        .unwrap();
    assert_eq!(left.total, 2);
    assert_eq!(left.items[0].message_id, 9);
    assert!(records.stored_message(10).unwrap().is_some());
    assert!(records.stored_message(8).unwrap().is_none());
}

fn count_rows(dir: &tempfile::TempDir, table: &str) -> i64 {
    sqlite::schema::open(dir.path(), 1024)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn retention_cuts_a_block_and_its_names_go_with_its_events() {
    let (dir, records) = open(RecordsConfig {
        max_age_hours: 0,
        max_rows: 2,
        ..RecordsConfig::default()
    });
    for i in 0..10u64 {
        let at_ms = i as i64 * 1_000;
        let sender = format!("c{i}@app");
        records.record_blocking(&message_in(i + 1, Some(&sender), &format!("t/{i}"), at_ms));
        records.record_blocking(&delivered(i + 1, &format!("d{i}@app"), at_ms));
    }
    records.flush();
    // one block: 10 senders, 10 topics, 10 receivers
    assert_eq!(count_rows(&dir, "blocks"), 1);
    assert_eq!(count_rows(&dir, "block_names"), 30);
    assert!(records.prune_now(10_000));
    // left: messages 9 and 10 (c8, c9, t/8, t/9), deliveries to d8 and d9
    assert_eq!(count_rows(&dir, "blocks"), 1);
    assert_eq!(count_rows(&dir, "block_names"), 6);
    let kept = records.stored_message(10).unwrap().unwrap();
    assert_eq!(
        (kept.client_id.as_deref(), kept.topic.as_str()),
        (Some("c9@app"), "t/9")
    );
    assert!(records.stored_message(8).unwrap().is_none());
    let received = records
        .message_records(&query(Some("d9@app"), 0, i64::MAX, 1, 10))
        .unwrap();
    assert_eq!(received.total, 1);
    assert_eq!(received.items[0].topic, "t/1");
    assert_eq!(
        records
            .message_records(&query(Some("d7@app"), 0, i64::MAX, 1, 10))
            .unwrap()
            .total,
        0
    );

    // a later batch is a block of its own; the oldest go first again
    records.record_blocking(&message_in(11, Some("c0@app"), "t/0", 11_000));
    records.flush();
    assert_eq!(count_rows(&dir, "blocks"), 2);
    assert!(records.prune_now(11_000));
    assert!(records.stored_message(9).unwrap().is_none());
    let again = records.stored_message(11).unwrap().unwrap();
    assert_eq!(
        (again.client_id.as_deref(), again.topic.as_str()),
        (Some("c0@app"), "t/0")
    );
}

/// A records file of `user_version` `version` (1: rows with their names as
/// text; 2: rows naming clients and topics by number), filled by `rows`.
fn old_records_file(dir: &tempfile::TempDir, version: usize, rows: &str) {
    let conn = rusqlite::Connection::open(dir.path().join(sqlite::schema::FILE_NAME)).unwrap();
    for step in &sqlite::schema::ROW_MIGRATIONS[..version] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn.execute_batch(rows).unwrap();
}

#[test]
fn rows_of_the_numbered_names_schema_are_packed_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    old_records_file(
        &dir,
        2,
        "INSERT INTO names (id, name, last_message, last_delivery) VALUES
             (1, 'a@app', 5, -1), (2, 'old/topic', 5, 1), (3, 'b@app', -1, 2);
         INSERT INTO messages VALUES (5, 1, 7, 2, 1, 0, x'6869', 1000);
         INSERT INTO deliveries VALUES (1, 5, 3, 8, 2, 1, 2000);
         INSERT INTO deliveries VALUES (2, NULL, 3, 8, 2, 0, 1500);",
    );
    let records = Recorder::start(
        sqlite_at(&dir),
        &RecordsConfig::default(),
        Clients::OfApp("@app".into()),
    )
    .unwrap();
    let sent = records.stored_message(5).unwrap().unwrap();
    assert_eq!(
        (
            sent.client_id.as_deref(),
            sent.topic.as_str(),
            &sent.payload[..]
        ),
        (Some("a@app"), "old/topic", &b"hi"[..])
    );
    let received = records
        .message_records(&query(Some("b@app"), 0, i64::MAX, 1, 10))
        .unwrap();
    let got: Vec<(u64, i64)> = received
        .items
        .iter()
        .map(|m| (m.message_id, m.at_ms))
        .collect();
    // in time order; the untraced delivery has no id
    assert_eq!(got, vec![(0, 1500), (5, 2000)]);
    drop(records);
    assert_eq!(count_rows(&dir, "blocks"), 1);
}

#[test]
fn rows_written_before_names_existed_are_packed_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    old_records_file(
        &dir,
        1,
        "INSERT INTO messages VALUES (5, 'a@app', 7, 'old/topic', 1, 0, x'6869', 1000);
         INSERT INTO messages VALUES (6, NULL, NULL, 'old/api', 0, 1, x'', 1500);
         INSERT INTO deliveries VALUES (1, 5, 'b@app', 8, 'old/topic', 1, 2000);",
    );
    let records = Recorder::start(
        RecordsStore::Sqlite {
            data_dir: dir.path(),
        },
        &RecordsConfig::default(),
        Clients::OfApp("@app".into()),
    )
    .unwrap();
    let sent = records.stored_message(5).unwrap().unwrap();
    assert_eq!(
        (sent.client_id.as_deref(), sent.topic.as_str()),
        (Some("a@app"), "old/topic")
    );
    assert_eq!(&sent.payload[..], b"hi");
    let api = records.stored_message(6).unwrap().unwrap();
    assert_eq!((api.client_id, api.topic.as_str()), (None, "old/api"));
    let received = records
        .message_records(&query(Some("b@app"), 0, i64::MAX, 1, 10))
        .unwrap();
    assert_eq!(received.total, 1);
    assert_eq!(
        (
            received.items[0].message_id,
            received.items[0].topic.as_str()
        ),
        (5, "old/topic")
    );

    // new deliveries continue after the upgraded ones
    records.record_blocking(&delivered(7, "b@app", 3_000));
    records.flush();
    let both = records
        .message_records(&query(Some("b@app"), 0, i64::MAX, 1, 10))
        .unwrap();
    assert_eq!(both.total, 2);
}

#[test]
fn id_slots_are_leased_one_per_holder_renewed_and_given_back() {
    let Some(server) = mqgate_pgtest::server("id slots") else {
        return;
    };
    let store = Store::connect(&mqgate_kit::store::PostgresOptions {
        url: server.database(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(30),
    })
    .unwrap();
    store
        .migrate("records", &super::postgres::schema::MIGRATIONS)
        .unwrap();
    use super::postgres::ids::{lease, release, renew, LEASE_MS};
    let now = 1_000_000;
    let a = lease(&store, "a/1", now).unwrap();
    let b = lease(&store, "b/1", now).unwrap();
    assert_ne!(a, b);
    assert_eq!(
        lease(&store, "a/1", now).unwrap(),
        a,
        "a holder keeps its slot"
    );
    assert!(renew(&store, b, "b/1", now + 1).unwrap());
    assert!(
        !renew(&store, b, "a/1", now + 1).unwrap(),
        "only its holder renews"
    );
    // a's lease runs out: the next newcomer takes its slot, and a cannot renew
    let c = lease(&store, "c/1", now + LEASE_MS + 1).unwrap();
    assert_eq!(c, a);
    assert!(!renew(&store, a, "a/1", now + LEASE_MS + 2).unwrap());
    // b renewed in time and keeps its slot; given back, it is free again
    assert_ne!(lease(&store, "d/1", now + LEASE_MS + 1).unwrap(), b);
    release(&store, b, "b/1").unwrap();
    assert_eq!(lease(&store, "e/1", now + LEASE_MS + 3).unwrap(), b);
}

/// Over several blocks (SQLite) or rows (PostgreSQL), with windows that cut
/// blocks and pages that span them, every answer equals the one of a plain list.
fn pages_and_counts_across_many_blocks_match_a_plain_list(on: On) {
    let (_dir, records) = on.open(RecordsConfig::default());
    // (id, sender, at): 1,300 messages from a@app and b@app, each delivered to
    // c@app; several events share each millisecond
    let senders = ["a@app", "b@app"];
    let mut sent = Vec::new();
    for i in 0..1_300u64 {
        let at = 10_000 + (i / 3) as i64;
        let sender = senders[(i % 2) as usize];
        let topic = if i % 5 == 0 { "t/five" } else { "t/other" };
        records.record_blocking(&message_in(i + 1, Some(sender), topic, at));
        records.record_blocking(&delivered(i + 1, "c@app", at));
        sent.push((i + 1, sender, topic, at));
    }
    records.flush();
    for (from, to) in [
        (0, i64::MAX),
        (10_050, 10_300),
        (10_171, 10_171),
        (20_000, 30_000),
    ] {
        for order in [SortOrder::Asc, SortOrder::Desc] {
            for (page, limit) in [(1, 10), (3, 7), (40, 25), (1, 2_000)] {
                let mut q = query(Some("a@app"), from, to, page, limit);
                q.order = order;
                let mut expected: Vec<u64> = sent
                    .iter()
                    .filter(|(_, s, _, at)| *s == "a@app" && (from..=to).contains(at))
                    .map(|(id, ..)| *id)
                    .collect();
                let total = expected.len();
                if order == SortOrder::Desc {
                    expected.reverse();
                }
                let expected: Vec<u64> = expected
                    .into_iter()
                    .skip((page - 1) * limit)
                    .take(limit)
                    .collect();
                let got = records.message_records(&q).unwrap();
                let ids: Vec<u64> = got.items.iter().map(|m| m.message_id).collect();
                assert_eq!(
                    (got.total, &ids),
                    (total, &expected),
                    "{from}..{to} {page}x{limit}"
                );

                q.client_id = Some("c@app".into());
                assert_eq!(records.message_records(&q).unwrap().total, {
                    sent.iter()
                        .filter(|(.., at)| (from..=to).contains(at))
                        .count()
                });

                q.client_id = None;
                q.topic = Some("t/five".into());
                let got = records.topic_messages(&q).unwrap();
                let count = sent
                    .iter()
                    .filter(|(_, _, t, at)| *t == "t/five" && (from..=to).contains(at))
                    .count();
                assert_eq!(got.total, count);
                assert!(got.items.iter().all(|m| m.topic == "t/five"));
            }
        }
    }
    for id in [1, 512, 513, 1_024, 1_300] {
        let stored = records.stored_message(id).unwrap().unwrap();
        assert_eq!(stored.message_id, id);
        let mut trace = query(None, 0, i64::MAX, 1, 10);
        trace.message_id = Some(id);
        let down = records.message_trace(&trace, Direction::Downlink).unwrap();
        assert_eq!((down.total, down.items[0].client_id.as_str()), (1, "c@app"));
    }
}
