//! Management API latency: GET of one URL, `concurrency` requests at a time.

use std::io;
use std::time::Instant;

use futures::{stream, StreamExt};

use crate::Report;

const UNIT: &str = "req/s";

pub struct Get {
    pub url: String,
    /// `user:password` for HTTP Basic.
    pub basic: Option<String>,
    /// Extra `Name: value` headers.
    pub headers: Vec<String>,
    pub requests: usize,
    pub concurrency: usize,
}

pub async fn run(get: &Get) -> io::Result<Report> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(io::Error::other)?;
    let mut request = client.get(&get.url);
    if let Some((user, password)) = get.basic.as_deref().and_then(|b| b.split_once(':')) {
        request = request.basic_auth(user, Some(password));
    }
    for h in &get.headers {
        if let Some((name, value)) = h.split_once(':') {
            request = request.header(name.trim(), value.trim());
        }
    }
    let request = request.build().map_err(io::Error::other)?;
    let started = Instant::now();
    let results: Vec<Result<u32, String>> = stream::iter(0..get.requests)
        .map(|_| {
            let (client, request) = (client.clone(), request.try_clone().expect("a GET"));
            async move {
                let at = Instant::now();
                let response = client.execute(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                response.bytes().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("status {status}"));
                }
                Ok(at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32)
            }
        })
        .buffer_unordered(get.concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut report = Report::new("http-get");
    let mut latencies = Vec::new();
    for r in results {
        match r {
            Ok(us) => latencies.push(us),
            Err(e) => {
                if report.lost == 0 {
                    eprintln!("GET {} failed: {e}", get.url);
                }
                report.lost += 1;
            }
        }
    }
    report.expected = get.requests as u64;
    report.received = latencies.len() as u64;
    report.rate = report.received as f64 / elapsed;
    report.unit = UNIT;
    report.latencies(latencies);
    Ok(report)
}
