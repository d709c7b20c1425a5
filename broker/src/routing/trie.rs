//! Subscriptions by topic level: a publish finds its subscribers in O(levels ×
//! matching branches), whatever the number of filters. Levels are compared as
//! whole UTF-8 strings, never sliced by bytes. Emptied branches are freed at once,
//! so memory follows the live subscriptions.
//!
//! Callers bound the depth (`max_topic_levels`) before a filter or topic gets
//! here; the recursive walks rely on that bound.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::session::{Session, SessionId, SubOptions};

/// A subscription as the trie holds it.
#[derive(Clone)]
pub struct Subscriber {
    pub session: Arc<Session>,
    pub options: SubOptions,
}

/// `$share/{group}/...` members: each message goes to one of them.
struct SharedGroup {
    name: Box<str>,
    members: Vec<Subscriber>,
    next: AtomicUsize,
}

impl SharedGroup {
    /// The next member in turn, preferring a connected one.
    fn pick(&self) -> Option<&Subscriber> {
        let n = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &self.members[(start + i) % n])
            .find(|m| m.session.is_connected())
            .or_else(|| self.members.get(start % n.max(1)))
    }
}

/// The subscriptions of one filter.
#[derive(Default)]
struct Slot {
    plain: HashMap<SessionId, Subscriber>,
    shared: Vec<SharedGroup>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.shared.is_empty()
    }

    /// Distinct filters here: the plain one, and each shared group.
    fn filters(&self) -> usize {
        usize::from(!self.plain.is_empty()) + self.shared.len()
    }

    fn collect(&self, shared: bool, out: &mut Vec<Subscriber>) {
        out.extend(self.plain.values().cloned());
        if !shared {
            return;
        }
        for group in &self.shared {
            if let Some(member) = group.pick() {
                out.push(member.clone());
            }
        }
    }
}

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// The `+` level.
    plus: Option<Box<Node>>,
    /// Filters ending here.
    exact: Option<Box<Slot>>,
    /// Filters ending here with a further `#` level.
    hash: Option<Box<Slot>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.exact.is_none()
            && self.hash.is_none()
    }
}

/// Where a filter's subscriptions live: its levels without a final `#`, and
/// whether it had one.
struct Path<'a> {
    levels: Vec<&'a str>,
    hash: bool,
}

fn path(filter: &str) -> Path<'_> {
    let mut levels: Vec<&str> = filter.split('/').collect();
    let hash = levels.last() == Some(&"#");
    if hash {
        levels.pop();
    }
    Path { levels, hash }
}

/// Every subscription of every session, by filter.
#[derive(Default)]
pub struct SubscriptionTrie {
    root: Node,
    /// Distinct filters (a shared group counts as one) with a subscription.
    filters: usize,
    /// Subscriptions (session, filter) held.
    subscriptions: usize,
}

impl SubscriptionTrie {
    pub fn filter_count(&self) -> usize {
        self.filters
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions
    }

    /// Adds or replaces a subscription. `filter` is the routing filter (without
    /// `$share/{group}/`); `group` names the shared group, if any. True when
    /// the filter (or the group on it) had no subscriber before.
    pub fn insert(&mut self, filter: &str, group: Option<&str>, subscriber: Subscriber) -> bool {
        let Path { levels, hash } = path(filter);
        let mut node = &mut self.root;
        for level in levels {
            node = match level {
                "+" => node.plus.get_or_insert_with(Box::default),
                level => node.children.entry(level.into()).or_default(),
            };
        }
        let slot = if hash {
            node.hash.get_or_insert_with(Box::default)
        } else {
            node.exact.get_or_insert_with(Box::default)
        };
        let before = slot.filters();
        let id = subscriber.session.id;
        let added = match group {
            None => slot.plain.insert(id, subscriber).is_none(),
            Some(group) => match slot.shared.iter_mut().find(|g| &*g.name == group) {
                Some(g) => match g.members.iter_mut().find(|m| m.session.id == id) {
                    Some(member) => {
                        *member = subscriber;
                        false
                    }
                    None => {
                        g.members.push(subscriber);
                        true
                    }
                },
                None => {
                    slot.shared.push(SharedGroup {
                        name: group.into(),
                        members: vec![subscriber],
                        next: AtomicUsize::new(0),
                    });
                    true
                }
            },
        };
        let new_filter = slot.filters() > before;
        self.filters += slot.filters() - before;
        self.subscriptions += usize::from(added);
        new_filter
    }

    /// Removes a session's subscription: whether it existed, and whether the
    /// filter (or the group on it) is left without a subscriber.
    pub fn remove(&mut self, filter: &str, group: Option<&str>, session: SessionId) -> Removal {
        let Path { levels, hash } = path(filter);
        let mut removed = Removal::default();
        remove_at(&mut self.root, &levels, hash, group, session, &mut removed);
        self.filters -= removed.filters_removed;
        self.subscriptions -= usize::from(removed.existed);
        removed
    }

    /// Every subscription matching `topic` (one member per shared group, or
    /// none when `shared` is false: another node may be the group's pick).
    pub fn matches(&self, topic: &str, shared: bool, out: &mut Vec<Subscriber>) {
        // sized first: a collect would grow (and move) the Vec past 4 levels
        let mut levels = Vec::with_capacity(topic.bytes().filter(|b| *b == b'/').count() + 1);
        levels.extend(topic.split('/'));
        // [MQTT-4.7.2-1]: `$` topics do not match a leading wildcard
        let dollar = topic.starts_with('$');
        collect(&self.root, &levels, 0, dollar, shared, out);
    }

    /// The member of shared group `group` on exactly `filter` whose turn it is.
    pub fn pick_member(&self, filter: &str, group: &str) -> Option<Subscriber> {
        let Path { levels, hash } = path(filter);
        let mut node = &self.root;
        for level in levels {
            node = match level {
                "+" => node.plus.as_deref()?,
                level => node.children.get(level)?,
            };
        }
        let slot = if hash { &node.hash } else { &node.exact };
        let group = slot.as_ref()?.shared.iter().find(|g| &*g.name == group)?;
        group.pick().cloned()
    }
}

#[derive(Default)]
pub struct Removal {
    pub existed: bool,
    /// 1 when the filter (or the group on it) lost its last subscriber.
    pub filters_removed: usize,
}

fn remove_from_slot(
    slot: &mut Option<Box<Slot>>,
    group: Option<&str>,
    session: SessionId,
    removed: &mut Removal,
) {
    let Some(s) = slot.as_mut() else {
        return;
    };
    let before = s.filters();
    match group {
        None => removed.existed = s.plain.remove(&session).is_some(),
        Some(group) => {
            if let Some(i) = s.shared.iter().position(|g| &*g.name == group) {
                let members = &mut s.shared[i].members;
                let count = members.len();
                members.retain(|m| m.session.id != session);
                removed.existed = members.len() < count;
                if members.is_empty() {
                    s.shared.swap_remove(i);
                }
            }
        }
    }
    removed.filters_removed += before - s.filters();
    if s.plain.capacity() > 8 && s.plain.len() < s.plain.capacity() / 4 {
        s.plain.shrink_to_fit();
    }
    if s.is_empty() {
        *slot = None;
    }
}

fn remove_at(
    node: &mut Node,
    levels: &[&str],
    hash: bool,
    group: Option<&str>,
    session: SessionId,
    removed: &mut Removal,
) {
    let Some((level, rest)) = levels.split_first() else {
        let slot = if hash {
            &mut node.hash
        } else {
            &mut node.exact
        };
        remove_from_slot(slot, group, session, removed);
        return;
    };
    if *level == "+" {
        if let Some(child) = node.plus.as_mut() {
            remove_at(child, rest, hash, group, session, removed);
            if child.is_empty() {
                node.plus = None;
            }
        }
    } else if let Some(child) = node.children.get_mut(*level) {
        remove_at(child, rest, hash, group, session, removed);
        if child.is_empty() {
            node.children.remove(*level);
            if node.children.capacity() > 8 && node.children.len() < node.children.capacity() / 4 {
                node.children.shrink_to_fit();
            }
        }
    }
}

fn collect(
    node: &Node,
    levels: &[&str],
    depth: usize,
    dollar: bool,
    shared: bool,
    out: &mut Vec<Subscriber>,
) {
    let wildcard_allowed = !(dollar && depth == 0);
    if wildcard_allowed {
        if let Some(slot) = &node.hash {
            slot.collect(shared, out);
        }
    }
    let Some((level, rest)) = levels.split_first() else {
        if let Some(slot) = &node.exact {
            slot.collect(shared, out);
        }
        return;
    };
    if let Some(child) = node.children.get(*level) {
        collect(child, rest, depth + 1, dollar, shared, out);
    }
    if wildcard_allowed {
        if let Some(child) = &node.plus {
            collect(child, rest, depth + 1, dollar, shared, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(id: u64) -> Subscriber {
        Subscriber {
            session: Session::detached(id, &format!("c{id}")),
            options: SubOptions::with_qos(1),
        }
    }

    fn matched(trie: &SubscriptionTrie, topic: &str) -> Vec<u64> {
        let mut out = Vec::new();
        trie.matches(topic, true, &mut out);
        let mut ids: Vec<u64> = out.iter().map(|s| s.session.id).collect();
        ids.sort();
        ids
    }

    #[test]
    fn wildcards_and_dollar_topics() {
        let mut t = SubscriptionTrie::default();
        t.insert("a/+/c", None, subscriber(1));
        t.insert("a/#", None, subscriber(2));
        t.insert("#", None, subscriber(3));
        t.insert("+/b/c", None, subscriber(4));
        t.insert("$SYS/#", None, subscriber(5));
        assert_eq!(matched(&t, "a/b/c"), vec![1, 2, 3, 4]);
        assert_eq!(matched(&t, "a"), vec![2, 3]);
        assert_eq!(matched(&t, "$SYS/uptime"), vec![5]);
        assert_eq!(matched(&t, "$x/b/c"), Vec::<u64>::new());
        assert_eq!(t.filter_count(), 5);
    }

    #[test]
    fn multibyte_levels_are_whole_strings() {
        let mut t = SubscriptionTrie::default();
        t.insert("é/+", None, subscriber(1));
        t.insert("+/ü", None, subscriber(2));
        assert_eq!(matched(&t, "é/ü"), vec![1, 2]);
        assert_eq!(matched(&t, "e/ü"), vec![2]);
    }

    #[test]
    fn removal_frees_branches() {
        let mut t = SubscriptionTrie::default();
        for i in 0..1000 {
            t.insert(&format!("x/{i}/y"), None, subscriber(1));
        }
        assert_eq!(t.filter_count(), 1000);
        for i in 0..1000 {
            assert!(t.remove(&format!("x/{i}/y"), None, 1).existed);
        }
        assert!(!t.remove("x/0/y", None, 1).existed);
        assert_eq!(t.filter_count(), 0);
        assert!(t.root.is_empty());
    }

    #[test]
    fn shared_group_delivers_to_one_member() {
        let mut t = SubscriptionTrie::default();
        t.insert("s/+", Some("g"), subscriber(1));
        t.insert("s/+", Some("g"), subscriber(2));
        t.insert("s/+", None, subscriber(3));
        let mut seen = std::collections::HashMap::new();
        for _ in 0..10 {
            for id in matched(&t, "s/x") {
                *seen.entry(id).or_insert(0) += 1;
            }
        }
        assert_eq!(seen[&3], 10);
        assert_eq!(seen[&1] + seen[&2], 10);
        assert!(seen[&1] > 0 && seen[&2] > 0);
        assert_eq!(t.filter_count(), 2);
        let picked = t.pick_member("s/+", "g").map(|m| m.session.id);
        assert!(matches!(picked, Some(1 | 2)));
        assert!(t.pick_member("s/+", "h").is_none());
        assert!(t.pick_member("s/x", "g").is_none());
        let mut plain = Vec::new();
        t.matches("s/x", false, &mut plain);
        assert_eq!(plain.len(), 1);
        assert_eq!(t.remove("s/+", Some("g"), 1).filters_removed, 0);
        assert_eq!(t.remove("s/+", Some("g"), 2).filters_removed, 1);
        assert_eq!(t.filter_count(), 1);
    }
}
