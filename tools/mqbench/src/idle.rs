//! Idle memory: the broker's resident memory (read from `/proc/<pid>/status`)
//! before and after `count` clients connect and stay idle (each with
//! `filters` subscriptions of its own), and once more after they have all
//! disconnected, to see what the broker gives back.

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

/// What to connect: `count` clean-session clients, `concurrency` at a time,
/// each subscribing to `filters` filters of its own.
pub struct Idle {
    pub pid: u32,
    pub count: usize,
    pub concurrency: usize,
    pub filters: usize,
    /// Wait before each reading.
    pub settle: Duration,
}

pub async fn run(target: &Target, idle: &Idle) -> io::Result<Report> {
    tokio::time::sleep(idle.settle).await;
    let before = rss_kib(idle.pid)?;
    let tag = format!("mqbench-i-{}", std::process::id());
    let mut conns = connect_many(target, &format!("{tag}-"), idle.count, idle.concurrency).await?;
    for (i, conn) in conns.iter_mut().enumerate() {
        for f in 0..idle.filters {
            conn.subscribe(&format!("{tag}/{i}/{f}"), 1).await?;
        }
    }
    tokio::time::sleep(idle.settle).await;
    let after = rss_kib(idle.pid)?;
    futures::future::join_all(conns.into_iter().map(|c| c.disconnect())).await;
    tokio::time::sleep(idle.settle).await;
    let released = rss_kib(idle.pid)?;
    let mut report = Report::new("idle-memory");
    report.expected = idle.count as u64;
    report.received = idle.count as u64;
    report.rss_before_kib = Some(before);
    report.rss_after_kib = Some(after);
    report.rss_released_kib = Some(released);
    report.rate = after.saturating_sub(before) as f64 / idle.count.max(1) as f64;
    report.unit = "KiB/conn";
    Ok(report)
}
