//! Which topic filters are subscribed, as a trie with reference counts, so a
//! publish can be told in O(topic levels) whether anyone will receive it (the
//! router does not say; a message nobody subscribed to counts as dropped).

use std::collections::HashMap;

#[derive(Default)]
struct Node {
    children: HashMap<String, Node>,
    /// Subscriptions whose filter ends at this node.
    subscribed: usize,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.subscribed == 0 && self.children.is_empty()
    }
}

/// The subscribed filters of every session.
#[derive(Default)]
pub struct FilterIndex {
    root: Node,
}

/// `$share/{group}/{filter}` matches as `{filter}`.
fn routing_filter(filter: &str) -> &str {
    match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map(|(_, f)| f).unwrap_or(rest),
        None => filter,
    }
}

impl FilterIndex {
    pub fn add(&mut self, filter: &str) {
        let mut node = &mut self.root;
        for level in routing_filter(filter).split('/') {
            node = node.children.entry(level.to_string()).or_default();
        }
        node.subscribed += 1;
    }

    pub fn remove(&mut self, filter: &str) {
        fn remove_at<'a>(node: &mut Node, mut levels: impl Iterator<Item = &'a str>) {
            match levels.next() {
                None => node.subscribed = node.subscribed.saturating_sub(1),
                Some(level) => {
                    if let Some(child) = node.children.get_mut(level) {
                        remove_at(child, levels);
                        if child.is_empty() {
                            node.children.remove(level);
                        }
                    }
                }
            }
        }
        remove_at(&mut self.root, routing_filter(filter).split('/'));
    }

    /// Whether any subscribed filter matches `topic` (MQTT 3.1.1 §4.7; topics
    /// starting with `$` are not matched by filters starting with a wildcard).
    pub fn matches(&self, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        Self::matches_at(&self.root, &levels, topic.starts_with('$'))
    }

    fn matches_at(node: &Node, levels: &[&str], dollar_first: bool) -> bool {
        if let Some(hash) = node.children.get("#") {
            if hash.subscribed > 0 && !dollar_first {
                return true;
            }
        }
        let Some((level, rest)) = levels.split_first() else {
            return node.subscribed > 0;
        };
        if !dollar_first {
            if let Some(plus) = node.children.get("+") {
                if Self::matches_at(plus, rest, false) {
                    return true;
                }
            }
        }
        node.children
            .get(*level)
            .is_some_and(|child| Self::matches_at(child, rest, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_mqtt() {
        let mut index = FilterIndex::default();
        assert!(!index.matches("a/b"));
        index.add("a/+/c");
        index.add("x/#");
        index.add("$share/g/s/t");
        assert!(index.matches("a/b/c"));
        assert!(!index.matches("a/b"));
        assert!(index.matches("x"));
        assert!(index.matches("x/y/z"));
        assert!(index.matches("s/t"));
        index.add("#");
        assert!(index.matches("anything/at/all"));
        assert!(!index.matches("$SYS/x"));
        index.remove("#");
        assert!(!index.matches("q"));
        index.add("a/+/c");
        index.remove("a/+/c");
        assert!(index.matches("a/b/c"), "still one subscription left");
        index.remove("a/+/c");
        assert!(!index.matches("a/b/c"));
    }
}
