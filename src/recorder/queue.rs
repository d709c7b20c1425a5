//! The record queue between the broker and the writer thread.
//!
//! Events are appended as bytes ([`codec`](super::codec)) to one buffer under a
//! mutex; the writer swaps the whole buffer out in one step and writes it in one
//! transaction. Two counters, both published on watch channels so async callers can
//! await them, say how far the writer got: `taken` (events moved out of the
//! queue) and `committed` (events written, or given up and counted as dropped).
//! Every event has a sequence number (1, 2, …): waiting for room is waiting for
//! `taken` to reach a number, waiting for a commit is waiting for `committed`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mqgate_kit::history::BrokerEvent;
use parking_lot::{Condvar, Mutex, MutexGuard};
use tokio::sync::watch;

use super::codec;

/// How long a blocking flush or a settled future waits for the writer before it
/// gives up (only a stuck disk takes this long).
pub const WRITER_WAIT: Duration = Duration::from_secs(30);

pub struct Queue {
    state: Mutex<State>,
    /// Wakes the writer: events to write, a flush, a prune or the end.
    work: Condvar,
    /// Wakes blocking callers: `taken` or `committed` moved.
    progress: Condvar,
    taken: watch::Sender<u64>,
    committed: watch::Sender<u64>,
    capacity: usize,
    batch_size: usize,
    dropped: AtomicU64,
    /// `State::events`, readable without the lock (asked after every message).
    waiting: AtomicUsize,
}

pub struct State {
    buf: Vec<u8>,
    events: usize,
    /// Sequence number of the last event enqueued.
    enqueued: u64,
    committed: u64,
    /// When the oldest waiting event arrived.
    first_at: Option<Instant>,
    /// Write at once instead of gathering a batch (a flush or a sync waiter).
    urgent: bool,
    /// A prune asked for, at this time (ms).
    prune_at: Option<i64>,
    prunes: u64,
    closed: bool,
}

/// What the writer takes out of the queue in one step.
pub enum Work {
    /// Events in `buf`, sequence numbers up to `upto`.
    Batch {
        events: usize,
        upto: u64,
    },
    /// A prune asked for ([`Queue::prune`]), as of this time (ms).
    Prune(i64),
    /// The writer's own deadline passed without a batch to write.
    Due,
    Closed,
}

impl Queue {
    pub fn new(capacity: usize, batch_size: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                buf: Vec::new(),
                events: 0,
                enqueued: 0,
                committed: 0,
                first_at: None,
                urgent: false,
                prune_at: None,
                prunes: 0,
                closed: false,
            }),
            work: Condvar::new(),
            progress: Condvar::new(),
            taken: watch::channel(0).0,
            committed: watch::channel(0).0,
            capacity: capacity.max(1),
            batch_size: batch_size.max(1),
            dropped: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Enqueues `event` unless the queue is full or closed; `false` when it was
    /// not (the caller counts it).
    pub fn push(&self, event: &BrokerEvent<'_>) -> bool {
        let mut s = self.state.lock();
        if s.closed || s.events >= self.capacity {
            return false;
        }
        codec::encode(event, &mut s.buf, &mut codec::Names::default());
        self.appended(s, 1);
        true
    }

    /// Enqueues `events` events already encoded ([`codec`]) in `encoded`, all of
    /// them unless the queue is full or closed: a connection's stage, taken
    /// whole while the queue is below its capacity (which it then passes by at
    /// most one stage). `false` when they were not (the caller counts them).
    pub fn push_encoded(&self, encoded: &[u8], events: usize) -> bool {
        let mut s = self.state.lock();
        if s.closed || s.events >= self.capacity {
            return false;
        }
        s.buf.extend_from_slice(encoded);
        self.appended(s, events);
        true
    }

    /// Counts `events` just appended to the buffer; wakes the writer at the
    /// first event and when a batch is full.
    fn appended(&self, mut s: MutexGuard<'_, State>, events: usize) {
        let before = s.events;
        s.events += events;
        s.enqueued += events as u64;
        self.waiting.store(s.events, Ordering::Relaxed);
        if before == 0 {
            s.first_at = Some(Instant::now());
        }
        let wake = before == 0 || (before < self.batch_size && s.events >= self.batch_size);
        drop(s);
        if wake {
            self.work.notify_one();
        }
    }

    /// Enqueues `event`, blocking while the queue is full (bulk loads).
    pub fn push_blocking(&self, event: &BrokerEvent<'_>) -> bool {
        let mut s = self.state.lock();
        while s.events >= self.capacity && !s.closed {
            s.urgent = true;
            self.work.notify_one();
            if self.progress.wait_for(&mut s, WRITER_WAIT).timed_out() {
                return false;
            }
        }
        drop(s);
        self.push(event)
    }

    /// Counts `n` events that were not recorded; returns the count so far.
    pub fn count_dropped(&self, n: u64) -> u64 {
        self.dropped.fetch_add(n, Ordering::Relaxed) + n
    }

    /// Counts `n` events the queue had no room for, and logs the count each
    /// time it passes a power of two: visible without flooding the log.
    pub fn count_refused(&self, n: u64) {
        let dropped = self.count_dropped(n);
        if (dropped - n).checked_ilog2() < dropped.checked_ilog2() {
            tracing::warn!("records: queue full, {dropped} events not recorded so far");
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sequence number of the last event enqueued; asks for a write at once when
    /// `urgent` and events wait.
    pub fn last_enqueued(&self, urgent: bool) -> u64 {
        let mut s = self.state.lock();
        let wake = urgent && s.events > 0 && !s.urgent;
        if wake {
            s.urgent = true;
        }
        let last = s.enqueued;
        drop(s);
        if wake {
            self.work.notify_one();
        }
        last
    }

    /// Events waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Whether a whole batch (or half the queue, if less) waits behind the
    /// one being written: the writer is not keeping up.
    pub fn falling_behind(&self) -> bool {
        self.waiting() >= self.batch_size.min(self.capacity / 2)
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn taken_receiver(&self) -> watch::Receiver<u64> {
        self.taken.subscribe()
    }

    pub fn committed_receiver(&self) -> watch::Receiver<u64> {
        self.committed.subscribe()
    }

    /// Blocks until every event enqueued so far is committed (or [`WRITER_WAIT`]).
    pub fn flush(&self) -> bool {
        let mut s = self.state.lock();
        let target = s.enqueued;
        if s.committed < target {
            s.urgent = true;
            self.work.notify_one();
        }
        let deadline = Instant::now() + WRITER_WAIT;
        while s.committed < target {
            if self.progress.wait_until(&mut s, deadline).timed_out() {
                return false;
            }
        }
        true
    }

    /// Asks the writer to apply retention as of `now_ms`, and waits for it.
    pub fn prune(&self, now_ms: i64) -> bool {
        let mut s = self.state.lock();
        let target = s.prunes + 1;
        s.prune_at = Some(now_ms);
        self.work.notify_one();
        let deadline = Instant::now() + WRITER_WAIT;
        while s.prunes < target && !s.closed {
            if self.progress.wait_until(&mut s, deadline).timed_out() {
                return false;
            }
        }
        s.prunes >= target
    }

    /// No more events; the writer writes what waits and ends.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.work.notify_one();
    }

    /// The writer's side: waits for work. A batch is moved into `buf` (which must
    /// be empty; the queue keeps the old buffer's memory for the next events).
    /// `Due` comes when `due` passes without a batch to write.
    pub fn next_work(&self, buf: &mut Vec<u8>, interval: Duration, due: Instant) -> Work {
        let mut s = self.state.lock();
        loop {
            if let Some(now_ms) = s.prune_at.take() {
                return Work::Prune(now_ms);
            }
            if Instant::now() >= due {
                return Work::Due;
            }
            let ready = match s.first_at {
                Some(first) => {
                    s.closed || s.urgent || s.events >= self.batch_size || {
                        first.elapsed() >= interval
                    }
                }
                None => false,
            };
            if ready {
                return self.take(&mut s, buf);
            }
            if s.closed {
                return Work::Closed;
            }
            let deadline = match s.first_at {
                Some(first) => (first + interval).min(due),
                None => due,
            };
            self.work.wait_until(&mut s, deadline);
        }
    }

    fn take(&self, s: &mut MutexGuard<'_, State>, buf: &mut Vec<u8>) -> Work {
        std::mem::swap(&mut s.buf, buf);
        let events = std::mem::take(&mut s.events);
        self.waiting.store(0, Ordering::Relaxed);
        s.first_at = None;
        s.urgent = false;
        let upto = s.enqueued;
        self.taken.send_replace(upto);
        self.progress.notify_all();
        Work::Batch { events, upto }
    }

    /// The writer's side: events up to `upto` are written (or given up).
    pub fn committed(&self, upto: u64) {
        self.state.lock().committed = upto;
        self.committed.send_replace(upto);
        self.progress.notify_all();
    }

    /// The writer's side: a prune asked for is done.
    pub fn pruned(&self) {
        self.state.lock().prunes += 1;
        self.progress.notify_all();
    }
}
