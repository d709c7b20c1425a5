//! The product and device registry. The store (through `kit::Store`) is the record;
//! an in-memory [`Catalog`] serves reads and the CONNECT path. Every change is
//! committed to the store first and applied to memory only once committed, under one
//! writer lock so uniqueness checks and the write they guard cannot interleave.
//!
//! On a shared database (PostgreSQL, several mqgate processes) other processes
//! change the tables too: before it is read (a list, a detail, a CONNECT) and before
//! a write validates against it, the catalog catches up with every change committed
//! since the last one it saw ([`sync`]); the database's constraints decide races
//! between processes.
//!
//! - [`model`]: products, devices, presence.
//! - [`catalog`]: the in-memory copy and its indexes.
//! - [`schema`]: the tables and how rows are read back.
//! - [`sync`]: catching up with the shared database.

pub mod catalog;
pub mod model;
pub mod schema;
pub mod sync;

use std::collections::BTreeMap;
use std::sync::Arc;

use mqgate_kit::clock::now_ms;
use mqgate_kit::params;
use mqgate_kit::store::StoreError;
use mqgate_kit::Store;
use parking_lot::RwLock;
use rand::Rng;

pub use catalog::Catalog;
pub use model::{Device, DeviceFields, Presence, PresenceEvent, Product, ProductFields};

use crate::error::Error;

/// Random lowercase hex of `len` digits.
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    rand::thread_rng().fill(&mut bytes[..]);
    let mut text = hex::encode(bytes);
    text.truncate(len);
    text
}

pub struct Registry {
    store: Arc<Store>,
    catalog: RwLock<Catalog>,
    /// Serialises writers: validation against memory, commit, apply.
    writer: tokio::sync::Mutex<()>,
    /// On a shared database: what has been loaded of other processes' changes.
    feed: Option<sync::Feed>,
}

impl Registry {
    /// Migrates the tables and loads everything into memory.
    pub fn open(store: Arc<Store>) -> Result<Registry, StoreError> {
        store.migrate("realmq", &schema::MIGRATIONS)?;
        let feed = store.is_shared().then(sync::Feed::default);
        let shared = feed.is_some();
        // the revision in the same snapshot: what is committed after it is loaded later
        let (seen, (products, devices)) = store.snapshot(move |tx| {
            let seen = if shared {
                schema::last_revision(tx)?
            } else {
                0
            };
            Ok((seen, schema::load_all(tx)?))
        })?;
        let mut catalog = Catalog::default();
        for p in products {
            catalog.put_product(p);
        }
        for d in devices {
            catalog.put_device(d);
        }
        if let Some(feed) = &feed {
            feed.start_at(seen);
        }
        Ok(Registry {
            store,
            catalog: RwLock::new(catalog),
            writer: tokio::sync::Mutex::new(()),
            feed,
        })
    }

    /// Runs `f` over a consistent view of the registry. `f` must not call the
    /// broker: a CONNECT waits for this lock. On a shared database, call
    /// [`Registry::synced`] first.
    pub fn read<R>(&self, f: impl FnOnce(&Catalog) -> R) -> R {
        f(&self.catalog.read())
    }

    /// Creates a product under `product_key`, or under a new random key.
    pub async fn create_product(
        self: &Arc<Self>,
        fields: ProductFields,
        product_key: Option<String>,
    ) -> Result<Product, Error> {
        let _writer = self.writer.lock().await;
        self.synced().await?;
        let product_key = {
            let catalog = self.catalog.read();
            catalog.check_product_name(&fields.name, None)?;
            catalog.new_product_key(product_key)?
        };
        let secret = random_hex(16);
        let now = now_ms();
        let mut product = Product {
            id: 0,
            name: fields.name,
            product_key,
            secret,
            kind: fields.kind,
            dynamic_reg: fields.dynamic_reg,
            auth_type: fields.auth_type,
            status: 1,
            description: fields.description,
            created_at_ms: now,
        };
        let row = product.clone();
        let written = self
            .store
            .write_async(move |tx| {
                tx.query_one(
                    "INSERT INTO realmq_products (name, product_key, secret, type, dynamic_reg,
                        auth_type, status, description, created_at_ms, updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
                    &params![
                        row.name,
                        row.product_key,
                        row.secret,
                        row.kind,
                        row.dynamic_reg,
                        row.auth_type,
                        row.status,
                        row.description,
                        row.created_at_ms
                    ],
                    |r| r.get(0),
                )
            })
            .await;
        let (name, key) = (product.name.clone(), product.product_key.clone());
        product.id = self
            .committed(written, |c| {
                c.check_product_name(&name, None)?;
                c.new_product_key(Some(key)).map(drop)
            })
            .await?;
        self.apply(|c| c.put_product(product.clone())).await?;
        Ok(product)
    }

    /// Replaces a product's editable fields with what `change` makes of them.
    pub async fn update_product(
        self: &Arc<Self>,
        id: i64,
        change: impl FnOnce(&Product) -> Result<ProductFields, Error>,
    ) -> Result<(), Error> {
        let _writer = self.writer.lock().await;
        self.synced().await?;
        let (mut product, fields) = {
            let catalog = self.catalog.read();
            let product = catalog
                .product(id)
                .cloned()
                .ok_or_else(|| product_not_found(id))?;
            let fields = change(&product)?;
            catalog.check_product_name(&fields.name, Some(id))?;
            (product, fields)
        };
        product.name = fields.name;
        product.kind = fields.kind;
        product.dynamic_reg = fields.dynamic_reg;
        product.auth_type = fields.auth_type;
        product.description = fields.description;
        let row = product.clone();
        let written = self
            .store
            .write_async(move |tx| {
                tx.execute(
                    "UPDATE realmq_products SET name = $2, type = $3, dynamic_reg = $4,
                        auth_type = $5, description = $6, updated_at_ms = $7 WHERE id = $1",
                    &params![
                        row.id,
                        row.name,
                        row.kind,
                        row.dynamic_reg,
                        row.auth_type,
                        row.description,
                        now_ms()
                    ],
                )
            })
            .await;
        let name = product.name.clone();
        self.committed(written, |c| c.check_product_name(&name, Some(id)))
            .await?;
        self.apply(|c| c.put_product(product)).await
    }

    /// Deletes a product that has no devices left.
    pub async fn delete_product(self: &Arc<Self>, id: i64) -> Result<Product, Error> {
        let _writer = self.writer.lock().await;
        self.synced().await?;
        let (product, no_devices) = {
            let catalog = self.catalog.read();
            let product = catalog
                .product(id)
                .cloned()
                .ok_or_else(|| product_not_found(id))?;
            let key = product.product_key.clone();
            let no_devices = move |c: &Catalog| match c.devices_of(&key).count() {
                0 => Ok(()),
                devices => Err(Error::product_has_devices(devices)),
            };
            no_devices(&catalog)?;
            (product, no_devices)
        };
        let written = self
            .store
            .write_async(move |tx| {
                tx.execute("DELETE FROM realmq_products WHERE id = $1", &params![id])
            })
            .await;
        self.committed(written, no_devices).await?;
        self.apply(|c| c.remove_product(id)).await?;
        Ok(product)
    }

    pub async fn create_device(self: &Arc<Self>, fields: DeviceFields) -> Result<Device, Error> {
        let _writer = self.writer.lock().await;
        self.synced().await?;
        self.catalog.read().check_device_fields(&fields, None)?;
        let now = now_ms();
        let row = fields.clone();
        let written = self
            .store
            .write_async(move |tx| {
                tx.query_one(
                    "INSERT INTO realmq_devices (name, product_key, username, mqtt_client_id,
                        nickname, password, device_type, description, enabled, created_at_ms,
                        updated_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id",
                    &params![
                        row.name,
                        row.product_key,
                        row.username,
                        row.mqtt_client_id,
                        row.nickname,
                        row.password,
                        row.device_type,
                        row.description,
                        row.enabled,
                        now
                    ],
                    |r| r.get(0),
                )
            })
            .await;
        let check = fields.clone();
        let id = self
            .committed(written, |c| c.check_device_fields(&check, None))
            .await?;
        let device = Device {
            id,
            fields,
            created_at_ms: now,
            presence: Presence::default(),
        };
        self.apply(|c| c.put_device(device.clone())).await?;
        Ok(device)
    }

    /// Replaces a device's editable fields with what `change` makes of them;
    /// returns the device before and after.
    pub async fn update_device(
        self: &Arc<Self>,
        id: i64,
        change: impl FnOnce(&DeviceFields) -> Result<DeviceFields, Error>,
    ) -> Result<(Device, Device), Error> {
        let _writer = self.writer.lock().await;
        self.synced().await?;
        let (before, fields) = {
            let catalog = self.catalog.read();
            let before = catalog
                .device(id)
                .map(|d| Device::clone(d))
                .ok_or_else(|| device_not_found(id))?;
            let fields = change(&before.fields)?;
            catalog.check_device_fields(&fields, Some(id))?;
            (before, fields)
        };
        let row = fields.clone();
        let written = self
            .store
            .write_async(move |tx| {
                tx.execute(
                    "UPDATE realmq_devices SET name = $2, product_key = $3, username = $4,
                        mqtt_client_id = $5, nickname = $6, password = $7, device_type = $8,
                        description = $9, enabled = $10, updated_at_ms = $11 WHERE id = $1",
                    &params![
                        id,
                        row.name,
                        row.product_key,
                        row.username,
                        row.mqtt_client_id,
                        row.nickname,
                        row.password,
                        row.device_type,
                        row.description,
                        row.enabled,
                        now_ms()
                    ],
                )
            })
            .await;
        let check = fields.clone();
        self.committed(written, |c| c.check_device_fields(&check, Some(id)))
            .await?;
        let mut after = before.clone();
        after.fields = fields;
        self.apply(|catalog| {
            // Presence may have moved on while the store was written.
            if let Some(current) = catalog.device(id) {
                after.presence = current.presence.clone();
            }
            catalog.put_device(after.clone());
        })
        .await?;
        Ok((before, after))
    }

    pub async fn delete_device(self: &Arc<Self>, id: i64) -> Result<Device, Error> {
        let _writer = self.writer.lock().await;
        self.synced().await?;
        let device = self
            .catalog
            .read()
            .device(id)
            .map(|d| Device::clone(d))
            .ok_or_else(|| device_not_found(id))?;
        let written = self
            .store
            .write_async(move |tx| {
                tx.execute("DELETE FROM realmq_devices WHERE id = $1", &params![id])
            })
            .await;
        self.committed(written, |_| Ok(())).await?;
        self.apply(|c| c.remove_device(id)).await?;
        Ok(device)
    }

    /// After a committed write: applies it to memory; on a shared database loads
    /// it (and whatever else was committed) from the database instead, so that a
    /// newer change of another process is never overwritten by this older one.
    async fn apply(self: &Arc<Self>, change: impl FnOnce(&mut Catalog)) -> Result<(), Error> {
        if self.feed.is_some() {
            return Ok(self.synced().await?);
        }
        change(&mut self.catalog.write());
        Ok(())
    }

    /// The outcome of a write. A constraint the database enforced (on a shared
    /// database: another process won a race) is reported as the vendor's error
    /// `recheck` gives once the catalog has caught up.
    async fn committed<R>(
        self: &Arc<Self>,
        written: Result<R, StoreError>,
        recheck: impl FnOnce(&Catalog) -> Result<(), Error>,
    ) -> Result<R, Error> {
        match written {
            Err(e) if e.is_constraint_violation() && self.feed.is_some() => {
                self.synced().await?;
                recheck(&self.catalog.read())?;
                Err(e.into())
            }
            other => Ok(other?),
        }
    }

    /// Applies connection events to the devices they concern and persists the
    /// result in one transaction. Called from the presence thread (blocking).
    pub fn record_presence(&self, events: Vec<PresenceEvent>) -> Result<(), StoreError> {
        let changed: BTreeMap<i64, Presence> = {
            let mut catalog = self.catalog.write();
            events
                .into_iter()
                .filter_map(|event| catalog.apply_presence(event))
                .collect()
        };
        if changed.is_empty() {
            return Ok(());
        }
        self.store.write(|tx| {
            for (id, p) in &changed {
                tx.execute(
                    "UPDATE realmq_devices SET last_ip = $2, connected_at_ms = $3,
                        disconnected_at_ms = $4 WHERE id = $1",
                    &params![id, p.ip, p.connected_at_ms, p.disconnected_at_ms],
                )?;
            }
            Ok(())
        })
    }

    /// The HMAC secret of login tokens: the stored one, or a new one stored now
    /// (the first process to store one wins; every other one reads it).
    pub fn token_secret(&self) -> Result<String, StoreError> {
        let candidate = random_hex(64);
        self.store.write(move |tx| {
            tx.execute(
                "INSERT INTO realmq_settings (key, value) VALUES ('token_secret', $1)
                 ON CONFLICT (key) DO NOTHING",
                &params![candidate],
            )?;
            tx.query_one(
                "SELECT value FROM realmq_settings WHERE key = 'token_secret'",
                &[],
                |r| r.get(0),
            )
        })
    }
}

pub fn product_not_found(id: i64) -> Error {
    Error::not_found(format!("product {id} not found"))
}

pub fn device_not_found(id: i64) -> Error {
    Error::not_found(format!("device {id} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(tag: &str) -> (Arc<Store>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mqgate-realmq-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Store::open(&dir).unwrap(), dir)
    }

    pub(super) fn product_fields(name: &str) -> ProductFields {
        ProductFields {
            name: name.into(),
            kind: 1,
            dynamic_reg: 1,
            auth_type: 1,
            description: None,
        }
    }

    pub(super) fn device_fields(name: &str, product_key: &str) -> DeviceFields {
        DeviceFields {
            name: name.into(),
            product_key: product_key.into(),
            username: format!("u-{name}"),
            mqtt_client_id: format!("c-{name}"),
            nickname: String::new(),
            password: random_hex(32),
            device_type: None,
            description: None,
            enabled: true,
        }
    }

    #[test]
    fn shapes_of_generated_values() {
        for len in [10, 16, 32] {
            let v = random_hex(len);
            assert_eq!(v.len(), len);
            assert!(v
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        }
    }

    #[tokio::test]
    async fn uniqueness_presence_and_reload() {
        let (store, dir) = temp_store("registry");
        let registry = Arc::new(Registry::open(store.clone()).unwrap());
        let p = registry
            .create_product(product_fields("p"), None)
            .await
            .unwrap();
        assert_eq!(
            registry
                .create_product(product_fields("p"), None)
                .await
                .unwrap_err()
                .code,
            113
        );
        let d = registry
            .create_device(device_fields("d", &p.product_key))
            .await
            .unwrap();
        let mut dup = device_fields("d2", &p.product_key);
        dup.username = d.fields.username.clone();
        assert_eq!(registry.create_device(dup).await.unwrap_err().code, 113);
        assert_eq!(
            registry
                .create_device(device_fields("d3", "nope"))
                .await
                .unwrap_err()
                .code,
            108
        );
        assert_eq!(registry.delete_product(p.id).await.unwrap_err().code, 117);

        registry
            .record_presence(vec![
                PresenceEvent::Connected {
                    client_id: "c-d".into(),
                    connection_id: 2,
                    ip: "10.0.0.1".into(),
                    at_ms: 1000,
                },
                // An older connection closing after the takeover changes nothing.
                PresenceEvent::Disconnected {
                    client_id: "c-d".into(),
                    connection_id: 1,
                    at_ms: 1500,
                },
            ])
            .unwrap();
        let presence = registry.read(|s| s.device(d.id).unwrap().presence.clone());
        assert_eq!(presence.connected_at_ms, Some(1000));
        assert_eq!(presence.disconnected_at_ms, None);
        registry
            .record_presence(vec![PresenceEvent::Disconnected {
                client_id: "c-d".into(),
                connection_id: 2,
                at_ms: 2000,
            }])
            .unwrap();
        let secret = registry.token_secret().unwrap();
        drop(registry);

        let reopened = Arc::new(Registry::open(store).unwrap());
        let device = reopened
            .read(|s| s.device_by_username("u-d").cloned())
            .unwrap();
        assert_eq!(device.id, d.id);
        assert_eq!(device.presence.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(device.presence.disconnected_at_ms, Some(2000));
        assert_eq!(reopened.token_secret().unwrap(), secret);
        reopened.delete_device(d.id).await.unwrap();
        reopened.delete_product(p.id).await.unwrap();
        // Ids are never reused after a delete.
        let p2 = reopened
            .create_product(product_fields("p"), None)
            .await
            .unwrap();
        assert!(p2.id > p.id);
        // A chosen key is kept, and is unique like a generated one.
        let chosen = reopened
            .create_product(product_fields("q"), Some("d9c44706a4".into()))
            .await
            .unwrap();
        assert_eq!(chosen.product_key, "d9c44706a4");
        let taken = reopened
            .create_product(product_fields("r"), Some("d9c44706a4".into()))
            .await
            .unwrap_err();
        assert_eq!(taken.code, 113);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
