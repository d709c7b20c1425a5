//! # mqgate-kit
//!
//! The contract between mqgate's broker (`src/` of the `mqgate` package) and its
//! dialects (`dialects/*`). A dialect depends on this crate only.
//!
//! - [`management`]: the [`Management`] trait, everything a dialect may ask of the broker.
//! - [`model`]: domain types (clients, subscriptions, publish requests, stats, config).
//! - [`hocon`]: the HOCON subset NanoMQ-format files are written in, with limits.
//! - [`history`]: broker events for observers, and stored connection/message records.
//! - [`access`]: NanoMQ-format password and ACL files, parsed and evaluated.
//! - [`auth`]: the CONNECT authentication hook dialects contribute.
//! - [`clock`]: the wall clock.
//! - [`dialect`]: the [`Dialect`] trait a dialect crate implements.
//! - [`store`]: the database (SQLite, or PostgreSQL shared by several processes).
//! - [`topic`]: MQTT topic validation and matching.
//! - [`http`]: shared HTTP mechanics (Basic auth, paging, params, JSON bodies,
//!   payload encodings, timestamps).

pub mod access;
pub mod auth;
pub mod clock;
pub mod dialect;
pub mod history;
pub mod hocon;
pub mod http;
pub mod management;
pub mod model;
pub mod store;
pub mod topic;

pub use auth::{AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal};
pub use dialect::{Dialect, DialectBuildError, DialectConfig, DialectContext};
pub use history::{BrokerEvent, BrokerObserver, History, Settled};
pub use management::{Management, MgmtError};
pub use model::*;
pub use store::Store;
