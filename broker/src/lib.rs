//! # mqgate-broker
//!
//! mqgate's MQTT broker: MQTT 3.1.1 and 5 on one port, over TCP, WebSocket or
//! any byte stream the gateway hands over (TLS). It depends on the kit only; the
//! gateway wires it to configuration, listeners and the dialects.
//!
//! A connection's life, in the order the code runs it:
//!
//! - [`listeners`] accept sockets and hand each to [`connection::serve`].
//! - `connection::handshake` reads the CONNECT ([`wire`] decodes it with
//!   rumqttd's codecs), authenticates it through the dialects' hooks, takes over
//!   a connected client id, and attaches the connection to its [`session`]
//!   (resumed or new) in the session [`table`].
//! - `connection::packet_loop` reads client packets (`connection::inbound`) and
//!   writes what the session's queue holds (`connection::outbound`).
//! - A PUBLISH is turned into a [`message::Message`] and [`publish`]ed: the
//!   [`routing`] core finds the matching subscriptions (a trie over topic
//!   levels, shared groups, retained messages) and each target session queues a
//!   [`message::Delivery`]. When a live queue is full the publisher waits for
//!   room, within `slow_subscriber_timeout`, then the slow subscriber is
//!   disconnected ([`publish`] documents the policy).
//! - `connection::teardown` ends the connection: the session stays for its
//!   expiry or ends, the [`will`] is published (after its delay).
//!
//! Around it: [`Broker`] holds the shared state and the operations the
//! management APIs call ([`manage`]), [`sys`] publishes `$SYS` statistics,
//! [`authz`] is the authorization hook, [`settings`] every limit, [`counters`]
//! the broker-wide figures; in cluster mode [`cluster`] links the node to the
//! others through NATS.

pub mod authz;
mod broker;
pub mod cluster;
pub mod connection;
pub mod counters;
pub mod listeners;
mod manage;
pub mod message;
mod message_ids;
mod process;
pub mod publish;
pub mod routing;
pub mod session;
pub mod settings;
mod sys;
pub mod table;
pub mod will;
pub mod wire;

pub use broker::Broker;
pub use settings::BrokerSettings;
