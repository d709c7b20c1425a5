//! Files whose content lives in the store (`shared_files`), so that every process on
//! one shared database serves and applies the same text: the NanoMQ configuration,
//! password and ACL files that nanomq-admin writes through one node.
//!
//! A file is a name, its bytes as written (NanoMQ's files may hold anything; a NUL
//! is kept, which PostgreSQL's text type refuses), and a revision that each write
//! raises by one, so a process compares numbers rather than contents to know it is
//! behind. Writers of one file take their revisions one after the other (the row
//! is locked by the upsert until commit).

use super::{Migrations, Param, Store, StoreError, Tx};

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &["CREATE TABLE shared_files (
        name TEXT PRIMARY KEY,
        content BLOB NOT NULL,
        revision INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    )"],
    postgres: &["CREATE TABLE shared_files (
        name TEXT PRIMARY KEY,
        content BYTEA NOT NULL,
        revision BIGINT NOT NULL,
        updated_ms BIGINT NOT NULL
    )"],
};

/// One file as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub content: Vec<u8>,
    /// 1 for the first write, one more for each later one.
    pub revision: i64,
    /// When the last write was committed, ms since the Unix epoch.
    pub updated_ms: i64,
}

/// Creates the table if this database does not have it yet. Blocks.
pub fn migrate(store: &Store) -> Result<(), StoreError> {
    store.migrate("shared_files", &MIGRATIONS)
}

/// Replaces the content of `name`; returns its new revision.
pub fn put(tx: &mut Tx<'_>, name: &str, content: &[u8]) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO shared_files (name, content, revision, updated_ms) VALUES ($1, $2, 1, $3)
         ON CONFLICT (name) DO UPDATE SET content = excluded.content,
             revision = shared_files.revision + 1, updated_ms = excluded.updated_ms",
        &[
            Param::Text(name),
            Param::Blob(content),
            Param::Int(crate::clock::now_ms()),
        ],
    )?;
    tx.query_one(
        "SELECT revision FROM shared_files WHERE name = $1",
        &[Param::Text(name)],
        |row| row.get(0),
    )
}

/// The content of `name`, if it was ever written.
pub fn get(tx: &mut Tx<'_>, name: &str) -> Result<Option<SharedFile>, StoreError> {
    tx.query_opt(
        "SELECT content, revision, updated_ms FROM shared_files WHERE name = $1",
        &[Param::Text(name)],
        |row| {
            Ok(SharedFile {
                content: row.get(0)?,
                revision: row.get(1)?,
                updated_ms: row.get(2)?,
            })
        },
    )
}

/// Every stored file's name and revision, without the contents: what a process
/// compares with what it has applied.
pub fn revisions(tx: &mut Tx<'_>) -> Result<Vec<(String, i64)>, StoreError> {
    tx.query(
        "SELECT name, revision FROM shared_files ORDER BY name",
        &[],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
}
