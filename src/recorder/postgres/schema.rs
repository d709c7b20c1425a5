//! The record tables in the `[store]` PostgreSQL database, shared by every process
//! on it. The same three tables as the SQLite file, with client ids and topics as
//! text (PostgreSQL compares them in its indexes as cheaply as numbers would be
//! looked up), and a `seq` key per table in insertion order:
//! - `records_connections` (by client and time);
//! - `records_messages`, the uplink records (by message id, by topic and time,
//!   by sender and time). Message ids are not a key: a row that came twice
//!   must not cost the whole batch it is in;
//! - `records_deliveries`, the downlink records (by client and time, by message id);
//! - `records_id_slots`: which process holds which message id slot
//!   ([`ids`](super::ids)).
//!
//! Retention walks `seq` from its start, as the SQLite file walks its keys, and
//! counts rows as `max(seq) - min(seq) + 1`, read from the key's two ends: with
//! several writers no process can count the rows in memory, and `count(*)` reads
//! the whole table. The count is never below the real one (a rolled back batch
//! leaves a gap), so `max_rows` keeps at most that many rows.

use mqgate_kit::store::StoreError;
use mqgate_kit::store::{Migrations, Param, Tx};

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[],
    postgres: &["
CREATE TABLE records_connections (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id BIGINT NOT NULL,
    client_id TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    kind SMALLINT NOT NULL,
    reason TEXT NOT NULL,
    username TEXT,
    peer TEXT,
    transport TEXT,
    proto_ver SMALLINT,
    keepalive INTEGER,
    clean_start BOOLEAN,
    will_topic TEXT,
    will_payload BYTEA
);
CREATE INDEX records_connections_client_time ON records_connections (client_id, at_ms);

CREATE TABLE records_messages (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT NOT NULL,
    client_id TEXT,
    connection_id BIGINT,
    topic TEXT NOT NULL,
    qos SMALLINT NOT NULL,
    retain BOOLEAN NOT NULL,
    payload BYTEA NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX records_messages_id ON records_messages (message_id);
CREATE INDEX records_messages_topic_time ON records_messages (topic, at_ms);
CREATE INDEX records_messages_sender_time ON records_messages (client_id, at_ms)
    WHERE client_id IS NOT NULL;

CREATE TABLE records_deliveries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id BIGINT,
    client_id TEXT NOT NULL,
    connection_id BIGINT NOT NULL,
    topic TEXT NOT NULL,
    qos SMALLINT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX records_deliveries_client_time ON records_deliveries (client_id, at_ms);
CREATE INDEX records_deliveries_message ON records_deliveries (message_id);

CREATE TABLE records_id_slots (
    slot INTEGER PRIMARY KEY,
    holder TEXT NOT NULL UNIQUE,
    lease_until_ms BIGINT NOT NULL
);
"],
};

pub const TABLES: [&str; 3] = [
    "records_connections",
    "records_messages",
    "records_deliveries",
];

/// Retention runs in one process at a time: the key of its advisory lock
/// ("mqrec" in ASCII).
const RETENTION_LOCK: i64 = 0x6d_7172_6563;

/// Deletes what is older than `max_age_ms` (0: no limit), then the oldest rows
/// past `max_rows` (0: no limit), per table; does nothing while another process
/// applies retention.
pub fn apply_retention(
    tx: &mut Tx<'_>,
    now_ms: i64,
    max_age_ms: i64,
    max_rows: u64,
) -> Result<(), StoreError> {
    let locked = tx.query_one(
        "SELECT pg_try_advisory_xact_lock($1)",
        &[Param::Int(RETENTION_LOCK)],
        |r| r.get::<bool>(0),
    )?;
    if !locked {
        return Ok(());
    }
    for table in TABLES {
        if max_age_ms > 0 {
            tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE seq < coalesce(
                       (SELECT seq FROM {table} WHERE at_ms >= $1 ORDER BY seq LIMIT 1),
                       (SELECT max(seq) + 1 FROM {table}))"
                ),
                &[Param::Int(now_ms.saturating_sub(max_age_ms))],
            )?;
        }
        if max_rows > 0 {
            tx.execute(
                &format!("DELETE FROM {table} WHERE seq <= (SELECT max(seq) FROM {table}) - $1"),
                &[Param::Int(max_rows.min(i64::MAX as u64) as i64)],
            )?;
        }
    }
    Ok(())
}
