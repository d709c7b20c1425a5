//! Management look-ups over the whole cluster: client and subscription lists,
//! clients by id, every node's figures.
//!
//! A query goes to each live node ([`super::members`]) on the node's own
//! subject, with a reply subject of its own under the asker's inbox; each node
//! answers from its session table. An answer is sent in parts that stay well
//! under NATS's largest message: each part is a JSON header line and then one
//! JSON line per item, and NATS keeps one connection's messages in order, so
//! the part marked last ends a node's answer. A node that died (killed, or cut
//! off from NATS) has no subscription left, so NATS answers "no responders" on
//! its reply subject at once: it is left out and forgotten until heard again.
//! A node that does not finish within the management timeout is left out too
//! (and counted in `$SYS/broker/cluster/management/unanswered`).
//!
//! A cluster-wide list is the nodes' lists one after the other, in the order
//! of the nodes' names, so every node's API pages through the same sequence.
//! Page 1 takes one round trip (each node sends its first page); a later page
//! takes two: every node's count first, then the items from the nodes the page
//! falls on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use mqgate_kit::{ClientFilter, Page, PageRequest, SubscriptionFilter};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::{bump, Cluster};
use crate::broker::Broker;

/// What one node is asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Query {
    /// `limit` clients from `offset` of the node's list, and how many match.
    Clients {
        filter: ClientFilter,
        offset: usize,
        limit: usize,
    },
    Subscriptions {
        filter: SubscriptionFilter,
        offset: usize,
        limit: usize,
    },
    /// The clients of these ids that the node holds.
    Lookup { client_ids: Vec<String> },
    /// The node's figures.
    Stats,
}

/// One node's whole answer.
pub(crate) struct NodeAnswer<T> {
    pub node_id: u64,
    pub node_name: String,
    pub total: usize,
    pub items: Vec<T>,
}

#[derive(Debug, Serialize, Deserialize)]
struct PartHeader {
    node_id: u64,
    node_name: String,
    total: usize,
    last: bool,
}

/// Who is asked.
#[derive(Debug, Clone, Copy)]
pub(crate) enum To {
    Every,
    Node(u64),
}

/// The most bytes of items in one part (NATS takes 1 MiB by default).
const PART_BYTES: usize = 256 * 1024;

/// Queries this node answers at once; more wait their turn.
const CONCURRENT_ANSWERS: usize = 8;

impl Cluster {
    /// Asks `to` and returns the answers of the nodes that finished theirs in time.
    pub(crate) async fn gather<T: DeserializeOwned>(
        &self,
        to: To,
        query: &Query,
    ) -> Vec<NodeAnswer<T>> {
        let asked: HashSet<u64> = match to {
            To::Every => self.members.live().into_iter().collect(),
            To::Node(id) => HashSet::from([id]),
        };
        if asked.is_empty() || !self.is_connected() {
            return Vec::new();
        }
        let Some(mut parts) = self.ask(&asked, query).await else {
            return Vec::new();
        };
        let deadline = tokio::time::Instant::now() + self.management_timeout;
        let mut answers: HashMap<u64, NodeAnswer<T>> = HashMap::new();
        let mut done = HashSet::new();
        while !asked.is_subset(&done) {
            let Ok(Some(part)) = tokio::time::timeout_at(deadline, parts.next()).await else {
                break;
            };
            if part.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                let gone = part.subject.rsplit('.').next();
                if let Some(id) = gone.and_then(|hex| u64::from_str_radix(hex, 16).ok()) {
                    self.members.forget(id);
                    done.insert(id);
                }
                continue;
            }
            if let Some((header, items)) = read_part::<T>(&part.payload) {
                let answer = answers.entry(header.node_id).or_insert_with(|| NodeAnswer {
                    node_id: header.node_id,
                    node_name: header.node_name,
                    total: header.total,
                    items: Vec::new(),
                });
                answer.items.extend(items);
                if header.last {
                    done.insert(header.node_id);
                }
            }
        }
        let silent: Vec<u64> = asked.difference(&done).copied().collect();
        if !silent.is_empty() {
            bump(&self.counters.unanswered);
            tracing::info!(?query, "cluster: a node did not answer a query in time");
            // until it is heard again, later queries do not wait for it
            for id in silent {
                self.members.forget(id);
            }
        }
        answers.retain(|id, _| done.contains(id));
        answers.into_values().collect()
    }

    /// Sends `query` to each of `asked`; the parts of their answers arrive on
    /// the subscription returned. Each node gets a reply subject of its own:
    /// NATS's "no responders" on it names a node gone.
    async fn ask(&self, asked: &HashSet<u64>, query: &Query) -> Option<async_nats::Subscriber> {
        let body = Bytes::from(serde_json::to_vec(query).ok()?);
        let inbox = self.client.new_inbox();
        let parts = self.client.subscribe(format!("{inbox}.*")).await.ok()?;
        for &id in asked {
            let reply = format!("{inbox}.{id:016x}");
            self.client
                .publish_with_reply(self.subjects.query_to(id), reply, body.clone())
                .await
                .ok()?;
        }
        Some(parts)
    }

    /// One page of a list over every node. `here(offset, limit)` lists this
    /// node's part; `ask(offset, limit)` is the query for another node's.
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        here: impl Fn(usize, usize) -> Page<T>,
        ask: impl Fn(usize, usize) -> Query,
        page: PageRequest,
    ) -> Page<T> {
        let offset = page.offset();
        let first = if offset == 0 { page.limit } else { 0 };
        let mut nodes = self.gather::<T>(To::Every, &ask(0, first)).await;
        let mine = here(0, first);
        nodes.push(NodeAnswer {
            node_id: self.node_id,
            node_name: self.node_name.clone(),
            total: mine.total,
            items: mine.items,
        });
        nodes.sort_by(|a, b| (&a.node_name, a.node_id).cmp(&(&b.node_name, b.node_id)));
        let total = nodes.iter().map(|n| n.total).sum();
        if offset == 0 {
            let items = nodes.into_iter().flat_map(|n| n.items).take(page.limit);
            return Page {
                items: items.collect(),
                total,
            };
        }
        // the part of the page each node holds, in node order
        let end = offset.saturating_add(page.limit);
        let mut start_of_node = 0usize;
        let mut parts = Vec::new();
        for node in &nodes {
            let from = offset.max(start_of_node);
            let to = end.min(start_of_node + node.total);
            if from < to {
                parts.push((node.node_id, from - start_of_node, to - from));
            }
            start_of_node += node.total;
        }
        let fetched = parts.into_iter().map(|(node_id, from, count)| {
            let query = ask(from, count);
            let local = (node_id == self.node_id).then(|| here(from, count).items);
            async move {
                match local {
                    Some(items) => items,
                    None => self
                        .gather::<T>(To::Node(node_id), &query)
                        .await
                        .into_iter()
                        .flat_map(|a| a.items)
                        .collect(),
                }
            }
        });
        let items = futures::future::join_all(fetched).await;
        Page {
            items: items.into_iter().flatten().collect(),
            total,
        }
    }
}

fn read_part<T: DeserializeOwned>(payload: &[u8]) -> Option<(PartHeader, Vec<T>)> {
    let mut lines = payload.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let header: PartHeader = serde_json::from_slice(lines.next()?).ok()?;
    let items = lines
        .map(serde_json::from_slice)
        .collect::<Result<Vec<T>, _>>()
        .ok()?;
    Some((header, items))
}

/// Answers the queries of other nodes.
pub(super) async fn answer(broker: Arc<Broker>, cluster: &Arc<Cluster>) -> Option<JoinHandle<()>> {
    let subject = cluster.subjects.query_to(cluster.node_id);
    let mut queries = match cluster.client.subscribe(subject).await {
        Ok(queries) => queries,
        Err(e) => {
            tracing::warn!(%e, "cluster: cannot answer other nodes' queries");
            return None;
        }
    };
    let cluster = Arc::clone(cluster);
    let turns = Arc::new(Semaphore::new(CONCURRENT_ANSWERS));
    Some(tokio::spawn(async move {
        while let Some(message) = queries.next().await {
            let (Some(reply), Ok(query)) = (
                message.reply,
                serde_json::from_slice::<Query>(&message.payload),
            ) else {
                continue;
            };
            let Ok(turn) = Arc::clone(&turns).acquire_owned().await else {
                break;
            };
            let broker = Arc::clone(&broker);
            let cluster = Arc::clone(&cluster);
            tokio::spawn(async move {
                let (total, items) = broker.answer_here(query);
                for part in parts(&cluster, total, &items) {
                    let _ = cluster.client.publish(reply.clone(), part).await;
                }
                drop(turn);
            });
        }
    }))
}

/// `items` (one JSON text each) cut into parts, the last one marked.
fn parts(cluster: &Cluster, total: usize, items: &[Vec<u8>]) -> Vec<Bytes> {
    let header = |last: bool| {
        let header = PartHeader {
            node_id: cluster.node_id,
            node_name: cluster.node_name.clone(),
            total,
            last,
        };
        serde_json::to_vec(&header).unwrap_or_default()
    };
    let mut groups: Vec<&[Vec<u8>]> = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if bytes > 0 && bytes + item.len() > PART_BYTES {
            groups.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += item.len() + 1;
    }
    groups.push(&items[start..]);
    let count = groups.len();
    groups
        .into_iter()
        .enumerate()
        .map(|(i, group)| {
            let mut part = BytesMut::new();
            part.put_slice(&header(i + 1 == count));
            for item in group {
                part.put_u8(b'\n');
                part.put_slice(item);
            }
            part.freeze()
        })
        .collect()
}

impl Broker {
    /// This node's answer to a query: the total and the items, as JSON texts.
    fn answer_here(&self, query: Query) -> (usize, Vec<Vec<u8>>) {
        fn texts<T: Serialize>(page: Page<T>) -> (usize, Vec<Vec<u8>>) {
            let items = page.items.iter().filter_map(|i| serde_json::to_vec(i).ok());
            (page.total, items.collect())
        }
        match query {
            Query::Clients {
                filter,
                offset,
                limit,
            } => texts(self.table.list_range(&filter, offset, limit)),
            Query::Subscriptions {
                filter,
                offset,
                limit,
            } => texts(self.table.subscriptions_range(&filter, offset, limit)),
            Query::Lookup { client_ids } => {
                let found: Vec<_> = client_ids
                    .iter()
                    .filter_map(|id| self.table.get(id).map(|s| s.info()))
                    .collect();
                texts(Page {
                    total: found.len(),
                    items: found,
                })
            }
            Query::Stats => texts(Page {
                total: 1,
                items: vec![self.node_stats()],
            }),
        }
    }
}
