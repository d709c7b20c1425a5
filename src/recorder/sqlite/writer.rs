//! The SQLite sink: writes each batch in one transaction through cached
//! statements, binding the queued bytes in place; names client ids and topics by
//! number ([`Names`]); applies retention by walking each table's key.

use std::fmt::Write as _;

use rusqlite::{CachedStatement, Connection, Transaction};

use super::names::Names;
use super::schema::{Retention, RowCounts, CONNECTIONS, DELIVERIES, MESSAGES};
use crate::recorder::codec::{Decoded, Events};
use crate::recorder::writer::{ConnectionRow, Sink};

pub struct SqliteSink {
    pub conn: Connection,
    pub counts: RowCounts,
    pub retention: Retention,
    pub names: Names,
    /// The id of the next delivery row (ids are given here so that each name's
    /// mark is known before the batch commits).
    pub next_delivery: i64,
}

impl Sink for SqliteSink {
    fn write(&mut self, batch: &[u8]) -> Result<(), String> {
        let names = &mut self.names;
        let mut next_delivery = self.next_delivery;
        let result = self.conn.transaction().and_then(|tx| {
            let added = insert(&tx, batch, names, &mut next_delivery)?;
            names.write_marks(&tx)?;
            tx.commit()?;
            Ok(added)
        });
        match result {
            Ok(added) => {
                self.counts.add(added);
                self.next_delivery = next_delivery;
                Ok(())
            }
            Err(e) => {
                self.names.rolled_back();
                Err(e.to_string())
            }
        }
    }

    fn prune(&mut self, now_ms: i64) -> Result<(), String> {
        let names = &mut self.names;
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        self.retention
            .apply(&tx, now_ms, &self.counts)
            .and_then(|()| names.collect(&tx).map(drop))
            .and_then(|()| tx.commit())
            .map_err(|e| e.to_string())
    }
}

/// Rows per multi-row INSERT: one statement step writes this many rows, which
/// takes about a third off the cost per row (16 × 8 parameters, far below
/// SQLite's limit).
const ROWS_PER_INSERT: usize = 16;

const CONNECTION_INSERT: &str = "INSERT INTO connections (connection_id, client_id, at_ms, \
     kind, reason, username, peer, transport, proto_ver, keepalive, clean_start, will_topic, \
     will_payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const MESSAGE_INSERT: &str = "INSERT OR REPLACE INTO messages (message_id, client, \
     connection_id, topic, qos, retain, payload, at_ms) VALUES ";
const MESSAGE_PARAMS: usize = 8;
const DELIVERY_INSERT: &str = "INSERT INTO deliveries (id, message_id, client, connection_id, \
     topic, qos, at_ms) VALUES ";
const DELIVERY_PARAMS: usize = 7;

/// A `messages` or `deliveries` row: the event, with its names by number.
struct Row<'a> {
    event: Decoded<'a>,
    client: Option<i64>,
    topic: i64,
    /// The delivery row's id (deliveries only).
    id: i64,
}

/// Inserts the queued events of `buf`; returns the rows added per table.
fn insert(
    tx: &Transaction<'_>,
    buf: &[u8],
    names: &mut Names,
    next_delivery: &mut i64,
) -> rusqlite::Result<[u64; 3]> {
    let mut connections = tx.prepare_cached(CONNECTION_INSERT)?;
    // `address:port` of each CONNECT, formatted into one buffer.
    let mut peer = String::new();
    let mut messages = Vec::new();
    let mut deliveries = Vec::new();
    let mut added = [0u64; 3];
    for event in Events::new(buf) {
        match event {
            Decoded::MessageIn {
                message_id,
                client_id,
                topic,
                ..
            } => {
                let message_id = id_to_sql(message_id);
                let client = client_id.map(|c| names.id(tx, c)).transpose()?;
                let topic = names.id(tx, topic)?;
                for name in client.into_iter().chain([topic]) {
                    names.used_by_message(name, message_id);
                }
                messages.push(Row {
                    event,
                    client,
                    topic,
                    id: 0,
                });
            }
            Decoded::Delivered {
                client_id, topic, ..
            } => {
                let id = *next_delivery;
                *next_delivery += 1;
                let client = names.id(tx, client_id)?;
                let topic = names.id(tx, topic)?;
                names.used_by_delivery(client, id);
                names.used_by_delivery(topic, id);
                deliveries.push(Row {
                    event,
                    client: Some(client),
                    topic,
                    id,
                });
            }
            _ => {
                if let Some(row) = ConnectionRow::of(&event, &mut peer) {
                    bind_connection(&mut connections, &row)?;
                    connections.raw_execute()?;
                    added[CONNECTIONS] += 1;
                }
            }
        }
    }
    insert_many(tx, MESSAGE_INSERT, MESSAGE_PARAMS, &messages, bind_message)?;
    insert_many(
        tx,
        DELIVERY_INSERT,
        DELIVERY_PARAMS,
        &deliveries,
        bind_delivery,
    )?;
    added[MESSAGES] = messages.len() as u64;
    added[DELIVERIES] = deliveries.len() as u64;
    Ok(added)
}

/// `head` followed by `rows` groups of `params` numbered parameters.
fn values_sql(head: &str, params: usize, rows: usize) -> String {
    let mut sql = String::from(head);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for p in 1..=params {
            let sep = if p == params { ")" } else { ", " };
            let _ = write!(sql, "?{}{sep}", row * params + p);
        }
    }
    sql
}

type Bind = fn(&mut CachedStatement<'_>, usize, &Row<'_>) -> rusqlite::Result<()>;

/// Inserts `rows` [`ROWS_PER_INSERT`] at a time, the rest one by one.
fn insert_many(
    tx: &Transaction<'_>,
    head: &str,
    params: usize,
    rows: &[Row<'_>],
    bind: Bind,
) -> rusqlite::Result<()> {
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    if chunks.len() > 0 {
        let mut st = tx.prepare_cached(&values_sql(head, params, ROWS_PER_INSERT))?;
        for chunk in &mut chunks {
            for (i, row) in chunk.iter().enumerate() {
                bind(&mut st, i * params, row)?;
            }
            st.raw_execute()?;
        }
    }
    if !chunks.remainder().is_empty() {
        let mut st = tx.prepare_cached(&values_sql(head, params, 1))?;
        for row in chunks.remainder() {
            bind(&mut st, 0, row)?;
            st.raw_execute()?;
        }
    }
    Ok(())
}

/// Message and connection ids are u64; SQLite integers are i64. The bits are kept.
pub fn id_to_sql(id: u64) -> i64 {
    id as i64
}

fn bind_connection(st: &mut CachedStatement<'_>, row: &ConnectionRow<'_>) -> rusqlite::Result<()> {
    st.raw_bind_parameter(1, row.connection_id)?;
    st.raw_bind_parameter(2, row.client_id)?;
    st.raw_bind_parameter(3, row.at_ms)?;
    st.raw_bind_parameter(4, row.kind)?;
    st.raw_bind_parameter(5, row.reason)?;
    st.raw_bind_parameter(6, row.username)?;
    st.raw_bind_parameter(7, row.peer)?;
    st.raw_bind_parameter(8, row.transport)?;
    st.raw_bind_parameter(9, row.proto_ver)?;
    st.raw_bind_parameter(10, row.keepalive)?;
    st.raw_bind_parameter(11, row.clean_start)?;
    st.raw_bind_parameter(12, row.will_topic)?;
    st.raw_bind_parameter(13, row.will_payload)
}

/// Binds a `MessageIn` row after parameter `base`.
fn bind_message(st: &mut CachedStatement<'_>, base: usize, row: &Row<'_>) -> rusqlite::Result<()> {
    if let Decoded::MessageIn {
        message_id,
        at_ms,
        connection_id,
        qos,
        retain,
        payload,
        ..
    } = row.event
    {
        st.raw_bind_parameter(base + 1, id_to_sql(message_id))?;
        st.raw_bind_parameter(base + 2, row.client)?;
        st.raw_bind_parameter(base + 3, connection_id.map(id_to_sql))?;
        st.raw_bind_parameter(base + 4, row.topic)?;
        st.raw_bind_parameter(base + 5, qos)?;
        st.raw_bind_parameter(base + 6, retain)?;
        st.raw_bind_parameter(base + 7, payload)?;
        st.raw_bind_parameter(base + 8, at_ms)?;
    }
    Ok(())
}

/// Binds a `Delivered` row after parameter `base`.
fn bind_delivery(st: &mut CachedStatement<'_>, base: usize, row: &Row<'_>) -> rusqlite::Result<()> {
    if let Decoded::Delivered {
        message_id,
        at_ms,
        connection_id,
        qos,
        ..
    } = row.event
    {
        st.raw_bind_parameter(base + 1, row.id)?;
        st.raw_bind_parameter(base + 2, message_id.map(id_to_sql))?;
        st.raw_bind_parameter(base + 3, row.client)?;
        st.raw_bind_parameter(base + 4, id_to_sql(connection_id))?;
        st.raw_bind_parameter(base + 5, row.topic)?;
        st.raw_bind_parameter(base + 6, qos)?;
        st.raw_bind_parameter(base + 7, at_ms)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_values_are_numbered_in_order() {
        assert_eq!(
            values_sql("INSERT INTO t VALUES ", 2, 3),
            "INSERT INTO t VALUES (?1, ?2), (?3, ?4), (?5, ?6)"
        );
    }
}
