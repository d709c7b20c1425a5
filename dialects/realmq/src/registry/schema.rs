//! The registry's tables in the embedded store, and reading them back.

use rusqlite::{Connection, Row};

use super::model::{Device, DeviceFields, Presence, Product};

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

/// Every product and every device, in id order.
pub fn load_all(c: &Connection) -> rusqlite::Result<(Vec<Product>, Vec<Device>)> {
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
