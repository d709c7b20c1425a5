//! Rerunnable measurements of the Easemob dialect and the record keeper:
//!
//! - record query latency over 1M stored messages (straight through `History`,
//!   and end to end over the dialect's HTTP API);
//! - MQTT 1→1 QoS 1 throughput of Easemob clients and of other clients, records on
//!   and off, with mqbench's raw client (medians of 5 interleaved runs);
//! - Easemob REST publish throughput with `records.sync` off and on;
//! - a 1M-message MQTT run, every acknowledged message counted back through the
//!   Easemob record APIs.
//!
//! `cargo test --release --test easemob_bench -- --ignored --nocapture`
//! (`EASEMOB_BENCH_MESSAGES` changes the 1M, `EASEMOB_BENCH_QOS1` the 100k messages
//! per MQTT run, `EASEMOB_BENCH_SUBSCRIBERS` the one subscriber of each (a
//! fan-out), `EASEMOB_BENCH_REST` the 5k publishes per REST run;
//! `EASEMOB_BENCH_STORE=postgres` runs the MQTT gateways on PostgreSQL, records
//! included).

mod common;

use std::time::{Duration, Instant};

use futures::StreamExt;
use mqbench::client::Target;
use mqbench::packet::Version;
use mqbench::pubsub::{Run, Shape};
use mqbench::Report;
use mqgate::recorder::{Clients, RecordScope, Recorder, RecordsConfig, RecordsStore};
use mqgate_kit::clock::now_ms;
use mqgate_kit::history::{
    BrokerEvent, Direction, History, MessageInEvent, RecordQuery, SortOrder,
};
use mqgate_kit::http::time::format_datetime;
use mqgate_kit::PageRequest;
use serde_json::{json, Value};

const APP_ID: &str = "mq7g4e";
const CLIENTS: u64 = 1000;
const TOPICS: u64 = 100;
const FIRST_ID: u64 = 0x0100_0000_0000_0000;

/// Builds the path and query of the i-th request of a case.
type RequestMaker<'a> = Box<dyn Fn(u64) -> (String, Vec<(String, String)>) + 'a>;

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p) as usize];
    format!(
        "p50 {:>8.3} ms  p95 {:>8.3} ms  max {:>8.3} ms",
        at(0.5).as_secs_f64() * 1e3,
        at(0.95).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    )
}

fn measure(name: &str, runs: usize, mut f: impl FnMut(u64)) {
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs as u64 {
        let start = Instant::now();
        f(i);
        samples.push(start.elapsed());
    }
    println!("{name:<58} {}", percentiles(samples));
}

/// `n` messages from 1000 clients on 100 topics over the last 24 h, each delivered
/// to one subscriber.
fn load(records: &Recorder, n: u64, start_ms: i64) {
    let step = (86_400_000 / n as i64).max(1);
    let started = Instant::now();
    let payload = vec![b'x'; 64];
    for i in 0..n {
        let at_ms = start_ms + i as i64 * step;
        let topic = format!("bench/{}", i % TOPICS);
        records.record_blocking(&BrokerEvent::MessageIn(MessageInEvent {
            message_id: FIRST_ID + i,
            client_id: Some(&format!("dev{}@{APP_ID}", i % CLIENTS)),
            connection_id: Some(i % CLIENTS + 1),
            topic: &topic,
            qos: 1,
            retain: false,
            payload: &payload,
            at_ms,
        }));
        records.record_blocking(&BrokerEvent::MessageDelivered {
            message_id: Some(FIRST_ID + i),
            client_id: &format!("sub{}@{APP_ID}", i % CLIENTS),
            connection_id: CLIENTS + i % CLIENTS + 1,
            topic: &topic,
            qos: 1,
            at_ms: at_ms + 1,
        });
    }
    records.flush();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "loaded {n} messages + {n} deliveries in {secs:.1} s ({:.0} events/s)",
        2.0 * n as f64 / secs
    );
}

fn query(
    client: Option<String>,
    from_ms: i64,
    to_ms: i64,
    page: usize,
    order: SortOrder,
) -> RecordQuery {
    RecordQuery {
        client_id: client,
        message_id: None,
        topic: None,
        from_ms,
        to_ms,
        page: PageRequest::new(page, 10),
        order,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test easemob_bench -- --ignored --nocapture"]
async fn record_query_latency_over_1m_messages() {
    let n: u64 = std::env::var("EASEMOB_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let start_ms = now_ms() - 86_400_000;
    let end_ms = now_ms();
    {
        let records = Recorder::start(
            RecordsStore::Sqlite {
                data_dir: dir.path(),
            },
            &RecordsConfig::default(),
            Clients::OfApp(format!("@{APP_ID}")),
        )
        .unwrap();
        load(&records, n, start_ms);
        let history: &dyn History = records.as_ref();
        let hour = start_ms + 12 * 3_600_000;
        println!("-- History (SQLite), {n} messages, 200 runs each --");
        measure("message_records: client, 24 h, page 1", 200, |i| {
            let q = query(
                Some(format!("dev{}@{APP_ID}", i * 7 % CLIENTS)),
                start_ms,
                end_ms,
                1,
                SortOrder::Asc,
            );
            let page = history.message_records(&q).unwrap();
            assert_eq!(page.total as u64, n / CLIENTS);
        });
        measure("message_records: client, 24 h, page 50, DESC", 200, |i| {
            let q = query(
                Some(format!("sub{}@{APP_ID}", i * 7 % CLIENTS)),
                start_ms,
                end_ms,
                50,
                SortOrder::Desc,
            );
            history.message_records(&q).unwrap();
        });
        measure("message_records: client, 1 h", 200, |i| {
            let q = query(
                Some(format!("dev{}@{APP_ID}", i * 7 % CLIENTS)),
                hour,
                hour + 3_600_000,
                1,
                SortOrder::Asc,
            );
            history.message_records(&q).unwrap();
        });
        measure("message_trace: id, uplink + downlink", 200, |i| {
            let mut q = query(None, i64::MIN, i64::MAX, 1, SortOrder::Asc);
            q.message_id = Some(FIRST_ID + i * 4999 % n);
            assert_eq!(
                history.message_trace(&q, Direction::Uplink).unwrap().total,
                1
            );
            assert_eq!(
                history
                    .message_trace(&q, Direction::Downlink)
                    .unwrap()
                    .total,
                1
            );
        });
        measure("stored_message: id", 200, |i| {
            assert!(history
                .stored_message(FIRST_ID + i * 4999 % n)
                .unwrap()
                .is_some());
        });
        measure("topic_messages: topic, 24 h, page 1, DESC", 200, |i| {
            let mut q = query(None, start_ms, end_ms, 1, SortOrder::Desc);
            q.topic = Some(format!("bench/{}", i % TOPICS));
            assert_eq!(history.topic_messages(&q).unwrap().total as u64, n / TOPICS);
        });
        measure("topic_messages: topic, 1 h", 200, |i| {
            let mut q = query(None, hour, hour + 3_600_000, 1, SortOrder::Asc);
            q.topic = Some(format!("bench/{}", i % TOPICS));
            history.topic_messages(&q).unwrap();
        });
        records.flush();
    }

    // The same data behind the whole gateway, queried over HTTP.
    let data_dir = dir.path().to_path_buf();
    let gw = common::start_with(move |c| c.data_dir = data_dir).await;
    let http = reqwest::Client::new();
    let base = gw.base_url("easemob");
    let token = gw.easemob_app_token().await;
    let begin = format_datetime(start_ms);
    let end = format_datetime(end_ms);
    println!("-- HTTP (dialect + gateway), 100 runs each --");
    let cases: Vec<(&str, RequestMaker<'_>)> = vec![
        (
            "GET message/record: client, 24 h, page 1",
            Box::new(|i| {
                (
                    "/openapi/rm/message/record".into(),
                    vec![
                        (
                            "clientid".into(),
                            format!("dev{}@{APP_ID}", i * 7 % CLIENTS),
                        ),
                        ("beginTime".into(), begin.clone()),
                        ("endTime".into(), end.clone()),
                    ],
                )
            }),
        ),
        (
            "GET message/subscribe: id",
            Box::new(|i| {
                (
                    "/openapi/rm/message/subscribe".into(),
                    vec![
                        ("clientid".into(), format!("dev0@{APP_ID}")),
                        (
                            "messageid".into(),
                            format!("{:016X}", FIRST_ID + i * 4999 % n),
                        ),
                        ("beginTime".into(), begin.clone()),
                        ("endTime".into(), end.clone()),
                    ],
                )
            }),
        ),
        (
            "GET message/message: id",
            Box::new(|i| {
                (
                    "/openapi/rm/message/message".into(),
                    vec![(
                        "messageId".into(),
                        format!("{:016X}", FIRST_ID + i * 4999 % n),
                    )],
                )
            }),
        ),
        (
            "GET message/messages: topic, 24 h, page 1",
            Box::new(|i| {
                (
                    "/openapi/rm/message/messages".into(),
                    vec![
                        ("topic".into(), format!("bench/{}", i % TOPICS)),
                        ("beginTime".into(), begin.clone()),
                        ("endTime".into(), end.clone()),
                    ],
                )
            }),
        ),
    ];
    for (name, make) in cases {
        let mut samples = Vec::new();
        for i in 0..100 {
            let (path, params) = make(i);
            let start = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header("Authorization", &token)
                .query(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            samples.push(start.elapsed());
            assert_eq!(body["code"], 200);
        }
        println!("{name:<58} {}", percentiles(samples));
    }
    gw.shutdown().await;
}

/// An app token, and a user token MQTT clients of the app log in with.
async fn tokens(gw: &common::TestGateway) -> (String, String) {
    let app = gw.easemob_app_token().await;
    let user = gw.easemob_user_token(&app, "bench").await;
    (app, user)
}

/// One gateway of the comparison, with how its clients log in.
struct Case {
    name: &'static str,
    gw: common::TestGateway,
    target: Target,
    recorded: bool,
}

async fn case(name: &'static str, scope: RecordScope, easemob_clients: bool) -> Case {
    let database = postgres_database();
    let gw = common::start_with(move |c| {
        c.records.scope = scope;
        if let Some(url) = &database {
            c.store.backend = mqgate::config::StoreBackend::Postgres;
            c.store.postgres_url = Some(url.clone());
        }
    })
    .await;
    let (_, user) = tokens(&gw).await;
    let target = Target {
        addr: gw.mqtt_addr().to_string(),
        version: Version::V4,
        username: easemob_clients.then(|| "bench".to_string()),
        password: easemob_clients.then_some(user),
        client_suffix: if easemob_clients {
            format!("@{APP_ID}")
        } else {
            String::new()
        },
    };
    Case {
        name,
        gw,
        target,
        recorded: easemob_clients && scope != RecordScope::Off,
    }
}

/// With `EASEMOB_BENCH_STORE=postgres`, a fresh PostgreSQL database for one
/// gateway: its state and its records there, as in a cluster.
fn postgres_database() -> Option<String> {
    if std::env::var("EASEMOB_BENCH_STORE").as_deref() != Ok("postgres") {
        return None;
    }
    let server = mqgate_pgtest::server("easemob_bench on PostgreSQL")
        .expect("EASEMOB_BENCH_STORE=postgres needs PostgreSQL installed");
    Some(server.database())
}

/// `count` QoS 1 messages of 64 bytes from one client to `subscribers` others
/// (mqbench's raw client, 100 in flight) on `topic`, client ids starting with
/// `clients`.
async fn one_to_n_qos1(
    c: &Case,
    count: u64,
    subscribers: usize,
    topic: &str,
    clients: &str,
) -> Report {
    mqbench::pubsub::run(
        &c.target,
        &Run {
            name: c.name.into(),
            shape: Shape::Shared,
            publishers: 1,
            subscribers,
            count,
            qos: 1,
            payload: 64,
            inflight: 100,
            idle: Duration::from_secs(10),
            concurrency: 1,
            topic: topic.into(),
            clients: clients.into(),
        },
    )
    .await
    .unwrap()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// MQTT 1→1 QoS 1 (mqbench's raw client, 100 in flight; 1→N with
/// `EASEMOB_BENCH_SUBSCRIBERS`), interleaved run by run:
/// Easemob clients with records on and off, and clients outside the app with
/// records on (nothing of theirs is recorded) and off. Every message must arrive
/// once and in order, and with records on every Easemob message must be on record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test easemob_bench -- --ignored --nocapture"]
async fn mqtt_qos1_throughput_with_records_on_and_off() {
    let count = env_or("EASEMOB_BENCH_QOS1", 100_000);
    let subscribers = env_or("EASEMOB_BENCH_SUBSCRIBERS", 1).max(1) as usize;
    let cases = vec![
        case("Easemob clients, records on", RecordScope::Easemob, true).await,
        case("Easemob clients, records off", RecordScope::Off, true).await,
        case("other clients, records on", RecordScope::Easemob, false).await,
        case("other clients, records off", RecordScope::Off, false).await,
    ];
    let mut rates = vec![Vec::new(); cases.len()];
    for run in 0..5 {
        for (i, c) in cases.iter().enumerate() {
            let topic = format!("bench/qos1/{i}/{run}");
            let clients = format!("bench-{i}-{run}");
            let report = one_to_n_qos1(c, count, subscribers, &topic, &clients).await;
            assert!(report.is_clean(), "{}", report.result_line());
            let dropped = if c.recorded {
                records_of_run(&c.gw, &topic, &format!("{clients}-s0@{APP_ID}"), count).await
            } else {
                0
            };
            println!(
                "  run {run} {:<30} {:>9.0} msg/s, events not recorded (counted) {dropped}",
                c.name, report.rate
            );
            rates[i].push(report.rate);
        }
    }
    let medians: Vec<f64> = rates.into_iter().map(median).collect();
    for (c, m) in cases.iter().zip(&medians) {
        println!(
            "MQTT 1→{subscribers} QoS 1, 64 B, {count} messages, {:<30} median {m:.0} msg/s",
            c.name
        );
    }
    println!(
        "records on / off: Easemob clients {:.2}, other clients {:.2}",
        medians[0] / medians[1],
        medians[2] / medians[3]
    );
    for c in cases {
        c.gw.shutdown().await;
    }
}

/// Easemob REST publishes (`chat/publish`, QoS 1, 16 at a time) with
/// `records.sync` off and on, interleaved: what answering only after the commit
/// costs. (The MQTT path waits the same way once the broker awaits
/// `BrokerObserver::settled`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test easemob_bench -- --ignored --nocapture"]
async fn rest_publish_throughput_with_records_sync_off_and_on() {
    let count = env_or("EASEMOB_BENCH_REST", 5_000) as usize;
    let mut gateways = Vec::new();
    for sync in [false, true] {
        let gw = common::start_with(|c| c.records.sync = sync).await;
        let (app, _) = tokens(&gw).await;
        gateways.push((sync, gw, app));
    }
    let http = reqwest::Client::new();
    let mut rates = [Vec::new(), Vec::new()];
    for run in 0..5 {
        for (i, (sync, gw, app)) in gateways.iter().enumerate() {
            let url = format!("{}/openapi/v1/rm/chat/publish", gw.base_url("easemob"));
            let started = Instant::now();
            let answered: Vec<bool> = futures::stream::iter(0..count)
                .map(|n| {
                    let (http, url, app) = (http.clone(), url.clone(), app.clone());
                    async move {
                        let body = json!({"clientid": format!("dev{}@{APP_ID}", n % 16), "topics": ["bench/rest"], "payload": "x", "qos": 1});
                        let r = http.post(&url).header("Authorization", &app).json(&body).send().await;
                        matches!(r, Ok(r) if r.status() == 200)
                    }
                })
                .buffer_unordered(16)
                .collect()
                .await;
            let rate = count as f64 / started.elapsed().as_secs_f64();
            assert!(answered.iter().all(|ok| *ok));
            println!("  run {run} sync {sync:<5} {rate:>8.0} publishes/s");
            rates[i].push(rate);
        }
    }
    let (off, on) = (median(rates[0].clone()), median(rates[1].clone()));
    println!(
        "Easemob REST publish, QoS 1, 16 concurrent, {count} per run: sync off {off:.0}/s, sync on {on:.0}/s, on/off {:.2}",
        on / off
    );
    for (_, gw, _) in gateways {
        gw.shutdown().await;
    }
}

/// Every message of a run (its publish and its delivery to `subscriber`) is on
/// record or counted as not recorded; returns the events counted in this run.
async fn records_of_run(
    gw: &common::TestGateway,
    topic: &str,
    subscriber: &str,
    count: u64,
) -> u64 {
    let history = gw.gateway.management().history().unwrap();
    let window = (now_ms() - 600_000, now_ms() + 600_000);
    let mut published = query(None, window.0, window.1, 1, SortOrder::Asc);
    published.topic = Some(topic.to_string());
    let delivered = query(
        Some(subscriber.to_string()),
        window.0,
        window.1,
        1,
        SortOrder::Asc,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let dropped_before = DROPPED.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let on_record = history.topic_messages(&published).unwrap().total as u64
            + history.message_records(&delivered).unwrap().total as u64;
        let dropped = history.dropped_records();
        // The drops counted may include the run's two clients' connects and
        // disconnects (at most 4 events) besides its messages.
        let accounted = on_record + dropped - dropped_before;
        if (2 * count..=2 * count + 4).contains(&accounted) {
            DROPPED.store(dropped, std::sync::atomic::Ordering::Relaxed);
            return dropped - dropped_before;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: {on_record} events on record, {} counted as dropped, of {}",
            dropped - dropped_before,
            2 * count
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Events counted as not recorded by the records-on gateway before this run.
static DROPPED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One million QoS 1 messages between two Easemob clients over MQTT (records on,
/// the default `wait` policy), then the Easemob record APIs asked for them: the
/// topic's stored messages and the subscriber's downlink records must count every
/// message the publisher had acknowledged (`EASEMOB_BENCH_MILLION` changes the 1M).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test easemob_bench -- --ignored --nocapture"]
async fn a_million_acknowledged_messages_are_all_on_record() {
    let count = env_or("EASEMOB_BENCH_MILLION", 1_000_000);
    let c = case("Easemob clients, records on", RecordScope::Easemob, true).await;
    let begin = format_datetime(now_ms() - 1_000);
    let topic = "bench/million".to_string();
    let report = one_to_n_qos1(&c, count, 1, &topic, "million").await;
    println!("{}", report.result_line());
    assert!(report.is_clean(), "{}", report.result_line());
    let end = format_datetime(now_ms() + 60_000);
    let http = reqwest::Client::new();
    let base = c.gw.base_url("easemob");
    let token = c.gw.easemob_app_token().await;
    let total = |path: &'static str, params: Vec<(&'static str, String)>, field: &'static str| {
        let request = http
            .get(format!("{base}{path}"))
            .header("Authorization", &token)
            .query(&params);
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(body["code"], 200, "{body}");
            body["body"][field].as_u64().unwrap()
        }
    };
    let window = |extra: (&'static str, String)| {
        vec![
            ("beginTime", begin.clone()),
            ("endTime", end.clone()),
            extra,
        ]
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = total(
            "/openapi/rm/message/messages",
            window(("topic", topic.clone())),
            "total",
        )
        .await;
        let received = total(
            "/openapi/rm/message/record",
            window(("clientid", format!("million-s0@{APP_ID}"))),
            "totalCount",
        )
        .await;
        let dropped =
            c.gw.gateway
                .management()
                .history()
                .unwrap()
                .dropped_records();
        println!("on record: {stored} stored messages, {received} deliveries, {dropped} dropped");
        if stored == count && received == count {
            assert_eq!(dropped, 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not all {count} messages are on record"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.gw.shutdown().await;
}
