//! Records in their own SQLite file, `<data_dir>/records.db` (the default): one
//! process's records, beside its state.
//!
//! - [`schema`]: tables, indexes, the step from rows to blocks, retention;
//!   [`writer`]: the [`Sink`](super::writer::Sink). The queries are
//!   [`blocks::query`](super::blocks::query)'s.

pub mod schema;
pub mod writer;

use std::path::Path;

use mqgate_kit::store::{SqliteTuning, Store, StoreError};

use super::blocks::query::Reader;
use super::query::ConnectionTable;
use super::RecordsConfig;
use schema::{Retention, RowCounts};
use writer::SqliteSink;

/// Index pages of many clients and topics stay in memory (64 MiB per connection).
const CACHE_KIB: i64 = 65_536;

/// Opens (creating or upgrading) the records file in `data_dir`, which exists
/// (the gateway makes it at start): the writer's sink and the reader.
pub fn open(data_dir: &Path, config: &RecordsConfig) -> Result<(SqliteSink, Reader), StoreError> {
    let conn = schema::open(data_dir, CACHE_KIB)?;
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
        retention: Retention {
            max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
            max_rows: config.max_rows,
        },
    };
    let connections = ConnectionTable {
        table: "connections",
        key: "id",
    };
    Ok((sink, Reader::new(reads, connections)))
}
