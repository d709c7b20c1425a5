//! The in-memory copy of the registry and its lookup indexes: what lists, details
//! and every MQTT CONNECT read, and where uniqueness is checked.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::model::{Device, DeviceFields, Presence, PresenceEvent, Product};
use super::random_hex;
use crate::error::Error;

/// Products and devices in id order, with indexes on every unique field. Devices
/// are shared so that a snapshot of thousands of them copies pointers only.
#[derive(Debug, Default)]
pub struct Catalog {
    products: BTreeMap<i64, Product>,
    devices: BTreeMap<i64, Arc<Device>>,
    product_by_key: HashMap<String, i64>,
    product_by_name: HashMap<String, i64>,
    device_by_name: HashMap<String, i64>,
    device_by_username: HashMap<String, i64>,
    device_by_client_id: HashMap<String, i64>,
}

/// Removes `key` from `index` if it still points at `id` (another entry may have
/// taken the value since).
fn unindex(index: &mut HashMap<String, i64>, key: &str, id: i64) {
    if index.get(key) == Some(&id) {
        index.remove(key);
    }
}

impl Catalog {
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
    pub fn devices(&self) -> impl Iterator<Item = &Arc<Device>> {
        self.devices.values()
    }

    pub fn device(&self, id: i64) -> Option<&Arc<Device>> {
        self.devices.get(&id)
    }

    pub fn device_by_username(&self, username: &str) -> Option<&Arc<Device>> {
        self.device_by_username
            .get(username)
            .and_then(|id| self.devices.get(id))
    }

    pub fn device_by_client_id(&self, client_id: &str) -> Option<&Arc<Device>> {
        self.device_by_client_id
            .get(client_id)
            .and_then(|id| self.devices.get(id))
    }

    pub fn devices_of<'a>(
        &'a self,
        product_key: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Device>> + 'a {
        self.devices
            .values()
            .filter(move |d| d.fields.product_key == product_key)
    }

    pub(super) fn put_product(&mut self, product: Product) {
        if let Some(old) = self.products.get(&product.id) {
            unindex(&mut self.product_by_name, &old.name, product.id);
        }
        self.product_by_key
            .insert(product.product_key.clone(), product.id);
        self.product_by_name
            .insert(product.name.clone(), product.id);
        self.products.insert(product.id, product);
    }

    pub(super) fn remove_product(&mut self, id: i64) {
        if let Some(old) = self.products.remove(&id) {
            unindex(&mut self.product_by_key, &old.product_key, id);
            unindex(&mut self.product_by_name, &old.name, id);
        }
    }

    pub(super) fn put_device(&mut self, device: Device) {
        self.unindex_device(device.id);
        let f = &device.fields;
        self.device_by_name.insert(f.name.clone(), device.id);
        self.device_by_username
            .insert(f.username.clone(), device.id);
        self.device_by_client_id
            .insert(f.mqtt_client_id.clone(), device.id);
        self.devices.insert(device.id, Arc::new(device));
    }

    fn unindex_device(&mut self, id: i64) {
        if let Some(old) = self.devices.get(&id) {
            unindex(&mut self.device_by_name, &old.fields.name, id);
            unindex(&mut self.device_by_username, &old.fields.username, id);
            unindex(
                &mut self.device_by_client_id,
                &old.fields.mqtt_client_id,
                id,
            );
        }
    }

    pub(super) fn remove_device(&mut self, id: i64) {
        self.unindex_device(id);
        self.devices.remove(&id);
    }

    /// Applies a connection event to the device whose client id it names; returns
    /// the device id and its presence when that changed.
    pub(super) fn apply_presence(&mut self, event: PresenceEvent) -> Option<(i64, Presence)> {
        let id = *self.device_by_client_id.get(event.client_id())?;
        let device = Arc::make_mut(self.devices.get_mut(&id)?);
        device
            .presence
            .apply(event)
            .then(|| (id, device.presence.clone()))
    }

    /// `requested` when no product has it yet, or a new random key.
    pub(super) fn new_product_key(&self, requested: Option<String>) -> Result<String, Error> {
        match requested {
            Some(key) if self.product_by_key(&key).is_some() => {
                Err(Error::already_exists("product_key", &key))
            }
            Some(key) => Ok(key),
            None => loop {
                let key = random_hex(10);
                if self.product_by_key(&key).is_none() {
                    return Ok(key);
                }
            },
        }
    }

    pub(super) fn check_product_name(&self, name: &str, except: Option<i64>) -> Result<(), Error> {
        match self.product_by_name.get(name) {
            Some(id) if Some(*id) != except => Err(Error::already_exists("product name", name)),
            _ => Ok(()),
        }
    }

    pub(super) fn check_device_fields(
        &self,
        f: &DeviceFields,
        except: Option<i64>,
    ) -> Result<(), Error> {
        if self.product_by_key(&f.product_key).is_none() {
            return Err(Error::invalid_parameter(format!(
                "no product has product_key {:?}",
                f.product_key
            )));
        }
        let taken = |index: &HashMap<String, i64>, value: &str| matches!(index.get(value), Some(id) if Some(*id) != except);
        if taken(&self.device_by_name, &f.name) {
            return Err(Error::already_exists("device name", &f.name));
        }
        if taken(&self.device_by_username, &f.username) {
            return Err(Error::already_exists("username", &f.username));
        }
        if taken(&self.device_by_client_id, &f.mqtt_client_id) {
            return Err(Error::already_exists("mqtt_client_id", &f.mqtt_client_id));
        }
        Ok(())
    }
}
