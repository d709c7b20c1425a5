//! The SQLite sink: writes each batch in one transaction, connects and
//! disconnects as rows, message events packed into blocks
//! ([`blocks`](crate::recorder::blocks)) whose data goes to the segment files
//! ([`segments`](super::segments)); applies retention.

use rusqlite::{CachedStatement, Connection, Transaction};

use super::schema::{insert_block, Retention, RowCounts};
use super::segments::Segments;
use crate::recorder::blocks::{Builder, Recorded};
use crate::recorder::codec::Events;
use crate::recorder::writer::{ConnectionRow, Pacer, Sink};

pub struct SqliteSink {
    pub conn: Connection,
    pub counts: RowCounts,
    pub retention: Retention,
    pub segments: Segments,
    /// The time of the last message event recorded: no later event is recorded
    /// earlier (see [`Builder`]).
    pub last_at: i64,
    pub pacer: Pacer,
}

const CONNECTION_INSERT: &str = "INSERT INTO connections (connection_id, client_id, at_ms, \
     kind, reason, username, peer, transport, proto_ver, keepalive, clean_start, will_topic, \
     will_payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

impl Sink for SqliteSink {
    fn write(&mut self, batch: &[u8]) -> Result<(), String> {
        let mut counts = self.counts;
        let mut builder = Builder::new(self.last_at);
        let segments = &mut self.segments;
        let pacer = &mut self.pacer;
        pacer.restart();
        let result = self.conn.transaction().and_then(|tx| {
            let mut connections = tx.prepare_cached(CONNECTION_INSERT)?;
            // `address:port` of each CONNECT, formatted into one buffer.
            let mut peer = String::new();
            for event in Events::new(batch) {
                pacer.tick();
                if let Some(recorded) = Recorded::of(&event) {
                    if let Some(block) = builder.push(&recorded) {
                        insert_block(&tx, &block, Some(segments.place(&block.data)))?;
                        counts.add_block(&block);
                    }
                } else if let Some(row) = ConnectionRow::of(&event, &mut peer) {
                    bind_connection(&mut connections, &row)?;
                    connections.raw_execute()?;
                    counts.connections += 1;
                }
            }
            if let Some(block) = builder.finish() {
                insert_block(&tx, &block, Some(segments.place(&block.data)))?;
                counts.add_block(&block);
            }
            drop(connections);
            Ok(tx)
        });
        write_then_commit(result, segments, pacer)?;
        self.counts = counts;
        self.last_at = builder.last_at();
        Ok(())
    }

    fn prune(&mut self, now_ms: i64) -> Result<(), String> {
        let mut counts = self.counts;
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let applied = self
            .retention
            .apply(&tx, now_ms, &mut counts, &mut self.segments)
            .map(|()| tx);
        write_then_commit(applied, &mut self.segments, &mut self.pacer)?;
        self.counts = counts;
        self.segments
            .remove_unused(&self.conn)
            .map_err(|e| e.to_string())
    }
}

/// Writes the blocks' data placed in `tx`, then commits it (a committed row
/// never points past the data written); when `tx` failed or does not commit,
/// its data is forgotten.
fn write_then_commit(
    tx: rusqlite::Result<Transaction<'_>>,
    segments: &mut Segments,
    pacer: &mut Pacer,
) -> Result<(), String> {
    let done = tx.map_err(|e| e.to_string()).and_then(|tx| {
        segments
            .write_pending(pacer)
            .map_err(|e| format!("writing block data: {e}"))?;
        tx.commit().map_err(|e| e.to_string())
    });
    match done {
        Ok(()) => segments.committed(),
        Err(_) => segments.forget(),
    }
    done
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
