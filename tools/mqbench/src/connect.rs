//! Connect rate: CONNECT → CONNACK → DISCONNECT, one after another or many at
//! once, with the time each CONNACK took.

use std::io;
use std::time::Instant;

use futures::{stream, StreamExt};

use crate::client::{self, Target};
use crate::Report;

const UNIT: &str = "conn/s";

pub async fn run(target: &Target, count: usize, concurrency: usize) -> io::Result<Report> {
    let tag = format!("mqbench-c-{}-{}", std::process::id(), concurrency);
    let started = Instant::now();
    let results: Vec<io::Result<u32>> = stream::iter(0..count)
        .map(|i| {
            let id = format!("{tag}-{i}");
            async move {
                let at = Instant::now();
                let conn = client::connect(target, &id, true).await?;
                let took = at.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                conn.disconnect().await;
                Ok(took)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let name = if concurrency <= 1 {
        "connect-sequential".to_string()
    } else {
        format!("connect-concurrent-{concurrency}")
    };
    let mut report = Report::new(&name);
    let mut latencies = Vec::with_capacity(count);
    for r in results {
        match r {
            Ok(us) => latencies.push(us),
            Err(e) => {
                if report.lost == 0 {
                    eprintln!("connect failed: {e}");
                }
                report.lost += 1;
            }
        }
    }
    report.expected = count as u64;
    report.sent = count as u64;
    report.received = latencies.len() as u64;
    report.rate = report.received as f64 / elapsed;
    report.unit = UNIT;
    report.latencies(latencies);
    Ok(report)
}
