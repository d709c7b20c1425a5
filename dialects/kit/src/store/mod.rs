//! The database behind everything that must survive a restart: SQLite, one file
//! under the data directory (the embedded default), or PostgreSQL, shared by every
//! mqgate process pointed at it (`[store] backend = "postgres"`).
//!
//! Callers see one API whatever the backend: [`Store::write`] runs a closure in one
//! transaction and returns only after it is committed (so an acknowledged write
//! survives a kill -9), [`Store::read`] runs one on a read connection, and
//! [`Store::snapshot`] in one consistent read transaction. Inside, a [`Tx`] runs SQL
//! written in the subset both backends understand, with `$1`-style parameters
//! ([`Param`], [`params!`](crate::params)) and rows read through [`Row::get`].
//! Schemas differ where the backends do (`INTEGER PRIMARY KEY AUTOINCREMENT` against
//! identity columns, `BLOB` against `BYTEA`): [`Store::migrate`] takes one list of
//! steps per backend.
//!
//! - [`value`]: parameters, rows and their conversions.
//! - [`files`]: files whose content the store holds, with a revision per file.
//! - [`sqlite`]: the SQLite backend; [`postgres`](mod@postgres): the PostgreSQL one.

pub mod files;
pub mod postgres;
pub mod sqlite;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use self::postgres::PostgresOptions;
pub use self::sqlite::SqliteTuning;
pub use self::value::{Column, FromColumn, Param, Row, ToParam, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {}", postgres_message(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("database unreachable: {0}")]
    Pool(String),
    #[error("bad PostgreSQL URL: {0}")]
    Config(String),
    #[error("column {index}: {message}")]
    Column { index: usize, message: String },
    #[error("the statement takes {expected} parameters, {given} given")]
    Parameters { expected: usize, given: usize },
    #[error("the query returned no row")]
    NoRow,
    #[error("database task failed: {0}")]
    Join(String),
    /// The failure of an attempt made on the caller's behalf (one attempt served
    /// several callers), as that attempt reported it.
    #[error("{0}")]
    Repeated(String),
}

/// PostgreSQL's own message (with its detail) rather than the client's "db error".
fn postgres_message(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

impl StoreError {
    /// A UNIQUE, foreign-key or other constraint refused the write: on a shared
    /// database, typically another process's write won a race.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            StoreError::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }
}

impl From<StoreError> for crate::MgmtError {
    fn from(e: StoreError) -> Self {
        crate::MgmtError::Store(e.to_string())
    }
}

/// How a closure runs: [`Store::write`], [`Store::read`] or [`Store::snapshot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// One transaction, committed before the call returns.
    Write,
    /// Statements on a read connection, each on what is committed when it starts.
    Read,
    /// One read-only transaction: every statement sees the same committed state.
    Snapshot,
}

/// Which database a [`Store`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Schema steps of one component, per backend: `steps[i]` moves it from version
/// `i` to `i + 1`.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub sqlite: &'static [&'static str],
    pub postgres: &'static [&'static str],
}

/// The version of every component's schema, in the database itself.
const SCHEMA_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS schema_versions \
     (component TEXT PRIMARY KEY, version BIGINT NOT NULL)";

/// What runs the statements of one [`Tx`]: a connection or transaction of one backend.
pub trait Session {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError>;
    /// Several statements without parameters (schema steps).
    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Calls `each` per row until it returns `false`.
    fn query(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        each: &mut dyn FnMut(&Row<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError>;
}

/// The statements of one [`Store::write`], [`Store::read`] or [`Store::snapshot`].
pub struct Tx<'a> {
    session: &'a mut dyn Session,
    backend: Backend,
}

impl Tx<'_> {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        self.session.execute(sql, params)
    }

    /// Runs statements separated by `;`, without parameters.
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.session.execute_batch(sql)
    }

    /// Every row of a query, each made a `T` by `map`.
    pub fn query<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        mut map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.session.query(sql, params, &mut |row| {
            out.push(map(row)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// The first row of a query, if any.
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        map: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut map = Some(map);
        let mut out = None;
        self.session.query(sql, params, &mut |row| {
            if let Some(map) = map.take() {
                out = Some(map(row)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// The first row of a query, which must have one.
    pub fn query_one<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        map: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, map)?.ok_or(StoreError::NoRow)
    }
}

/// Handle to the database. Cheap to share (`Arc<Store>`); every method blocks the
/// calling thread until the database answers: async code uses the `_async` variants.
pub struct Store {
    backend: Inner,
}

enum Inner {
    // boxed: two connections and their statement caches against a pool handle
    Sqlite(Box<sqlite::SqliteStore>),
    Postgres(self::postgres::PgStore),
}

pub const DB_FILE_NAME: &str = "mqgate.db";

impl Store {
    /// Opens (creating if needed) `<data_dir>/mqgate.db`, every commit synced.
    pub fn open(data_dir: &Path) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Store::open_file(&data_dir.join(DB_FILE_NAME), SqliteTuning::DURABLE)
    }

    /// Opens (creating if needed) the SQLite file at `path`.
    pub fn open_file(path: &Path, tuning: SqliteTuning) -> Result<Arc<Store>, StoreError> {
        Ok(Arc::new(Store {
            backend: Inner::Sqlite(Box::new(sqlite::SqliteStore::open(path, tuning)?)),
        }))
    }

    /// Connects to PostgreSQL (the first connection is opened now, so an unreachable
    /// server fails here) and creates the schema-version table if it is missing.
    pub fn connect(options: &PostgresOptions) -> Result<Arc<Store>, StoreError> {
        Ok(Arc::new(Store {
            backend: Inner::Postgres(self::postgres::PgStore::connect(options)?),
        }))
    }

    pub fn backend(&self) -> Backend {
        match self.backend {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Other processes may write the same tables (PostgreSQL): what a process keeps
    /// in memory must be checked against the database.
    pub fn is_shared(&self) -> bool {
        self.backend() == Backend::Postgres
    }

    /// Brings `component`'s schema up to date with the steps of this backend; steps
    /// already applied are skipped. On PostgreSQL an advisory lock makes processes
    /// starting together migrate one after the other.
    pub fn migrate(&self, component: &str, migrations: &Migrations) -> Result<(), StoreError> {
        let steps = match self.backend() {
            Backend::Sqlite => migrations.sqlite,
            Backend::Postgres => migrations.postgres,
        };
        self.write(|tx| {
            if tx.backend() == Backend::Postgres {
                self::postgres::PgStore::lock_migrations(tx.session)?;
            }
            let current: i64 = tx
                .query_opt(
                    "SELECT version FROM schema_versions WHERE component = $1",
                    &[Param::Text(component)],
                    |row| row.get(0),
                )?
                .unwrap_or(0);
            for (i, step) in steps.iter().enumerate().skip(current.max(0) as usize) {
                tx.execute_batch(step)?;
                tx.execute(
                    "INSERT INTO schema_versions (component, version) VALUES ($1, $2)
                     ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                    &crate::params![component, (i + 1) as i64],
                )?;
            }
            Ok(())
        })
    }

    /// Runs `f` in one transaction and commits it before returning; an error from
    /// `f` rolls it back.
    pub fn write<R: Send>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        self.run(Access::Write, f)
    }

    /// Runs `f` on a read connection; each statement sees what was committed when
    /// it started.
    pub fn read<R: Send>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        self.run(Access::Read, f)
    }

    /// Runs `f` in one read-only transaction: every statement sees the same
    /// committed state.
    pub fn snapshot<R: Send>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        self.run(Access::Snapshot, f)
    }

    fn run<R: Send>(
        &self,
        access: Access,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        let backend = self.backend();
        let run = |session: &mut dyn Session| f(&mut Tx { session, backend });
        match &self.backend {
            Inner::Sqlite(s) => s.run(access, run),
            Inner::Postgres(p) => p.run(access, run),
        }
    }

    /// [`Store::write`] on a blocking thread, for async callers.
    pub async fn write_async<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || store.write(f))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// [`Store::read`] on a blocking thread, for async callers.
    pub async fn read_async<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Tx<'_>) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || store.read(f))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params;

    const STEPS: Migrations = Migrations {
        sqlite: &[
            "CREATE TABLE t (v INTEGER)",
            "ALTER TABLE t ADD COLUMN w TEXT",
        ],
        postgres: &[],
    };

    #[test]
    fn migrations_apply_once_and_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.migrate("test", &STEPS).unwrap();
            store.migrate("test", &STEPS).unwrap();
            store
                .write(|tx| tx.execute("INSERT INTO t (v, w) VALUES ($1, $2)", &params![1, "a"]))
                .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        store.migrate("test", &STEPS).unwrap();
        let n: i64 = store
            .read(|tx| tx.query_one("SELECT count(*) FROM t", &[], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 1);
    }
}
