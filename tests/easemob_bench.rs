//! Rerunnable measurements of the Easemob dialect and the record keeper:
//!
//! - record query latency over 1M stored messages (straight through `History`,
//!   and end to end over the dialect's HTTP API);
//! - MQTT 1→1 QoS 1 throughput with records on and off (medians of 5 runs).
//!
//! `cargo test --release --test easemob_bench -- --ignored --nocapture`
//! (`EASEMOB_BENCH_MESSAGES` changes the 1M).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate::recorder::{Clients, Recorder, RecordsConfig};
use mqgate_kit::clock::now_ms;
use mqgate_kit::history::{
    BrokerEvent, Direction, History, MessageInEvent, RecordQuery, SortOrder,
};
use mqgate_kit::http::time::format_datetime;
use mqgate_kit::PageRequest;
use rumqttc::QoS;
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
    let payload = Bytes::from(vec![b'x'; 64]);
    for i in 0..n {
        let at_ms = start_ms + i as i64 * step;
        records.record_blocking(&BrokerEvent::MessageIn(Box::new(MessageInEvent {
            message_id: FIRST_ID + i,
            client_id: Some(format!("dev{}@{APP_ID}", i % CLIENTS)),
            connection_id: Some(i % CLIENTS + 1),
            topic: format!("bench/{}", i % TOPICS),
            qos: 1,
            retain: false,
            payload: payload.clone(),
            at_ms,
        })));
        records.record_blocking(&BrokerEvent::MessageDelivered {
            message_id: Some(FIRST_ID + i),
            client_id: format!("sub{}@{APP_ID}", i % CLIENTS),
            connection_id: CLIENTS + i % CLIENTS + 1,
            topic: format!("bench/{}", i % TOPICS),
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
            dir.path(),
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
    let reply: Value = http
        .post(format!("{base}/openapi/rm/app/token"))
        .json(&json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reply["body"]["access_token"].as_str().unwrap().to_string();
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

/// One publisher, one subscriber, `count` QoS 1 messages; messages per second.
async fn one_to_one_qos1(gw: &common::TestGateway, count: usize, run: usize) -> f64 {
    let mut sub = common::connect_v4(gw.v4_options(&format!("bench-sub-{run}"))).await;
    let topic = format!("bench/throughput/{run}");
    sub.client
        .subscribe(&topic, QoS::AtLeastOnce)
        .await
        .unwrap();
    // Wait for the SUBACK so no message is published before the subscription.
    loop {
        match tokio::time::timeout(Duration::from_secs(5), sub.events.recv()).await {
            Ok(Some(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_)))) => break,
            Ok(Some(_)) => continue,
            other => panic!("no SUBACK: {other:?}"),
        }
    }
    let mut options = gw.v4_options(&format!("bench-pub-{run}"));
    options.set_inflight(100);
    let publisher = common::connect_v4(options).await;
    let payload = vec![b'p'; 64];
    let start = Instant::now();
    let client = publisher.client.clone();
    let t = topic.clone();
    let sending = tokio::spawn(async move {
        for _ in 0..count {
            client
                .publish(&t, QoS::AtLeastOnce, false, payload.clone())
                .await
                .unwrap();
        }
    });
    for received in 0..count {
        common::next_publish(&mut sub, 10)
            .await
            .unwrap_or_else(|| panic!("only {received} of {count} arrived"));
    }
    let elapsed = start.elapsed();
    sending.await.unwrap();
    let _ = publisher.client.disconnect().await;
    let _ = sub.client.disconnect().await;
    count as f64 / elapsed.as_secs_f64()
}

/// With records on, every message of a run is on record (none dropped by the queue).
async fn assert_all_recorded(gw: &common::TestGateway, topic: &str, count: usize) {
    let http = reqwest::Client::new();
    let base = gw.base_url("easemob");
    let reply: Value = http
        .post(format!("{base}/openapi/rm/app/token"))
        .json(&json!({"appClientId": "YXA6mQgAtE7eAsEmObApPcLiEn", "appClientSecret": "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reply["body"]["access_token"].as_str().unwrap().to_string();
    let begin = format_datetime(now_ms() - 600_000);
    let end = format_datetime(now_ms() + 600_000);
    let mut total = Value::Null;
    for _ in 0..100 {
        let body: Value = http
            .get(format!("{base}/openapi/rm/message/messages"))
            .header("Authorization", &token)
            .query(&[
                ("topic", topic),
                ("beginTime", &begin),
                ("endTime", &end),
                ("pageSize", "1"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        total = body["body"]["total"].clone();
        if total == json!(count) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{topic}: {total} of {count} messages on record");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test easemob_bench -- --ignored --nocapture"]
async fn mqtt_qos1_throughput_with_records_on_and_off() {
    const COUNT: usize = 50_000;
    let mut results = Vec::new();
    for enabled in [true, false] {
        let gw = common::start_with(|c| {
            if !enabled {
                c.records.scope = mqgate::recorder::RecordScope::Off
            }
        })
        .await;
        let mut rates = Vec::new();
        for run in 0..5 {
            rates.push(one_to_one_qos1(&gw, COUNT, run).await);
            if enabled {
                assert_all_recorded(&gw, &format!("bench/throughput/{run}"), COUNT).await;
            }
        }
        println!(
            "records {:>3}: runs {:?} msg/s",
            if enabled { "on" } else { "off" },
            rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>()
        );
        results.push((enabled, median(rates)));
        gw.shutdown().await;
    }
    for (enabled, rate) in results {
        println!(
            "MQTT 1→1 QoS 1, 64-byte payload, {COUNT} messages, records {}: median {:.0} msg/s",
            if enabled { "on" } else { "off" },
            rate
        );
    }
}
