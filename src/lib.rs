//! # mqgate
//!
//! One MQTT broker that speaks five vendors' management APIs at once.
//!
//! - The broker itself is the `mqgate-broker` crate (`broker/`).
//! - [`management`]: the `Management` implementation dialects reach the broker by.
//! - [`records`]: connection and message records in the embedded store.
//! - [`gateway`]: start-up, restart and graceful shutdown of everything.
//! - [`config`]: the configuration file, environment overrides and checks.
//! - [`docs`]: Swagger UI over every dialect's OpenAPI document.
//! - [`openapi`]: writing the checked-in OpenAPI documents.

pub mod config;
pub mod docs;
pub mod gateway;
pub mod management;
pub mod openapi;
pub mod records;
