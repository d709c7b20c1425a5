//! Broker-wide counters, bumped on the hot path without locks.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    pub sockets_accepted: AtomicU64,
    pub sockets_open: AtomicU64,
    pub sockets_closed: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_max: AtomicU64,
    pub sessions_max: AtomicU64,
    pub subscriptions_max: AtomicU64,
    pub topics_max: AtomicU64,
    /// PUBLISHes that entered the broker (clients, wills, management APIs).
    pub messages_received: AtomicU64,
    /// PUBLISHes written to clients.
    pub messages_sent: AtomicU64,
    /// Messages that reached nobody or were discarded on the way (no subscriber,
    /// QoS 0 for an offline session, a full offline queue, expiry, too large for
    /// the client, given up for a slow subscriber).
    pub messages_dropped: AtomicU64,
    /// Subscribers disconnected because publishers waited too long for them.
    pub slow_subscribers: AtomicU64,
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    /// Socket reads that returned data.
    pub socket_reads: AtomicU64,
    /// Connections ended by a panic in their own task (a bug; each is logged).
    pub connection_panics: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Raises a high-water mark to `now` and returns the mark.
    pub fn high_water(counter: &AtomicU64, now: u64) -> u64 {
        counter.fetch_max(now, Ordering::Relaxed).max(now)
    }
}
