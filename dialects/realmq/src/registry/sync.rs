//! Catching up with a shared database. Every reader of the registry (a list, a
//! detail, a CONNECT) and every writer before it validates first asks for a catalog
//! that holds every change committed before it asked ([`Registry::synced`]): one
//! round trip reads the last revision committed, and only when it is past the last
//! one seen are the changes loaded, in one snapshot, and applied in revision order.
//! Callers that arrive while a catch-up runs wait for the next one, which serves them
//! all, its failure included (an outage costs a queue of callers two timeouts, not one
//! each). So a device created, changed, disabled or deleted through another process is
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
    /// When the last catch-up had started, and how it ended.
    gate: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
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
        let mut last = feed.gate.lock().await;
        // a catch-up that started after this call arrived answers it, failed or
        // not: during an outage, callers queued here do not each wait out the
        // store's timeout in turn
        match &*last {
            Some((started, outcome)) if *started > arrived => {
                return outcome.clone().map_err(StoreError::Repeated)
            }
            _ => {}
        }
        let started = Instant::now();
        let registry = Arc::clone(self);
        let outcome = tokio::task::spawn_blocking(move || registry.catch_up())
            .await
            .map_err(|e| StoreError::Join(e.to_string()))
            .and_then(|caught_up| caught_up);
        *last = Some((
            started,
            outcome.as_ref().map(drop).map_err(ToString::to_string),
        ));
        outcome
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
        let (revision, changes) = self
            .store
            .snapshot(move |tx| schema::changes_since(tx, seen))?;
        let mut catalog = self.catalog.write();
        for (_, change) in changes {
            apply(&mut catalog, change);
        }
        feed.seen.store(revision, Ordering::Release);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mqgate_kit::store::{PostgresOptions, Store};
    use mqgate_kit::{AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal};

    use super::*;
    use crate::credentials::DeviceAuthenticator;
    use crate::registry::tests::{device_fields, product_fields};
    use crate::registry::DeviceFields;

    fn connect(url: &str) -> Arc<Registry> {
        connect_within(url, Duration::from_secs(30))
    }

    fn connect_within(url: &str, statement_timeout: Duration) -> Arc<Registry> {
        let store = Store::connect(&PostgresOptions {
            url: url.to_string(),
            pool_size: 2,
            connect_timeout: Duration::from_secs(5),
            statement_timeout,
        })
        .unwrap();
        Arc::new(Registry::open(store).unwrap())
    }

    async fn login(registry: &Arc<Registry>, device: &DeviceFields) -> AuthDecision {
        let authenticator = DeviceAuthenticator {
            registry: Arc::clone(registry),
        };
        authenticator
            .authenticate(&ConnectCredentials {
                client_id: &device.mqtt_client_id,
                username: Some(&device.username),
                password: Some(device.password.as_bytes()),
                peer: "127.0.0.1:1".parse().unwrap(),
                transport: mqgate_kit::Transport::Tcp,
                proto_ver: 4,
                already_connected: false,
            })
            .await
    }

    /// Two registries on one database stand for two processes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_of_one_process_are_seen_by_the_next_read_of_another() {
        let Some(pg) = mqgate_pgtest::server("shared registry") else {
            return;
        };
        let url = pg.database();
        let (a, b) = (connect(&url), connect(&url));
        let product = a.create_product(product_fields("p"), None).await.unwrap();
        // a name taken through the other process is refused with the vendor's code,
        // and the failed write leaves the revisions without a gap
        assert_eq!(
            b.create_product(product_fields("p"), None)
                .await
                .unwrap_err()
                .code,
            113
        );
        let d = a
            .create_device(device_fields("d", &product.product_key))
            .await
            .unwrap();
        assert_eq!(login(&b, &d.fields).await, AuthDecision::Allow);
        assert_eq!(b.revision(), a.revision());
        let seen = b.revision();
        b.synced().await.unwrap();
        assert_eq!(b.revision(), seen, "nothing new: nothing loaded");

        a.update_device(d.id, |f| {
            Ok(DeviceFields {
                enabled: false,
                ..f.clone()
            })
        })
        .await
        .unwrap();
        assert_eq!(
            login(&b, &d.fields).await,
            AuthDecision::Deny(ConnectRefusal::NotAuthorized)
        );
        b.delete_device(d.id).await.unwrap();
        assert_eq!(login(&a, &d.fields).await, AuthDecision::NotMine);
        a.synced().await.unwrap();
        assert!(a.read(|c| c.device(d.id).is_none()));
        b.delete_product(product.id).await.unwrap();
        a.synced().await.unwrap();
        assert_eq!(a.read(|c| c.products().count()), 0);

        // a process started later loads the state and the revision together
        let c = connect(&url);
        assert_eq!(c.revision(), a.revision());
        let q = c.create_product(product_fields("q"), None).await.unwrap();
        a.synced().await.unwrap();
        assert_eq!(
            a.read(|cat| cat.product(q.id).map(|p| p.name.clone())),
            Some("q".into())
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_queued_during_an_outage_share_its_failure() {
        let Some(pg) = mqgate_pgtest::server("outage shared") else {
            return;
        };
        let url = pg.database();
        let timeout = Duration::from_secs(1);
        let registry = connect_within(&url, timeout);
        // a stuck client holds the clock: every catch-up runs into the statement timeout
        let held = pg.hold(&url, "LOCK TABLE realmq_clock IN ACCESS EXCLUSIVE MODE");
        let started = std::time::Instant::now();
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let registry = Arc::clone(&registry);
                tokio::spawn(async move { registry.synced().await })
            })
            .collect();
        for caller in callers {
            let error = caller.await.unwrap().unwrap_err();
            assert!(error.to_string().contains("statement timeout"), "{error}");
        }
        // the attempt under way when they arrived, and the one that served them all
        let took = started.elapsed();
        assert!(
            took >= timeout && took < timeout * 4,
            "8 callers took {took:?}"
        );
        drop(held);
        registry.synced().await.unwrap();
    }
}
