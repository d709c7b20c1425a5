//! Device presence: connects and disconnects the broker reports are queued by the
//! observer (which must not block the broker) and recorded by one background
//! thread, several events per transaction when they arrive together.
//!
//! The thread lives as long as the queue's sender: [`PresenceRecorder::stop`]
//! (the dialect's shutdown, or the recorder's drop) drops the sender, the thread
//! writes what is still queued and ends, and `stop` joins it.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use mqgate_kit::{BrokerEvent, BrokerObserver};
use parking_lot::{Mutex, RwLock};

use crate::registry::{PresenceEvent, Registry};

/// Name of the recording thread (at most 15 bytes, the kernel's limit).
pub const THREAD_NAME: &str = "realmq-presence";

pub struct PresenceRecorder {
    /// To tell devices' client ids from every other client's.
    registry: Arc<Registry>,
    /// `None` once stopped: later events are not recorded.
    queue: RwLock<Option<Sender<PresenceEvent>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl PresenceRecorder {
    /// Starts the recording thread.
    pub fn start(registry: Arc<Registry>) -> std::io::Result<PresenceRecorder> {
        let (queue, events) = channel();
        let recording = Arc::clone(&registry);
        let worker = std::thread::Builder::new()
            .name(THREAD_NAME.into())
            .spawn(move || record(recording, events))?;
        Ok(PresenceRecorder {
            registry,
            queue: RwLock::new(Some(queue)),
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Stops taking events and waits until the thread has written the queued ones
    /// and ended. Blocks for at most one batch; later calls return at once.
    pub fn stop(&self) {
        self.queue.write().take();
        if let Some(worker) = self.worker.lock().take() {
            if worker.join().is_err() {
                tracing::error!("realmq: the presence recorder panicked");
            }
        }
    }
}

impl Drop for PresenceRecorder {
    fn drop(&mut self) {
        self.stop();
    }
}

impl BrokerObserver for PresenceRecorder {
    fn on_event(&self, event: &BrokerEvent<'_>) {
        let client_id = match event {
            BrokerEvent::Connected(c) => &c.client_id,
            BrokerEvent::Disconnected { client_id, .. } => client_id,
            _ => return,
        };
        // other clients' comings and goings do not wake the thread
        if !self
            .registry
            .read(|c| c.device_by_client_id(client_id).is_some())
        {
            return;
        }
        let event = match event {
            BrokerEvent::Connected(c) => PresenceEvent::Connected {
                client_id: c.client_id.clone(),
                connection_id: c.connection_id,
                ip: c.peer.ip().to_string(),
                at_ms: c.at_ms,
            },
            BrokerEvent::Disconnected {
                client_id,
                connection_id,
                at_ms,
                ..
            } => PresenceEvent::Disconnected {
                client_id: client_id.clone(),
                connection_id: *connection_id,
                at_ms: *at_ms,
            },
            _ => return,
        };
        if let Some(queue) = self.queue.read().as_ref() {
            // The receiver only goes away with the thread, which outlives the sender.
            let _ = queue.send(event);
        }
    }

    fn wants_messages(&self) -> bool {
        false
    }
}

/// Most events written in one transaction.
const BATCH: usize = 512;

fn record(registry: Arc<Registry>, events: Receiver<PresenceEvent>) {
    while let Ok(first) = events.recv() {
        let mut batch = vec![first];
        batch.extend(events.try_iter().take(BATCH - 1));
        if let Err(e) = registry.record_presence(batch) {
            tracing::error!(error = %e, "realmq: could not record device presence");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use mqgate_kit::history::ConnectedEvent;
    use mqgate_kit::{BrokerEvent, DisconnectReason, Store, Transport};

    use super::*;
    use crate::registry::{DeviceFields, ProductFields};

    /// Threads of this process with the recorder's name.
    fn recorder_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end() == THREAD_NAME)
            .count()
    }

    /// How often the recorder's thread has been woken (voluntary context switches).
    fn recorder_wakeups() -> u64 {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| {
                let task = t.ok()?.path();
                let name = std::fs::read_to_string(task.join("comm")).ok()?;
                (name.trim_end() == THREAD_NAME).then_some(task)
            })
            .filter_map(|task| std::fs::read_to_string(task.join("status")).ok())
            .filter_map(|status| {
                let line = status
                    .lines()
                    .find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
                line.split_whitespace().nth(1)?.parse::<u64>().ok()
            })
            .sum()
    }

    /// A new thread names itself once it runs: wait (briefly) until it has.
    fn started() -> usize {
        for _ in 0..200 {
            if recorder_threads() > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        recorder_threads()
    }

    #[tokio::test]
    async fn the_thread_records_what_is_queued_and_ends_when_stopped_or_dropped() {
        let dir = tempfile_dir("presence");
        let registry = Arc::new(Registry::open(Store::open(&dir).unwrap()).unwrap());
        let product = registry
            .create_product(
                ProductFields {
                    name: "p".into(),
                    kind: 1,
                    dynamic_reg: 1,
                    auth_type: 1,
                    description: None,
                },
                None,
            )
            .await
            .unwrap();
        let device = registry
            .create_device(DeviceFields {
                name: "d".into(),
                product_key: product.product_key,
                username: "d".into(),
                mqtt_client_id: "d".into(),
                nickname: String::new(),
                password: "pw".into(),
                device_type: None,
                description: None,
                enabled: true,
            })
            .await
            .unwrap();
        assert_eq!(recorder_threads(), 0);

        let recorder = PresenceRecorder::start(Arc::clone(&registry)).unwrap();
        assert_eq!(started(), 1);
        let peer: SocketAddr = "10.1.2.3:4000".parse().unwrap();
        // clients that are no device do not wake the thread
        let woken = recorder_wakeups();
        for i in 0..200 {
            recorder.on_event(&BrokerEvent::Disconnected {
                client_id: format!("stranger-{i}"),
                connection_id: i,
                username: None,
                at_ms: 1000,
                reason: DisconnectReason::Normal,
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(recorder_wakeups(), woken, "woken for other clients");
        recorder.on_event(&BrokerEvent::Connected(Box::new(ConnectedEvent {
            client_id: "d".into(),
            connection_id: 7,
            username: Some("d".into()),
            peer,
            transport: Transport::Tcp,
            proto_ver: 4,
            keepalive: 60,
            clean_start: true,
            will: None,
            at_ms: 1234,
        })));
        // Stopping waits for the queued event to be written.
        recorder.stop();
        assert_eq!(recorder_threads(), 0);
        let presence = registry.read(|c| c.device(device.id).unwrap().presence.clone());
        assert_eq!(presence.connected_at_ms, Some(1234));
        assert_eq!(presence.ip.as_deref(), Some("10.1.2.3"));
        // Events after the stop are dropped, not queued for a thread that is gone.
        recorder.on_event(&BrokerEvent::Disconnected {
            client_id: "d".into(),
            connection_id: 7,
            username: Some("d".into()),
            at_ms: 2000,
            reason: DisconnectReason::Normal,
        });
        drop(recorder);

        let recorder = PresenceRecorder::start(Arc::clone(&registry)).unwrap();
        assert_eq!(started(), 1);
        drop(recorder);
        assert_eq!(recorder_threads(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mqgate-realmq-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
