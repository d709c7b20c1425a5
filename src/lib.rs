//! # mqgate
//!
//! One MQTT broker that speaks five vendors' management APIs at once.
//!
//! - [`broker`]: rumqttd's router behind mqgate's own MQTT network layer, and the
//!   session table.
//! - [`management`]: the `Management` implementation dialects reach the broker by.
//! - [`recorder`]: connection and message records, in their own SQLite file.
//! - [`gateway`]: start-up, restart and graceful shutdown of everything.
//! - [`config`]: the configuration file, environment overrides and checks.
//! - [`docs`]: Swagger UI over every dialect's OpenAPI document.
//! - [`openapi`]: writing the checked-in OpenAPI documents.

pub mod broker;
pub mod config;
pub mod docs;
pub mod gateway;
pub mod management;
pub mod openapi;
pub mod recorder;
