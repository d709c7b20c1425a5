//! The product and device registry. SQLite (through `kit::Store`) is the record;
//! an in-memory copy serves reads and the CONNECT path, so neither the device list
//! nor an MQTT CONNECT touches the database. Every change is committed to the
//! store first and applied to memory only once committed, under one writer lock
//! so uniqueness checks and the write they guard cannot interleave.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use mqgate_kit::clock::now_ms;
use mqgate_kit::store::StoreError;
use mqgate_kit::{ConnectionId, Store};
use parking_lot::RwLock;
use rand::Rng;
use rusqlite::{params, OptionalExtension, Row};

use crate::error::ApiError;

/// The schema of the dialect's tables, one migration step per entry.
pub const MIGRATIONS: &[&str] = &["CREATE TABLE realmq_products (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        product_key TEXT NOT NULL UNIQUE,
        secret TEXT NOT NULL,
        type INTEGER NOT NULL,
        dynamic_reg INTEGER NOT NULL,
        auth_type INTEGER NOT NULL,
        status INTEGER NOT NULL,
        description TEXT,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE TABLE realmq_devices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        product_key TEXT NOT NULL REFERENCES realmq_products(product_key) ON DELETE RESTRICT,
        username TEXT NOT NULL UNIQUE,
        mqtt_client_id TEXT NOT NULL UNIQUE,
        nickname TEXT NOT NULL,
        password TEXT NOT NULL,
        device_type TEXT,
        description TEXT,
        enabled INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        last_ip TEXT,
        connected_at_ms INTEGER,
        disconnected_at_ms INTEGER
    );
    CREATE INDEX realmq_devices_by_product ON realmq_devices(product_key);
    CREATE TABLE realmq_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub product_key: String,
    pub secret: String,
    /// 1 direct device, 2 gateway.
    pub kind: i64,
    pub dynamic_reg: i64,
    pub auth_type: i64,
    pub status: i64,
    pub description: Option<String>,
    pub created_at_ms: i64,
}

/// The editable fields of a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFields {
    pub name: String,
    pub kind: i64,
    pub dynamic_reg: i64,
    pub auth_type: i64,
    pub description: Option<String>,
}

/// What the broker last told us about a device's connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presence {
    pub ip: Option<String>,
    pub connected_at_ms: Option<i64>,
    pub disconnected_at_ms: Option<i64>,
    /// The connection the last connect belongs to; a disconnect of an older one
    /// (a session taken over) must not overwrite it. Not persisted.
    pub connection_id: Option<ConnectionId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: i64,
    pub fields: DeviceFields,
    pub created_at_ms: i64,
    pub presence: Presence,
}

/// The editable fields of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFields {
    pub name: String,
    pub product_key: String,
    pub username: String,
    pub mqtt_client_id: String,
    pub nickname: String,
    pub password: String,
    pub device_type: Option<String>,
    pub description: Option<String>,
    pub enabled: bool,
}

/// A connection event of a device, as the presence task records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresenceEvent {
    Connected {
        client_id: String,
        connection_id: ConnectionId,
        ip: String,
        at_ms: i64,
    },
    Disconnected {
        client_id: String,
        connection_id: ConnectionId,
        at_ms: i64,
    },
}

/// The in-memory registry with its lookup indexes.
#[derive(Debug, Default)]
pub struct State {
    products: BTreeMap<i64, Product>,
    devices: BTreeMap<i64, Device>,
    product_by_key: HashMap<String, i64>,
    product_by_name: HashMap<String, i64>,
    device_by_name: HashMap<String, i64>,
    device_by_username: HashMap<String, i64>,
    device_by_client_id: HashMap<String, i64>,
}

impl State {
    pub fn products(&self) -> impl Iterator<Item = &Product> {
        self.products.values()
    }

    pub fn product(&self, id: i64) -> Option<&Product> {
        self.products.get(&id)
    }

    pub fn product_by_key(&self, key: &str) -> Option<&Product> {
        self.product_by_key
            .get(key)
            .and_then(|id| self.products.get(id))
    }

    /// Devices in id order.
    pub fn devices(&self) -> impl Iterator<Item = &Device> {
        self.devices.values()
    }

    pub fn device(&self, id: i64) -> Option<&Device> {
        self.devices.get(&id)
    }

    pub fn device_by_username(&self, username: &str) -> Option<&Device> {
        self.device_by_username
            .get(username)
            .and_then(|id| self.devices.get(id))
    }

    pub fn device_by_client_id(&self, client_id: &str) -> Option<&Device> {
        self.device_by_client_id
            .get(client_id)
            .and_then(|id| self.devices.get(id))
    }

    pub fn devices_of<'a>(&'a self, product_key: &'a str) -> impl Iterator<Item = &'a Device> + 'a {
        self.devices
            .values()
            .filter(move |d| d.fields.product_key == product_key)
    }

    fn put_product(&mut self, product: Product) {
        if let Some(old) = self.products.get(&product.id) {
            self.product_by_name.remove(&old.name);
        }
        self.product_by_key
            .insert(product.product_key.clone(), product.id);
        self.product_by_name
            .insert(product.name.clone(), product.id);
        self.products.insert(product.id, product);
    }

    fn remove_product(&mut self, id: i64) {
        if let Some(old) = self.products.remove(&id) {
            self.product_by_key.remove(&old.product_key);
            self.product_by_name.remove(&old.name);
        }
    }

    fn put_device(&mut self, device: Device) {
        self.unindex_device(device.id);
        let f = &device.fields;
        self.device_by_name.insert(f.name.clone(), device.id);
        self.device_by_username
            .insert(f.username.clone(), device.id);
        self.device_by_client_id
            .insert(f.mqtt_client_id.clone(), device.id);
        self.devices.insert(device.id, device);
    }

    fn unindex_device(&mut self, id: i64) {
        if let Some(old) = self.devices.get(&id) {
            self.device_by_name.remove(&old.fields.name);
            self.device_by_username.remove(&old.fields.username);
            self.device_by_client_id.remove(&old.fields.mqtt_client_id);
        }
    }

    fn remove_device(&mut self, id: i64) {
        self.unindex_device(id);
        self.devices.remove(&id);
    }

    fn check_product_name(&self, name: &str, except: Option<i64>) -> Result<(), ApiError> {
        match self.product_by_name.get(name) {
            Some(id) if Some(*id) != except => Err(ApiError::already_exists("product name", name)),
            _ => Ok(()),
        }
    }

    fn check_device_fields(&self, f: &DeviceFields, except: Option<i64>) -> Result<(), ApiError> {
        if self.product_by_key(&f.product_key).is_none() {
            return Err(ApiError::invalid_parameter(format!(
                "no product has product_key {:?}",
                f.product_key
            )));
        }
        let taken = |index: &HashMap<String, i64>, value: &str| matches!(index.get(value), Some(id) if Some(*id) != except);
        if taken(&self.device_by_name, &f.name) {
            return Err(ApiError::already_exists("device name", &f.name));
        }
        if taken(&self.device_by_username, &f.username) {
            return Err(ApiError::already_exists("username", &f.username));
        }
        if taken(&self.device_by_client_id, &f.mqtt_client_id) {
            return Err(ApiError::already_exists(
                "mqtt_client_id",
                &f.mqtt_client_id,
            ));
        }
        Ok(())
    }
}

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
    state: RwLock<State>,
    /// Serialises writers: validation against memory, commit, apply.
    writer: tokio::sync::Mutex<()>,
}

impl Registry {
    /// Migrates the tables and loads everything into memory.
    pub fn open(store: Arc<Store>) -> Result<Registry, StoreError> {
        store.migrate("realmq", MIGRATIONS)?;
        let mut state = State::default();
        let (products, devices) = store.read(|c| {
            let products = c
                .prepare(
                    "SELECT id, name, product_key, secret, type, dynamic_reg, auth_type, status,
                            description, created_at_ms FROM realmq_products ORDER BY id",
                )?
                .query_map([], product_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let devices = c
                .prepare(
                    "SELECT id, name, product_key, username, mqtt_client_id, nickname, password,
                            device_type, description, enabled, created_at_ms, last_ip,
                            connected_at_ms, disconnected_at_ms FROM realmq_devices ORDER BY id",
                )?
                .query_map([], device_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((products, devices))
        })?;
        for p in products {
            state.put_product(p);
        }
        for d in devices {
            state.put_device(d);
        }
        Ok(Registry {
            store,
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs `f` over a consistent view of the registry.
    pub fn read<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.state.read())
    }

    pub async fn create_product(&self, fields: ProductFields) -> Result<Product, ApiError> {
        let _writer = self.writer.lock().await;
        let product_key = {
            let state = self.state.read();
            state.check_product_name(&fields.name, None)?;
            loop {
                let key = random_hex(10);
                if state.product_by_key(&key).is_none() {
                    break key;
                }
            }
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
        product.id = self
            .store
            .write_async(move |tx| {
                tx.execute(
                    "INSERT INTO realmq_products (name, product_key, secret, type, dynamic_reg,
                        auth_type, status, description, created_at_ms, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                    params![
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
                )?;
                Ok(tx.last_insert_rowid())
            })
            .await?;
        self.state.write().put_product(product.clone());
        Ok(product)
    }

    /// Replaces a product's editable fields with what `change` makes of them.
    pub async fn update_product(
        &self,
        id: i64,
        change: impl FnOnce(&Product) -> Result<ProductFields, ApiError>,
    ) -> Result<(), ApiError> {
        let _writer = self.writer.lock().await;
        let (mut product, fields) = {
            let state = self.state.read();
            let product = state
                .product(id)
                .cloned()
                .ok_or_else(|| product_not_found(id))?;
            let fields = change(&product)?;
            state.check_product_name(&fields.name, Some(id))?;
            (product, fields)
        };
        product.name = fields.name;
        product.kind = fields.kind;
        product.dynamic_reg = fields.dynamic_reg;
        product.auth_type = fields.auth_type;
        product.description = fields.description;
        let row = product.clone();
        self.store
            .write_async(move |tx| {
                tx.execute(
                    "UPDATE realmq_products SET name = ?2, type = ?3, dynamic_reg = ?4,
                        auth_type = ?5, description = ?6, updated_at_ms = ?7 WHERE id = ?1",
                    params![
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
            .await?;
        self.state.write().put_product(product);
        Ok(())
    }

    /// Deletes a product that has no devices left.
    pub async fn delete_product(&self, id: i64) -> Result<Product, ApiError> {
        let _writer = self.writer.lock().await;
        let product = {
            let state = self.state.read();
            let product = state
                .product(id)
                .cloned()
                .ok_or_else(|| product_not_found(id))?;
            let devices = state.devices_of(&product.product_key).count();
            if devices > 0 {
                return Err(ApiError::product_has_devices(devices));
            }
            product
        };
        self.store
            .write_async(move |tx| tx.execute("DELETE FROM realmq_products WHERE id = ?1", [id]))
            .await?;
        self.state.write().remove_product(id);
        Ok(product)
    }

    pub async fn create_device(&self, fields: DeviceFields) -> Result<Device, ApiError> {
        let _writer = self.writer.lock().await;
        self.state.read().check_device_fields(&fields, None)?;
        let now = now_ms();
        let row = fields.clone();
        let id = self
            .store
            .write_async(move |tx| {
                tx.execute(
                    "INSERT INTO realmq_devices (name, product_key, username, mqtt_client_id,
                        nickname, password, device_type, description, enabled, created_at_ms,
                        updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                    params![
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
                )?;
                Ok(tx.last_insert_rowid())
            })
            .await?;
        let device = Device {
            id,
            fields,
            created_at_ms: now,
            presence: Presence::default(),
        };
        self.state.write().put_device(device.clone());
        Ok(device)
    }

    /// Replaces a device's editable fields with what `change` makes of them;
    /// returns the device before and after.
    pub async fn update_device(
        &self,
        id: i64,
        change: impl FnOnce(&DeviceFields) -> Result<DeviceFields, ApiError>,
    ) -> Result<(Device, Device), ApiError> {
        let _writer = self.writer.lock().await;
        let (before, fields) = {
            let state = self.state.read();
            let before = state
                .device(id)
                .cloned()
                .ok_or_else(|| device_not_found(id))?;
            let fields = change(&before.fields)?;
            state.check_device_fields(&fields, Some(id))?;
            (before, fields)
        };
        let row = fields.clone();
        self.store
            .write_async(move |tx| {
                tx.execute(
                    "UPDATE realmq_devices SET name = ?2, product_key = ?3, username = ?4,
                        mqtt_client_id = ?5, nickname = ?6, password = ?7, device_type = ?8,
                        description = ?9, enabled = ?10, updated_at_ms = ?11 WHERE id = ?1",
                    params![
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
            .await?;
        let mut after = before.clone();
        after.fields = fields;
        let mut state = self.state.write();
        // Presence may have moved on while the store was written.
        if let Some(current) = state.device(id) {
            after.presence = current.presence.clone();
        }
        state.put_device(after.clone());
        Ok((before, after))
    }

    pub async fn delete_device(&self, id: i64) -> Result<Device, ApiError> {
        let _writer = self.writer.lock().await;
        let device = self
            .state
            .read()
            .device(id)
            .cloned()
            .ok_or_else(|| device_not_found(id))?;
        self.store
            .write_async(move |tx| tx.execute("DELETE FROM realmq_devices WHERE id = ?1", [id]))
            .await?;
        self.state.write().remove_device(id);
        Ok(device)
    }

    /// Applies connection events to the devices they concern and persists the
    /// result in one transaction. Called from the presence thread (blocking).
    pub fn record_presence(&self, events: Vec<PresenceEvent>) -> Result<(), StoreError> {
        let mut changed: BTreeMap<i64, Presence> = BTreeMap::new();
        {
            let mut state = self.state.write();
            for event in events {
                let client_id = match &event {
                    PresenceEvent::Connected { client_id, .. }
                    | PresenceEvent::Disconnected { client_id, .. } => client_id,
                };
                let Some(id) = state.device_by_client_id.get(client_id).copied() else {
                    continue;
                };
                let Some(device) = state.devices.get_mut(&id) else {
                    continue;
                };
                let presence = &mut device.presence;
                match event {
                    PresenceEvent::Connected {
                        connection_id,
                        ip,
                        at_ms,
                        ..
                    } => {
                        presence.ip = Some(ip);
                        presence.connected_at_ms = Some(at_ms);
                        presence.disconnected_at_ms = None;
                        presence.connection_id = Some(connection_id);
                    }
                    PresenceEvent::Disconnected {
                        connection_id,
                        at_ms,
                        ..
                    } => {
                        if presence.connection_id.is_some_and(|c| c != connection_id) {
                            continue;
                        }
                        presence.disconnected_at_ms = Some(at_ms);
                    }
                }
                changed.insert(id, presence.clone());
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        self.store.write(|tx| {
            for (id, p) in &changed {
                tx.execute(
                    "UPDATE realmq_devices SET last_ip = ?2, connected_at_ms = ?3,
                        disconnected_at_ms = ?4 WHERE id = ?1",
                    params![id, p.ip, p.connected_at_ms, p.disconnected_at_ms],
                )?;
            }
            Ok(())
        })
    }

    /// The HMAC secret of login tokens: the stored one, or a new one stored now.
    pub fn token_secret(&self) -> Result<String, StoreError> {
        self.store.write(|tx| {
            let existing: Option<String> = tx
                .query_row(
                    "SELECT value FROM realmq_settings WHERE key = 'token_secret'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(secret) = existing {
                return Ok(secret);
            }
            let secret = random_hex(64);
            tx.execute(
                "INSERT INTO realmq_settings (key, value) VALUES ('token_secret', ?1)",
                [&secret],
            )?;
            Ok(secret)
        })
    }
}

pub fn product_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("product {id} not found"))
}

pub fn device_not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("device {id} not found"))
}

fn product_from_row(r: &Row<'_>) -> rusqlite::Result<Product> {
    Ok(Product {
        id: r.get(0)?,
        name: r.get(1)?,
        product_key: r.get(2)?,
        secret: r.get(3)?,
        kind: r.get(4)?,
        dynamic_reg: r.get(5)?,
        auth_type: r.get(6)?,
        status: r.get(7)?,
        description: r.get(8)?,
        created_at_ms: r.get(9)?,
    })
}

fn device_from_row(r: &Row<'_>) -> rusqlite::Result<Device> {
    Ok(Device {
        id: r.get(0)?,
        fields: DeviceFields {
            name: r.get(1)?,
            product_key: r.get(2)?,
            username: r.get(3)?,
            mqtt_client_id: r.get(4)?,
            nickname: r.get(5)?,
            password: r.get(6)?,
            device_type: r.get(7)?,
            description: r.get(8)?,
            enabled: r.get(9)?,
        },
        created_at_ms: r.get(10)?,
        presence: Presence {
            ip: r.get(11)?,
            connected_at_ms: r.get(12)?,
            disconnected_at_ms: r.get(13)?,
            connection_id: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(tag: &str) -> (Arc<Store>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("mqgate-realmq-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        (Store::open(&dir).unwrap(), dir)
    }

    fn product_fields(name: &str) -> ProductFields {
        ProductFields {
            name: name.into(),
            kind: 1,
            dynamic_reg: 1,
            auth_type: 1,
            description: None,
        }
    }

    fn device_fields(name: &str, product_key: &str) -> DeviceFields {
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
        let registry = Registry::open(store.clone()).unwrap();
        let p = registry.create_product(product_fields("p")).await.unwrap();
        assert_eq!(
            registry
                .create_product(product_fields("p"))
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

        let reopened = Registry::open(store).unwrap();
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
        let p2 = reopened.create_product(product_fields("p")).await.unwrap();
        assert!(p2.id > p.id);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
