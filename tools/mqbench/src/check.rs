//! What every received message is checked against. A payload carries its
//! publisher's index, its sequence number within that publisher and the time it
//! was sent; each subscriber keeps, per publisher, which numbers it has seen.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Bytes of the header at the start of every payload; the rest is padding.
pub const HEADER: usize = 20;

/// Fills `payload` (at least [`HEADER`] bytes) for message `seq` of publisher
/// `publisher`, sent `sent` after `base`.
pub fn stamp(payload: &mut [u8], publisher: u32, seq: u64, sent: Duration) {
    payload[0..4].copy_from_slice(&publisher.to_be_bytes());
    payload[4..12].copy_from_slice(&seq.to_be_bytes());
    payload[12..20].copy_from_slice(&(sent.as_nanos() as u64).to_be_bytes());
}

#[derive(Default)]
struct Stream {
    seen: Vec<u64>,
    max: Option<u64>,
}

/// One subscriber's view of what arrived.
pub struct Received {
    base: Instant,
    streams: HashMap<u32, Stream>,
    pub distinct: u64,
    pub duplicates: u64,
    /// Messages that arrived after a later message of the same publisher.
    pub reordered: u64,
    /// Payloads too short to carry the header, or numbers past the run's count.
    pub foreign: u64,
    pub latencies_us: Vec<u32>,
    pub last_at: Option<Instant>,
    count: u64,
}

impl Received {
    /// `count`: messages each publisher sends.
    pub fn new(base: Instant, count: u64) -> Received {
        Received {
            base,
            streams: HashMap::new(),
            distinct: 0,
            duplicates: 0,
            reordered: 0,
            foreign: 0,
            latencies_us: Vec::new(),
            last_at: None,
            count,
        }
    }

    pub fn check(&mut self, payload: &[u8]) {
        let now = Instant::now();
        self.last_at = Some(now);
        if payload.len() < HEADER {
            self.foreign += 1;
            return;
        }
        let publisher = u32::from_be_bytes(payload[0..4].try_into().expect("4"));
        let seq = u64::from_be_bytes(payload[4..12].try_into().expect("8"));
        let sent_ns = u64::from_be_bytes(payload[12..20].try_into().expect("8"));
        if seq >= self.count {
            self.foreign += 1;
            return;
        }
        let latency = now.duration_since(self.base).as_nanos() as u64;
        self.latencies_us
            .push((latency.saturating_sub(sent_ns) / 1000).min(u64::from(u32::MAX)) as u32);
        let words = self.count.div_ceil(64) as usize;
        let stream = self.streams.entry(publisher).or_default();
        if stream.seen.is_empty() {
            stream.seen = vec![0; words];
        }
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if stream.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        stream.seen[word] |= bit;
        self.distinct += 1;
        match stream.max {
            Some(max) if seq < max => self.reordered += 1,
            _ => stream.max = Some(seq),
        }
    }
}

/// Percentile `p` (0..=1) of sorted samples, in milliseconds.
pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted_us[i]) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_reorders_and_gaps_are_told_apart() {
        let base = Instant::now();
        let mut r = Received::new(base, 10);
        let mut p = [0u8; 32];
        for seq in [0, 1, 3, 2, 3, 9] {
            stamp(&mut p, 7, seq, base.elapsed());
            r.check(&p);
        }
        stamp(&mut p, 7, 10, base.elapsed());
        r.check(&p);
        r.check(b"short");
        assert_eq!(
            (r.distinct, r.duplicates, r.reordered, r.foreign),
            (5, 1, 1, 2)
        );
        assert_eq!(r.latencies_us.len(), 6);
    }
}
