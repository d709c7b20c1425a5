//! The PostgreSQL sink: each batch is one transaction of up to three binary
//! `COPY … FROM STDIN` streams (connections, messages, deliveries), on a connection
//! of the writer's own, opened again after it breaks. Retention and the id slot's
//! lease go through the shared pool.

use std::sync::Arc;

use mqgate_kit::store::{PostgresOptions, Store, StoreError};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};

use super::{ids, schema};
use crate::recorder::codec::{Decoded, Events};
use crate::recorder::writer::{ConnectionRow, Sink};

pub struct PgSink {
    pub options: PostgresOptions,
    /// `false`: commits do not wait for PostgreSQL's WAL to reach the disk
    /// (`synchronous_commit = off`); a crash of PostgreSQL itself may lose the
    /// last ones, a crash of mqgate none.
    pub durable: bool,
    pub client: Option<postgres::Client>,
    pub store: Arc<Store>,
    pub max_age_ms: i64,
    pub max_rows: u64,
    /// This process's id slot and the name it is leased under.
    pub slot: u8,
    pub holder: String,
}

const CONNECTIONS_COPY: &str = "COPY records_connections (connection_id, client_id, at_ms, \
     kind, reason, username, peer, transport, proto_ver, keepalive, clean_start, will_topic, \
     will_payload) FROM STDIN (FORMAT binary)";
const CONNECTION_TYPES: [Type; 13] = [
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT2,
    Type::INT4,
    Type::BOOL,
    Type::TEXT,
    Type::BYTEA,
];
const MESSAGES_COPY: &str = "COPY records_messages (message_id, client_id, connection_id, \
     topic, qos, retain, payload, at_ms) FROM STDIN (FORMAT binary)";
const MESSAGE_TYPES: [Type; 8] = [
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT2,
    Type::BOOL,
    Type::BYTEA,
    Type::INT8,
];
const DELIVERIES_COPY: &str = "COPY records_deliveries (message_id, client_id, connection_id, \
     topic, qos, at_ms) FROM STDIN (FORMAT binary)";
const DELIVERY_TYPES: [Type; 6] = [
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT2,
    Type::INT8,
];

impl PgSink {
    fn client(&mut self) -> Result<&mut postgres::Client, String> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            let mut client = self.options.connect_client().map_err(|e| e.to_string())?;
            if !self.durable {
                client
                    .batch_execute("SET synchronous_commit = off")
                    .map_err(|e| e.to_string())?;
            }
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }
}

impl Sink for PgSink {
    fn write(&mut self, batch: &[u8]) -> Result<(), String> {
        let mut connections = Vec::new();
        let mut messages = Vec::new();
        let mut deliveries = Vec::new();
        for event in Events::new(batch) {
            match event {
                Decoded::MessageIn { .. } => messages.push(event),
                Decoded::Delivered { .. } => deliveries.push(event),
                _ => connections.push(event),
            }
        }
        let client = self.client()?;
        let result = (|| {
            let mut tx = client.transaction()?;
            copy(&mut tx, CONNECTIONS_COPY, &CONNECTION_TYPES, &connections)?;
            copy(&mut tx, MESSAGES_COPY, &MESSAGE_TYPES, &messages)?;
            copy(&mut tx, DELIVERIES_COPY, &DELIVERY_TYPES, &deliveries)?;
            tx.commit()
        })();
        result.map_err(|e| StoreError::from(e).to_string())
    }

    fn prune(&mut self, now_ms: i64) -> Result<(), String> {
        let (max_age_ms, max_rows) = (self.max_age_ms, self.max_rows);
        self.store
            .write(|tx| schema::apply_retention(tx, now_ms, max_age_ms, max_rows))
            .map_err(|e| e.to_string())
    }

    fn keep_alive_every(&self) -> Option<std::time::Duration> {
        Some(ids::RENEW_EVERY)
    }

    fn keep_alive(&mut self) {
        let now_ms = mqgate_kit::clock::now_ms();
        match ids::renew(&self.store, self.slot, &self.holder, now_ms) {
            Ok(true) => {}
            Ok(false) => tracing::error!(
                "records: message id slot {} is no longer leased to {}: another process \
                 may give out the same message ids",
                self.slot,
                self.holder
            ),
            Err(e) => tracing::warn!("records: cannot renew message id slot {}: {e}", self.slot),
        }
    }

    fn close(&mut self) {
        if let Err(e) = ids::release(&self.store, self.slot, &self.holder) {
            tracing::warn!("records: cannot release message id slot {}: {e}", self.slot);
        }
    }
}

/// Streams `rows` into one table; nothing when there are none.
fn copy(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    types: &[Type],
    rows: &[Decoded<'_>],
) -> Result<(), postgres::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut writer = BinaryCopyInWriter::new(tx.copy_in(sql)?, types);
    let mut peer = String::new();
    for row in rows {
        if let Some(c) = ConnectionRow::of(row, &mut peer) {
            writer.write(&[
                &c.connection_id as &(dyn ToSql + Sync),
                &c.client_id,
                &c.at_ms,
                &c.kind,
                &c.reason,
                &c.username,
                &c.peer,
                &c.transport,
                &c.proto_ver,
                &c.keepalive,
                &c.clean_start,
                &c.will_topic,
                &c.will_payload,
            ])?;
            continue;
        }
        match *row {
            Decoded::MessageIn {
                message_id,
                at_ms,
                client_id,
                connection_id,
                topic,
                qos,
                retain,
                payload,
            } => writer.write(&[
                &(message_id as i64) as &(dyn ToSql + Sync),
                &client_id,
                &connection_id.map(|c| c as i64),
                &topic,
                &i16::from(qos),
                &retain,
                &payload,
                &at_ms,
            ])?,
            Decoded::Delivered {
                message_id,
                at_ms,
                client_id,
                connection_id,
                topic,
                qos,
            } => writer.write(&[
                &message_id.map(|m| m as i64) as &(dyn ToSql + Sync),
                &client_id,
                &(connection_id as i64),
                &topic,
                &i16::from(qos),
                &at_ms,
            ])?,
            // written above
            Decoded::Connected { .. } | Decoded::Disconnected { .. } => {}
        }
    }
    writer.finish().map(drop)
}
