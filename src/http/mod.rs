//! Serving HTTP. Every HTTP listener (the docs and each dialect's API) goes
//! through [`serve`], which bounds what one client can hold: a request head
//! must arrive within a timeout (also the keep-alive idle timeout), a body
//! within another, each listener holds a capped number of connections and
//! answers 503 beyond it, and at shutdown idle connections close at once while
//! requests in progress get a short grace. The same function can serve any
//! axum Router with upgrades (MQTT over WebSocket).

mod access_log;
mod deadline;
mod server;

pub use server::{serve, HttpLimits, Serving};
