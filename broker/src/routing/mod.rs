//! The routing core: which sessions a message goes to ([`trie`]), and the
//! retained messages a new subscription receives ([`retained`]).
//!
//! Lock order: the trie's lock is taken before a session's state lock, never the
//! other way round; routing holds the trie's read lock only while matching.

pub mod retained;
pub mod trie;

use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use tokio::time::Instant;

use crate::message::Message;
use crate::session::{Session, SessionId, SubOptions};
use retained::{RetainedStore, StoreFull};
use trie::{Subscriber, SubscriptionTrie};

/// A subscription filter as a client writes it, split for routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filter<'a> {
    /// `g` of `$share/g/...`.
    pub group: Option<&'a str>,
    /// The filter messages are matched against.
    pub routing: &'a str,
}

impl<'a> Filter<'a> {
    pub fn parse(filter: &'a str) -> Filter<'a> {
        match filter
            .strip_prefix("$share/")
            .and_then(|rest| rest.split_once('/'))
        {
            Some((group, routing)) => Filter {
                group: Some(group),
                routing,
            },
            None => Filter {
                group: None,
                routing: filter,
            },
        }
    }
}

/// A session a message is to be delivered to, its overlapping subscriptions merged.
pub struct Target {
    pub session: Arc<Session>,
    /// The highest QoS granted by a matching subscription.
    pub granted_qos: u8,
    pub retain_as_published: bool,
    pub subscription_ids: Vec<u32>,
}

/// Told, under the trie's lock (so in order), when a routing filter (or a
/// shared group on it) gains its first or loses its last subscriber on this
/// node: the cluster link follows it with its NATS subscriptions.
pub trait Interest: Send + Sync {
    fn gained(&self, routing: &str, group: Option<&str>);
    fn lost(&self, routing: &str, group: Option<&str>);
}

#[derive(Default)]
pub struct Router {
    trie: RwLock<SubscriptionTrie>,
    retained: RwLock<RetainedStore>,
    /// Set once in cluster mode; single-node routing never looks at it.
    interest: OnceLock<Arc<dyn Interest>>,
}

impl Router {
    /// Subscribes a session that is live or offline; returns the options the
    /// filter had before, if any.
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        options: SubOptions,
    ) -> Option<SubOptions> {
        let mut trie = self.trie.write();
        let previous = session.record_subscription(filter, options);
        self.insert(&mut trie, session, filter, options);
        previous
    }

    /// Removes one subscription; whether it existed.
    pub fn unsubscribe(&self, session: &Session, filter: &str) -> bool {
        let mut trie = self.trie.write();
        let existed = session.forget_subscription(filter);
        self.remove(&mut trie, filter, session.id);
        existed
    }

    /// Puts every subscription the session holds into the trie (a session whose
    /// subscriptions were kept while no connection could use them).
    pub fn activate(&self, session: &Arc<Session>) {
        let mut trie = self.trie.write();
        for (filter, options) in session.subscriptions() {
            self.insert(&mut trie, session, &filter, options);
        }
    }

    /// Takes every subscription of an ending session out of the trie (the
    /// session's own list is left as it is).
    pub fn deactivate(&self, session: &Session) {
        let mut trie = self.trie.write();
        for (filter, _) in session.subscriptions() {
            self.remove(&mut trie, &filter, session.id);
        }
    }

    /// Follows the filters this node has subscribers for (cluster mode); set once.
    pub fn set_interest(&self, interest: Arc<dyn Interest>) {
        let _ = self.interest.set(interest);
    }

    /// Routes `filter` (plain or `$share/<group>/...`) to `session`.
    fn insert(
        &self,
        trie: &mut SubscriptionTrie,
        session: &Arc<Session>,
        filter: &str,
        options: SubOptions,
    ) {
        let f = Filter::parse(filter);
        let subscriber = Subscriber {
            session: Arc::clone(session),
            options,
        };
        if trie.insert(f.routing, f.group, subscriber) {
            if let Some(interest) = self.interest.get() {
                interest.gained(f.routing, f.group);
            }
        }
    }

    fn remove(&self, trie: &mut SubscriptionTrie, filter: &str, session: SessionId) {
        let f = Filter::parse(filter);
        if trie.remove(f.routing, f.group, session).filters_removed > 0 {
            if let Some(interest) = self.interest.get() {
                interest.lost(f.routing, f.group);
            }
        }
    }

    pub fn filter_count(&self) -> usize {
        self.trie.read().filter_count()
    }

    /// Whether the routing structures can be read within `patience` (a lock held
    /// that long means the core is stuck).
    pub fn responsive(&self, patience: std::time::Duration) -> bool {
        self.trie.try_read_for(patience).is_some() && self.retained.try_read_for(patience).is_some()
    }

    /// Subscriptions of live and offline sessions (pending ones are not routed).
    pub fn subscription_count(&self) -> usize {
        self.trie.read().subscription_count()
    }

    /// The sessions `topic` goes to (shared groups only with `shared`: in a
    /// cluster NATS picks the member). No Local subscriptions of the publisher are
    /// skipped; one session's overlapping subscriptions become one target with the
    /// highest QoS and every subscription identifier [MQTT-3.3.4-2, -3].
    pub fn targets(&self, topic: &str, publisher: Option<SessionId>, shared: bool) -> Vec<Target> {
        let mut matched = Vec::new();
        self.trie.read().matches(topic, shared, &mut matched);
        matched.retain(|s| !(s.options.no_local && Some(s.session.id) == publisher));
        if matched.len() > 1 {
            matched.sort_by_key(|s| s.session.id);
        }
        let mut targets: Vec<Target> = Vec::with_capacity(matched.len());
        for s in matched {
            match targets.last_mut() {
                Some(t) if t.session.id == s.session.id => {
                    t.granted_qos = t.granted_qos.max(s.options.qos);
                    t.retain_as_published |= s.options.retain_as_published;
                    t.subscription_ids.extend(s.options.subscription_id);
                }
                _ => targets.push(Target {
                    granted_qos: s.options.qos,
                    retain_as_published: s.options.retain_as_published,
                    subscription_ids: s.options.subscription_id.into_iter().collect(),
                    session: s.session,
                }),
            }
        }
        targets
    }

    /// The member whose turn it is in shared group `group` on routing filter
    /// `filter` (a message NATS handed this node for that group).
    pub fn group_target(&self, filter: &str, group: &str) -> Option<Target> {
        let member = self.trie.read().pick_member(filter, group)?;
        Some(Target {
            granted_qos: member.options.qos,
            retain_as_published: member.options.retain_as_published,
            subscription_ids: member.options.subscription_id.into_iter().collect(),
            session: member.session,
        })
    }

    /// Stores (or, empty, clears) the retained message of its topic.
    pub fn retain(&self, message: Arc<Message>, limit: usize) -> Result<(), StoreFull> {
        self.retained.write().set(message, limit)
    }

    pub fn retained_for(&self, routing_filter: &str) -> Vec<Arc<Message>> {
        self.retained
            .read()
            .matching(routing_filter, Instant::now())
    }

    /// Retained messages, the broker's own `$SYS` ones not counted.
    pub fn retained_count(&self) -> usize {
        self.retained.read().client_len()
    }

    pub fn purge_expired_retained(&self) -> usize {
        self.retained.write().purge_expired(Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_core_is_reported_unresponsive() {
        let router = Router::default();
        let patience = std::time::Duration::from_millis(50);
        assert!(router.responsive(patience));
        let held = router.trie.write();
        assert!(!router.responsive(patience));
        drop(held);
        assert!(router.responsive(patience));
    }
}
