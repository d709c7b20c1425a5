//! The recorder: connection and message records of the clients some API can query,
//! written to their own SQLite file off the broker's hot path, and read back
//! through [`History`].
//!
//! - [`config`]: the `[records]` section and the clients it covers (`scope`).
//! - [`codec`]: events as bytes in the queue (no allocation per event).
//! - [`queue`]: the queue between the broker and the writer, its sequence numbers
//!   and what callers can wait for.
//! - [`writer`]: the writer thread; [`schema`]: tables, indexes, retention;
//!   [`query`]: the [`History`] queries.
//!
//! Nothing is lost silently: an event of a recorded client that is not written
//! (queue full under `when_full = "drop"`, or a failed write) is counted in
//! [`History::dropped_records`] and logged, and every record query answered while
//! that count is above zero logs it. Under `when_full = "wait"` a broker that
//! awaits [`BrokerObserver::settled`] slows the client down instead.

pub mod codec;
pub mod config;
pub mod names;
pub mod query;
pub mod queue;
pub mod schema;
pub mod writer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mqgate_kit::history::{
    BrokerEvent, BrokerObserver, ConnectionRecord, Direction, History, MessageRecord, RecordQuery,
    Settled, StoredMessage,
};
use mqgate_kit::store::StoreError;
use mqgate_kit::{MgmtError, Page};
use parking_lot::Mutex;
use rusqlite::Connection;

pub use config::{Clients, RecordScope, RecordsConfig, WhenFull};
use names::Names;
use queue::{Queue, WRITER_WAIT};
use schema::{Retention, RowCounts};
use writer::Writer;

/// The record keeper. Observes broker events; answers history queries.
pub struct Recorder {
    clients: Clients,
    sync: bool,
    when_full: WhenFull,
    queue: Arc<Queue>,
    reader: Mutex<Option<Connection>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Drops already logged by record queries, so each new loss is logged once.
    drops_reported: AtomicU64,
}

impl Recorder {
    /// Opens `<data_dir>/records.db` and starts the writer thread; `None` when the
    /// configured scope records nothing (`off`, or `easemob` with the Easemob
    /// dialect disabled).
    pub fn open(config: &crate::config::Config) -> Result<Option<Arc<Recorder>>, StoreError> {
        let app_id = mqgate_kit::DialectConfig::enabled(&config.easemob)
            .then_some(config.easemob.app_id.as_str());
        match Clients::resolve(config.records.scope, app_id) {
            Some(clients) => Recorder::start(&config.data_dir, &config.records, clients).map(Some),
            None => Ok(None),
        }
    }

    /// Opens the records database in `data_dir` for `clients`.
    pub fn start(
        data_dir: &std::path::Path,
        config: &RecordsConfig,
        clients: Clients,
    ) -> Result<Arc<Recorder>, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let conn = schema::open(data_dir)?;
        let reader = schema::open(data_dir)?;
        let queue = Arc::new(Queue::new(config.queue_capacity, config.batch_size));
        let next_delivery = schema::next_delivery_id(&conn)?;
        let writer = Writer {
            counts: RowCounts::count(&conn)?,
            conn,
            queue: Arc::clone(&queue),
            retention: Retention {
                max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
                max_rows: config.max_rows,
            },
            prune_interval: Duration::from_secs(config.prune_interval_secs.max(1)),
            batch_interval: if config.sync {
                Duration::ZERO
            } else {
                Duration::from_millis(config.batch_interval_ms)
            },
            names: Names::default(),
            next_delivery,
        };
        let handle = std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Join(format!("cannot start the records writer: {e}")))?;
        Ok(Arc::new(Recorder {
            clients,
            sync: config.sync,
            when_full: config.when_full,
            queue,
            reader: Mutex::new(Some(reader)),
            writer: Mutex::new(Some(handle)),
            drops_reported: AtomicU64::new(0),
        }))
    }

    /// Writes everything queued so far; blocks until written.
    pub fn flush(&self) {
        if !self.queue.flush() {
            tracing::error!("records: the writer did not finish within {WRITER_WAIT:?}");
        }
    }

    /// Writes what waits, stops the writer thread, joins it and closes the
    /// database: the end of an instance (stop or restart). Later events are
    /// counted as dropped; later queries fail.
    pub fn close(&self) {
        self.queue.close();
        if let Some(handle) = self.writer.lock().take() {
            if handle.join().is_err() {
                tracing::error!("records: the writer thread panicked");
            }
        }
        self.reader.lock().take();
    }

    /// Events of recorded clients that were not recorded.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Records `event` (if its client is recorded), blocking while the queue is
    /// full: bulk loads and benchmarks. The broker goes through [`BrokerObserver`].
    pub fn record_blocking(&self, event: &BrokerEvent) {
        if self.covers(event) && !self.queue.push_blocking(event) {
            self.count_dropped();
        }
    }

    /// Applies the retention policy as of `now_ms`, now; blocks until done.
    pub fn prune_now(&self, now_ms: i64) -> bool {
        self.queue.prune(now_ms)
    }

    /// A future that resolves once everything recorded so far is committed: what
    /// a management publish awaits before it answers under `sync = true`.
    pub fn committed(&self) -> Settled {
        let target = self.queue.last_enqueued(true);
        let mut committed = self.queue.committed_receiver();
        Box::pin(async move {
            let wait = committed.wait_for(|c| *c >= target);
            if tokio::time::timeout(WRITER_WAIT, wait).await.is_err() {
                tracing::error!("records: no commit within {WRITER_WAIT:?}");
            }
        })
    }

    pub fn is_sync(&self) -> bool {
        self.sync
    }

    fn covers(&self, event: &BrokerEvent) -> bool {
        match event {
            BrokerEvent::Connected(c) => self.clients.contains(&c.client_id),
            BrokerEvent::Disconnected { client_id, .. }
            | BrokerEvent::MessageDelivered { client_id, .. } => self.clients.contains(client_id),
            BrokerEvent::MessageIn(m) => match &m.client_id {
                Some(sender) => self.clients.contains(sender),
                None => self.clients.keeps_senderless(),
            },
        }
    }

    fn count_dropped(&self) {
        let dropped = self.queue.count_dropped(1);
        // Logged at 1, 2, 4, 8, … drops: visible without flooding the log.
        if dropped.is_power_of_two() {
            tracing::warn!("records: queue full, {dropped} events not recorded so far");
        }
    }

    /// Runs a query on the read connection; logs when the answer misses records.
    fn read<T>(
        &self,
        run: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, MgmtError> {
        let dropped = self.queue.dropped();
        if dropped > self.drops_reported.swap(dropped, Ordering::Relaxed) {
            tracing::warn!(
                "records: answering a record query while {dropped} events were not recorded"
            );
        }
        let reader = self.reader.lock();
        let conn = reader.as_ref().ok_or(MgmtError::ShuttingDown)?;
        run(conn).map_err(|e| MgmtError::Store(e.to_string()))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close();
    }
}

impl BrokerObserver for Recorder {
    fn on_event(&self, event: &BrokerEvent) {
        if self.covers(event) && !self.queue.push(event) {
            self.count_dropped();
        }
    }

    fn records_client(&self, client_id: &str) -> bool {
        self.clients.contains(client_id)
    }

    fn settled(&self) -> Option<Settled> {
        if self.sync {
            return Some(self.committed());
        }
        let capacity = self.queue.capacity();
        if self.when_full == WhenFull::Drop || self.queue.waiting() < capacity * 3 / 4 {
            return None;
        }
        // Wait until what was queued before this event is down to half the queue.
        let target = self
            .queue
            .last_enqueued(true)
            .saturating_sub(capacity as u64 / 2);
        let mut taken = self.queue.taken_receiver();
        Some(Box::pin(async move {
            let wait = taken.wait_for(|t| *t >= target);
            if tokio::time::timeout(WRITER_WAIT, wait).await.is_err() {
                tracing::error!("records: the writer took nothing within {WRITER_WAIT:?}");
            }
        }))
    }
}

impl History for Recorder {
    fn connection_records(&self, q: &RecordQuery) -> Result<Page<ConnectionRecord>, MgmtError> {
        self.read(|c| query::connection_records(c, q))
    }

    fn message_records(&self, q: &RecordQuery) -> Result<Page<MessageRecord>, MgmtError> {
        self.read(|c| query::message_records(c, q))
    }

    fn message_trace(
        &self,
        q: &RecordQuery,
        direction: Direction,
    ) -> Result<Page<MessageRecord>, MgmtError> {
        self.read(|c| query::message_trace(c, q, direction))
    }

    fn stored_message(&self, id: u64) -> Result<Option<StoredMessage>, MgmtError> {
        self.read(|c| query::stored_message(c, id))
    }

    fn topic_messages(&self, q: &RecordQuery) -> Result<Page<StoredMessage>, MgmtError> {
        self.read(|c| query::topic_messages(c, q))
    }

    fn dropped_records(&self) -> u64 {
        self.dropped()
    }
}

#[cfg(test)]
mod tests;
