//! The recorder: connection and message records of the clients some API can query,
//! written off the broker's hot path to their own SQLite file or to the shared
//! PostgreSQL database, and read back through [`History`].
//!
//! - [`config`]: the `[records]` section and the clients it covers (`scope`).
//! - [`codec`]: events as bytes in the queue (no allocation per event).
//! - [`queue`]: the queue between the broker and the writer, its sequence numbers
//!   and what callers can wait for.
//! - [`stage`]: a connection's own buffer of events, handed to the queue once
//!   per cycle of the connection, and what a recorded client waits for.
//! - [`writer`]: the writer thread, which hands batches to a store's sink.
//! - [`sqlite`] and [`postgres`]: the two stores, each with its schema and sink.
//! - [`blocks`]: messages and deliveries packed in blocks, and the [`History`]
//!   queries over them (SQLite).
//! - [`query`]: the [`History`] queries over a row per event (PostgreSQL), and
//!   over the connection rows of both stores.
//!
//! Nothing is lost silently: an event of a recorded client that is not written
//! (queue full under `when_full = "drop"`, or a failed write) is counted in
//! [`History::dropped_records`] and logged, and every record query answered while
//! that count is above zero logs it. Under `when_full = "wait"` a broker that
//! awaits [`BrokerObserver::settled`] slows the client down instead.

pub mod blocks;
pub mod codec;
pub mod config;
pub mod postgres;
pub mod query;
pub mod queue;
pub mod sqlite;
pub mod stage;
pub mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mqgate_kit::history::{
    BrokerEvent, BrokerObserver, ConnectionRecord, Direction, EventStage, History, MessageRecord,
    RecordQuery, Settled, StoredMessage,
};
use mqgate_kit::store::{PostgresOptions, Store, StoreError};
use mqgate_kit::{MgmtError, Page};
use parking_lot::Mutex;

pub use config::{Clients, RecordScope, RecordsBackend, RecordsConfig, WhenFull};
use queue::{Queue, WRITER_WAIT};
use stage::{Settling, Stage};
use writer::{Sink, Writer};

/// Where the records go.
pub enum RecordsStore<'a> {
    /// `<data_dir>/records.db`.
    Sqlite { data_dir: &'a Path },
    /// The shared database; `holder` names this recorder in its id slot lease
    /// (see [`postgres::ids`]).
    Postgres {
        store: &'a Arc<Store>,
        options: PostgresOptions,
        holder: &'a str,
    },
}

/// The record keeper. Observes broker events; answers history queries.
pub struct Recorder {
    clients: Clients,
    settling: Settling,
    queue: Arc<Queue>,
    reader: Reader,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The slot every message id of this process carries (shared records only).
    id_slot: Option<u8>,
    /// Drops already logged by record queries, so each new loss is logged once.
    drops_reported: AtomicU64,
}

impl Recorder {
    /// Opens the configured records store and starts the writer thread; `None`
    /// when the configured scope records nothing (`off`, or `easemob` with the
    /// Easemob dialect disabled). Blocks.
    pub fn open(
        config: &crate::config::Config,
        store: &Arc<Store>,
    ) -> Result<Option<Arc<Recorder>>, StoreError> {
        let app_id = mqgate_kit::DialectConfig::enabled(&config.easemob)
            .then_some(config.easemob.app_id.as_str());
        let Some(clients) = Clients::resolve(config.records.scope, app_id) else {
            return Ok(None);
        };
        let holder = postgres::ids::holder_name(&config.cluster.settings().node_name);
        let at = match (config.records.backend, config.store.postgres_options()) {
            (RecordsBackend::Postgres | RecordsBackend::Auto, Some(options)) => {
                RecordsStore::Postgres {
                    store,
                    options,
                    holder: &holder,
                }
            }
            _ => RecordsStore::Sqlite {
                data_dir: &config.data_dir,
            },
        };
        Recorder::start(at, &config.records, clients).map(Some)
    }

    /// Opens the records store `at` for `clients`.
    pub fn start(
        at: RecordsStore<'_>,
        config: &RecordsConfig,
        clients: Clients,
    ) -> Result<Arc<Recorder>, StoreError> {
        let queue = Arc::new(Queue::new(config.queue_capacity, config.batch_size));
        let (sink, reader, id_slot): (Box<dyn Sink>, _, _) = match at {
            RecordsStore::Sqlite { data_dir } => {
                let (sink, reader) = sqlite::open(data_dir, config, &queue)?;
                (Box::new(sink), Reader::Blocks(reader), None)
            }
            RecordsStore::Postgres {
                store,
                options,
                holder,
            } => {
                let (sink, reader, slot) = postgres::open(store, options, config, holder)?;
                (Box::new(sink), Reader::Rows(reader), Some(slot))
            }
        };
        let writer = Writer {
            sink,
            queue: Arc::clone(&queue),
            prune_interval: Duration::from_secs(config.prune_interval_secs.max(1)),
            batch_interval: if config.sync {
                Duration::ZERO
            } else {
                Duration::from_millis(config.batch_interval_ms)
            },
        };
        let handle = std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Join(format!("cannot start the records writer: {e}")))?;
        Ok(Arc::new(Recorder {
            clients,
            settling: Settling {
                sync: config.sync,
                when_full: config.when_full,
            },
            queue,
            reader,
            writer: Mutex::new(Some(handle)),
            id_slot,
            drops_reported: AtomicU64::new(0),
        }))
    }

    /// The slot the broker must put into every message id, so that ids are
    /// unique among every process writing the same shared records.
    pub fn id_slot(&self) -> Option<u8> {
        self.id_slot
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
        self.reader.close();
    }

    /// Events of recorded clients that were not recorded.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Records `event` (if its client is recorded), blocking while the queue is
    /// full: bulk loads and benchmarks. The broker goes through [`BrokerObserver`].
    pub fn record_blocking(&self, event: &BrokerEvent<'_>) {
        if self.covers(event) && !self.queue.push_blocking(event) {
            self.queue.count_refused(1);
        }
    }

    /// Applies the retention policy as of `now_ms`, now; blocks until done.
    pub fn prune_now(&self, now_ms: i64) -> bool {
        self.queue.prune(now_ms)
    }

    /// A future that resolves once everything recorded so far is committed: what
    /// a management publish awaits before it answers under `sync = true`.
    pub fn committed(&self) -> Settled {
        stage::committed(&self.queue)
    }

    pub fn is_sync(&self) -> bool {
        self.settling.sync
    }

    fn covers(&self, event: &BrokerEvent<'_>) -> bool {
        match event {
            BrokerEvent::Connected(c) => self.clients.contains(&c.client_id),
            BrokerEvent::Disconnected { client_id, .. } => self.clients.contains(client_id),
            BrokerEvent::MessageDelivered { client_id, .. } => self.clients.contains(client_id),
            BrokerEvent::MessageIn(m) => match m.client_id {
                Some(sender) => self.clients.contains(sender),
                None => self.clients.keeps_senderless(),
            },
        }
    }

    /// The store's reader, once any loss not yet mentioned is logged.
    fn read(&self) -> &dyn History {
        let dropped = self.queue.dropped();
        if dropped > self.drops_reported.swap(dropped, Ordering::Relaxed) {
            tracing::warn!(
                "records: answering a record query while {dropped} events were not recorded"
            );
        }
        match &self.reader {
            Reader::Blocks(reader) => reader,
            Reader::Rows(reader) => reader,
        }
    }
}

/// How a records store is read: blocks (SQLite) or a row per event (PostgreSQL).
enum Reader {
    Blocks(blocks::query::Reader),
    Rows(query::Reader),
}

impl Reader {
    fn close(&self) {
        match self {
            Reader::Blocks(reader) => reader.reads.close(),
            Reader::Rows(reader) => reader.reads.close(),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close();
    }
}

impl BrokerObserver for Recorder {
    fn on_event(&self, event: &BrokerEvent<'_>) {
        if self.covers(event) && !self.queue.push(event) {
            self.queue.count_refused(1);
        }
    }

    fn records_client(&self, client_id: &str) -> bool {
        self.clients.contains(client_id)
    }

    fn settled(&self) -> Option<Settled> {
        self.settling.settled(&self.queue)
    }

    fn stage(&self) -> Option<Box<dyn EventStage>> {
        Some(Box::new(Stage::new(Arc::clone(&self.queue), self.settling)))
    }
}

impl History for Recorder {
    fn connection_records(&self, q: &RecordQuery) -> Result<Page<ConnectionRecord>, MgmtError> {
        self.read().connection_records(q)
    }

    fn message_records(&self, q: &RecordQuery) -> Result<Page<MessageRecord>, MgmtError> {
        self.read().message_records(q)
    }

    fn message_trace(
        &self,
        q: &RecordQuery,
        direction: Direction,
    ) -> Result<Page<MessageRecord>, MgmtError> {
        self.read().message_trace(q, direction)
    }

    fn stored_message(&self, id: u64) -> Result<Option<StoredMessage>, MgmtError> {
        self.read().stored_message(id)
    }

    fn topic_messages(&self, q: &RecordQuery) -> Result<Page<StoredMessage>, MgmtError> {
        self.read().topic_messages(q)
    }

    fn dropped_records(&self) -> u64 {
        self.dropped()
    }
}

#[cfg(test)]
mod tests;
