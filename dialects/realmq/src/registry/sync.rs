//! Catching up with a shared database. Every reader of the registry (a list, a
//! detail, a CONNECT) and every writer before it validates first asks for a catalog
//! that holds every change committed before it asked ([`Registry::synced`]): one
//! round trip reads the last revision drawn, and only when it is past the last one
//! seen are the changes loaded, in one snapshot, and applied in revision order.
//! Callers that arrive while a catch-up runs wait for the next one, which serves them
//! all. So a device created, changed, disabled or deleted through another process is
//! seen by the next CONNECT here: a stale copy can never let a deleted or disabled
//! device in.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mqgate_kit::store::StoreError;

use super::catalog::Catalog;
use super::schema::{self, Change};
use super::Registry;

/// What has been loaded of a shared database's changes.
#[derive(Default)]
pub struct Feed {
    /// Every change up to this revision is in the catalog.
    seen: AtomicI64,
    /// When the last catch-up that completed had started.
    gate: tokio::sync::Mutex<Option<Instant>>,
    /// One catch-up at a time, async callers and blocking ones alike.
    running: parking_lot::Mutex<()>,
}

impl Feed {
    pub(super) fn start_at(&self, revision: i64) {
        self.seen.store(revision, Ordering::Release);
    }

    /// The revision the catalog is at.
    pub fn seen(&self) -> i64 {
        self.seen.load(Ordering::Acquire)
    }
}

impl Registry {
    /// Returns once the catalog holds every change committed before the call (at
    /// once when the database is not shared).
    pub async fn synced(self: &Arc<Self>) -> Result<(), StoreError> {
        let Some(feed) = &self.feed else {
            return Ok(());
        };
        let arrived = Instant::now();
        let mut last_start = feed.gate.lock().await;
        if last_start.is_some_and(|started| started > arrived) {
            return Ok(());
        }
        let started = Instant::now();
        let registry = Arc::clone(self);
        tokio::task::spawn_blocking(move || registry.catch_up())
            .await
            .map_err(|e| StoreError::Join(e.to_string()))??;
        *last_start = Some(started);
        Ok(())
    }

    /// Loads and applies what was committed since the last revision seen. Blocks.
    pub fn catch_up(&self) -> Result<(), StoreError> {
        let Some(feed) = &self.feed else {
            return Ok(());
        };
        let _running = feed.running.lock();
        let seen = feed.seen();
        if self.store.read(schema::last_revision)? <= seen {
            return Ok(());
        }
        let changes = self
            .store
            .snapshot(move |tx| schema::changes_since(tx, seen))?;
        let mut catalog = self.catalog.write();
        let mut top = seen;
        for (revision, change) in changes {
            apply(&mut catalog, change);
            top = top.max(revision);
        }
        feed.seen.store(top, Ordering::Release);
        Ok(())
    }

    /// The revision the catalog is at (0 when the database is not shared).
    pub fn revision(&self) -> i64 {
        self.feed.as_ref().map_or(0, Feed::seen)
    }
}

fn apply(catalog: &mut Catalog, change: Change) {
    match change {
        Change::Product(product) => catalog.put_product(product),
        Change::ProductDeleted(id) => catalog.remove_product(id),
        Change::DeviceDeleted(id) => catalog.remove_device(id),
        Change::Device(mut device) => {
            // which connection of this process the presence belongs to is not stored
            if let Some(current) = catalog.device(device.id) {
                if current.presence.connected_at_ms == device.presence.connected_at_ms {
                    device.presence.connection_id = current.presence.connection_id;
                }
            }
            catalog.put_device(device);
        }
    }
}
