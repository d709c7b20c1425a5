//! Publishers and subscribers: 1→1, fan-out, fan-in and N pairs are this one
//! run with different shapes. Every subscriber checks every message
//! ([`check`](crate::check)); a run ends when every subscriber has all it should
//! get, or has heard nothing for `idle` (what is missing then is lost).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::{stream, StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, Semaphore};

use crate::check::{self, Received};
use crate::client::{self, Conn, Reader, Target};
use crate::packet::{self, Incoming, PUBACK, PUBCOMP, PUBREC, PUBREL};
use crate::Report;

/// Who publishes to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every publisher on one topic, every subscriber on it.
    Shared,
    /// Publisher i on its own topic, every subscriber on a `+` filter over them.
    Wildcard,
    /// Publisher i to subscriber i on topic i.
    Pairs,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub name: String,
    pub shape: Shape,
    pub publishers: usize,
    pub subscribers: usize,
    /// Messages per publisher.
    pub count: u64,
    pub qos: u8,
    pub payload: usize,
    /// Unacknowledged QoS 1/2 publishes per publisher.
    pub inflight: usize,
    pub idle: Duration,
    /// Connections opened at once while setting up.
    pub concurrency: usize,
    /// Topic prefix, unique per run.
    pub topic: String,
    /// Client id prefix, unique per run: subscribers are `{clients}-s{i}`,
    /// publishers `{clients}-p{i}` (then the target's suffix).
    pub clients: String,
}

impl Run {
    fn topic_of(&self, publisher: usize) -> String {
        match self.shape {
            Shape::Shared => self.topic.clone(),
            Shape::Wildcard | Shape::Pairs => format!("{}/{publisher}", self.topic),
        }
    }

    fn filter_of(&self, subscriber: usize) -> String {
        match self.shape {
            Shape::Shared => self.topic.clone(),
            Shape::Wildcard => format!("{}/+", self.topic),
            Shape::Pairs => format!("{}/{subscriber}", self.topic),
        }
    }

    /// Messages subscriber `i` should get.
    fn expected_per_subscriber(&self) -> u64 {
        match self.shape {
            Shape::Pairs => self.count,
            _ => self.count * self.publishers as u64,
        }
    }
}

/// Connects `n` clients named `{prefix}{i}`, `concurrency` at a time.
pub async fn connect_many(
    target: &Target,
    prefix: &str,
    n: usize,
    concurrency: usize,
) -> io::Result<Vec<Conn>> {
    stream::iter(0..n)
        .map(|i| {
            let id = format!("{prefix}{i}");
            async move { client::connect(target, &id, true).await }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}

pub async fn run(target: &Target, run: &Run) -> io::Result<Report> {
    run_across(target, target, run).await
}

/// [`run`] with the subscribers on another broker than the publishers (two
/// nodes of one cluster).
pub async fn run_across(target: &Target, sub_target: &Target, run: &Run) -> io::Result<Report> {
    let tag = &run.clients;
    let mut subs = connect_many(
        sub_target,
        &format!("{tag}-s"),
        run.subscribers,
        run.concurrency,
    )
    .await?;
    for (i, s) in subs.iter_mut().enumerate() {
        s.subscribe(&run.filter_of(i), run.qos).await?;
    }
    if sub_target.addr != target.addr {
        // a cluster propagates a new subscription to the other nodes after its SUBACK
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let pubs = connect_many(target, &format!("{tag}-p"), run.publishers, run.concurrency).await?;
    let base = Instant::now();
    let expected = run.expected_per_subscriber();
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .map(|s| tokio::spawn(subscribe_loop(s, base, run.count, expected, run.idle)))
        .collect();
    let pub_tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            tokio::spawn(publish_loop(
                p,
                i as u32,
                run.topic_of(i),
                run.clone(),
                base,
            ))
        })
        .collect();
    let mut sent = 0;
    let mut unacked = 0;
    for t in pub_tasks {
        let (s, u) = t.await.map_err(io::Error::other)??;
        sent += s;
        unacked += u;
    }
    let mut report = Report::new(&run.name);
    let mut latencies = Vec::new();
    let mut last = base;
    for t in sub_tasks {
        let r = t.await.map_err(io::Error::other)??;
        report.received += r.distinct;
        report.duplicates += r.duplicates;
        report.reordered += r.reordered + r.foreign;
        latencies.extend_from_slice(&r.latencies_us);
        last = last.max(r.last_at.unwrap_or(base));
    }
    report.sent = sent;
    report.unacked = unacked;
    report.expected = expected * run.subscribers as u64;
    report.lost = report.expected.saturating_sub(report.received);
    report.rate = report.received as f64 / last.duration_since(base).as_secs_f64().max(1e-9);
    report.latencies(latencies);
    Ok(report)
}

/// Reads and checks until `expected` distinct messages came or `idle` passed
/// without any; acknowledges QoS 1 and 2 (acks of one read are written together).
async fn subscribe_loop(
    conn: Conn,
    base: Instant,
    count: u64,
    expected: u64,
    idle: Duration,
) -> io::Result<Received> {
    let Conn {
        mut reader,
        mut writer,
        ..
    } = conn;
    let mut received = Received::new(base, count);
    let mut acks = BytesMut::new();
    while received.distinct < expected {
        let first = match tokio::time::timeout(idle, reader.next()).await {
            Ok(p) => p?,
            Err(_) => break,
        };
        let mut next = Some(first);
        while let Some(p) = next {
            match p {
                Incoming::Publish { qos, pkid, payload } => {
                    received.check(&payload);
                    match qos {
                        1 => packet::ack(&mut acks, PUBACK, pkid),
                        2 => packet::ack(&mut acks, PUBREC, pkid),
                        _ => {}
                    }
                }
                Incoming::Ack { kind: PUBREL, pkid } => packet::ack(&mut acks, PUBCOMP, pkid),
                Incoming::Disconnect { code } => {
                    return Err(io::Error::other(format!("DISCONNECT 0x{code:02X}")))
                }
                _ => {}
            }
            next = reader.buffered()?;
        }
        if !acks.is_empty() {
            writer.write_all(&acks).await?;
            acks.clear();
        }
    }
    let mut bye = BytesMut::new();
    packet::disconnect(&mut bye);
    let _ = writer.write_all(&bye).await;
    Ok(received)
}

/// The acknowledgement side of a publisher: frees a window slot per
/// PUBACK/PUBCOMP and answers PUBREC with PUBREL; returns the publishes completed.
async fn ack_loop(
    mut reader: Reader,
    writer: Arc<Mutex<OwnedWriteHalf>>,
    window: Arc<Semaphore>,
    qos: u8,
    count: u64,
) -> io::Result<u64> {
    let mut done = 0u64;
    while qos > 0 && done < count {
        match reader.next().await? {
            Incoming::Ack { kind: PUBACK, .. } | Incoming::Ack { kind: PUBCOMP, .. } => {
                done += 1;
                window.add_permits(1);
            }
            Incoming::Ack { kind: PUBREC, pkid } => {
                let mut out = BytesMut::new();
                packet::ack(&mut out, PUBREL, pkid);
                writer.lock().await.write_all(&out).await?;
            }
            _ => {}
        }
    }
    Ok(done)
}

/// Waits for one free slot of the in-flight window, then takes up to `most`
/// without waiting; returns how many were taken.
async fn take_window(window: &Semaphore, most: u64) -> io::Result<u64> {
    window.acquire().await.map_err(io::Error::other)?.forget();
    let mut taken = 1;
    while taken < most {
        match window.try_acquire() {
            Ok(p) => p.forget(),
            Err(_) => break,
        }
        taken += 1;
    }
    Ok(taken)
}

/// Publishes `run.count` messages; returns (sent, left unacknowledged).
async fn publish_loop(
    conn: Conn,
    index: u32,
    topic: String,
    run: Run,
    base: Instant,
) -> io::Result<(u64, u64)> {
    let Conn {
        reader,
        writer,
        version,
    } = conn;
    let writer = Arc::new(Mutex::new(writer));
    let window = Arc::new(Semaphore::new(run.inflight.max(1)));
    let acker = tokio::spawn(ack_loop(
        reader,
        writer.clone(),
        window.clone(),
        run.qos,
        run.count,
    ));
    let mut payload = vec![b'x'; run.payload.max(check::HEADER)];
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut seq = 0u64;
    let mut pkid = 0u16;
    while seq < run.count {
        let batch = if run.qos > 0 {
            take_window(&window, (run.count - seq).min(64)).await?
        } else {
            64.min(run.count - seq)
        };
        for _ in 0..batch {
            pkid = if pkid == u16::MAX { 1 } else { pkid + 1 };
            check::stamp(&mut payload, index, seq, base.elapsed());
            packet::publish(&mut out, version, &topic, run.qos, pkid, &payload);
            seq += 1;
        }
        writer.lock().await.write_all(&out).await?;
        out.clear();
    }
    let mut acker = acker;
    let wait = run.idle.max(Duration::from_secs(1)) * 2;
    let acked = match tokio::time::timeout(wait, &mut acker).await {
        Ok(joined) => joined.map_err(io::Error::other)??,
        Err(_) => {
            acker.abort();
            0
        }
    };
    packet::disconnect(&mut out);
    let _ = writer.lock().await.write_all(&out).await;
    let unacked = if run.qos > 0 { run.count - acked } else { 0 };
    Ok((seq, unacked))
}
