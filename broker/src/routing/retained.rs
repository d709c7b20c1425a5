//! Retained messages by topic level, so that a wildcard SUBSCRIBE finds its
//! retained messages without scanning every topic.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;

use crate::message::Message;

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    message: Option<Arc<Message>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.message.is_none()
    }
}

/// The last retained message of every topic.
#[derive(Default)]
pub struct RetainedStore {
    root: Node,
    count: usize,
    /// Of `count`, the broker's own (`$` topics).
    system: usize,
}

/// Why a retained message was not stored.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreFull;

impl RetainedStore {
    pub fn len(&self) -> usize {
        self.count
    }

    /// Retained messages of clients and APIs, not counting the broker's `$` topics.
    pub fn client_len(&self) -> usize {
        self.count - self.system
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Stores `message` as its topic's retained message, or with an empty payload
    /// deletes it [MQTT-3.3.1-10]. A new topic beyond `limit` is refused.
    pub fn set(&mut self, message: Arc<Message>, limit: usize) -> Result<(), StoreFull> {
        let topic = Arc::clone(&message.topic);
        let levels: Vec<&str> = topic.split('/').collect();
        let system = usize::from(topic.starts_with('$'));
        if message.payload.is_empty() {
            if remove_at(&mut self.root, &levels) {
                self.count -= 1;
                self.system -= system;
            }
            return Ok(());
        }
        let mut node = &mut self.root;
        for level in levels {
            node = node.children.entry(level.into()).or_default();
        }
        if node.message.is_none() {
            if self.count >= limit {
                return Err(StoreFull);
            }
            self.count += 1;
            self.system += system;
        }
        node.message = Some(message);
        Ok(())
    }

    /// Retained messages matching `filter` (a routing filter, no `$share/`), live ones only.
    pub fn matching(&self, filter: &str, now: Instant) -> Vec<Arc<Message>> {
        let levels: Vec<&str> = filter.split('/').collect();
        let mut out = Vec::new();
        collect(&self.root, &levels, 0, now, &mut out);
        out
    }

    /// Drops expired messages; returns how many.
    pub fn purge_expired(&mut self, now: Instant) -> usize {
        let (purged, system) = purge(&mut self.root, now);
        self.count -= purged;
        self.system -= system;
        purged
    }
}

fn remove_at(node: &mut Node, levels: &[&str]) -> bool {
    let Some((level, rest)) = levels.split_first() else {
        return node.message.take().is_some();
    };
    let Some(child) = node.children.get_mut(*level) else {
        return false;
    };
    let removed = remove_at(child, rest);
    if child.is_empty() {
        node.children.remove(*level);
    }
    removed
}

fn push_live(node: &Node, now: Instant, out: &mut Vec<Arc<Message>>) {
    if let Some(m) = &node.message {
        if !m.is_expired(now) {
            out.push(Arc::clone(m));
        }
    }
}

fn collect_all(node: &Node, depth: usize, now: Instant, out: &mut Vec<Arc<Message>>) {
    push_live(node, now, out);
    for (level, child) in &node.children {
        // `$` topics never match a leading wildcard
        if depth == 0 && level.starts_with('$') {
            continue;
        }
        collect_all(child, depth + 1, now, out);
    }
}

fn collect(node: &Node, levels: &[&str], depth: usize, now: Instant, out: &mut Vec<Arc<Message>>) {
    let Some((level, rest)) = levels.split_first() else {
        push_live(node, now, out);
        return;
    };
    match *level {
        "#" => {
            // "a/#" also matches "a" itself
            if depth > 0 {
                push_live(node, now, out);
            }
            for (name, child) in &node.children {
                if depth == 0 && name.starts_with('$') {
                    continue;
                }
                collect_all(child, depth + 1, now, out);
            }
        }
        "+" => {
            for (name, child) in &node.children {
                if depth == 0 && name.starts_with('$') {
                    continue;
                }
                collect(child, rest, depth + 1, now, out);
            }
        }
        level => {
            if let Some(child) = node.children.get(level) {
                collect(child, rest, depth + 1, now, out);
            }
        }
    }
}

/// Removes expired messages below `node`: (how many, how many of them under `$`).
fn purge(node: &mut Node, now: Instant) -> (usize, usize) {
    let mut purged = (0, 0);
    if node.message.as_ref().is_some_and(|m| m.is_expired(now)) {
        let system = node
            .message
            .take()
            .is_some_and(|m| m.topic.starts_with('$'));
        purged = (1, usize::from(system));
    }
    node.children.retain(|_, child| {
        let (n, s) = purge(child, now);
        purged = (purged.0 + n, purged.1 + s);
        !child.is_empty()
    });
    purged
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(topic: &str, payload: &'static str) -> Arc<Message> {
        Arc::new(Message {
            id: 0,
            topic: topic.into(),
            payload: Bytes::from_static(payload.as_bytes()),
            qos: 0,
            retain: true,
            properties: None,
            expires_at: None,
            publisher: None,
        })
    }

    fn topics(store: &RetainedStore, filter: &str) -> Vec<String> {
        let mut t: Vec<String> = store
            .matching(filter, Instant::now())
            .iter()
            .map(|m| m.topic.to_string())
            .collect();
        t.sort();
        t
    }

    #[test]
    fn wildcard_lookup_and_deletion() {
        let mut s = RetainedStore::default();
        for t in ["a", "a/b", "a/b/c", "x/b", "$SYS/up", "é/ü"] {
            s.set(msg(t, "1"), 100).unwrap();
        }
        assert_eq!(topics(&s, "a/#"), ["a", "a/b", "a/b/c"]);
        assert_eq!(topics(&s, "+/b"), ["a/b", "x/b"]);
        assert_eq!(topics(&s, "#").len(), 5);
        assert_eq!(topics(&s, "$SYS/#"), ["$SYS/up"]);
        assert_eq!(topics(&s, "é/+"), ["é/ü"]);
        s.set(msg("a/b", ""), 100).unwrap();
        assert_eq!(topics(&s, "a/#"), ["a", "a/b/c"]);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn limit_refuses_new_topics_only() {
        let mut s = RetainedStore::default();
        s.set(msg("a", "1"), 1).unwrap();
        assert_eq!(s.set(msg("b", "1"), 1), Err(StoreFull));
        s.set(msg("a", "2"), 1).unwrap();
        assert_eq!(s.len(), 1);
    }
}
