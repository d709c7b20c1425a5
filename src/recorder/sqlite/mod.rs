//! Records in their own SQLite file, `<data_dir>/records.db` (the default): one
//! process's records, beside its state.
//!
//! - [`schema`]: tables, indexes, retention; [`names`]: client ids and topics by
//!   number; [`writer`]: the [`Sink`](super::writer::Sink); [`query`]: the
//!   [`History`] queries, on a read connection of their own.

pub mod names;
pub mod query;
pub mod schema;
pub mod writer;

use std::path::Path;

use mqgate_kit::history::{
    ConnectionRecord, Direction, History, MessageRecord, RecordQuery, StoredMessage,
};
use mqgate_kit::store::StoreError;
use mqgate_kit::{MgmtError, Page};
use parking_lot::Mutex;
use rusqlite::Connection;

use super::RecordsConfig;
use names::Names;
use schema::{Retention, RowCounts};
use writer::SqliteSink;

/// Opens (creating or upgrading) the records file in `data_dir`: the writer's
/// sink and the reader.
pub fn open(
    data_dir: &Path,
    config: &RecordsConfig,
) -> Result<(SqliteSink, SqliteReader), StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let conn = schema::open(data_dir)?;
    let reader = schema::open(data_dir)?;
    let sink = SqliteSink {
        counts: RowCounts::count(&conn)?,
        next_delivery: schema::next_delivery_id(&conn)?,
        conn,
        retention: Retention {
            max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
            max_rows: config.max_rows,
        },
        names: Names::default(),
    };
    Ok((sink, SqliteReader(Mutex::new(Some(reader)))))
}

/// The read connection; `None` once closed.
pub struct SqliteReader(Mutex<Option<Connection>>);

impl SqliteReader {
    fn read<T>(
        &self,
        run: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, MgmtError> {
        let reader = self.0.lock();
        let conn = reader.as_ref().ok_or(MgmtError::ShuttingDown)?;
        run(conn).map_err(|e| MgmtError::Store(e.to_string()))
    }

    pub fn close(&self) {
        self.0.lock().take();
    }
}

impl History for SqliteReader {
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
}
