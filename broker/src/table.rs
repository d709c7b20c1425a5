//! The session table: every session by client id, with the indexes the
//! management APIs page through (connected, offline, by username), so a page
//! costs O(page) whatever the number of sessions.
//!
//! Client ids only named by a subscribe-on-behalf (pending sessions) are kept
//! apart: they are not clients yet and no listing shows them.

use std::collections::HashMap;
use std::sync::Arc;

use indexmap::{IndexMap, IndexSet};
use mqgate_kit::{ClientFilter, ClientInfo, Page, SubscriptionFilter, SubscriptionInfo};
use parking_lot::RwLock;

use crate::session::{Session, SessionKind};

#[derive(Default)]
struct Inner {
    sessions: IndexMap<Arc<str>, Arc<Session>>,
    connected: IndexSet<Arc<str>>,
    offline: IndexSet<Arc<str>>,
    /// Every non-pending session by username.
    by_username: HashMap<Arc<str>, IndexSet<Arc<str>>>,
    /// Distinct usernames among connected sessions, with their connection count.
    connected_users: HashMap<Arc<str>, usize>,
    pending: HashMap<Arc<str>, Arc<Session>>,
    /// Where each session (by session id) is indexed, so removal finds it.
    placements: HashMap<u64, Placement>,
}

#[derive(Default)]
struct Placement {
    username: Option<Arc<str>>,
    connected: bool,
}

#[derive(Default)]
pub struct SessionTable {
    inner: RwLock<Inner>,
}

/// Gauges kept by the table.
#[derive(Debug, Default, Clone, Copy)]
pub struct TableGauges {
    pub connected: u64,
    pub sessions: u64,
    pub users: u64,
}

impl Inner {
    fn unplace(&mut self, client_id: &Arc<str>, placement: &Placement) {
        if placement.connected {
            self.connected.swap_remove(client_id);
            if let Some(u) = &placement.username {
                if let Some(n) = self.connected_users.get_mut(u) {
                    *n -= 1;
                    if *n == 0 {
                        self.connected_users.remove(u);
                    }
                }
            }
        } else {
            self.offline.swap_remove(client_id);
        }
        if let Some(u) = &placement.username {
            if let Some(set) = self.by_username.get_mut(u) {
                set.swap_remove(client_id);
                if set.is_empty() {
                    self.by_username.remove(u);
                }
            }
        }
    }

    fn place(&mut self, session: &Session, kind: SessionKind, username: Option<String>) {
        let placement = Placement {
            username: username.map(Arc::from),
            connected: kind == SessionKind::Connected,
        };
        let client_id = &session.client_id;
        if placement.connected {
            self.connected.insert(Arc::clone(client_id));
            if let Some(u) = &placement.username {
                *self.connected_users.entry(Arc::clone(u)).or_default() += 1;
            }
        } else {
            self.offline.insert(Arc::clone(client_id));
        }
        if let Some(u) = &placement.username {
            self.by_username
                .entry(Arc::clone(u))
                .or_default()
                .insert(Arc::clone(client_id));
        }
        self.placements.insert(session.id, placement);
    }
}

impl SessionTable {
    /// The session of a client id (connected or offline; not pending).
    pub fn get(&self, client_id: &str) -> Option<Arc<Session>> {
        self.inner.read().sessions.get(client_id).cloned()
    }

    pub fn get_pending(&self, client_id: &str) -> Option<Arc<Session>> {
        self.inner.read().pending.get(client_id).cloned()
    }

    /// Puts a session in the table (replacing any of the same client id, which
    /// the caller has ended) and indexes it as it stands.
    pub fn insert(&self, session: &Arc<Session>) {
        let (kind, username) = {
            let s = session.state();
            (s.kind, s.details.username.clone())
        };
        let mut inner = self.inner.write();
        if kind == SessionKind::Pending {
            inner
                .pending
                .insert(Arc::clone(&session.client_id), Arc::clone(session));
            return;
        }
        if let Some(old) = inner
            .sessions
            .insert(Arc::clone(&session.client_id), Arc::clone(session))
        {
            if let Some(p) = inner.placements.remove(&old.id) {
                inner.unplace(&old.client_id, &p);
            }
        }
        inner.place(session, kind, username);
    }

    /// Re-indexes a session whose connection state or username changed.
    pub fn reindex(&self, session: &Arc<Session>) {
        let (kind, username) = {
            let s = session.state();
            (s.kind, s.details.username.clone())
        };
        let mut inner = self.inner.write();
        let is_current = inner
            .sessions
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session));
        if !is_current {
            return;
        }
        if let Some(p) = inner.placements.remove(&session.id) {
            inner.unplace(&session.client_id, &p);
        }
        inner.place(session, kind, username);
    }

    /// Removes the session if it is still the one its client id maps to.
    pub fn remove(&self, session: &Arc<Session>) -> bool {
        let mut inner = self.inner.write();
        if let Some(p) = inner.pending.get(&session.client_id) {
            if Arc::ptr_eq(p, session) {
                inner.pending.remove(&session.client_id);
                return true;
            }
        }
        let is_current = inner
            .sessions
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session));
        if !is_current {
            return false;
        }
        inner.sessions.swap_remove(&session.client_id);
        if let Some(p) = inner.placements.remove(&session.id) {
            inner.unplace(&session.client_id, &p);
        }
        if inner.sessions.capacity() > 1024 && inner.sessions.len() < inner.sessions.capacity() / 4
        {
            inner.sessions.shrink_to_fit();
        }
        true
    }

    /// Whether the table can be read within `patience`.
    pub fn responsive(&self, patience: std::time::Duration) -> bool {
        self.inner.try_read_for(patience).is_some()
    }

    pub fn gauges(&self) -> TableGauges {
        let inner = self.inner.read();
        TableGauges {
            connected: inner.connected.len() as u64,
            sessions: inner.sessions.len() as u64,
            users: inner.connected_users.len() as u64,
        }
    }

    pub fn connected_count(&self) -> usize {
        self.inner.read().connected.len()
    }

    /// `limit` sessions matching `filter` from position `offset` copied out,
    /// and how many match.
    pub fn list_range(
        &self,
        filter: &ClientFilter,
        offset: usize,
        limit: usize,
    ) -> Page<ClientInfo> {
        let inner = self.inner.read();
        if let Some(id) = &filter.client_id {
            let found: Vec<ClientInfo> = inner
                .sessions
                .get(id.as_str())
                .filter(|s| {
                    filter
                        .subscribed_filter
                        .as_deref()
                        .is_none_or(|f| s.has_subscription(f))
                })
                .map(|s| s.info())
                .filter(|info| matches(info, filter))
                .into_iter()
                .collect();
            let total = found.len();
            let items = if offset == 0 && limit > 0 {
                found
            } else {
                Vec::new()
            };
            return Page { items, total };
        }
        let others_unset = filter.proto_name.is_none()
            && filter.proto_ver.is_none()
            && filter.clean_start.is_none()
            && filter.subscribed_filter.is_none();
        // An index that holds exactly the matching sessions pages by position.
        let exact: Option<&IndexSet<Arc<str>>> = match (&filter.username, filter.connected) {
            _ if !others_unset => None,
            (None, Some(true)) => Some(&inner.connected),
            (None, Some(false)) => Some(&inner.offline),
            _ => None,
        };
        if let Some(index) = exact {
            return page_of(index.len(), offset, limit, |i| {
                index
                    .get_index(i)
                    .and_then(|id| inner.sessions.get(id))
                    .map(|s| s.info())
            });
        }
        if filter.username.is_none() && filter.connected.is_none() && others_unset {
            return page_of(inner.sessions.len(), offset, limit, |i| {
                inner.sessions.get_index(i).map(|(_, s)| s.info())
            });
        }
        // Otherwise scan the smallest candidate set and filter.
        let empty = IndexSet::new();
        let candidates: Box<dyn Iterator<Item = &Arc<Session>>> = match &filter.username {
            Some(u) => Box::new(
                inner
                    .by_username
                    .get(u.as_str())
                    .unwrap_or(&empty)
                    .iter()
                    .filter_map(|id| inner.sessions.get(id)),
            ),
            None => Box::new(inner.sessions.values()),
        };
        let mut total = 0;
        let mut items = Vec::new();
        for session in candidates {
            let subscribed = filter
                .subscribed_filter
                .as_deref()
                .is_none_or(|f| session.has_subscription(f));
            let info = session.info();
            if subscribed && matches(&info, filter) {
                if total >= offset && items.len() < limit {
                    items.push(info);
                }
                total += 1;
            }
        }
        Page { items, total }
    }

    /// `limit` subscriptions of every session (or of one client id, pending ones
    /// included) from position `offset`, and how many match.
    pub fn subscriptions_range(
        &self,
        filter: &SubscriptionFilter,
        offset: usize,
        limit: usize,
    ) -> Page<SubscriptionInfo> {
        let sessions: Vec<Arc<Session>> = {
            let inner = self.inner.read();
            match &filter.client_id {
                Some(id) => inner
                    .sessions
                    .get(id.as_str())
                    .or_else(|| inner.pending.get(id.as_str()))
                    .cloned()
                    .into_iter()
                    .collect(),
                None => inner.sessions.values().cloned().collect(),
            }
        };
        let mut total = 0;
        let mut items = Vec::new();
        for session in sessions {
            for (topic_filter, o) in session.subscriptions() {
                let wanted = filter
                    .topic_filter
                    .as_deref()
                    .is_none_or(|f| f == topic_filter)
                    && filter.qos.is_none_or(|q| q == o.qos);
                if !wanted {
                    continue;
                }
                if total >= offset && items.len() < limit {
                    items.push(SubscriptionInfo {
                        client_id: session.client_id.to_string(),
                        topic_filter,
                        qos: o.qos,
                        no_local: o.no_local,
                        retain_as_published: o.retain_as_published,
                        retain_handling: o.retain_handling,
                    });
                }
                total += 1;
            }
        }
        Page { items, total }
    }

    /// Sessions holding at least one subscription.
    pub fn subscriber_count(&self) -> u64 {
        let inner = self.inner.read();
        inner
            .sessions
            .values()
            .filter(|s| s.subscription_count() > 0)
            .count() as u64
    }

    /// Every session, for sweeps that must look at each one.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.inner.read().sessions.values().cloned().collect()
    }
}

fn page_of(
    total: usize,
    offset: usize,
    limit: usize,
    item: impl Fn(usize) -> Option<ClientInfo>,
) -> Page<ClientInfo> {
    let start = offset.min(total);
    let end = start.saturating_add(limit).min(total);
    Page {
        items: (start..end).filter_map(item).collect(),
        total,
    }
}

fn matches(info: &ClientInfo, f: &ClientFilter) -> bool {
    f.username
        .as_deref()
        .is_none_or(|u| info.username.as_deref() == Some(u))
        && f.connected.is_none_or(|c| c == info.connected)
        && f.proto_name.as_deref().is_none_or(|n| n == info.proto_name)
        && f.proto_ver.is_none_or(|v| v == info.proto_ver)
        && f.clean_start.is_none_or(|c| c == info.clean_start)
}
