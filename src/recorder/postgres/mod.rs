//! Records in the `[store]` PostgreSQL database (`[records] backend = "postgres"`,
//! or `auto` on a PostgreSQL store): one set of tables for every process on the
//! database, so a record query through any node answers for the whole cluster,
//! and a message's records from every node it crossed share its id.
//!
//! - [`schema`]: tables, indexes, retention; [`ids`]: the message id slot this
//!   process leases; [`writer`]: the [`Sink`](super::writer::Sink), binary `COPY`
//!   per batch; [`query`]: the [`History`](mqgate_kit::History) queries.

pub mod ids;
pub mod query;
pub mod schema;
pub mod writer;

use std::sync::Arc;

use mqgate_kit::store::{PostgresOptions, Store, StoreError};

use super::RecordsConfig;
use query::PgReader;
use writer::PgSink;

/// The writer's sink, the reader and this process's message id slot, leased
/// under `holder` (the node name); creates or upgrades the tables first. Blocks.
pub fn open(
    store: &Arc<Store>,
    options: PostgresOptions,
    config: &RecordsConfig,
    holder: &str,
) -> Result<(PgSink, PgReader, u8), StoreError> {
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
    Ok((sink, PgReader::new(Arc::clone(store)), slot))
}
