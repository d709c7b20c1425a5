//! The `[records]` section of mqgate.toml, and which clients it records.

use serde::{Deserialize, Serialize};

/// The `[records]` section of mqgate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// Whose connections and messages are recorded: `easemob` (the Easemob
    /// application's `deviceID@AppID` clients, the only records an API can query),
    /// `all`, or `off`.
    pub scope: RecordScope,
    /// Where records are kept: `auto` (where `[store]` keeps the state), `sqlite`
    /// (`<data_dir>/records.db`, this process's own) or `postgres` (the `[store]`
    /// database, shared by every process on it: a record query through any of
    /// them answers for all).
    pub backend: RecordsBackend,
    /// `true`: a recorded client's publish is acknowledged only after its record is
    /// committed (it then survives a kill -9). `false`: records are committed within
    /// `batch_interval_ms`; a crash loses the last of them.
    pub sync: bool,
    /// What happens when `queue_capacity` events wait: `wait` (the broker waits for
    /// the writer before it goes on with that client) or `drop` (the event is counted
    /// and dropped). Either way every event that is not recorded is counted.
    pub when_full: WhenFull,
    /// Records older than this many hours are deleted (0: no age limit).
    pub max_age_hours: u64,
    /// At most this many connection records, this many messages and this many
    /// deliveries are kept, the newest (0: no limit).
    pub max_rows: u64,
    /// How often retention runs, in seconds.
    pub prune_interval_secs: u64,
    /// Events waiting to be written.
    pub queue_capacity: usize,
    /// A batch is written as soon as this many events wait.
    pub batch_size: usize,
    /// Otherwise the longest an event waits before its batch is written, in ms
    /// (with `sync = true` a batch is written at once).
    pub batch_interval_ms: u64,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            scope: RecordScope::Easemob,
            backend: RecordsBackend::Auto,
            sync: false,
            when_full: WhenFull::Wait,
            // Easemob keeps messages up to 3 days (its publish `expire` maximum).
            max_age_hours: 72,
            max_rows: 10_000_000,
            prune_interval_secs: 60,
            queue_capacity: 100_000,
            // Fewer, larger transactions: 40,000 rather than 10,000 made QoS 1
            // with records on 3 % faster (1M-message runs); still below the
            // three quarters of the queue where publishers start to wait.
            batch_size: 40_000,
            batch_interval_ms: 50,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordScope {
    Easemob,
    All,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordsBackend {
    Auto,
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenFull {
    Wait,
    Drop,
}

/// The clients a running recorder keeps records of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clients {
    All,
    /// Client ids `deviceID@AppID` ending in this `@AppID`.
    OfApp(String),
}

impl Clients {
    /// Resolves `scope` against the Easemob application (`None` when the Easemob
    /// dialect is disabled). `None`: nothing to record.
    pub fn resolve(scope: RecordScope, easemob_app_id: Option<&str>) -> Option<Clients> {
        match scope {
            RecordScope::Off => None,
            RecordScope::All => Some(Clients::All),
            RecordScope::Easemob => easemob_app_id.map(|id| Clients::OfApp(format!("@{id}"))),
        }
    }

    pub fn contains(&self, client_id: &str) -> bool {
        match self {
            Clients::All => true,
            Clients::OfApp(suffix) => {
                client_id.len() > suffix.len() && client_id.ends_with(suffix.as_str())
            }
        }
    }

    /// Messages without a sender (management publishes) are kept only under `all`:
    /// no Easemob record query can name them.
    pub fn keeps_senderless(&self) -> bool {
        matches!(self, Clients::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_scope_resolves() {
        let c: RecordsConfig =
            serde_json::from_str(r#"{"max_rows": 5, "scope": "all", "when_full": "drop"}"#)
                .unwrap();
        assert_eq!(
            (c.max_rows, c.scope, c.when_full),
            (5, RecordScope::All, WhenFull::Drop)
        );
        assert!(!c.sync);
        assert!(serde_json::from_str::<RecordsConfig>(r#"{"max_row": 5}"#).is_err());
        assert!(serde_json::from_str::<RecordsConfig>(r#"{"scope": "some"}"#).is_err());

        let app = Clients::resolve(RecordScope::Easemob, Some("mq7g4e")).unwrap();
        assert!(app.contains("dev1@mq7g4e"));
        assert!(!app.contains("@mq7g4e"));
        assert!(!app.contains("dev1@other1"));
        assert!(!app.contains("plain-client"));
        assert!(Clients::resolve(RecordScope::Easemob, None).is_none());
        assert!(Clients::resolve(RecordScope::Off, Some("mq7g4e")).is_none());
        assert!(Clients::resolve(RecordScope::All, None)
            .unwrap()
            .contains("anyone"));
    }
}
