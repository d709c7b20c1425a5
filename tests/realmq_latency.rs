//! Rerunnable latency check of the RealMQ device list with 10 000 devices:
//! `cargo test -p mqgate --release --test realmq_latency -- --ignored --nocapture`
//! (or without `--release` for the debug build). Prints p50/p95 of the first and
//! the last page, and of a fuzzy search and a status filter over all devices.

mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const DEVICES: usize = 10_000;
const SAMPLES: usize = 200;

async fn timed_get(http: &reqwest::Client, url: &str) -> (Duration, Value) {
    let started = Instant::now();
    let response = http
        .get(url)
        .basic_auth("root", Some("123456"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (started.elapsed(), body)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "latency measurement: run on demand with --ignored --nocapture"]
async fn device_list_latency_with_10k_devices() {
    let gw = common::start().await;
    let base = gw.base_url("realmq");
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/api/v1/products"))
        .basic_auth("root", Some("123456"))
        .json(&json!({"name":"bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["data"]["product_key"].as_str().unwrap().to_string();
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url, key) = (http.clone(), format!("{base}/api/v1/devices"), key.clone());
        writers.push(tokio::spawn(async move {
            for i in (w..DEVICES).step_by(4) {
                let name = format!("bench-device-{i:05}");
                let answer: Value = http
                    .post(&url)
                    .basic_auth("root", Some("123456"))
                    .json(&json!({"name": name, "product_key": key, "username": name, "mqtt_client_id": name}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(answer, json!({"code":0}));
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    println!("created {DEVICES} devices in {:?}", started.elapsed());

    let last_page = DEVICES / 10;
    let cases = [
        ("first page (_limit=10)", format!("{base}/api/v1/devices")),
        (
            "last page (_page=1000, _limit=10)",
            format!("{base}/api/v1/devices?_page={last_page}&_limit=10"),
        ),
        (
            "fuzzy device_name, first page",
            format!("{base}/api/v1/devices?device_name=DEVICE-099"),
        ),
        (
            "status=1 filter, first page",
            format!("{base}/api/v1/devices?status=1"),
        ),
        (
            "page of 1000",
            format!("{base}/api/v1/devices?_page=10&_limit=1000"),
        ),
    ];
    for (label, url) in cases {
        let (_, body) = timed_get(&http, &url).await;
        assert_eq!(body["code"], 0);
        let mut samples: Vec<Duration> = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            samples.push(timed_get(&http, &url).await.0);
        }
        samples.sort();
        println!(
            "{label}: p50 {:?}, p95 {:?}, max {:?} (count {})",
            percentile(&samples, 50),
            percentile(&samples, 95),
            samples[samples.len() - 1],
            body["meta"]["count"]
        );
    }
    let (_, last) = timed_get(
        &http,
        &format!("{base}/api/v1/devices?_page={last_page}&_limit=10"),
    )
    .await;
    assert_eq!(last["meta"]["hasnext"], false);
    // four writers ran at once, so creation order (the list order) is not name order
    let names = last["data"].as_array().unwrap();
    assert_eq!(names.len(), 10);
    assert!(names
        .iter()
        .all(|d| d["name"].as_str().unwrap().starts_with("bench-device-")));
    gw.shutdown().await;
}
