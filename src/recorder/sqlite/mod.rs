//! Records in their own SQLite file, `<data_dir>/records.db` (the default): one
//! process's records, beside its state.
//!
//! - [`schema`]: tables, indexes, retention; [`names`]: client ids and topics by
//!   number; [`writer`]: the [`Sink`](super::writer::Sink). The queries are
//!   [`query`](super::query)'s, over [`TABLES`].

pub mod names;
pub mod schema;
pub mod writer;

use std::path::Path;

use mqgate_kit::store::{SqliteTuning, Store, StoreError};

use super::query::{Reader, Tables};
use super::RecordsConfig;
use names::Names;
use schema::{Retention, RowCounts};
use writer::SqliteSink;

/// Client ids and topics of `messages` and `deliveries` are numbers in `names`.
pub static TABLES: Tables = Tables {
    connections: "connections",
    messages: "messages",
    deliveries: "deliveries",
    connection_key: "id",
    message_key: "message_id",
    delivery_key: "id",
    client_is: "client = (SELECT id FROM names WHERE name = ?)",
    topic_is: "topic = (SELECT id FROM names WHERE name = ?)",
    client_name: "(SELECT name FROM names WHERE id = client)",
    topic_name: "(SELECT name FROM names WHERE id = topic)",
    has_sender: "client IS NOT NULL",
};

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
        next_delivery: schema::next_delivery_id(&conn)?,
        conn,
        retention: Retention {
            max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
            max_rows: config.max_rows,
        },
        names: Names::default(),
    };
    Ok((sink, Reader::new(reads, &TABLES)))
}
