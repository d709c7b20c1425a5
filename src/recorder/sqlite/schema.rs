//! The records database: its own SQLite file beside the gateway's store
//! (`<data_dir>/records.db`), so record batches never wait for, nor hold up, the
//! dialects' writes, and can run with `synchronous = NORMAL`: in WAL mode a
//! committed transaction survives a crash of the process (kill -9); only an
//! operating-system crash or power loss may take the last ones.
//!
//! Three record tables, each with only the indexes a
//! [`History`](mqgate_kit::History) query uses:
//! - `connections`: connects and disconnects (by client and time);
//! - `messages`: each message as it entered, with its sender — the uplink record
//!   (by id, by topic and time, by sender and time);
//! - `deliveries`: one row per message written to a client — the downlink record
//!   (by client and time, by message id).
//!
//! `messages` and `deliveries` name their client and topic by number, from
//! `names` (see [`names`](super::names)): the step from the first schema rewrites
//! the rows of a database written before.
//!
//! Rows are inserted in time order, so retention deletes from the start of each
//! table's key without an index on time: message ids increase with time (the
//! broker's counter starts from the clock), the other tables' keys are row ids.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, Transaction};

pub const FILE_NAME: &str = "records.db";

/// `MIGRATIONS[i]` moves the schema from `user_version` i to i + 1.
pub(crate) const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE connections (
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
CREATE INDEX connections_client_time ON connections (client_id, at_ms);

CREATE TABLE messages (
    message_id INTEGER PRIMARY KEY,
    client_id TEXT,
    connection_id INTEGER,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    payload BLOB NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX messages_topic_time ON messages (topic, at_ms);
CREATE INDEX messages_sender_time ON messages (client_id, at_ms) WHERE client_id IS NOT NULL;

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    message_id INTEGER,
    client_id TEXT NOT NULL,
    connection_id INTEGER NOT NULL,
    topic TEXT NOT NULL,
    qos INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX deliveries_client_time ON deliveries (client_id, at_ms);
CREATE INDEX deliveries_message ON deliveries (message_id);
",
    "
CREATE TABLE names (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_message INTEGER NOT NULL,
    last_delivery INTEGER NOT NULL
);
INSERT INTO names (name, last_message, last_delivery)
    SELECT name, max(last_message), max(last_delivery) FROM (
        SELECT client_id AS name, message_id AS last_message, -1 AS last_delivery
          FROM messages WHERE client_id IS NOT NULL
        UNION ALL SELECT topic, message_id, -1 FROM messages
        UNION ALL SELECT client_id, -1, id FROM deliveries
        UNION ALL SELECT topic, -1, id FROM deliveries)
    GROUP BY name;

ALTER TABLE messages RENAME TO messages_by_text;
CREATE TABLE messages (
    message_id INTEGER PRIMARY KEY,
    client INTEGER,
    connection_id INTEGER,
    topic INTEGER NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    payload BLOB NOT NULL,
    at_ms INTEGER NOT NULL
);
INSERT INTO messages SELECT message_id,
    (SELECT id FROM names WHERE name = m.client_id), connection_id,
    (SELECT id FROM names WHERE name = m.topic), qos, retain, payload, at_ms
    FROM messages_by_text m;
DROP TABLE messages_by_text;
CREATE INDEX messages_topic_time ON messages (topic, at_ms);
CREATE INDEX messages_sender_time ON messages (client, at_ms) WHERE client IS NOT NULL;

ALTER TABLE deliveries RENAME TO deliveries_by_text;
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    message_id INTEGER,
    client INTEGER NOT NULL,
    connection_id INTEGER NOT NULL,
    topic INTEGER NOT NULL,
    qos INTEGER NOT NULL,
    at_ms INTEGER NOT NULL
);
INSERT INTO deliveries SELECT id, message_id,
    (SELECT id FROM names WHERE name = d.client_id), connection_id,
    (SELECT id FROM names WHERE name = d.topic), qos, at_ms
    FROM deliveries_by_text d;
DROP TABLE deliveries_by_text;
CREATE INDEX deliveries_client_time ON deliveries (client, at_ms);
CREATE INDEX deliveries_message ON deliveries (message_id);
",
];

/// The record tables with their keys, in the order of [`RowCounts`].
pub const TABLES: [(&str, &str); 3] = [
    ("connections", "id"),
    ("messages", "message_id"),
    ("deliveries", "id"),
];
pub const CONNECTIONS: usize = 0;
pub const MESSAGES: usize = 1;
pub const DELIVERIES: usize = 2;

/// Opens `<data_dir>/records.db`, creating or upgrading its tables, with a page
/// cache of `cache_kib`.
pub fn open(data_dir: &Path, cache_kib: i64) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(data_dir.join(FILE_NAME))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    // Checkpoint the WAL every 40 MiB rather than 4 MiB: fewer syncs of the file.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tx = conn.transaction()?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(conn)
}

/// The id after the last delivery row's.
pub fn next_delivery_id(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM deliveries", [], |r| {
        r.get(0)
    })
}

/// Rows per record table, kept in memory so retention by row count needs no
/// `count(*)` scan: counted once at open, then adjusted by every insert and delete.
#[derive(Default)]
pub struct RowCounts([AtomicU64; 3]);

impl RowCounts {
    pub fn count(conn: &Connection) -> rusqlite::Result<RowCounts> {
        let counts = RowCounts::default();
        for (i, (table, _)) in TABLES.iter().enumerate() {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            counts.0[i].store(n as u64, Ordering::Relaxed);
        }
        Ok(counts)
    }

    pub fn add(&self, added: [u64; 3]) {
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

pub struct Retention {
    pub max_age_ms: i64,
    pub max_rows: u64,
}

impl Retention {
    /// Deletes what is older than the age limit, then the oldest rows over the
    /// row limit. Both walk each table's key from its start: the cost is the rows
    /// deleted.
    pub fn apply(
        &self,
        tx: &Transaction<'_>,
        now_ms: i64,
        counts: &RowCounts,
    ) -> rusqlite::Result<()> {
        for (i, (table, key)) in TABLES.iter().enumerate() {
            if self.max_age_ms > 0 {
                let removed = tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE {key} < coalesce(
                           (SELECT {key} FROM {table} WHERE at_ms >= ?1 ORDER BY {key} LIMIT 1),
                           (SELECT max({key}) + 1 FROM {table}))"
                    ),
                    [now_ms.saturating_sub(self.max_age_ms)],
                )?;
                counts.remove(i, removed as u64);
            }
            let rows = counts.get(i);
            if self.max_rows > 0 && rows > self.max_rows {
                let excess = (rows - self.max_rows).min(i64::MAX as u64) as i64;
                let removed = tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE {key} <=
                           (SELECT {key} FROM {table} ORDER BY {key} LIMIT 1 OFFSET ?1 - 1)"
                    ),
                    [excess],
                )?;
                counts.remove(i, removed as u64);
            }
        }
        Ok(())
    }
}
