//! The records database: its own SQLite file beside the gateway's store
//! (`<data_dir>/records.db`), so record batches never wait for, nor hold up, the
//! dialects' writes, and can run with `synchronous = NORMAL`: in WAL mode a
//! committed transaction survives a crash of the process (kill -9); only an
//! operating-system crash or power loss may take the last ones.
//!
//! - `connections`: connects and disconnects, a row each (by client and time);
//! - `blocks`: messages as they entered and deliveries, packed in blocks (see
//!   [`blocks`](crate::recorder::blocks)), by time and by message id;
//! - `block_names`: each block's senders, receivers and topics with their counts.
//!
//! Files written before blocks held a row per message and per delivery (and,
//! from the second schema, their names by number in `names`): the step to
//! blocks packs those rows into blocks, in time order, and drops their tables.
//!
//! Retention walks `connections` by key and `blocks` from the oldest: rows and
//! blocks are written in time order. A block the limit cuts through is written
//! again with the events it keeps.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::segments::{Placement, Segments, DATA_SQL};
use crate::recorder::blocks::{self, Block, Builder, Recorded};

pub const FILE_NAME: &str = "records.db";

/// `ROW_MIGRATIONS[i]` moves the schema from `user_version` i to i + 1: the
/// schemas of a row per message.
pub(crate) const ROW_MIGRATIONS: &[&str] = &[
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

/// The step to blocks (from `user_version` 2 to 3): the tables before the rows
/// are packed into them.
const BLOCKS: &str = "
CREATE TABLE blocks (
    id INTEGER PRIMARY KEY,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    min_message INTEGER,
    max_message INTEGER,
    messages INTEGER NOT NULL,
    uplinks INTEGER NOT NULL,
    deliveries INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX blocks_first_at ON blocks (first_at);
CREATE INDEX blocks_last_at ON blocks (last_at);
CREATE INDEX blocks_message ON blocks (max_message, min_message);

CREATE TABLE block_names (
    name TEXT NOT NULL,
    role INTEGER NOT NULL,
    block INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (name, role, block)
) WITHOUT ROWID;
CREATE INDEX block_names_block ON block_names (block);
";

/// The step to segment files (from `user_version` 3 to 4): where a block's
/// data is when it is not in its row (see [`segments`](super::segments)).
const SEGMENTS: &str = "
ALTER TABLE blocks ADD COLUMN segment INTEGER;
ALTER TABLE blocks ADD COLUMN seg_offset INTEGER;
ALTER TABLE blocks ADD COLUMN seg_length INTEGER;
ALTER TABLE blocks ADD COLUMN seg_crc INTEGER;
CREATE INDEX blocks_segment ON blocks (segment, seg_offset);
";

/// The schema [`open`] leaves.
pub const VERSION: i64 = 4;

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
    if version >= VERSION {
        return Ok(conn);
    }
    let tx = conn.transaction()?;
    if version < 3 {
        // A new file passes through the row tables too: they are empty.
        for step in ROW_MIGRATIONS.iter().skip(version.max(0) as usize) {
            tx.execute_batch(step)?;
        }
        tx.execute_batch(BLOCKS)?;
        tx.execute_batch(SEGMENTS)?;
        pack_rows(&tx)?;
        tx.execute_batch("DROP TABLE messages; DROP TABLE deliveries; DROP TABLE names;")?;
    } else {
        tx.execute_batch(SEGMENTS)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(conn)
}

/// Packs the rows of a file written before blocks into blocks, in time order (a
/// message before its deliveries within a millisecond).
fn pack_rows(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut st = tx.prepare(
        "SELECT 0 AS delivery, m.message_id, c.name, m.connection_id, t.name, m.qos, m.retain,
                m.payload, m.at_ms, m.message_id AS key
           FROM messages m LEFT JOIN names c ON c.id = m.client JOIN names t ON t.id = m.topic
         UNION ALL
         SELECT 1, d.message_id, c.name, d.connection_id, t.name, d.qos, 0, NULL, d.at_ms, d.id
           FROM deliveries d JOIN names c ON c.id = d.client JOIN names t ON t.id = d.topic
         ORDER BY 9, 1, 10",
    )?;
    let mut rows = st.query([])?;
    let mut chunk: Vec<OldRow> = Vec::with_capacity(blocks::MAX_EVENTS as usize);
    let mut last_at = i64::MIN;
    loop {
        let row = rows.next()?;
        if let Some(row) = row {
            chunk.push(OldRow {
                delivery: row.get::<_, i64>(0)? == 1,
                message_id: row.get::<_, Option<i64>>(1)?.map(|id| id as u64),
                client_id: row.get(2)?,
                connection_id: row.get::<_, Option<i64>>(3)?.map(|id| id as u64),
                topic: row.get(4)?,
                qos: row.get(5)?,
                retain: row.get(6)?,
                payload: row.get::<_, Option<Vec<u8>>>(7)?.unwrap_or_default(),
                at_ms: row.get(8)?,
            });
        }
        if chunk.len() == blocks::MAX_EVENTS as usize || (row.is_none() && !chunk.is_empty()) {
            let mut builder = Builder::new(last_at);
            for old in &chunk {
                builder.push(&old.recorded());
            }
            last_at = builder.last_at();
            if let Some(block) = builder.finish() {
                // Rows packed at the upgrade keep their data in their blocks' rows.
                insert_block(tx, &block, None)?;
            }
            chunk.clear();
        }
        if row.is_none() {
            return Ok(());
        }
    }
}

/// A `messages` or `deliveries` row of a file written before blocks.
struct OldRow {
    delivery: bool,
    message_id: Option<u64>,
    client_id: Option<String>,
    connection_id: Option<u64>,
    topic: String,
    qos: u8,
    retain: bool,
    payload: Vec<u8>,
    at_ms: i64,
}

impl OldRow {
    fn recorded(&self) -> Recorded<'_> {
        Recorded {
            direction: if self.delivery {
                mqgate_kit::history::Direction::Downlink
            } else {
                mqgate_kit::history::Direction::Uplink
            },
            message_id: self.message_id,
            at_ms: self.at_ms,
            client_id: self.client_id.as_deref(),
            connection_id: self.connection_id,
            topic: &self.topic,
            qos: self.qos,
            retain: self.retain,
            payload: &self.payload,
        }
    }
}

/// Adds `block` and its names, its data at `at` (`None`: in its row); returns
/// its id.
pub fn insert_block(
    tx: &Transaction<'_>,
    block: &Block<'_>,
    at: Option<Placement>,
) -> rusqlite::Result<i64> {
    write_block(tx, None, block, at)
}

/// Writes `block` as block `id` (a new one when `None`), and its names.
fn write_block(
    tx: &Transaction<'_>,
    id: Option<i64>,
    block: &Block<'_>,
    at: Option<Placement>,
) -> rusqlite::Result<i64> {
    let inline: &[u8] = if at.is_some() { &[] } else { &block.data };
    tx.prepare_cached(
        "INSERT OR REPLACE INTO blocks (id, first_at, last_at, min_message, max_message,
                   messages, uplinks, deliveries, data, segment, seg_offset, seg_length, seg_crc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        id,
        block.first_at,
        block.last_at,
        block.message_ids.map(|(lo, _)| lo),
        block.message_ids.map(|(_, hi)| hi),
        block.messages,
        block.uplinks,
        block.deliveries,
        inline,
        at.map(|at| at.segment),
        at.map(|at| at.offset),
        at.map(|at| at.length),
        at.map(|at| at.crc),
    ])?;
    let id = tx.last_insert_rowid();
    let mut names = tx.prepare_cached(
        "INSERT INTO block_names (name, role, block, events) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (name, role, events) in &block.names {
        names.execute(params![name, *role as u8, id, events])?;
    }
    Ok(id)
}

/// Replaces block `id` with `block` (`None`: nothing of it is kept), its data
/// placed in `segments`.
fn replace_block(
    tx: &Transaction<'_>,
    id: i64,
    block: Option<&Block<'_>>,
    segments: &mut Segments,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM block_names WHERE block = ?1")?
        .execute([id])?;
    match block {
        Some(block) => {
            let at = segments.place(&block.data);
            write_block(tx, Some(id), block, Some(at)).map(drop)
        }
        None => tx
            .prepare_cached("DELETE FROM blocks WHERE id = ?1")?
            .execute([id])
            .map(drop),
    }
}

/// The data of block `id` as committed, from its row or its segment.
fn block_data(tx: &Transaction<'_>, id: i64, segments: &Segments) -> rusqlite::Result<Vec<u8>> {
    let (inline, at) = tx.prepare_cached(DATA_SQL)?.query_row([id], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            Placement::of_columns(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
        ))
    })?;
    Ok(segments.files().data(inline, at))
}

/// The time of the last event recorded (`i64::MIN` when none is).
pub fn last_at(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT coalesce(max(last_at), -9223372036854775808) FROM blocks",
        [],
        |r| r.get(0),
    )
}

/// What retention counts, kept in memory so that it needs no scan: connection
/// rows, messages and deliveries (each limited to `max_rows`). Counted at open,
/// then adjusted by every write and every retention pass.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RowCounts {
    pub connections: u64,
    pub messages: u64,
    pub deliveries: u64,
}

impl RowCounts {
    pub fn count(conn: &Connection) -> rusqlite::Result<RowCounts> {
        let connections: i64 =
            conn.query_row("SELECT count(*) FROM connections", [], |r| r.get(0))?;
        let (messages, deliveries): (i64, i64) = conn.query_row(
            "SELECT coalesce(sum(messages), 0), coalesce(sum(deliveries), 0) FROM blocks",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(RowCounts {
            connections: connections as u64,
            messages: messages as u64,
            deliveries: deliveries as u64,
        })
    }

    pub fn add_block(&mut self, block: &Block<'_>) {
        self.messages += u64::from(block.messages);
        self.deliveries += u64::from(block.deliveries);
    }
}

pub struct Retention {
    pub max_age_ms: i64,
    pub max_rows: u64,
}

impl Retention {
    /// Deletes what is older than the age limit, then the oldest records over
    /// the row limit: connection rows by key, blocks from the oldest.
    pub fn apply(
        &self,
        tx: &Transaction<'_>,
        now_ms: i64,
        counts: &mut RowCounts,
        segments: &mut Segments,
    ) -> rusqlite::Result<()> {
        let cutoff = (self.max_age_ms > 0).then(|| now_ms.saturating_sub(self.max_age_ms));
        if let Some(cutoff) = cutoff {
            let removed = tx.execute(
                "DELETE FROM connections WHERE id < coalesce(
                   (SELECT id FROM connections WHERE at_ms >= ?1 ORDER BY id LIMIT 1),
                   (SELECT max(id) + 1 FROM connections))",
                [cutoff],
            )?;
            counts.connections = counts.connections.saturating_sub(removed as u64);
        }
        if self.max_rows > 0 && counts.connections > self.max_rows {
            let removed = tx.execute(
                "DELETE FROM connections WHERE id <=
                   (SELECT id FROM connections ORDER BY id LIMIT 1 OFFSET ?1 - 1)",
                [(counts.connections - self.max_rows).min(i64::MAX as u64) as i64],
            )?;
            counts.connections = counts.connections.saturating_sub(removed as u64);
        }
        self.trim_blocks(tx, cutoff, counts, segments)
    }

    fn over(&self, count: u64) -> u64 {
        match self.max_rows {
            0 => 0,
            max => count.saturating_sub(max),
        }
    }

    /// Walks the blocks from the oldest while some are older than `cutoff` or
    /// messages or deliveries are over the limit.
    fn trim_blocks(
        &self,
        tx: &Transaction<'_>,
        cutoff: Option<i64>,
        counts: &mut RowCounts,
        segments: &mut Segments,
    ) -> rusqlite::Result<()> {
        let mut after = i64::MIN;
        loop {
            let mut excess = Excess {
                messages: self.over(counts.messages),
                deliveries: self.over(counts.deliveries),
                cutoff: cutoff.unwrap_or(i64::MIN),
            };
            let next: Option<(i64, i64, i64, i64, i64)> = tx
                .prepare_cached(
                    "SELECT id, first_at, last_at, messages, deliveries FROM blocks
                     WHERE id > ?1 ORDER BY id LIMIT 1",
                )?
                .query_row([after], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?;
            let Some((id, first_at, last_at, messages, deliveries)) = next else {
                return Ok(());
            };
            let (messages, deliveries) = (messages as u64, deliveries as u64);
            if first_at >= excess.cutoff && excess.messages == 0 && excess.deliveries == 0 {
                return Ok(());
            }
            after = id;
            if last_at < excess.cutoff
                || (messages <= excess.messages && deliveries <= excess.deliveries)
            {
                replace_block(tx, id, None, segments)?;
                counts.messages = counts.messages.saturating_sub(messages);
                counts.deliveries = counts.deliveries.saturating_sub(deliveries);
                continue;
            }
            let data = block_data(tx, id, segments)?;
            let mut builder = Builder::new(i64::MIN);
            let mut kept = None;
            let mut dropped = 0;
            for event in blocks::Events::new(&data) {
                if excess.drops(&event) {
                    dropped += 1;
                } else {
                    // one block in, one block (or none) out: never full
                    kept = builder.push(&event).or(kept);
                }
            }
            if dropped == 0 {
                continue;
            }
            let kept = kept.or_else(|| builder.finish());
            replace_block(tx, id, kept.as_ref(), segments)?;
            let (kept_messages, kept_deliveries) = kept
                .as_ref()
                .map_or((0, 0), |b| (u64::from(b.messages), u64::from(b.deliveries)));
            counts.messages = counts.messages.saturating_sub(messages - kept_messages);
            counts.deliveries = counts
                .deliveries
                .saturating_sub(deliveries - kept_deliveries);
        }
    }
}

/// What retention still has to drop, oldest first.
struct Excess {
    messages: u64,
    deliveries: u64,
    cutoff: i64,
}

impl Excess {
    /// Whether `event` goes (and counts it).
    fn drops(&mut self, event: &Recorded<'_>) -> bool {
        let over = if event.is_delivery() {
            &mut self.deliveries
        } else {
            &mut self.messages
        };
        if event.at_ms < self.cutoff {
            *over = over.saturating_sub(1);
            return true;
        }
        if *over > 0 {
            *over -= 1;
            return true;
        }
        false
    }
}
