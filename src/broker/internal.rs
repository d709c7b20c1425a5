//! The broker's own link into the router, for messages published by management
//! APIs and for wills (which mqgate publishes itself, see ARCHITECTURE.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use mqgate_kit::MgmtError;
use parking_lot::Mutex;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish, PublishProperties};
use rumqttd::Notification;
use tokio::sync::oneshot;

/// How long an API publish at QoS ≥ 1 waits for the router's PUBACK.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

pub struct InternalLink {
    tx: tokio::sync::Mutex<LinkTx>,
    waiting: Arc<Mutex<HashMap<u16, oneshot::Sender<()>>>>,
    next_pkid: Mutex<u16>,
}

impl InternalLink {
    /// Wraps a built link and spawns the task that drains its acknowledgements
    /// (left undrained, they would pile up in memory).
    pub fn new(tx: LinkTx, mut rx: LinkRx) -> Arc<InternalLink> {
        let waiting: Arc<Mutex<HashMap<u16, oneshot::Sender<()>>>> = Arc::default();
        let acks = Arc::clone(&waiting);
        tokio::spawn(async move {
            loop {
                match rx.next().await {
                    Ok(Some(Notification::Unschedule)) => {
                        let _ = rx.wake().await;
                    }
                    Ok(Some(notification)) => {
                        let packet: Option<Packet> = notification.into();
                        if let Some(Packet::PubAck(ack, _)) = packet {
                            if let Some(tx) = acks.lock().remove(&ack.pkid) {
                                let _ = tx.send(());
                            }
                        }
                    }
                    Ok(None) => {}
                    Err(_) => break,
                }
            }
        });
        Arc::new(InternalLink {
            tx: tokio::sync::Mutex::new(tx),
            waiting,
            next_pkid: Mutex::new(0),
        })
    }

    fn allocate_pkid(&self) -> u16 {
        let waiting = self.waiting.lock();
        let mut next = self.next_pkid.lock();
        loop {
            *next = next.wrapping_add(1);
            if *next != 0 && !waiting.contains_key(&*next) {
                return *next;
            }
        }
    }

    /// Publishes into the router. QoS 1 and 2 wait for the router's PUBACK (the
    /// router takes local QoS 2 as QoS 1: delivery QoS is the subscription's).
    pub async fn publish(
        &self,
        topic: &str,
        payload: Bytes,
        qos: u8,
        retain: bool,
        properties: Option<PublishProperties>,
    ) -> Result<(), MgmtError> {
        if qos == 0 {
            let publish = Publish::new(Bytes::copy_from_slice(topic.as_bytes()), payload, retain);
            let mut tx = self.tx.lock().await;
            tx.send(Packet::Publish(publish, properties))
                .await
                .map_err(|e| MgmtError::Internal(e.to_string()))?;
            return Ok(());
        }
        let pkid = self.allocate_pkid();
        let (ack_tx, ack_rx) = oneshot::channel();
        self.waiting.lock().insert(pkid, ack_tx);
        // Publish's qos and pkid are crate-private; its MQTT-independent serial
        // form is the public way to build one.
        let mut raw = BytesMut::with_capacity(5 + topic.len() + payload.len());
        raw.put_u8(0b0011_0000 | u8::from(retain) | (1 << 1));
        raw.put_u16(pkid);
        raw.put_u16(topic.len() as u16);
        raw.put_slice(topic.as_bytes());
        raw.put_slice(&payload);
        let publish = Publish::deserialize(raw.freeze());
        {
            let mut tx = self.tx.lock().await;
            if let Err(e) = tx.send(Packet::Publish(publish, properties)).await {
                self.waiting.lock().remove(&pkid);
                return Err(MgmtError::Internal(e.to_string()));
            }
        }
        match tokio::time::timeout(ACK_TIMEOUT, ack_rx).await {
            Ok(Ok(())) => Ok(()),
            _ => {
                self.waiting.lock().remove(&pkid);
                Err(MgmtError::Timeout)
            }
        }
    }
}
