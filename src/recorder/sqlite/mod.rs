//! Records in their own SQLite file, `<data_dir>/records.db` (the default): one
//! process's records, beside its state.
//!
//! - [`schema`]: tables, indexes, the steps from rows to blocks and to
//!   segments, retention;
//! - [`segments`]: the blocks' data, in append-only files beside the database;
//! - [`writer`]: the [`Sink`](super::writer::Sink).
//!
//! The queries are [`blocks::query`](super::blocks::query)'s.

pub mod schema;
pub mod segments;
pub mod writer;

use std::path::Path;
use std::sync::Arc;

use mqgate_kit::store::{SqliteTuning, Store, StoreError};

use super::blocks::query::Reader;
use super::query::ConnectionTable;
use super::queue::Queue;
use super::writer::Pacer;
use super::RecordsConfig;
use schema::{Retention, RowCounts};
use segments::{BlockFiles, Segments};
use writer::SqliteSink;

/// Index pages of many clients and topics stay in memory (64 MiB per connection).
const CACHE_KIB: i64 = 65_536;

/// Opens (creating or upgrading) the records file in `data_dir`, which exists
/// (the gateway makes it at start): the writer's sink, paced against `queue`
/// (the one it writes from), and the reader.
pub fn open(
    data_dir: &Path,
    config: &RecordsConfig,
    queue: &Arc<Queue>,
) -> Result<(SqliteSink, Reader), StoreError> {
    let conn = schema::open(data_dir, CACHE_KIB)?;
    let segments = Segments::open(data_dir, &conn).map_err(|source| StoreError::CreateDir {
        path: data_dir.join(segments::DIR),
        source,
    })?;
    let reads = Store::open_file(
        &data_dir.join(schema::FILE_NAME),
        SqliteTuning {
            synchronous_full: false,
            cache_kib: Some(CACHE_KIB),
            wal_autocheckpoint: None,
        },
    )?;
    let sink = SqliteSink {
        counts: RowCounts::count(&conn)?,
        last_at: schema::last_at(&conn)?,
        conn,
        segments,
        pacer: Pacer::of(queue),
        retention: Retention {
            max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
            max_rows: config.max_rows,
        },
    };
    let connections = ConnectionTable {
        table: "connections",
        key: "id",
    };
    let files = BlockFiles::new(data_dir);
    Ok((sink, Reader::new(reads, connections, files)))
}
