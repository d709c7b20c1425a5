//! The NanoMQ-format files mqgate reads and the APIs write: NanoMQ's configuration
//! file (`config_update`, `write_file`), and the password and ACL files of `[mqtt]`
//! that the broker loads at each (re)start.
//!
//! With SQLite they are files on disk, as NanoMQ keeps them. With PostgreSQL they are
//! rows of the `files` table, so that every mqgate process on that database reads
//! what any of them wrote; a file on disk is still read while the table has no row
//! of that name (how a cluster's first password or ACL file is deployed).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::clock::now_ms;
use crate::params;
use crate::store::{Migrations, Store, StoreError};

/// Largest file read. Files written through the API are far smaller (the request
/// body limit is 1 MiB).
pub const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;

const MIGRATIONS: Migrations = Migrations {
    sqlite: &[],
    postgres: &["CREATE TABLE files (
        name TEXT PRIMARY KEY,
        content TEXT NOT NULL,
        updated_at_ms BIGINT NOT NULL
    )"],
};

/// Where the files are kept.
#[derive(Clone)]
pub enum Files {
    Disk,
    Database(Arc<Store>),
}

/// What reading a file found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// The text up to the first NUL (NanoMQ's string ends there), invalid UTF-8 replaced.
    Text(String),
    Missing,
    TooLarge,
    Failed(String),
}

impl Files {
    /// Disk for SQLite; the `files` table (migrated now) for a shared database.
    pub fn for_store(store: &Arc<Store>) -> Result<Files, StoreError> {
        if !store.is_shared() {
            return Ok(Files::Disk);
        }
        store.migrate("files", &MIGRATIONS)?;
        Ok(Files::Database(Arc::clone(store)))
    }

    /// The file called `name` in the table, kept at `path` on disk. Blocks.
    pub fn read(&self, name: &str, path: &Path) -> ReadOutcome {
        let Files::Database(store) = self else {
            return read_disk(path);
        };
        let row = store.read(|tx| {
            tx.query_opt(
                "SELECT content FROM files WHERE name = $1",
                &params![name],
                |r| r.get::<String>(0),
            )
        });
        match row {
            Ok(Some(text)) if text.len() as u64 > MAX_READ_BYTES => ReadOutcome::TooLarge,
            Ok(Some(text)) => ReadOutcome::Text(text),
            Ok(None) => read_disk(path),
            Err(e) => ReadOutcome::Failed(e.to_string()),
        }
    }

    /// Replaces the file (see [`write_atomically`] for disk). Text after a NUL is not
    /// kept: it would not be read back. Blocks.
    pub fn write(&self, name: &str, path: &Path, content: &str) -> Result<(), String> {
        let Files::Database(store) = self else {
            return write_atomically(path, content.as_bytes()).map_err(|e| e.to_string());
        };
        let content = content.split('\0').next().unwrap_or_default().to_string();
        let name = name.to_string();
        store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO files (name, content, updated_at_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET content = excluded.content,
                        updated_at_ms = excluded.updated_at_ms",
                    &params![name, content, now_ms()],
                )
            })
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// [`Files::read`] on a blocking thread.
    pub async fn read_async(&self, name: &str, path: &Path) -> ReadOutcome {
        let (files, name, path) = (self.clone(), name.to_string(), path.to_path_buf());
        tokio::task::spawn_blocking(move || files.read(&name, &path))
            .await
            .unwrap_or_else(|e| ReadOutcome::Failed(e.to_string()))
    }

    /// [`Files::write`] on a blocking thread.
    pub async fn write_async(&self, name: &str, path: &Path, content: &str) -> Result<(), String> {
        let (files, name, path, content) = (
            self.clone(),
            name.to_string(),
            path.to_path_buf(),
            content.to_string(),
        );
        tokio::task::spawn_blocking(move || files.write(&name, &path, &content))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    }
}

/// Reads a file from disk.
pub fn read_disk(path: &Path) -> ReadOutcome {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ReadOutcome::Missing,
        Err(e) => return ReadOutcome::Failed(e.to_string()),
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_READ_BYTES + 1).read_to_end(&mut bytes) {
        return ReadOutcome::Failed(e.to_string());
    }
    if bytes.len() as u64 > MAX_READ_BYTES {
        return ReadOutcome::TooLarge;
    }
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    ReadOutcome::Text(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Replaces the file at `path` (the file a symlink points to, when it is one) with
/// `content`, so that a reader sees the old text or the new, never a part: the text
/// goes to a temporary file beside it, is flushed to disk, takes over the old file's
/// permissions, and is renamed over it.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?
        .to_string_lossy();
    let temp = target.with_file_name(format!(
        ".{name}.mqgate-{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        if let Ok(old) = std::fs::metadata(&target) {
            std::fs::set_permissions(&temp, old.permissions())?;
        }
        std::fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_keep_permissions_and_leave_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.conf");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"rules = []").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "rules = []");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let fresh = dir.path().join("new.conf");
        write_atomically(&fresh, b"a = 1").unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "a = 1");
        assert!(write_atomically(&dir.path().join("no/such/dir.conf"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn reads_stop_at_nul_and_at_the_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a = 1\0rest").unwrap();
        assert!(matches!(read_disk(&path), ReadOutcome::Text(t) if t == "a = 1"));
        assert!(matches!(
            read_disk(&dir.path().join("none")),
            ReadOutcome::Missing
        ));
        std::fs::write(&path, vec![b'x'; MAX_READ_BYTES as usize + 1]).unwrap();
        assert!(matches!(read_disk(&path), ReadOutcome::TooLarge));
        // the disk is what a SQLite store reads and writes
        let files = Files::for_store(&Store::open(dir.path()).unwrap()).unwrap();
        assert!(matches!(files, Files::Disk));
        files.write("f", &path, "b = 2").unwrap();
        assert!(matches!(files.read("f", &path), ReadOutcome::Text(t) if t == "b = 2"));
    }
}
