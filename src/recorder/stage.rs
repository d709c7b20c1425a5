//! A connection's own buffer of its client's message events, and what a
//! recorded client waits for after a message.
//!
//! Each connection encodes its events into its [`Stage`] and hands them to the
//! queue in one step per cycle of its loop (see [`EventStage`]). Events pushed
//! one at a time from every core moved the queue's lock and the end of its
//! buffer between the cores for every message: on two cores that cost more
//! than writing the records.
//!
//! Stages change the order of events in the queue, never their times: a
//! delivery may be handed over before the message it delivers (the
//! subscriber's cycle ended first). A trace reads each direction on its own,
//! and the writer keeps record times in order
//! ([`Builder`](super::blocks::Builder)); only a client that receives its own
//! message may see its downlink before its uplink within one millisecond.

use std::cell::RefCell;
use std::sync::Arc;

use mqgate_kit::history::{BrokerEvent, EventStage, Settled};

use super::codec;
use super::config::WhenFull;
use super::queue::{Queue, WRITER_WAIT};

/// A stage hands its events over once it holds this many bytes, even within
/// one cycle of its connection.
const STAGE_BYTES: usize = 16 * 1024;

/// A stage keeps its buffer's memory only after handing over at least this
/// much: an idle connection holds no buffer.
const KEEP_BYTES: usize = 4 * 1024;

/// What a stage without a buffer takes for its first event: a few events'
/// worth, in one allocation, instead of growing through a string of them each
/// cycle (in a fan-out, most receivers stage only a few deliveries per cycle).
const FIRST_BYTES: usize = 512;

/// Buffers that stages on a thread handed over and did not keep, at most this
/// many per thread, for the next stage on that thread to fill: in a fan-out
/// every receiver stages a few deliveries per cycle, and a buffer allocated
/// and grown for each cycle went through the allocator's slow paths.
const SPARES_PER_THREAD: usize = 8;

thread_local! {
    static SPARES: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer for a stage's first event: a spare one of this thread, if any.
fn take_spare() -> Vec<u8> {
    SPARES
        .try_with(|spares| spares.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(FIRST_BYTES))
}

/// Gives `buf` (emptied) to the next stage on this thread, unless enough wait
/// (or the thread is ending: a stage dropped then flushes too).
fn give_spare(mut buf: Vec<u8>) {
    if buf.capacity() > KEEP_BYTES {
        return;
    }
    buf.clear();
    let _ = SPARES.try_with(|spares| {
        let mut spares = spares.borrow_mut();
        if spares.len() < SPARES_PER_THREAD {
            spares.push(buf);
        }
    });
}

/// What a recorded client waits for after a message: `[records] sync` and
/// `when_full`.
#[derive(Debug, Clone, Copy)]
pub struct Settling {
    pub sync: bool,
    pub when_full: WhenFull,
}

impl Settling {
    /// Whether [`settled`](Self::settled) may wait, counting events still
    /// staged: a commit waits for them, and so does room in a queue that fills
    /// up. When not, it answers `None`.
    fn needs(&self, queue: &Queue, staged: usize) -> bool {
        self.sync
            || (self.when_full == WhenFull::Wait
                && queue.waiting() + staged >= queue.capacity() * 3 / 4)
    }

    /// See [`BrokerObserver::settled`](mqgate_kit::BrokerObserver::settled).
    pub fn settled(&self, queue: &Queue) -> Option<Settled> {
        if self.sync {
            return Some(committed(queue));
        }
        let capacity = queue.capacity();
        if self.when_full == WhenFull::Drop || queue.waiting() < capacity * 3 / 4 {
            return None;
        }
        // Wait until what was queued before this event is down to half the queue.
        let target = queue
            .last_enqueued(true)
            .saturating_sub(capacity as u64 / 2);
        let mut taken = queue.taken_receiver();
        Some(Box::pin(async move {
            let wait = taken.wait_for(|t| *t >= target);
            if tokio::time::timeout(WRITER_WAIT, wait).await.is_err() {
                tracing::error!("records: the writer took nothing within {WRITER_WAIT:?}");
            }
        }))
    }
}

/// A future that resolves once everything queued so far is committed.
pub fn committed(queue: &Queue) -> Settled {
    let target = queue.last_enqueued(true);
    let mut committed = queue.committed_receiver();
    Box::pin(async move {
        let wait = committed.wait_for(|c| *c >= target);
        if tokio::time::timeout(WRITER_WAIT, wait).await.is_err() {
            tracing::error!("records: no commit within {WRITER_WAIT:?}");
        }
    })
}

/// The message events of one recorded connection, encoded, not yet queued.
pub struct Stage {
    queue: Arc<Queue>,
    settling: Settling,
    encoded: Vec<u8>,
    /// What `encoded` named last.
    names: codec::Names,
    events: usize,
}

impl Stage {
    pub fn new(queue: Arc<Queue>, settling: Settling) -> Stage {
        Stage {
            queue,
            settling,
            encoded: Vec::new(),
            names: codec::Names::default(),
            events: 0,
        }
    }
}

impl EventStage for Stage {
    fn record(&mut self, event: &BrokerEvent<'_>) {
        if self.encoded.capacity() == 0 {
            self.encoded = take_spare();
        }
        codec::encode(event, &mut self.encoded, &mut self.names);
        self.events += 1;
        if self.encoded.len() >= STAGE_BYTES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.events == 0 {
            return;
        }
        if !self.queue.push_encoded(&self.encoded, self.events) {
            self.queue.count_refused(self.events as u64);
        }
        let handed_over = self.encoded.len();
        self.events = 0;
        self.names = codec::Names::default();
        if handed_over < KEEP_BYTES || self.encoded.capacity() > 2 * STAGE_BYTES {
            give_spare(std::mem::take(&mut self.encoded));
        } else {
            self.encoded.clear();
        }
    }

    fn settled(&mut self) -> Option<Settled> {
        // without a commit to wait for or a queue filling up, nothing to await
        if !self.settling.needs(&self.queue, self.events) {
            return None;
        }
        self.flush();
        self.settling.settled(&self.queue)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use futures::FutureExt;
    use mqgate_kit::history::MessageInEvent;

    use super::*;
    use crate::recorder::queue::Work;

    fn message(payload: &[u8]) -> BrokerEvent<'_> {
        BrokerEvent::MessageIn(MessageInEvent {
            message_id: 7,
            client_id: Some("dev@app"),
            connection_id: Some(3),
            topic: "t/1",
            qos: 1,
            retain: false,
            payload,
            at_ms: 1,
        })
    }

    fn stage(queue: &Arc<Queue>, sync: bool, when_full: WhenFull) -> Stage {
        Stage::new(Arc::clone(queue), Settling { sync, when_full })
    }

    #[test]
    fn events_reach_the_queue_on_flush_on_a_full_stage_and_on_drop() {
        let queue = Arc::new(Queue::new(100_000, 10_000));
        let mut s = stage(&queue, false, WhenFull::Wait);
        s.record(&message(b"a"));
        s.record(&message(b"b"));
        assert_eq!(queue.waiting(), 0, "staged, not queued");
        s.flush();
        assert_eq!(queue.waiting(), 2);

        // a stage that fills within one cycle hands over without a flush
        let big = vec![0u8; STAGE_BYTES / 4];
        for _ in 0..4 {
            s.record(&message(&big));
        }
        assert_eq!(queue.waiting(), 6);

        s.record(&message(b"c"));
        drop(s);
        assert_eq!(queue.waiting(), 7);
        assert_eq!(queue.dropped(), 0);
    }

    #[test]
    fn a_closed_queue_counts_every_staged_event_as_dropped() {
        let queue = Arc::new(Queue::new(100_000, 10_000));
        let mut s = stage(&queue, false, WhenFull::Drop);
        for _ in 0..5 {
            s.record(&message(b"x"));
        }
        queue.close();
        s.flush();
        assert_eq!(queue.dropped(), 5);
        assert_eq!(queue.waiting(), 0);
    }

    #[test]
    fn a_stage_keeps_no_buffer_after_a_small_hand_over() {
        let queue = Arc::new(Queue::new(100_000, 10_000));
        let mut s = stage(&queue, false, WhenFull::Wait);
        s.record(&message(b"x"));
        assert!(
            s.encoded.capacity() >= FIRST_BYTES,
            "the first event takes room for a few"
        );
        let first = s.encoded.as_ptr();
        s.flush();
        assert_eq!(s.encoded.capacity(), 0);

        // the buffer given up waits for the next stage on this thread, not in
        // the allocator (which would hand it to this allocation of its size)
        let elsewhere = Vec::<u8>::with_capacity(FIRST_BYTES);
        let mut other = stage(&queue, false, WhenFull::Wait);
        other.record(&message(b"y"));
        assert_eq!(other.encoded.as_ptr(), first, "the spare buffer, reused");
        assert_ne!(elsewhere.as_ptr(), first);
        drop(other);
        for _ in 0..100 {
            s.record(&message(&[1; 100]));
        }
        s.flush();
        assert!(
            s.encoded.capacity() > 0,
            "a busy connection keeps its buffer"
        );
    }

    #[tokio::test]
    async fn sync_hands_over_and_waits_for_the_commit() {
        let queue = Arc::new(Queue::new(100_000, 10_000));
        let mut s = stage(&queue, true, WhenFull::Wait);
        s.record(&message(b"x"));
        let mut settled = s.settled().expect("sync always waits");
        assert_eq!(queue.waiting(), 1, "handed over before waiting");
        assert!((&mut settled).now_or_never().is_none());
        let mut buf = Vec::new();
        let far = Instant::now() + Duration::from_secs(60);
        let Work::Batch { upto, .. } = queue.next_work(&mut buf, Duration::ZERO, far) else {
            panic!("expected the staged event as a batch");
        };
        queue.committed(upto);
        assert!(settled.now_or_never().is_some());
    }

    #[tokio::test]
    async fn wait_hands_over_only_when_the_queue_fills_up() {
        let queue = Arc::new(Queue::new(8, 10_000));
        let mut s = stage(&queue, false, WhenFull::Wait);
        s.record(&message(b"x"));
        assert!(s.settled().is_none(), "room enough: no wait");
        assert_eq!(queue.waiting(), 0, "and nothing handed over early");
        for _ in 0..6 {
            s.record(&message(b"x"));
        }
        let wait = s.settled().expect("6 of 8 waiting: the publisher waits");
        assert_eq!(queue.waiting(), 7);
        drop(wait);

        let mut dropping = stage(&queue, false, WhenFull::Drop);
        dropping.record(&message(b"x"));
        assert!(dropping.settled().is_none(), "drop never waits");
    }
}
