//! `[store]`: where the gateway's state lives. SQLite (the default) is one file
//! under `data_dir`, as always; PostgreSQL is shared by every mqgate process
//! pointed at the same database (RealMQ's registry, Easemob's tokens and users).
//! Records (`[records]`) follow the store unless `[records] backend` says otherwise.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::store::{PostgresOptions, Store, StoreError};
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Which database holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Sqlite,
    Postgres,
}

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// `postgres://user:password@host:port/database`; required by `backend = "postgres"`.
    pub postgres_url: Option<String>,
    /// PostgreSQL connections this process keeps open at most.
    pub pool_size: u32,
    /// Seconds to open a connection or wait for a free one; also how long sent data
    /// may stay unacknowledged before a connection counts as dead.
    pub connect_timeout_secs: u64,
    /// Seconds any one statement may run (PostgreSQL's `statement_timeout`).
    pub statement_timeout_secs: u64,
    /// With PostgreSQL: how often each process checks the shared NanoMQ, password
    /// and ACL files for a newer revision, ms.
    pub files_poll_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: StoreBackend::Sqlite,
            postgres_url: None,
            pool_size: 16,
            connect_timeout_secs: 5,
            statement_timeout_secs: 30,
            files_poll_ms: 1000,
        }
    }
}

const MAX_POOL_SIZE: u32 = 1000;
const MAX_TIMEOUT_SECS: u64 = 3600;
const FILES_POLL_MS: std::ops::RangeInclusive<u64> = 50..=3_600_000;

impl StoreConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| {
            Err(ConfigError::Invalid {
                key: format!("store.{key}"),
                message,
            })
        };
        if !(1..=MAX_POOL_SIZE).contains(&self.pool_size) {
            return invalid("pool_size", format!("must be 1..={MAX_POOL_SIZE}"));
        }
        for (key, secs) in [
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("statement_timeout_secs", self.statement_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                return invalid(key, format!("must be 1..={MAX_TIMEOUT_SECS}"));
            }
        }
        if !FILES_POLL_MS.contains(&self.files_poll_ms) {
            let (low, high) = (FILES_POLL_MS.start(), FILES_POLL_MS.end());
            return invalid("files_poll_ms", format!("must be {low}..={high}"));
        }
        match (self.backend, &self.postgres_url) {
            (StoreBackend::Postgres, None) => invalid(
                "postgres_url",
                "backend = \"postgres\" needs postgres_url".into(),
            ),
            (StoreBackend::Postgres, Some(url)) => match PostgresOptions::check_url(url) {
                Ok(()) => Ok(()),
                Err(e) => invalid("postgres_url", format!("not a PostgreSQL URL: {e}")),
            },
            (StoreBackend::Sqlite, _) => Ok(()),
        }
    }

    /// How to reach PostgreSQL, with `backend = "postgres"`.
    pub fn postgres_options(&self) -> Option<PostgresOptions> {
        match (self.backend, &self.postgres_url) {
            (StoreBackend::Postgres, Some(url)) => Some(PostgresOptions {
                url: url.clone(),
                pool_size: self.pool_size,
                connect_timeout: Duration::from_secs(self.connect_timeout_secs),
                statement_timeout: Duration::from_secs(self.statement_timeout_secs),
            }),
            _ => None,
        }
    }

    /// Opens the configured store: `<data_dir>/mqgate.db`, or a pool on PostgreSQL
    /// (connected now, so an unreachable server fails the start). Blocks.
    pub fn open(&self, data_dir: &Path) -> Result<Arc<Store>, StoreError> {
        match (self.backend, self.postgres_options()) {
            (StoreBackend::Postgres, Some(options)) => Store::connect(&options),
            (StoreBackend::Postgres, None) => Err(StoreError::Config(
                "backend = \"postgres\" needs postgres_url".into(),
            )),
            (StoreBackend::Sqlite, _) => Store::open(data_dir),
        }
    }
}
