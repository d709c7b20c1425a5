//! # mqgate
//!
//! One MQTT broker that speaks five vendors' management APIs at once.
//!
//! - The broker itself is the `mqgate-broker` crate (`broker/`).
//! - [`management`]: the `Management` implementation dialects reach the broker by.
//! - [`recorder`]: connection and message records, in their own SQLite file.
//! - [`gateway`]: start-up, restart and graceful shutdown of everything.
//! - [`access`]: the password and ACL files of `[mqtt]`, loaded at each start.
//! - [`shared_files`]: with PostgreSQL, those files and NanoMQ's configuration
//!   file kept in the store and applied on every process.
//! - [`memory`]: freed memory handed back to the system after the load falls.
//! - [`config`]: the configuration file, environment overrides and checks.
//! - [`dialects`]: the dialect table every part below iterates.
//! - [`listener`]: listener names as a type.
//! - [`http`]: serving HTTP with timeouts, a connection cap and request logs.
//! - [`tls`]: rustls server configurations from PEM files.
//! - [`docs`]: Swagger UI over every dialect's OpenAPI document, each API
//!   mounted same-origin for "Try it out".
//! - [`openapi`]: writing the checked-in OpenAPI documents.

pub mod access;
pub mod config;
pub mod dialects;
pub mod docs;
pub mod gateway;
pub mod http;
pub mod listener;
pub mod management;
pub mod memory;
pub mod openapi;
pub mod recorder;
pub mod shared_files;
pub mod tls;
