//! The session table: every client the broker knows (connected, offline with a
//! persistent session, or only named by a subscribe-on-behalf), with everything
//! the dialects report about it.
//!
//! Entries live in an insertion-ordered map so that an unfiltered page is read by
//! index: a page costs O(page), never a copy of the table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use indexmap::IndexMap;
use mqgate_kit::{
    ClientCounters, ClientFilter, ClientInfo, ConnectionId, Page, PageRequest, SubscriptionFilter,
    SubscriptionInfo, Transport, WillInfo,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::mpsc;

use super::connection::Control;
use super::filters::FilterIndex;

/// Options of one subscription as the session holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubOptions {
    pub qos: u8,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: u8,
}

impl SubOptions {
    pub fn with_qos(qos: u8) -> Self {
        SubOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        }
    }
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A live connection owns the session.
    Connected,
    /// Clean start = false, no connection: the router keeps it in its graveyard.
    Offline,
    /// Only subscriptions made on behalf of a client id that has not connected yet.
    Pending,
}

/// The part of an entry that changes together.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub kind: SessionKind,
    pub connection_id: ConnectionId,
    pub username: Option<String>,
    pub proto_ver: u8,
    pub keepalive: u16,
    pub clean_start: bool,
    pub session_expiry_interval: Option<u32>,
    pub peer: SocketAddr,
    pub transport: Transport,
    pub created_at_ms: i64,
    pub connected_at_ms: i64,
    pub disconnected_at_ms: Option<i64>,
    pub will: Option<WillInfo>,
    pub subscriptions: BTreeMap<String, SubOptions>,
    /// Filters added on behalf while no connection owned the session; injected into
    /// the router when the client connects.
    pub unsynced: BTreeSet<String>,
    /// Filters removed on behalf while offline; removed from the router's session
    /// when the client connects.
    pub removed_offline: BTreeSet<String>,
    /// Commands to the connection task, while connected.
    pub control: Option<mpsc::UnboundedSender<Control>>,
}

#[derive(Debug, Default)]
pub struct AtomicCounters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub send_queue: AtomicUsize,
}

impl AtomicCounters {
    fn snapshot(&self) -> ClientCounters {
        ClientCounters {
            messages_in: self.messages_in.load(Ordering::Relaxed),
            messages_out: self.messages_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            packets_in: self.packets_in.load(Ordering::Relaxed),
            packets_out: self.packets_out.load(Ordering::Relaxed),
        }
    }
}

pub struct SessionEntry {
    pub client_id: String,
    pub state: Mutex<SessionState>,
    pub counters: AtomicCounters,
}

impl SessionEntry {
    pub fn new(client_id: String, state: SessionState) -> Arc<SessionEntry> {
        Arc::new(SessionEntry {
            client_id,
            state: Mutex::new(state),
            counters: AtomicCounters::default(),
        })
    }

    fn is_pending(&self) -> bool {
        self.state.lock().kind == SessionKind::Pending
    }

    pub fn info(&self) -> ClientInfo {
        let s = self.state.lock();
        ClientInfo {
            client_id: self.client_id.clone(),
            connection_id: s.connection_id,
            username: s.username.clone(),
            connected: s.kind == SessionKind::Connected,
            proto_name: "MQTT".to_string(),
            proto_ver: s.proto_ver,
            keepalive: s.keepalive,
            clean_start: s.clean_start,
            session_expiry_interval: s.session_expiry_interval,
            peer: s.peer,
            transport: s.transport,
            created_at_ms: s.created_at_ms,
            connected_at_ms: s.connected_at_ms,
            disconnected_at_ms: s.disconnected_at_ms,
            will: s.will.clone(),
            subscription_count: s.subscriptions.len(),
            counters: self.counters.snapshot(),
            send_queue_len: self.counters.send_queue.load(Ordering::Relaxed),
        }
    }

    fn matches(&self, f: &ClientFilter) -> bool {
        let s = self.state.lock();
        if s.kind == SessionKind::Pending {
            return false;
        }
        f.client_id.as_deref().is_none_or(|id| id == self.client_id)
            && f.username
                .as_deref()
                .is_none_or(|u| s.username.as_deref() == Some(u))
            && f.connected
                .is_none_or(|c| c == (s.kind == SessionKind::Connected))
            && f.proto_name.as_deref().is_none_or(|n| n == "MQTT")
            && f.proto_ver.is_none_or(|v| v == s.proto_ver)
            && f.clean_start.is_none_or(|c| c == s.clean_start)
            && f.subscribed_filter
                .as_deref()
                .is_none_or(|t| s.subscriptions.contains_key(t))
    }

    fn subscription_infos(&self, f: &SubscriptionFilter) -> Vec<SubscriptionInfo> {
        let s = self.state.lock();
        if s.kind == SessionKind::Pending && f.client_id.as_deref() != Some(&self.client_id) {
            return Vec::new();
        }
        s.subscriptions
            .iter()
            .filter(|(t, o)| {
                f.topic_filter.as_deref().is_none_or(|x| x == t.as_str())
                    && f.qos.is_none_or(|q| q == o.qos)
            })
            .map(|(t, o)| SubscriptionInfo {
                client_id: self.client_id.clone(),
                topic_filter: t.clone(),
                qos: o.qos,
                no_local: o.no_local,
                retain_as_published: o.retain_as_published,
                retain_handling: o.retain_handling,
            })
            .collect()
    }
}

/// All sessions, by client id.
#[derive(Default)]
pub struct SessionTable {
    entries: RwLock<IndexMap<String, Arc<SessionEntry>>>,
    /// Pending entries in `entries` (an entry's kind is Pending for its whole
    /// life, or never); while there are none, unfiltered pages are read by index.
    pending: AtomicUsize,
    /// Every filter held by an entry in `entries`, for "does anyone subscribe?".
    filters: RwLock<FilterIndex>,
}

/// Gauges derived from the table in one pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct TableGauges {
    pub connected: u64,
    pub sessions: u64,
    pub subscriptions: u64,
    pub topics: u64,
    pub users: u64,
}

impl SessionTable {
    pub fn get(&self, client_id: &str) -> Option<Arc<SessionEntry>> {
        self.entries.read().get(client_id).cloned()
    }

    pub fn insert(&self, entry: Arc<SessionEntry>) {
        let now_pending = entry.is_pending();
        let added: Vec<String> = entry.state.lock().subscriptions.keys().cloned().collect();
        let old = self.entries.write().insert(entry.client_id.clone(), entry);
        let removed: Vec<String> = match &old {
            Some(o) => o.state.lock().subscriptions.keys().cloned().collect(),
            None => Vec::new(),
        };
        {
            let mut filters = self.filters.write();
            removed.iter().for_each(|f| filters.remove(f));
            added.iter().for_each(|f| filters.add(f));
        }
        if old.is_some_and(|o| o.is_pending()) {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
        if now_pending {
            self.pending.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds (or replaces) a subscription of an entry that is in the table; the
    /// caller holds the entry's state lock and passes its map.
    pub fn set_subscription(
        &self,
        subscriptions: &mut BTreeMap<String, SubOptions>,
        filter: String,
        options: SubOptions,
    ) {
        if subscriptions.insert(filter.clone(), options).is_none() {
            self.filters.write().add(&filter);
        }
    }

    /// Removes a subscription of an entry that is in the table; whether it existed.
    pub fn remove_subscription(
        &self,
        subscriptions: &mut BTreeMap<String, SubOptions>,
        filter: &str,
    ) -> bool {
        let existed = subscriptions.remove(filter).is_some();
        if existed {
            self.filters.write().remove(filter);
        }
        existed
    }

    /// Whether any session holds a filter matching `topic`.
    pub fn has_subscriber(&self, topic: &str) -> bool {
        self.filters.read().matches(topic)
    }

    /// Removes the entry only if it is still `entry` (a newer connection may have
    /// replaced it meanwhile).
    pub fn remove_if_same(&self, entry: &Arc<SessionEntry>) {
        let mut map = self.entries.write();
        if map
            .get(&entry.client_id)
            .is_some_and(|e| Arc::ptr_eq(e, entry))
        {
            map.swap_remove(&entry.client_id);
            drop(map);
            if entry.is_pending() {
                self.pending.fetch_sub(1, Ordering::Relaxed);
            }
            let removed: Vec<String> = entry.state.lock().subscriptions.keys().cloned().collect();
            let mut filters = self.filters.write();
            removed.iter().for_each(|f| filters.remove(f));
        }
    }

    pub fn list(&self, filter: &ClientFilter, page: PageRequest) -> Page<ClientInfo> {
        let map = self.entries.read();
        let unfiltered = filter.client_id.is_none()
            && filter.username.is_none()
            && filter.connected.is_none()
            && filter.proto_name.is_none()
            && filter.proto_ver.is_none()
            && filter.clean_start.is_none()
            && filter.subscribed_filter.is_none();
        if let Some(id) = &filter.client_id {
            let items: Vec<ClientInfo> = map
                .get(id)
                .filter(|e| e.matches(filter))
                .map(|e| e.info())
                .into_iter()
                .collect();
            let total = items.len();
            let items = if page.offset() == 0 {
                items
            } else {
                Vec::new()
            };
            return Page { items, total };
        }
        if unfiltered
            && !map
                .values()
                .any(|e| e.state.lock().kind == SessionKind::Pending)
        {
            let total = map.len();
            let start = page.offset().min(total);
            let end = start.saturating_add(page.limit).min(total);
            let items = (start..end)
                .filter_map(|i| map.get_index(i).map(|(_, e)| e.info()))
                .collect();
            return Page { items, total };
        }
        let mut total = 0;
        let mut items = Vec::new();
        let offset = page.offset();
        for entry in map.values() {
            if entry.matches(filter) {
                if total >= offset && items.len() < page.limit {
                    items.push(entry.info());
                }
                total += 1;
            }
        }
        Page { items, total }
    }

    pub fn subscriptions(
        &self,
        filter: &SubscriptionFilter,
        page: PageRequest,
    ) -> Page<SubscriptionInfo> {
        let map = self.entries.read();
        let entries: Vec<Arc<SessionEntry>> = match &filter.client_id {
            Some(id) => map.get(id).cloned().into_iter().collect(),
            None => map.values().cloned().collect(),
        };
        drop(map);
        let mut total = 0;
        let mut items = Vec::new();
        let offset = page.offset();
        for entry in entries {
            for sub in entry.subscription_infos(filter) {
                if total >= offset && items.len() < page.limit {
                    items.push(sub);
                }
                total += 1;
            }
        }
        Page { items, total }
    }

    pub fn gauges(&self) -> TableGauges {
        let map = self.entries.read();
        let mut g = TableGauges::default();
        let mut topics = std::collections::HashSet::new();
        let mut users = std::collections::HashSet::new();
        for entry in map.values() {
            let s = entry.state.lock();
            match s.kind {
                SessionKind::Connected => {
                    g.connected += 1;
                    g.sessions += 1;
                    if let Some(u) = s.username.as_deref().filter(|u| !u.is_empty()) {
                        users.insert(u.to_string());
                    }
                }
                SessionKind::Offline => g.sessions += 1,
                SessionKind::Pending => continue,
            }
            g.subscriptions += s.subscriptions.len() as u64;
            for t in s.subscriptions.keys() {
                if !topics.contains(t.as_str()) {
                    topics.insert(t.clone());
                }
            }
        }
        g.topics = topics.len() as u64;
        g.users = users.len() as u64;
        g
    }

    /// Every entry, for shutdown.
    pub fn all(&self) -> Vec<Arc<SessionEntry>> {
        self.entries.read().values().cloned().collect()
    }
}
