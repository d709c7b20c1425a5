//! The writer thread: takes whole batches out of the queue and hands each to the
//! records store's [`Sink`], which writes it in one transaction; applies retention
//! between batches; on close writes what waits and ends (the thread is joined by
//! [`Recorder::close`](super::Recorder::close)).

use std::sync::Arc;
use std::time::{Duration, Instant};

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
