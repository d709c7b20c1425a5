//! The writer thread: takes whole batches out of the queue and writes each in one
//! transaction through cached statements, binding the queued bytes in place; applies
//! retention between batches; on close writes what waits and ends (the thread is
//! joined by [`Recorder::close`](super::Recorder::close)).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{CachedStatement, Connection, Transaction};

use super::codec::{Decoded, Events};
use super::queue::{Queue, Work};
use super::schema::{
    Retention, RowCounts, CONNECTIONS, DELIVERIES, KIND_CONNECT, KIND_DISCONNECT, MESSAGES,
};

pub struct Writer {
    pub conn: Connection,
    pub queue: Arc<Queue>,
    pub counts: RowCounts,
    pub retention: Retention,
    pub prune_interval: Duration,
    /// Zero when every batch is to be written at once (`sync`).
    pub batch_interval: Duration,
}

impl Writer {
    pub fn run(mut self) {
        let mut buf = Vec::new();
        let mut prune_due = Instant::now() + self.prune_interval;
        loop {
            match self
                .queue
                .next_work(&mut buf, self.batch_interval, prune_due)
            {
                Work::Batch { events, upto } => {
                    self.write(&buf, events);
                    buf.clear();
                    self.queue.committed(upto);
                }
                Work::Prune(now_ms) => {
                    self.prune(now_ms);
                    prune_due = Instant::now() + self.prune_interval;
                    self.queue.pruned();
                }
                Work::Closed => return,
            }
        }
    }

    fn write(&mut self, buf: &[u8], events: usize) {
        let result = self.conn.transaction().and_then(|tx| {
            let added = insert(&tx, buf)?;
            tx.commit()?;
            Ok(added)
        });
        match result {
            Ok(added) => self.counts.add(added),
            Err(e) => {
                let dropped = self.queue.count_dropped(events as u64);
                tracing::error!(
                    "records: a batch of {events} events was lost ({dropped} so far): {e}"
                );
            }
        }
    }

    fn prune(&mut self, now_ms: i64) {
        let result = self.conn.transaction().and_then(|tx| {
            self.retention.apply(&tx, now_ms, &self.counts)?;
            tx.commit()
        });
        if let Err(e) = result {
            tracing::warn!("records retention failed: {e}");
        }
    }
}

/// The insert statements of one transaction.
struct Statements<'tx> {
    connections: CachedStatement<'tx>,
    messages: CachedStatement<'tx>,
    deliveries: CachedStatement<'tx>,
    /// `address:port` of the current CONNECT, formatted without allocating.
    peer: String,
}

/// Inserts the queued events of `buf`; returns the rows added per table.
fn insert(tx: &Transaction<'_>, buf: &[u8]) -> rusqlite::Result<[u64; 3]> {
    let mut s = Statements {
        connections: tx.prepare_cached(
            "INSERT INTO connections (connection_id, client_id, at_ms, kind, reason, username,
                 peer, transport, proto_ver, keepalive, clean_start, will_topic, will_payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?,
        messages: tx.prepare_cached(
            "INSERT OR REPLACE INTO messages (message_id, client_id, connection_id, topic, qos,
                 retain, payload, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?,
        deliveries: tx.prepare_cached(
            "INSERT INTO deliveries (message_id, client_id, connection_id, topic, qos, at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?,
        peer: String::new(),
    };
    let mut added = [0u64; 3];
    for event in Events::new(buf) {
        let table = match event {
            Decoded::Connected { .. } | Decoded::Disconnected { .. } => {
                s.connection(&event)?;
                CONNECTIONS
            }
            Decoded::MessageIn { .. } => {
                s.message(&event)?;
                MESSAGES
            }
            Decoded::Delivered { .. } => {
                s.delivery(&event)?;
                DELIVERIES
            }
        };
        added[table] += 1;
    }
    Ok(added)
}

/// Message and connection ids are u64; SQLite integers are i64. The bits are kept.
pub fn id_to_sql(id: u64) -> i64 {
    id as i64
}

impl Statements<'_> {
    fn connection(&mut self, event: &Decoded<'_>) -> rusqlite::Result<()> {
        let st = &mut self.connections;
        match *event {
            Decoded::Connected {
                connection_id,
                at_ms,
                client_id,
                username,
                peer,
                transport,
                proto_ver,
                keepalive,
                clean_start,
                will_topic,
                will_payload,
            } => {
                self.peer.clear();
                let _ = write!(self.peer, "{peer}");
                st.raw_bind_parameter(1, id_to_sql(connection_id))?;
                st.raw_bind_parameter(2, client_id)?;
                st.raw_bind_parameter(3, at_ms)?;
                st.raw_bind_parameter(4, KIND_CONNECT)?;
                st.raw_bind_parameter(5, "normal")?;
                st.raw_bind_parameter(6, username)?;
                st.raw_bind_parameter(7, self.peer.as_str())?;
                st.raw_bind_parameter(
                    8,
                    match transport {
                        mqgate_kit::Transport::Tcp => "tcp",
                        mqgate_kit::Transport::WebSocket => "websocket",
                    },
                )?;
                st.raw_bind_parameter(9, proto_ver)?;
                st.raw_bind_parameter(10, keepalive)?;
                st.raw_bind_parameter(11, clean_start)?;
                st.raw_bind_parameter(12, will_topic)?;
                st.raw_bind_parameter(13, will_payload)?;
            }
            Decoded::Disconnected {
                connection_id,
                at_ms,
                client_id,
                username,
                reason,
            } => {
                st.raw_bind_parameter(1, id_to_sql(connection_id))?;
                st.raw_bind_parameter(2, client_id)?;
                st.raw_bind_parameter(3, at_ms)?;
                st.raw_bind_parameter(4, KIND_DISCONNECT)?;
                st.raw_bind_parameter(5, reason)?;
                st.raw_bind_parameter(6, username)?;
                for i in 7..=13 {
                    st.raw_bind_parameter(i, rusqlite::types::Null)?;
                }
            }
            _ => return Ok(()),
        }
        st.raw_execute().map(drop)
    }

    fn message(&mut self, event: &Decoded<'_>) -> rusqlite::Result<()> {
        let Decoded::MessageIn {
            message_id,
            at_ms,
            client_id,
            connection_id,
            topic,
            qos,
            retain,
            payload,
        } = *event
        else {
            return Ok(());
        };
        let st = &mut self.messages;
        st.raw_bind_parameter(1, id_to_sql(message_id))?;
        st.raw_bind_parameter(2, client_id)?;
        st.raw_bind_parameter(3, connection_id.map(id_to_sql))?;
        st.raw_bind_parameter(4, topic)?;
        st.raw_bind_parameter(5, qos)?;
        st.raw_bind_parameter(6, retain)?;
        st.raw_bind_parameter(7, payload)?;
        st.raw_bind_parameter(8, at_ms)?;
        st.raw_execute().map(drop)
    }

    fn delivery(&mut self, event: &Decoded<'_>) -> rusqlite::Result<()> {
        let Decoded::Delivered {
            message_id,
            at_ms,
            client_id,
            connection_id,
            topic,
            qos,
        } = *event
        else {
            return Ok(());
        };
        let st = &mut self.deliveries;
        st.raw_bind_parameter(1, message_id.map(id_to_sql))?;
        st.raw_bind_parameter(2, client_id)?;
        st.raw_bind_parameter(3, id_to_sql(connection_id))?;
        st.raw_bind_parameter(4, topic)?;
        st.raw_bind_parameter(5, qos)?;
        st.raw_bind_parameter(6, at_ms)?;
        st.raw_execute().map(drop)
    }
}
