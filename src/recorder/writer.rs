//! The writer thread: takes whole batches out of the queue and hands each to the
//! records store's [`Sink`], which writes it in one transaction; applies retention
//! between batches; on close writes what waits and ends (the thread is joined by
//! [`Recorder::close`](super::Recorder::close)). A sink that works through a
//! batch on the CPU paces itself ([`Pacer`]) so the broker's threads keep their
//! cores.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::codec::Decoded;
use super::query::{transport_name, KIND_CONNECT, KIND_DISCONNECT};
use super::queue::{Queue, Work};

/// Where batches of queued events go: one records store.
pub trait Sink: Send {
    /// Writes the events of `batch` (bytes of [`codec`](super::codec)) in one
    /// transaction. An error means none of them was written.
    fn write(&mut self, batch: &[u8]) -> Result<(), String>;

    /// Applies the retention policy as of `now_ms`.
    fn prune(&mut self, now_ms: i64) -> Result<(), String>;

    /// How often [`Sink::keep_alive`] wants to run, if at all.
    fn keep_alive_every(&self) -> Option<Duration> {
        None
    }

    /// Renews what the sink holds in its store while it runs (a lease).
    fn keep_alive(&mut self) {}

    /// Gives back what the sink holds in its store; the writer ends after this.
    fn close(&mut self) {}
}

/// Keeps the writer's bursts of work short. The writer shares the cores with
/// the broker's threads, and a batch is milliseconds of work: a broker thread
/// woken on the writer's core meanwhile waited for the writer's time slice to
/// end, its connections' messages with it. On two cores that cost QoS 1
/// throughput about as much again as the writer's own CPU time. So the writer
/// offers its core ([`std::thread::yield_now`]) each time it has worked for
/// [`SLICE`]; with nobody waiting for the core, that costs one system call.
///
/// Only while it keeps up, though: once a whole batch waits behind the one
/// being written ([`Queue::falling_behind`]), the writer is what publishers
/// will soon wait for, and it keeps its core. In a fan-out (a hundred
/// deliveries per message) a writer that went on offering its core fell so far
/// behind that publishers waited for room about twenty times in a two-second
/// run.
pub struct Pacer {
    since: Instant,
    calls: u32,
    /// The queue the batches come from.
    queue: Arc<Queue>,
}

/// The writer's longest stretch of work between two offers of its core
/// (measured: 5 to 25 µs did as well as each other, and better than
/// offering after every few events).
const SLICE: Duration = Duration::from_micros(10);

/// [`Pacer::tick`] reads the clock only every this many calls (an event costs
/// the writer well under a microsecond).
const CALLS_PER_CHECK: u32 = 32;

impl Pacer {
    /// A pacer for the writer of `queue`.
    pub fn of(queue: &Arc<Queue>) -> Pacer {
        Pacer {
            since: Instant::now(),
            calls: 0,
            queue: Arc::clone(queue),
        }
    }

    /// One small step of work done (an event).
    pub fn tick(&mut self) {
        self.calls += 1;
        if self.calls >= CALLS_PER_CHECK {
            self.pause_if_due();
        }
    }

    /// Offers the core if the slice is used up (after a larger step of work);
    /// whether it did.
    pub fn pause_if_due(&mut self) -> bool {
        self.calls = 0;
        if self.since.elapsed() >= SLICE {
            let offer = !self.queue.falling_behind();
            if offer {
                std::thread::yield_now();
            }
            self.since = Instant::now();
            return offer;
        }
        false
    }

    /// Starts a new slice: the writer waited for work.
    pub fn restart(&mut self) {
        self.calls = 0;
        self.since = Instant::now();
    }
}

pub struct Writer {
    pub sink: Box<dyn Sink>,
    pub queue: Arc<Queue>,
    pub prune_interval: Duration,
    /// Zero when every batch is to be written at once (`sync`).
    pub batch_interval: Duration,
}

impl Writer {
    pub fn run(mut self) {
        let mut buf = Vec::new();
        let mut prune_due = Instant::now() + self.prune_interval;
        let keep_alive_every = self.sink.keep_alive_every();
        let mut keep_alive_due = keep_alive_every.map(|every| Instant::now() + every);
        loop {
            let due = keep_alive_due.map_or(prune_due, |k| k.min(prune_due));
            match self.queue.next_work(&mut buf, self.batch_interval, due) {
                Work::Batch { events, upto } => {
                    if let Err(e) = self.sink.write(&buf) {
                        let dropped = self.queue.count_dropped(events as u64);
                        tracing::error!(
                            "records: a batch of {events} events was lost ({dropped} so far): {e}"
                        );
                    }
                    buf.clear();
                    self.queue.committed(upto);
                }
                Work::Prune(now_ms) => {
                    self.prune(now_ms);
                    self.queue.pruned();
                }
                Work::Due => {
                    let now = Instant::now();
                    if now >= prune_due {
                        self.prune(mqgate_kit::clock::now_ms());
                        prune_due = now + self.prune_interval;
                    }
                    if let (Some(due), Some(every)) = (keep_alive_due, keep_alive_every) {
                        if now >= due {
                            self.sink.keep_alive();
                            keep_alive_due = Some(now + every);
                        }
                    }
                }
                Work::Closed => return self.sink.close(),
            }
        }
    }

    fn prune(&mut self, now_ms: i64) {
        if let Err(e) = self.sink.prune(now_ms) {
            tracing::warn!("records retention failed: {e}");
        }
    }
}

/// A connect or disconnect as the `connections` table of either store holds it;
/// a disconnect has no CONNECT details (those columns are NULL).
pub struct ConnectionRow<'a> {
    pub connection_id: i64,
    pub client_id: &'a str,
    pub at_ms: i64,
    pub kind: i16,
    /// "normal" for a connect; the disconnect reason.
    pub reason: &'a str,
    pub username: Option<&'a str>,
    pub peer: Option<&'a str>,
    pub transport: Option<&'static str>,
    pub proto_ver: Option<i16>,
    pub keepalive: Option<i32>,
    pub clean_start: Option<bool>,
    pub will_topic: Option<&'a str>,
    pub will_payload: Option<&'a [u8]>,
}

impl<'p> ConnectionRow<'p> {
    /// The row of a connect or disconnect event (`None` for a message);
    /// `peer` holds the formatted address of a connect.
    pub fn of<'a: 'p>(event: &Decoded<'a>, peer: &'p mut String) -> Option<ConnectionRow<'p>> {
        match *event {
            Decoded::Connected {
                connection_id,
                at_ms,
                client_id,
                username,
                peer: address,
                transport,
                proto_ver,
                keepalive,
                clean_start,
                will_topic,
                will_payload,
            } => {
                peer.clear();
                let _ = write!(peer, "{address}");
                Some(ConnectionRow {
                    connection_id: connection_id as i64,
                    client_id,
                    at_ms,
                    kind: KIND_CONNECT,
                    reason: "normal",
                    username,
                    peer: Some(peer.as_str()),
                    transport: Some(transport_name(transport)),
                    proto_ver: Some(proto_ver.into()),
                    keepalive: Some(keepalive.into()),
                    clean_start: Some(clean_start),
                    will_topic,
                    will_payload,
                })
            }
            Decoded::Disconnected {
                connection_id,
                at_ms,
                client_id,
                username,
                reason,
            } => Some(ConnectionRow {
                connection_id: connection_id as i64,
                client_id,
                at_ms,
                kind: KIND_DISCONNECT,
                reason,
                username,
                peer: None,
                transport: None,
                proto_ver: None,
                keepalive: None,
                clean_start: None,
                will_topic: None,
                will_payload: None,
            }),
            Decoded::MessageIn { .. } | Decoded::Delivered { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use mqgate_kit::history::{BrokerEvent, MessageInEvent};

    use super::*;

    #[test]
    fn the_pacer_offers_the_core_only_once_a_slice_is_used_up() {
        let mut pacer = Pacer::of(&Arc::new(Queue::new(1_000, 100)));
        let started = pacer.since;
        for _ in 0..CALLS_PER_CHECK - 1 {
            pacer.tick();
        }
        assert_eq!(pacer.calls, CALLS_PER_CHECK - 1, "no clock read yet");
        std::thread::sleep(SLICE * 10);
        pacer.tick();
        assert_eq!(pacer.calls, 0, "the clock read at the check");
        assert!(pacer.since > started, "a used-up slice begins a new one");

        pacer.restart();
        let fresh = pacer.since;
        let offered = pacer.pause_if_due();
        assert!(
            (pacer.since == fresh && !offered) || fresh.elapsed() >= SLICE,
            "a slice not used up goes on"
        );
    }

    #[test]
    fn a_writer_falling_behind_keeps_its_core() {
        let queue = Arc::new(Queue::new(1_000, 100));
        let mut pacer = Pacer::of(&queue);
        std::thread::sleep(SLICE * 10);
        assert!(pacer.pause_if_due(), "keeping up: the core is offered");

        // a whole batch (100) waits behind the one being written
        push_events(&queue, 100);
        assert!(queue.falling_behind());
        std::thread::sleep(SLICE * 10);
        let used_up = pacer.since;
        assert!(!pacer.pause_if_due(), "behind: the writer keeps its core");
        assert!(pacer.since > used_up, "and begins a new slice");

        // with a batch larger than half the queue, half the queue is behind
        let small = Queue::new(100, 1_000);
        push_events(&small, 49);
        assert!(!small.falling_behind());
        push_events(&small, 1);
        assert!(small.falling_behind());
    }

    fn push_events(queue: &Queue, n: usize) {
        let event = BrokerEvent::MessageIn(MessageInEvent {
            message_id: 1,
            client_id: Some("dev@app"),
            connection_id: Some(1),
            topic: "t",
            qos: 1,
            retain: false,
            payload: b"x",
            at_ms: 1,
        });
        for _ in 0..n {
            assert!(queue.push(&event));
        }
    }
}
