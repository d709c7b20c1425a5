//! The embedded database: one SQLite file under the data directory. State that must
//! survive a restart lives here. A write returns only after its transaction is
//! committed and synced, so an acknowledged write survives a kill -9.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::{Connection, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database task failed: {0}")]
    Join(String),
}

impl From<StoreError> for crate::MgmtError {
    fn from(e: StoreError) -> Self {
        crate::MgmtError::Store(e.to_string())
    }
}

/// Handle to the embedded database. Writes are serialised on one connection;
/// reads use a second connection and run alongside them (WAL mode).
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

pub const DB_FILE_NAME: &str = "mqgate.db";

impl Store {
    /// Opens (creating if needed) `<data_dir>/mqgate.db`.
    pub fn open(data_dir: &Path) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(DB_FILE_NAME);
        let writer = Connection::open(&path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.pragma_update(None, "foreign_keys", "ON")?;
        writer.busy_timeout(std::time::Duration::from_secs(5))?;
        writer.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        )?;
        let reader = Connection::open(&path)?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Arc::new(Store {
            path,
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Brings `component`'s schema up to date: `steps[i]` is the SQL that moves it
    /// from version `i` to `i + 1`. Steps already applied are skipped.
    pub fn migrate(&self, component: &str, steps: &[&str]) -> Result<(), StoreError> {
        self.write(|tx| {
            let current: i64 = tx
                .query_row(
                    "SELECT version FROM schema_versions WHERE component = ?1",
                    [component],
                    |row| row.get(0),
                )
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(0),
                    e => Err(e),
                })?;
            for (i, step) in steps.iter().enumerate().skip(current as usize) {
                tx.execute_batch(step)?;
                tx.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?1, ?2)
                     ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                    rusqlite::params![component, (i + 1) as i64],
                )?;
            }
            Ok(())
        })
    }

    /// Runs `f` in one transaction and commits it before returning.
    pub fn write<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        let mut conn = self.writer.lock();
        let tx = conn.transaction()?;
        let result = f(&tx)?;
        tx.commit()?;
        Ok(result)
    }

    /// Runs `f` on the read connection.
    pub fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, StoreError> {
        let conn = self.reader.lock();
        Ok(f(&conn)?)
    }

    /// [`Store::write`] on a blocking thread, for async callers.
    pub async fn write_async<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || store.write(f))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    /// [`Store::read`] on a blocking thread, for async callers.
    pub async fn read_async<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
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

    #[test]
    fn migrations_apply_once_and_data_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("mqgate-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let steps = [
            "CREATE TABLE t (v INTEGER)",
            "ALTER TABLE t ADD COLUMN w TEXT",
        ];
        {
            let store = Store::open(&dir).unwrap();
            store.migrate("test", &steps).unwrap();
            store.migrate("test", &steps).unwrap();
            store
                .write(|tx| tx.execute("INSERT INTO t (v, w) VALUES (1, 'a')", []))
                .unwrap();
        }
        let store = Store::open(&dir).unwrap();
        store.migrate("test", &steps).unwrap();
        let n: i64 = store
            .read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(n, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
