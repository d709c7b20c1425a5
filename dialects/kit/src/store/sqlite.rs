//! The SQLite backend: one file, one write connection and one read connection
//! (WAL mode: reads run alongside writes). A write transaction commits before
//! [`Store::write`](super::Store::write) returns; with `synchronous = FULL` it is then
//! on disk.

use std::borrow::Cow;
use std::path::Path;

use parking_lot::Mutex;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;

use super::value::{Column, Param, Row, RowRef};
use super::{Access, Session, StoreError};

/// How a SQLite file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteTuning {
    /// `FULL`: a commit is on disk when it returns (survives power loss).
    /// `NORMAL`: in WAL mode a commit survives a crash of the process, not of the system.
    pub synchronous_full: bool,
    /// Page cache of each connection, KiB (`None`: SQLite's default).
    pub cache_kib: Option<i64>,
    /// WAL pages before an automatic checkpoint (`None`: SQLite's default, 1000).
    pub wal_autocheckpoint: Option<i64>,
}

impl SqliteTuning {
    /// The gateway's own state: every commit on disk.
    pub const DURABLE: SqliteTuning = SqliteTuning {
        synchronous_full: true,
        cache_kib: None,
        wal_autocheckpoint: None,
    };
}

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path, tuning: SqliteTuning) -> Result<SqliteStore, StoreError> {
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            if let Some(kib) = tuning.cache_kib {
                conn.pragma_update(None, "cache_size", -kib)?;
            }
            Ok(conn)
        };
        let writer = open()?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        let synchronous = if tuning.synchronous_full {
            "FULL"
        } else {
            "NORMAL"
        };
        writer.pragma_update(None, "synchronous", synchronous)?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        if let Some(pages) = tuning.wal_autocheckpoint {
            writer.pragma_update(None, "wal_autocheckpoint", pages)?;
        }
        writer.execute_batch(super::SCHEMA_VERSIONS)?;
        let reader = open()?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    pub fn run<R>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn Session) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let mut conn = match access {
            Access::Write => self.writer.lock(),
            Access::Read | Access::Snapshot => self.reader.lock(),
        };
        if access == Access::Read {
            return f(&mut SqliteSession { conn: &conn });
        }
        // deferred: a snapshot on the read connection takes no write lock
        let tx = conn.transaction()?;
        let result = f(&mut SqliteSession { conn: &tx })?;
        tx.commit()?;
        Ok(result)
    }
}

struct SqliteSession<'c> {
    conn: &'c Connection,
}

impl SqliteSession<'_> {
    fn prepare(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<rusqlite::CachedStatement<'_>, StoreError> {
        let mut statement = self.conn.prepare_cached(&placeholders(sql))?;
        if statement.parameter_count() != params.len() {
            return Err(StoreError::Parameters {
                expected: statement.parameter_count(),
                given: params.len(),
            });
        }
        for (i, param) in params.iter().enumerate() {
            statement.raw_bind_parameter(i + 1, param)?;
        }
        Ok(statement)
    }
}

impl Session for SqliteSession<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        Ok(self.prepare(sql, params)?.raw_execute()? as u64)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut statement = self.prepare(sql, params)?;
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next()? {
            if !each(&Row {
                inner: RowRef::Sqlite(row),
            })? {
                break;
            }
        }
        Ok(())
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Param::Null => ValueRef::Null,
            Param::Int(v) => ValueRef::Integer(v),
            Param::Real(v) => ValueRef::Real(v),
            Param::Text(v) => ValueRef::Text(v.as_bytes()),
            Param::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

pub(super) fn column<'r>(
    row: &'r rusqlite::Row<'_>,
    index: usize,
) -> Result<Column<'r>, StoreError> {
    Ok(match row.get_ref(index)? {
        ValueRef::Null => Column::Null,
        ValueRef::Integer(v) => Column::Int(v),
        ValueRef::Real(v) => Column::Real(v),
        ValueRef::Text(v) => {
            Column::Text(std::str::from_utf8(v).map_err(|e| StoreError::Column {
                index,
                message: e.to_string(),
            })?)
        }
        ValueRef::Blob(v) => Column::Blob(v),
    })
}

/// PostgreSQL's `$n` placeholders as SQLite's `?n` (outside quoted text), so that a
/// parameter is bound by its number wherever it first appears.
fn placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('$', None) if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_placeholders_outside_quotes() {
        assert_eq!(
            placeholders("UPDATE t SET a = $2, b = '$1' WHERE id = $1"),
            "UPDATE t SET a = ?2, b = '$1' WHERE id = ?1"
        );
        assert_eq!(placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(placeholders("SELECT \"$x\", $10"), "SELECT \"$x\", ?10");
    }
}
