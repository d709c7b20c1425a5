//! Connection and message records: the broker's events written to the embedded
//! store in batches, off the hot path, and queried through [`History`].
//!
//! - [`Records::on_event`] only enqueues into a bounded channel; when the queue is
//!   full the event is counted ([`Records::dropped`]) and dropped, never waited for.
//! - One writer thread drains the queue and commits up to `batch_size` events per
//!   transaction, at most `batch_interval_ms` after the first of them arrived, and
//!   applies retention (`max_age_hours`, `max_rows`) every `prune_interval_secs`.
//! - Three tables: `records_connections` (connects and disconnects),
//!   `records_messages` (each message's content as it entered, keyed by message id)
//!   and `records_message_events` (uplink and downlink, one row per client).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqgate_kit::history::{
    BrokerEvent, BrokerObserver, ConnectionEventKind, ConnectionRecord, Direction, History,
    MessageRecord, RecordQuery, SortOrder, StoredMessage,
};
use mqgate_kit::store::StoreError;
use mqgate_kit::{MgmtError, Page, Store, Transport};
use rusqlite::types::Value;
use rusqlite::{params, Row, Transaction};
use serde::{Deserialize, Serialize};

/// The `[records]` section of mqgate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// Keep connection and message records. When off, events are ignored; records
    /// already stored can still be queried until retention removes them.
    pub enabled: bool,
    /// Records older than this many hours are deleted (0: no age limit).
    pub max_age_hours: u64,
    /// Each record table keeps at most this many rows, newest first (0: no limit).
    pub max_rows: u64,
    /// How often retention runs, in seconds.
    pub prune_interval_secs: u64,
    /// Events waiting to be written. When the queue is full, new events are
    /// counted and dropped rather than slowing the broker down.
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub batch_size: usize,
    /// Longest an event waits in the queue before its batch is written, in ms.
    pub batch_interval_ms: u64,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            enabled: true,
            // Easemob keeps messages up to 3 days (its publish `expire` maximum).
            max_age_hours: 72,
            max_rows: 10_000_000,
            prune_interval_secs: 60,
            queue_capacity: 100_000,
            batch_size: 1000,
            batch_interval_ms: 50,
        }
    }
}

const MIGRATIONS: &[&str] = &["
CREATE TABLE records_connections (
    id INTEGER PRIMARY KEY,
    connection_id INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    reason TEXT NOT NULL,
    username TEXT,
    peer TEXT,
    transport TEXT,
    proto_ver INTEGER,
    keepalive INTEGER,
    clean_start INTEGER,
    will_topic TEXT,
    will_payload BLOB
);
CREATE INDEX records_connections_client_time ON records_connections (client_id, at_ms);
CREATE INDEX records_connections_time ON records_connections (at_ms);

CREATE TABLE records_messages (
    message_id INTEGER PRIMARY KEY,
    client_id TEXT,
    connection_id INTEGER,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    payload BLOB NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX records_messages_topic_time ON records_messages (topic, at_ms);
CREATE INDEX records_messages_time ON records_messages (at_ms);

CREATE TABLE records_message_events (
    id INTEGER PRIMARY KEY,
    message_id INTEGER,
    client_id TEXT NOT NULL,
    connection_id INTEGER,
    direction INTEGER NOT NULL,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX records_message_events_client_time ON records_message_events (client_id, at_ms);
CREATE INDEX records_message_events_message ON records_message_events (message_id, direction, at_ms);
CREATE INDEX records_message_events_time ON records_message_events (at_ms);
"];

/// The record tables, in the order of [`RowCounts`].
const TABLES: [&str; 3] = [
    "records_connections",
    "records_messages",
    "records_message_events",
];

/// Rows per record table, kept in memory so retention by row count needs no
/// `count(*)` scan: counted once at open, then adjusted by every insert and delete.
#[derive(Default)]
struct RowCounts([AtomicU64; 3]);

impl RowCounts {
    fn add(&self, added: [u64; 3]) {
        for (count, n) in self.0.iter().zip(added) {
            count.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn remove(&self, table: usize, n: u64) {
        let count = &self.0[table];
        let _ = count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            Some(c.saturating_sub(n))
        });
    }

    fn get(&self, table: usize) -> u64 {
        self.0[table].load(Ordering::Relaxed)
    }
}

const KIND_CONNECT: i64 = 0;
const KIND_DISCONNECT: i64 = 1;
const DIRECTION_UPLINK: i64 = 0;
const DIRECTION_DOWNLINK: i64 = 1;

enum Command {
    Event(BrokerEvent),
    /// Write everything queued before this command, then answer.
    Flush(SyncSender<()>),
}

/// The record keeper. Observes broker events; answers history queries.
pub struct Records {
    store: Arc<Store>,
    enabled: AtomicBool,
    queue: SyncSender<Command>,
    dropped: AtomicU64,
    counts: Arc<RowCounts>,
}

impl Records {
    /// Creates the record tables if needed and starts the writer thread.
    pub fn open(store: Arc<Store>, config: &RecordsConfig) -> Result<Arc<Records>, StoreError> {
        store.migrate("records", MIGRATIONS)?;
        let counts = Arc::new(RowCounts::default());
        for (i, table) in TABLES.iter().enumerate() {
            let n: i64 = store.read(|c| {
                c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            })?;
            counts.0[i].store(n as u64, Ordering::Relaxed);
        }
        let (queue, receiver) = mpsc::sync_channel(config.queue_capacity.max(1));
        let writer = Writer {
            store: Arc::clone(&store),
            receiver,
            batch_size: config.batch_size.max(1),
            batch_interval: Duration::from_millis(config.batch_interval_ms),
            retention: Retention {
                max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
                max_rows: config.max_rows,
            },
            prune_interval: Duration::from_secs(config.prune_interval_secs.max(1)),
            counts: Arc::clone(&counts),
        };
        std::thread::Builder::new()
            .name("records-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError::Join(format!("cannot start the records writer: {e}")))?;
        Ok(Arc::new(Records {
            store,
            enabled: AtomicBool::new(config.enabled),
            queue,
            dropped: AtomicU64::new(0),
            counts,
        }))
    }

    /// Writes everything queued so far (called at shutdown). Blocks until written.
    pub fn flush(&self) {
        let (ack, done) = mpsc::sync_channel(1);
        if self.queue.send(Command::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(30));
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Writes `events` in one transaction, now, bypassing the queue (bulk loads and
    /// benchmarks; the broker goes through [`BrokerObserver::on_event`]).
    pub fn write_now(&self, events: &[BrokerEvent]) -> Result<(), StoreError> {
        let added = self.store.write(|tx| insert_events(tx, events))?;
        self.counts.add(added);
        Ok(())
    }

    /// Applies the retention policy now.
    pub fn prune_now(&self, config: &RecordsConfig, now_ms: i64) -> Result<(), StoreError> {
        let retention = Retention {
            max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
            max_rows: config.max_rows,
        };
        self.store
            .write(|tx| retention.apply(tx, now_ms, &self.counts))
    }
}

impl BrokerObserver for Records {
    fn on_event(&self, event: &BrokerEvent) {
        if !self.is_enabled() {
            return;
        }
        match self.queue.try_send(Command::Event(event.clone())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged at 1, 2, 4, 8, … drops: visible without flooding the log.
                if dropped.is_power_of_two() {
                    tracing::warn!("records: queue full, {dropped} events dropped so far");
                }
            }
        }
    }
}

struct Retention {
    max_age_ms: i64,
    max_rows: u64,
}

impl Retention {
    fn apply(&self, tx: &Transaction<'_>, now_ms: i64, counts: &RowCounts) -> rusqlite::Result<()> {
        for (i, table) in TABLES.iter().enumerate() {
            if self.max_age_ms > 0 {
                let removed = tx.execute(
                    &format!("DELETE FROM {table} WHERE at_ms < ?1"),
                    [now_ms.saturating_sub(self.max_age_ms)],
                )?;
                counts.remove(i, removed as u64);
            }
            let rows = counts.get(i);
            if self.max_rows > 0 && rows > self.max_rows {
                let excess = (rows - self.max_rows).min(i64::MAX as u64) as i64;
                let removed = tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE rowid IN
                         (SELECT rowid FROM {table} ORDER BY at_ms ASC LIMIT ?1)"
                    ),
                    [excess],
                )?;
                counts.remove(i, removed as u64);
            }
        }
        Ok(())
    }
}

struct Writer {
    store: Arc<Store>,
    receiver: Receiver<Command>,
    batch_size: usize,
    batch_interval: Duration,
    retention: Retention,
    prune_interval: Duration,
    counts: Arc<RowCounts>,
}

impl Writer {
    fn run(self) {
        let mut next_prune = Instant::now() + self.prune_interval;
        let mut batch: Vec<BrokerEvent> = Vec::with_capacity(self.batch_size);
        loop {
            let wait = next_prune.saturating_duration_since(Instant::now());
            let first = match self.receiver.recv_timeout(wait) {
                Ok(command) => Some(command),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if let Some(first) = first {
                let deadline = Instant::now() + self.batch_interval;
                let mut pending = Some(first);
                let mut disconnected = false;
                while let Some(command) = pending.take() {
                    match command {
                        Command::Event(event) => batch.push(event),
                        Command::Flush(ack) => {
                            self.write(&mut batch);
                            let _ = ack.send(());
                        }
                    }
                    if batch.len() >= self.batch_size {
                        break;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    match self.receiver.recv_timeout(left) {
                        Ok(command) => pending = Some(command),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => disconnected = true,
                    }
                }
                self.write(&mut batch);
                if disconnected {
                    return;
                }
            }
            if Instant::now() >= next_prune {
                let now = mqgate_kit::clock::now_ms();
                if let Err(e) = self
                    .store
                    .write(|tx| self.retention.apply(tx, now, &self.counts))
                {
                    tracing::warn!("records retention failed: {e}");
                }
                next_prune = Instant::now() + self.prune_interval;
            }
        }
    }

    fn write(&self, batch: &mut Vec<BrokerEvent>) {
        if batch.is_empty() {
            return;
        }
        match self.store.write(|tx| insert_events(tx, batch)) {
            Ok(added) => self.counts.add(added),
            Err(e) => tracing::warn!("{} records lost: {e}", batch.len()),
        }
        batch.clear();
    }
}

/// Message and connection ids are u64; SQLite integers are i64. The bits are kept.
fn id_to_sql(id: u64) -> i64 {
    id as i64
}

fn id_from_sql(id: i64) -> u64 {
    id as u64
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::WebSocket => "websocket",
    }
}

/// Inserts `events`; returns the rows added per table (see [`TABLES`]).
fn insert_events(tx: &Transaction<'_>, events: &[BrokerEvent]) -> rusqlite::Result<[u64; 3]> {
    let mut added = [0u64; 3];
    let mut connections = tx.prepare_cached(
        "INSERT INTO records_connections (connection_id, client_id, at_ms, kind, reason, username,
             peer, transport, proto_ver, keepalive, clean_start, will_topic, will_payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut messages = tx.prepare_cached(
        "INSERT OR REPLACE INTO records_messages (message_id, client_id, connection_id, topic, qos,
             retain, payload, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut message_events = tx.prepare_cached(
        "INSERT INTO records_message_events (message_id, client_id, connection_id, direction,
             topic, qos, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for event in events {
        match event {
            BrokerEvent::Connected(c) => {
                connections.execute(params![
                    id_to_sql(c.connection_id),
                    c.client_id,
                    c.at_ms,
                    KIND_CONNECT,
                    "normal",
                    c.username,
                    c.peer.to_string(),
                    transport_name(c.transport),
                    c.proto_ver,
                    c.keepalive,
                    c.clean_start,
                    c.will.as_ref().map(|w| w.topic.as_str()),
                    c.will.as_ref().map(|w| w.payload.as_ref()),
                ])?;
                added[0] += 1;
            }
            BrokerEvent::Disconnected {
                client_id,
                connection_id,
                username,
                at_ms,
                reason,
            } => {
                connections.execute(params![
                    id_to_sql(*connection_id),
                    client_id,
                    at_ms,
                    KIND_DISCONNECT,
                    reason.as_str(),
                    username,
                    Option::<String>::None,
                    Option::<String>::None,
                    Option::<u8>::None,
                    Option::<u16>::None,
                    Option::<bool>::None,
                    Option::<String>::None,
                    Option::<Vec<u8>>::None,
                ])?;
                added[0] += 1;
            }
            BrokerEvent::MessageIn(m) => {
                messages.execute(params![
                    id_to_sql(m.message_id),
                    m.client_id,
                    m.connection_id.map(id_to_sql),
                    m.topic,
                    m.qos,
                    m.retain,
                    m.payload.as_ref(),
                    m.at_ms,
                ])?;
                added[1] += 1;
                if let Some(client_id) = &m.client_id {
                    message_events.execute(params![
                        id_to_sql(m.message_id),
                        client_id,
                        m.connection_id.map(id_to_sql),
                        DIRECTION_UPLINK,
                        m.topic,
                        m.qos,
                        m.at_ms,
                    ])?;
                    added[2] += 1;
                }
            }
            BrokerEvent::MessageDelivered {
                message_id,
                client_id,
                connection_id,
                topic,
                qos,
                at_ms,
            } => {
                message_events.execute(params![
                    message_id.map(id_to_sql),
                    client_id,
                    id_to_sql(*connection_id),
                    DIRECTION_DOWNLINK,
                    topic,
                    qos,
                    at_ms,
                ])?;
                added[2] += 1;
            }
        }
    }
    Ok(added)
}

/// A WHERE clause and its parameters, built from a [`RecordQuery`].
struct Filter {
    clauses: Vec<&'static str>,
    values: Vec<Value>,
}

impl Filter {
    fn window(query: &RecordQuery) -> Filter {
        Filter {
            clauses: vec!["at_ms >= ?", "at_ms <= ?"],
            values: vec![Value::Integer(query.from_ms), Value::Integer(query.to_ms)],
        }
    }

    fn and(mut self, clause: &'static str, value: Value) -> Filter {
        self.clauses.push(clause);
        self.values.push(value);
        self
    }

    fn sql(&self) -> String {
        self.clauses.join(" AND ")
    }
}

fn order_sql(order: SortOrder) -> &'static str {
    match order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    }
}

fn limit_offset(query: &RecordQuery) -> (i64, i64) {
    let limit = query.page.limit.min(i64::MAX as usize) as i64;
    let offset = query.page.offset().min(i64::MAX as usize) as i64;
    (limit, offset)
}

/// Runs a count and a page query over `table` with `filter`.
fn page_of<T>(
    store: &Store,
    table: &str,
    columns: &str,
    tie_breaker: &str,
    filter: Filter,
    query: &RecordQuery,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>, MgmtError> {
    let (limit, offset) = limit_offset(query);
    let order = order_sql(query.order);
    let where_sql = filter.sql();
    let result = store.read(|conn| {
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE {where_sql}"),
            rusqlite::params_from_iter(filter.values.iter()),
            |r| r.get(0),
        )?;
        let mut items = Vec::new();
        if total > offset && limit > 0 {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {columns} FROM {table} WHERE {where_sql}
                 ORDER BY at_ms {order}, {tie_breaker} {order} LIMIT {limit} OFFSET {offset}"
            ))?;
            let rows =
                statement.query_map(rusqlite::params_from_iter(filter.values.iter()), &map)?;
            for row in rows {
                items.push(row?);
            }
        }
        Ok(Page {
            items,
            total: total as usize,
        })
    })?;
    Ok(result)
}

const CONNECTION_COLUMNS: &str = "connection_id, client_id, at_ms, kind, reason, username, peer, \
     transport, proto_ver, keepalive, clean_start, will_topic, will_payload";

fn connection_from_row(row: &Row<'_>) -> rusqlite::Result<ConnectionRecord> {
    let kind: i64 = row.get(3)?;
    let transport: Option<String> = row.get(7)?;
    let will_payload: Option<Vec<u8>> = row.get(12)?;
    Ok(ConnectionRecord {
        connection_id: id_from_sql(row.get(0)?),
        client_id: row.get(1)?,
        at_ms: row.get(2)?,
        kind: if kind == KIND_CONNECT {
            ConnectionEventKind::Connect
        } else {
            ConnectionEventKind::Disconnect
        },
        reason: row.get(4)?,
        username: row.get(5)?,
        peer: row.get(6)?,
        transport: transport.map(|t| match t.as_str() {
            "websocket" => Transport::WebSocket,
            _ => Transport::Tcp,
        }),
        proto_ver: row.get(8)?,
        keepalive: row.get(9)?,
        clean_start: row.get(10)?,
        will_topic: row.get(11)?,
        will_payload: will_payload.map(Bytes::from),
    })
}

const MESSAGE_EVENT_COLUMNS: &str =
    "message_id, client_id, connection_id, direction, topic, qos, at_ms";

fn message_event_from_row(row: &Row<'_>) -> rusqlite::Result<MessageRecord> {
    let message_id: Option<i64> = row.get(0)?;
    let connection_id: Option<i64> = row.get(2)?;
    let direction: i64 = row.get(3)?;
    Ok(MessageRecord {
        // A delivery the broker could not trace back to its message has no id; 0 is
        // never given to a message.
        message_id: message_id.map(id_from_sql).unwrap_or(0),
        client_id: row.get(1)?,
        connection_id: connection_id.map(id_from_sql),
        direction: if direction == DIRECTION_UPLINK {
            Direction::Uplink
        } else {
            Direction::Downlink
        },
        topic: row.get(4)?,
        qos: row.get(5)?,
        at_ms: row.get(6)?,
    })
}

const MESSAGE_COLUMNS: &str =
    "message_id, client_id, connection_id, topic, qos, retain, payload, at_ms";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let connection_id: Option<i64> = row.get(2)?;
    let payload: Vec<u8> = row.get(6)?;
    Ok(StoredMessage {
        message_id: id_from_sql(row.get(0)?),
        client_id: row.get(1)?,
        connection_id: connection_id.map(id_from_sql),
        topic: row.get(3)?,
        qos: row.get(4)?,
        retain: row.get(5)?,
        payload: Bytes::from(payload),
        at_ms: row.get(7)?,
    })
}

impl History for Records {
    fn connection_records(&self, query: &RecordQuery) -> Result<Page<ConnectionRecord>, MgmtError> {
        let mut filter = Filter::window(query);
        if let Some(client_id) = &query.client_id {
            filter = filter.and("client_id = ?", Value::Text(client_id.clone()));
        }
        page_of(
            &self.store,
            "records_connections",
            CONNECTION_COLUMNS,
            "id",
            filter,
            query,
            connection_from_row,
        )
    }

    fn message_records(&self, query: &RecordQuery) -> Result<Page<MessageRecord>, MgmtError> {
        let mut filter = Filter::window(query);
        if let Some(client_id) = &query.client_id {
            filter = filter.and("client_id = ?", Value::Text(client_id.clone()));
        }
        if let Some(id) = query.message_id {
            filter = filter.and("message_id = ?", Value::Integer(id_to_sql(id)));
        }
        page_of(
            &self.store,
            "records_message_events",
            MESSAGE_EVENT_COLUMNS,
            "id",
            filter,
            query,
            message_event_from_row,
        )
    }

    fn message_trace(
        &self,
        query: &RecordQuery,
        direction: Direction,
    ) -> Result<Page<MessageRecord>, MgmtError> {
        let Some(id) = query.message_id else {
            return Ok(Page {
                items: Vec::new(),
                total: 0,
            });
        };
        let direction = match direction {
            Direction::Uplink => DIRECTION_UPLINK,
            Direction::Downlink => DIRECTION_DOWNLINK,
        };
        let mut filter = Filter::window(query)
            .and("message_id = ?", Value::Integer(id_to_sql(id)))
            .and("direction = ?", Value::Integer(direction));
        if let Some(client_id) = &query.client_id {
            filter = filter.and("client_id = ?", Value::Text(client_id.clone()));
        }
        page_of(
            &self.store,
            "records_message_events",
            MESSAGE_EVENT_COLUMNS,
            "id",
            filter,
            query,
            message_event_from_row,
        )
    }

    fn stored_message(&self, id: u64) -> Result<Option<StoredMessage>, MgmtError> {
        let found = self.store.read(|conn| {
            conn.query_row(
                &format!("SELECT {MESSAGE_COLUMNS} FROM records_messages WHERE message_id = ?1"),
                [id_to_sql(id)],
                message_from_row,
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
        })?;
        Ok(found)
    }

    fn topic_messages(&self, query: &RecordQuery) -> Result<Page<StoredMessage>, MgmtError> {
        let mut filter = Filter::window(query);
        if let Some(topic) = &query.topic {
            filter = filter.and("topic = ?", Value::Text(topic.clone()));
        }
        if let Some(client_id) = &query.client_id {
            filter = filter.and("client_id = ?", Value::Text(client_id.clone()));
        }
        page_of(
            &self.store,
            "records_messages",
            MESSAGE_COLUMNS,
            "message_id",
            filter,
            query,
            message_from_row,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_kit::history::{ConnectedEvent, MessageInEvent};
    use mqgate_kit::{DisconnectReason, PageRequest};

    fn open(config: RecordsConfig) -> (tempfile::TempDir, Arc<Records>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let records = Records::open(store, &config).unwrap();
        (dir, records)
    }

    fn query(
        client: Option<&str>,
        from_ms: i64,
        to_ms: i64,
        page: usize,
        limit: usize,
    ) -> RecordQuery {
        RecordQuery {
            client_id: client.map(str::to_string),
            message_id: None,
            topic: None,
            from_ms,
            to_ms,
            page: PageRequest::new(page, limit),
            order: SortOrder::Asc,
        }
    }

    fn connected(client: &str, connection_id: u64, at_ms: i64) -> BrokerEvent {
        BrokerEvent::Connected(Box::new(ConnectedEvent {
            client_id: client.into(),
            connection_id,
            username: Some("u1".into()),
            peer: "127.0.0.1:5000".parse().unwrap(),
            transport: Transport::WebSocket,
            proto_ver: 5,
            keepalive: 60,
            clean_start: true,
            will: None,
            at_ms,
        }))
    }

    fn message_in(id: u64, client: Option<&str>, topic: &str, at_ms: i64) -> BrokerEvent {
        BrokerEvent::MessageIn(Box::new(MessageInEvent {
            message_id: id,
            client_id: client.map(str::to_string),
            connection_id: client.map(|_| 7),
            topic: topic.into(),
            qos: 1,
            retain: false,
            payload: Bytes::from_static(b"hello"),
            at_ms,
        }))
    }

    #[test]
    fn queued_events_are_written_by_flush_and_queried_back() {
        let (_dir, records) = open(RecordsConfig::default());
        records.on_event(&connected("a@app", 7, 1_000));
        records.on_event(&message_in(0xABCD, Some("a@app"), "t/1", 1_100));
        records.on_event(&BrokerEvent::MessageDelivered {
            message_id: Some(0xABCD),
            client_id: "b@app".into(),
            connection_id: 8,
            topic: "t/1".into(),
            qos: 1,
            at_ms: 1_200,
        });
        records.on_event(&BrokerEvent::Disconnected {
            client_id: "a@app".into(),
            connection_id: 7,
            username: Some("u1".into()),
            at_ms: 1_300,
            reason: DisconnectReason::KeepaliveTimeout,
        });
        records.flush();

        let conns = records
            .connection_records(&query(Some("a@app"), 0, 10_000, 1, 10))
            .unwrap();
        assert_eq!(conns.total, 2);
        assert_eq!(conns.items[0].kind, ConnectionEventKind::Connect);
        assert_eq!(conns.items[0].transport, Some(Transport::WebSocket));
        assert_eq!(conns.items[0].peer.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(conns.items[1].reason, "keepalive_timeout");

        let mut trace = query(None, 0, 10_000, 1, 10);
        trace.message_id = Some(0xABCD);
        let up = records.message_trace(&trace, Direction::Uplink).unwrap();
        assert_eq!(up.total, 1);
        assert_eq!(up.items[0].client_id, "a@app");
        let down = records.message_trace(&trace, Direction::Downlink).unwrap();
        assert_eq!(down.items[0].client_id, "b@app");
        assert_eq!(down.items[0].connection_id, Some(8));

        let stored = records.stored_message(0xABCD).unwrap().unwrap();
        assert_eq!(stored.payload, Bytes::from_static(b"hello"));
        assert_eq!(stored.client_id.as_deref(), Some("a@app"));
        assert!(records.stored_message(1).unwrap().is_none());
    }

    #[test]
    fn windows_pages_and_order() {
        let (_dir, records) = open(RecordsConfig::default());
        let events: Vec<BrokerEvent> = (0..25)
            .map(|i| message_in(100 + i, Some("c@app"), "room", 10_000 + i as i64 * 10))
            .collect();
        records.write_now(&events).unwrap();

        let page = records
            .message_records(&query(Some("c@app"), 10_050, 10_149, 2, 4))
            .unwrap();
        assert_eq!(page.total, 10);
        let ids: Vec<u64> = page.items.iter().map(|m| m.message_id).collect();
        assert_eq!(ids, vec![109, 110, 111, 112]);

        let mut q = query(None, 0, i64::MAX, 1, 3);
        q.topic = Some("room".into());
        q.order = SortOrder::Desc;
        let page = records.topic_messages(&q).unwrap();
        assert_eq!(page.total, 25);
        let ids: Vec<u64> = page.items.iter().map(|m| m.message_id).collect();
        assert_eq!(ids, vec![124, 123, 122]);

        let beyond = records
            .message_records(&query(Some("c@app"), 0, i64::MAX, 99, 10))
            .unwrap();
        assert_eq!(beyond.total, 25);
        assert!(beyond.items.is_empty());
    }

    #[test]
    fn disabled_records_ignore_events() {
        let (_dir, records) = open(RecordsConfig {
            enabled: false,
            ..RecordsConfig::default()
        });
        records.on_event(&connected("a@app", 1, 5));
        records.flush();
        let page = records
            .connection_records(&query(Some("a@app"), 0, 10, 1, 10))
            .unwrap();
        assert_eq!(page.total, 0);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (_dir, records) = open(RecordsConfig {
            queue_capacity: 1,
            batch_interval_ms: 1000,
            ..RecordsConfig::default()
        });
        let start = Instant::now();
        for i in 0..1000 {
            records.on_event(&connected("a@app", i, i as i64));
        }
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(records.dropped() > 0);
    }

    #[test]
    fn retention_by_age_and_by_rows() {
        let (_dir, records) = open(RecordsConfig::default());
        let events: Vec<BrokerEvent> = (0..10)
            .map(|i| message_in(i + 1, Some("c@app"), "t", i as i64 * 3_600_000))
            .collect();
        records.write_now(&events).unwrap();
        let config = RecordsConfig {
            max_age_hours: 5,
            max_rows: 0,
            ..RecordsConfig::default()
        };
        // now = hour 9: hours 4..=9 survive an age limit of 5 h.
        records.prune_now(&config, 9 * 3_600_000).unwrap();
        let all = query(Some("c@app"), 0, i64::MAX, 1, 100);
        assert_eq!(records.message_records(&all).unwrap().total, 6);
        let config = RecordsConfig {
            max_age_hours: 0,
            max_rows: 2,
            ..RecordsConfig::default()
        };
        records.prune_now(&config, 9 * 3_600_000).unwrap();
        let left = records.message_records(&all).unwrap();
        assert_eq!(left.total, 2);
        assert_eq!(left.items[0].message_id, 9);
        assert!(records.stored_message(10).unwrap().is_some());
        assert!(records.stored_message(8).unwrap().is_none());
    }

    #[test]
    fn config_keys_are_checked() {
        let c: RecordsConfig = serde_json::from_str(r#"{"max_rows": 5}"#).unwrap();
        assert_eq!(c.max_rows, 5);
        assert!(c.enabled);
        assert!(serde_json::from_str::<RecordsConfig>(r#"{"max_row": 5}"#).is_err());
    }
}
