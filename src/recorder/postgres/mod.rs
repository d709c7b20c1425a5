//! Records in the `[store]` PostgreSQL database (`[records] backend = "postgres"`,
//! or `auto` on a PostgreSQL store): one set of tables for every process on the
//! database, so a record query through any node answers for the whole cluster,
//! and a message's records from every node it crossed share its id.
//!
//! - [`schema`]: tables, indexes, retention; [`ids`]: the message id slot this
//!   process leases; [`writer`]: the [`Sink`](super::writer::Sink), binary `COPY`
//!   per batch. The queries are [`query`](super::query)'s, over [`TABLES`],
//!   through the `[store]` pool.

pub mod ids;
pub mod schema;
pub mod writer;

use std::sync::Arc;

use mqgate_kit::store::{PostgresOptions, Store, StoreError};

use super::query::{Reader, Tables};
use super::RecordsConfig;
use writer::PgSink;

/// Client ids and topics are text in every table.
pub static TABLES: Tables = Tables {
    connections: "records_connections",
    messages: "records_messages",
    deliveries: "records_deliveries",
    connection_key: "seq",
    message_key: "seq",
    delivery_key: "seq",
    client_is: "client_id = ?",
    topic_is: "topic = ?",
    client_name: "client_id",
    topic_name: "topic",
    has_sender: "client_id IS NOT NULL",
};

/// The writer's sink, the reader and this process's message id slot, leased
/// under `holder` (the node name); creates or upgrades the tables first. Blocks.
pub fn open(
    store: &Arc<Store>,
    options: PostgresOptions,
    config: &RecordsConfig,
    holder: &str,
) -> Result<(PgSink, Reader, u8), StoreError> {
    store.migrate("records", &schema::MIGRATIONS)?;
    let slot = ids::lease(store, holder, mqgate_kit::clock::now_ms())?;
    let sink = PgSink {
        options,
        durable: config.sync,
        client: None,
        store: Arc::clone(store),
        max_age_ms: (config.max_age_hours as i64).saturating_mul(3_600_000),
        max_rows: config.max_rows,
        slot,
        holder: holder.to_string(),
    };
    Ok((sink, Reader::new(Arc::clone(store), &TABLES), slot))
}
