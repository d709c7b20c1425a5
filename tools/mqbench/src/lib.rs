//! # mqbench
//!
//! A load tool for any MQTT broker: raw MQTT 3.1.1 or 5 over tokio (no client
//! library in the way), every message checked for loss, duplicates and order.
//!
//! - [`packet`]: the MQTT packets a load client needs, by hand.
//! - [`client`]: one connection: connect, subscribe, a packet reader.
//! - [`check`]: payload stamps (publisher, sequence number, send time) and the
//!   per-subscriber check of what arrived.
//! - [`pubsub`]: 1→1, fan-out, fan-in and N pairs as one run of publishers and
//!   subscribers in a shape.
//! - [`connect`]: connect rate, sequential or concurrent.
//! - [`idle`]: resident memory of the broker per idle connection.
//! - [`http`]: latency of a management API GET.
//!
//! Binaries: `mqbench` (the scenarios, see `mqbench --help`) and
//! `mqbench-rumqttd` (rumqttd's own server as a peer to compare with).
//! `side-by-side.sh` runs every scenario against several brokers, interleaved,
//! and prints a markdown table of medians.

pub mod check;
pub mod client;
pub mod connect;
pub mod http;
pub mod idle;
pub mod packet;
pub mod pubsub;

/// What one scenario run measured.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub name: String,
    /// The headline figure, in `unit`.
    pub rate: f64,
    pub unit: &'static str,
    pub sent: u64,
    /// Messages (connections, requests) that should have arrived.
    pub expected: u64,
    /// Distinct ones that did.
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Arrived after a later message of the same publisher (or not ours).
    pub reordered: u64,
    /// QoS 1/2 publishes the broker never acknowledged.
    pub unacked: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// After the clients of an idle run disconnected.
    pub rss_released_kib: Option<u64>,
}

impl Report {
    pub fn new(name: &str) -> Report {
        Report {
            name: name.to_string(),
            unit: "msg/s",
            ..Report::default()
        }
    }

    /// Sets the percentiles from latency samples in µs.
    pub fn latencies(&mut self, mut samples_us: Vec<u32>) {
        samples_us.sort_unstable();
        self.p50_ms = check::percentile_ms(&samples_us, 0.50);
        self.p99_ms = check::percentile_ms(&samples_us, 0.99);
        self.max_ms = check::percentile_ms(&samples_us, 1.0);
    }

    /// One line a script can read: `RESULT key=value …`.
    pub fn result_line(&self) -> String {
        let mut line = format!(
            "RESULT scenario={} value={:.1} unit={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} \
             expected={} received={} lost={} dup={} reordered={} unacked={}",
            self.name,
            self.rate,
            self.unit,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.expected,
            self.received,
            self.lost,
            self.duplicates,
            self.reordered,
            self.unacked
        );
        if let (Some(b), Some(a)) = (self.rss_before_kib, self.rss_after_kib) {
            line.push_str(&format!(" rss_before_kib={b} rss_after_kib={a}"));
        }
        if let Some(r) = self.rss_released_kib {
            line.push_str(&format!(" rss_released_kib={r}"));
        }
        line
    }

    /// Anything lost, duplicated, reordered or left unacknowledged.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.reordered == 0 && self.unacked == 0
    }
}
