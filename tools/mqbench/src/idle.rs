//! Idle memory: the broker's resident memory (read from `/proc/<pid>/status`)
//! before and after `count` clients connect and stay idle.

use std::io;
use std::time::Duration;

use crate::client::Target;
use crate::pubsub::connect_many;
use crate::Report;

/// VmRSS of `pid`, KiB.
pub fn rss_kib(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

pub async fn run(
    target: &Target,
    pid: u32,
    count: usize,
    concurrency: usize,
    settle: Duration,
) -> io::Result<Report> {
    tokio::time::sleep(settle).await;
    let before = rss_kib(pid)?;
    let tag = format!("mqbench-i-{}", std::process::id());
    let conns = connect_many(target, &format!("{tag}-"), count, concurrency).await?;
    tokio::time::sleep(settle).await;
    let after = rss_kib(pid)?;
    futures::future::join_all(conns.into_iter().map(|c| c.disconnect())).await;
    let mut report = Report::new("idle-memory");
    report.expected = count as u64;
    report.received = count as u64;
    report.rss_before_kib = Some(before);
    report.rss_after_kib = Some(after);
    report.rate = after.saturating_sub(before) as f64 / count.max(1) as f64;
    report.unit = "KiB/conn";
    Ok(report)
}
