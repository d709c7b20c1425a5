//! The loop of a connected client: read and handle its packets, write what its
//! session has for it, obey commands (kick, takeover, shutdown), watch its
//! keepalive, and wait for room when one of its publishes meets a full queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::time::Instant;

use super::{Connection, Exit, Stream};
use crate::counters::Counters;
use crate::session::{AtomicCounters, Control, Session};

/// What woke the loop.
enum Event {
    Shutdown,
    Control(Control),
    /// The held publish may go on: its record settled, or its waiting
    /// deliveries may have room (`timed_out`: the publisher's patience ran out).
    Held {
        timed_out: bool,
    },
    /// Deliveries may be ready.
    Wake,
    Read(std::io::Result<usize>),
    KeepaliveCheck,
}

/// What a held publish waits for; resolves with `true` when patience ran out.
type HeldWait = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Resolves with `false` once the session may have room, `true` at the deadline.
fn room_wait(session: Arc<Session>, max_queued: usize, deadline: Instant) -> HeldWait {
    Box::pin(async move {
        tokio::time::timeout_at(deadline, session.room_freed(max_queued))
            .await
            .is_err()
    })
}

/// A timer that never fires in practice, for connections without keepalive.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

impl Connection {
    pub(crate) async fn run(&mut self, stream: &mut Stream, rbuf: &mut BytesMut) -> Exit {
        let mut shutdown = self.broker.shutdown_signal();
        let mut last_heard = Instant::now();
        // One timer for the connection's life, re-armed only when it fires early.
        let keepalive_timer = tokio::time::sleep(self.keepalive.unwrap_or(FAR));
        tokio::pin!(keepalive_timer);
        let mut held_wait: Option<HeldWait> = None;
        // bytes already buffered behind the CONNECT
        if let Err(exit) = self.process_input(rbuf) {
            return exit;
        }
        loop {
            let more_ready = self.fill();
            // the records of this cycle go before anything is awaited
            if let Some(recorders) = &mut self.recorders {
                recorders.flush();
            }
            if let Err(exit) = self.flush(stream).await {
                return exit;
            }
            if rbuf.is_empty() && rbuf.capacity() > 0 {
                // an idle connection holds no read buffer
                *rbuf = BytesMut::new();
            }
            if held_wait.is_none() {
                held_wait = self.held_wait();
            }
            let held = self.held.is_some();
            let event = tokio::select! {
                biased;
                _ = shutdown.changed() => Event::Shutdown,
                cmd = self.control.recv() => Event::Control(cmd),
                timed_out = async { held_wait.as_mut().expect("held").await }, if held_wait.is_some() => {
                    Event::Held { timed_out }
                }
                _ = self.session.woken(), if !more_ready => Event::Wake,
                read = stream.read(rbuf), if !held => Event::Read(read),
                _ = &mut keepalive_timer, if self.keepalive.is_some() => Event::KeepaliveCheck,
                _ = std::future::ready(()), if more_ready => Event::Wake,
            };
            let step = match event {
                Event::Shutdown => Err(Exit::Shutdown),
                Event::Control(Control::Close {
                    reason,
                    discard,
                    done,
                }) => Err(Exit::Closed {
                    reason,
                    discard,
                    done,
                }),
                Event::Control(Control::TakeOver { done }) => Err(Exit::TakenOver(done)),
                Event::Held { timed_out } => {
                    held_wait = None;
                    self.resume_held(timed_out, rbuf)
                }
                Event::Wake => Ok(()),
                Event::Read(Ok(0)) | Event::Read(Err(_)) => Err(Exit::Lost),
                Event::Read(Ok(n)) => {
                    last_heard = Instant::now();
                    let c = &self.broker.counters;
                    Counters::add(&c.socket_reads, 1);
                    Counters::add(&c.bytes_received, n as u64);
                    AtomicCounters::add(&self.counters().bytes_in, n as u64);
                    self.process_input(rbuf)
                }
                Event::KeepaliveCheck => {
                    let deadline = last_heard + self.keepalive.unwrap_or(FAR);
                    if Instant::now() >= deadline {
                        Err(Exit::KeepaliveTimeout)
                    } else {
                        keepalive_timer.as_mut().reset(deadline);
                        Ok(())
                    }
                }
            };
            if let Err(exit) = step {
                return exit;
            }
        }
    }

    /// What the held publish waits for next: its record first, then room.
    fn held_wait(&mut self) -> Option<HeldWait> {
        let held = self.held.as_mut()?;
        if let Some(settle) = held.settle.take() {
            return Some(Box::pin(async move {
                settle.await;
                false
            }));
        }
        let blocked = held.blocked.as_ref()?;
        let (session, _) = &blocked.waiting[0];
        let max_queued = self.broker.hot.max_queued();
        Some(room_wait(Arc::clone(session), max_queued, blocked.deadline))
    }

    /// Goes on with the held publish; once nothing is left to wait for (or the
    /// wait timed out and the slow subscribers were given up), acknowledges it
    /// and handles the packets buffered behind it.
    fn resume_held(&mut self, timed_out: bool, rbuf: &mut BytesMut) -> Result<(), Exit> {
        let Some(mut held) = self.held.take() else {
            return Ok(());
        };
        if let Some(mut blocked) = held.blocked.take() {
            if !self.broker.retry(&mut blocked) {
                if !timed_out {
                    held.blocked = Some(blocked);
                    self.held = Some(held);
                    return Ok(());
                }
                self.broker.give_up(blocked);
            }
        }
        if let Some((kind, pkid)) = held.ack {
            self.ack(kind, pkid, crate::wire::reason::SUCCESS);
        }
        self.process_input(rbuf)
    }

    /// Writes the output buffer. A client that takes nothing for the write
    /// timeout is gone.
    pub(super) async fn flush(&mut self, stream: &mut Stream) -> Result<(), Exit> {
        if self.out.is_empty() {
            return Ok(());
        }
        let n = self.out.len() as u64;
        let written = stream
            .write_all(&self.out, self.broker.settings.write_timeout)
            .await;
        Counters::add(&self.broker.counters.bytes_sent, n);
        AtomicCounters::add(&self.counters().bytes_out, n);
        if self.out.capacity() > 16 * 1024 {
            self.out = BytesMut::new();
        } else {
            self.out.clear();
        }
        written.map_err(|_| Exit::Lost)
    }
}
