//! The ids the broker gives messages as they enter: unique in this process across
//! restarts, and, once given a slot, unique among every process sharing one
//! records database.
//!
//! Alone, ids count up from the clock at start, in ms shifted left by 16: a
//! restarted process starts above whatever the last one gave out, as long as it
//! gave out fewer than 65,536 ids per ms.
//!
//! With a slot (0–255, leased by the records store so no two running processes
//! hold the same one), a count `v` starts at the ms since 2020 shifted left by 14,
//! and the id is `v` with the slot's 8 bits put in between its high part and its
//! low 14 bits. Two processes never give the same id: different slots differ in
//! those bits, and a later holder of a slot starts its count above what an earlier
//! one reached (fewer than 16,384 ids per ms). Ids stay below 2^63 until 2089 and
//! still grow with time, so retention walks them in order.

use std::sync::atomic::{AtomicU64, Ordering};

use mqgate_kit::MessageId;

/// Bits of the count below the slot.
const LOW_BITS: u32 = 14;
const SLOT_BITS: u32 = 8;
/// 2020-01-01T00:00:00Z in ms since the Unix epoch.
const SLOT_EPOCH_MS: i64 = 1_577_836_800_000;
const NO_SLOT: u64 = u64::MAX;

pub(crate) struct MessageIds {
    next: AtomicU64,
    slot: AtomicU64,
}

impl MessageIds {
    pub fn new(now_ms: i64) -> MessageIds {
        MessageIds {
            next: AtomicU64::new((now_ms as u64) << 16),
            slot: AtomicU64::new(NO_SLOT),
        }
    }

    pub fn next(&self) -> MessageId {
        let count = self.next.fetch_add(1, Ordering::Relaxed);
        match self.slot.load(Ordering::Relaxed) {
            NO_SLOT => count,
            slot => with_slot(count, slot),
        }
    }

    /// From now on every id carries `slot`. Called before the first message.
    pub fn use_slot(&self, slot: u8, now_ms: i64) {
        let since_epoch = now_ms.saturating_sub(SLOT_EPOCH_MS).max(0) as u64;
        self.next.store(since_epoch << LOW_BITS, Ordering::Relaxed);
        self.slot.store(slot.into(), Ordering::Relaxed);
    }

    pub fn has_slot(&self) -> bool {
        self.slot.load(Ordering::Relaxed) != NO_SLOT
    }
}

fn with_slot(count: u64, slot: u64) -> MessageId {
    let low = count & ((1 << LOW_BITS) - 1);
    ((count >> LOW_BITS) << (LOW_BITS + SLOT_BITS)) | (slot << LOW_BITS) | low
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_different_slots_differ_and_grow_with_the_count() {
        let now_ms = 1_800_000_000_000; // 2027
        let (a, b) = (MessageIds::new(now_ms), MessageIds::new(now_ms));
        a.use_slot(1, now_ms);
        b.use_slot(2, now_ms);
        let (ids_a, ids_b): (Vec<_>, Vec<_>) = (0..40_000).map(|_| (a.next(), b.next())).unzip();
        assert!(ids_a.windows(2).all(|w| w[0] < w[1]));
        assert!(ids_b.windows(2).all(|w| w[0] < w[1]));
        let set: std::collections::HashSet<_> = ids_a.iter().chain(&ids_b).collect();
        assert_eq!(set.len(), 80_000);
        assert_eq!((ids_a[0] >> LOW_BITS) & 0xff, 1);
        assert_eq!((ids_b[39_999] >> LOW_BITS) & 0xff, 2);
        // a later start on the same slot begins above what the first gave out
        let later = MessageIds::new(now_ms + 10);
        later.use_slot(1, now_ms + 10);
        assert!(later.next() > *ids_a.last().unwrap());
        // below 2^63: a signed 64-bit column keeps them in order
        let far = MessageIds::new(0);
        far.use_slot(255, SLOT_EPOCH_MS + 69 * 365 * 86_400_000);
        assert!(far.next() < 1 << 63);
    }

    #[test]
    fn without_a_slot_ids_count_from_the_clock() {
        let ids = MessageIds::new(1_000);
        assert_eq!(ids.next(), 1_000 << 16);
        assert_eq!(ids.next(), (1_000 << 16) + 1);
        assert!(!ids.has_slot());
    }
}
