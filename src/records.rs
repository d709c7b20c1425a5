//! Connection and message records: the broker's events written to the embedded
//! store in batches, off the hot path, and queried through [`History`].
//! (Skeleton: records arrive with the Easemob issue.)

use std::sync::Arc;

use mqgate_kit::history::{BrokerEvent, BrokerObserver};
use mqgate_kit::Store;
use serde::{Deserialize, Serialize};

/// The `[records]` section of mqgate.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordsConfig {
    /// Keep connection and message records.
    pub enabled: bool,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig { enabled: true }
    }
}

/// The record keeper. Observes broker events; answers history queries.
pub struct Records {
    _store: Arc<Store>,
}

impl Records {
    pub fn open(store: Arc<Store>, _config: &RecordsConfig) -> Result<Arc<Records>, mqgate_kit::store::StoreError> {
        Ok(Arc::new(Records { _store: store }))
    }

    /// Writes everything queued so far (called at shutdown).
    pub fn flush(&self) {}
}

impl BrokerObserver for Records {
    fn on_event(&self, _event: &BrokerEvent) {}
}
