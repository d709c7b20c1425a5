//! MQTT topics and filters as NATS subjects, one MQTT level per NATS token.
//!
//! NATS tokens cannot be empty and give `.`, `*`, `>` and whitespace a meaning
//! of their own, and MQTT levels may hold any UTF-8. So a level keeps its ASCII
//! letters, digits and `-`, and every other byte (`_` included) becomes `_XX`
//! (two upper-case hex digits); an empty level is `_` alone. The escaping is
//! reversible and never produces `*` or `>`, so `+` → `*` and `#` → `>` stay
//! the only wildcards. A client id is escaped the same way, as one token.

/// Subjects longer than this travel on the node-wide "long" subject instead:
/// nats-server reads a whole protocol line (subject included) within its
/// `max_control_line` (4 KiB by default).
pub const MAX_SUBJECT: usize = 2048;

/// The NATS subjects a node uses, all under one prefix (several clusters may
/// share one NATS server).
#[derive(Debug, Clone)]
pub struct Subjects {
    /// `<prefix>.m`: messages, followed by the topic's tokens.
    messages: String,
    /// Retained messages, for every node's retained store.
    pub retained: String,
    /// Messages whose topic is too long for a subject of its own.
    pub long: String,
    /// Requests of a starting node for the others' retained messages.
    pub retained_sync: String,
    /// `<prefix>.c`: claims of a client id, followed by its token.
    claims: String,
    /// Each node's heartbeat, for the others' list of live nodes.
    pub presence: String,
    /// `<prefix>.q`: management queries, followed by the node id asked.
    query: String,
    /// Changes of the hot settings.
    pub hot: String,
}

impl Subjects {
    pub fn new(prefix: &str) -> Subjects {
        Subjects {
            messages: format!("{prefix}.m"),
            retained: format!("{prefix}.retained"),
            long: format!("{prefix}.long"),
            retained_sync: format!("{prefix}.retained-sync"),
            claims: format!("{prefix}.c"),
            presence: format!("{prefix}.presence"),
            query: format!("{prefix}.q"),
            hot: format!("{prefix}.hot"),
        }
    }

    /// Management queries to one node.
    pub fn query_to(&self, node_id: u64) -> String {
        format!("{}.{node_id:016x}", self.query)
    }

    /// The subject of a topic; `None` when too long for one.
    pub fn topic(&self, topic: &str) -> Option<String> {
        let mut out = String::with_capacity(self.messages.len() + topic.len() + 8);
        out.push_str(&self.messages);
        for level in topic.split('/') {
            out.push('.');
            escape_level(level, &mut out);
        }
        (out.len() <= MAX_SUBJECT).then_some(out)
    }

    /// The topic a message subject stands for.
    pub fn topic_of(&self, subject: &str) -> Option<String> {
        let tokens = subject.strip_prefix(&self.messages)?.strip_prefix('.')?;
        let mut topic = Vec::with_capacity(tokens.len());
        for (i, token) in tokens.split('.').enumerate() {
            if i > 0 {
                topic.push(b'/');
            }
            unescape_level(token, &mut topic)?;
        }
        String::from_utf8(topic).ok()
    }

    /// The subjects a routing filter (no `$share/` prefix) subscribes to: a
    /// final `#` also matches its parent level, so `a/#` needs `a.>` and `a`;
    /// `#` alone is `>` only. `None` when too long: such a filter only matches
    /// topics too long for a subject of their own, which every node receives.
    pub fn filter(&self, filter: &str) -> Option<Vec<String>> {
        let (levels, hash) = match filter.strip_suffix("#") {
            Some("") => return Some(vec![format!("{}.>", self.messages)]),
            Some(parent) => (parent.strip_suffix('/')?, true),
            None => (filter, false),
        };
        let mut base = String::with_capacity(self.messages.len() + levels.len() + 8);
        base.push_str(&self.messages);
        for level in levels.split('/') {
            base.push('.');
            match level {
                "+" => base.push('*'),
                level => escape_level(level, &mut base),
            }
        }
        if base.len() + 2 > MAX_SUBJECT {
            return None;
        }
        Some(match hash {
            true => vec![format!("{base}.>"), base],
            false => vec![base],
        })
    }

    /// The subject on which the node holding `client_id` answers claims (a
    /// long id is stood for by a digest: the holder compares the id itself).
    pub fn claim(&self, client_id: &str) -> String {
        let limit = MAX_SUBJECT - self.claims.len() - 1;
        format!("{}.{}", self.claims, token(client_id, limit))
    }
}

/// `text` escaped as one token, or a digest of it (`_h` and 16 hex digits,
/// which escaping never produces) when the escaped form is over `limit` bytes.
pub fn token(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    escape_level(text, &mut out);
    if out.len() > limit {
        out = format!("_h{:016x}", fnv1a(text.as_bytes()));
    }
    out
}

fn escape_level(level: &str, out: &mut String) {
    if level.is_empty() {
        out.push('_');
        return;
    }
    for b in level.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' {
            out.push(b as char);
        } else {
            out.push('_');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn unescape_level(token: &str, out: &mut Vec<u8>) -> Option<()> {
    if token == "_" {
        return Some(());
    }
    let mut bytes = token.bytes();
    while let Some(b) = bytes.next() {
        if b == b'_' {
            let hi = hex_value(bytes.next()?)?;
            let lo = hex_value(bytes.next()?)?;
            out.push(hi << 4 | lo);
        } else {
            out.push(b);
        }
    }
    Some(())
}

fn hex_value(b: u8) -> Option<u8> {
    HEX.iter().position(|h| *h == b).map(|i| i as u8)
}

/// A stable 64-bit digest (FNV-1a): every node must compute the same one.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_whatever_their_characters() {
        let s = Subjects::new("mq");
        for topic in [
            "a/b/c",
            "",
            "/",
            "a//b/",
            "$SYS/x",
            "a.b/c*d/>/ /tab\there",
            "_/__/_41",
            "é/日本/🚀",
            "+x#",
        ] {
            let subject = s.topic(topic).unwrap();
            let tokens: Vec<&str> = subject.split('.').collect();
            assert_eq!(tokens.len(), 2 + topic.split('/').count(), "{subject}");
            assert!(
                tokens
                    .iter()
                    .all(|t| !t.is_empty() && *t != "*" && *t != ">"),
                "{subject}"
            );
            assert!(subject.bytes().all(|b| b.is_ascii_graphic()), "{subject}");
            assert_eq!(s.topic_of(&subject).as_deref(), Some(topic));
        }
        assert_eq!(s.topic("a b/c.d").unwrap(), "mq.m.a_20b.c_2Ed");
        assert_eq!(s.topic("a//").unwrap(), "mq.m.a._._");
    }

    #[test]
    fn wildcards_become_nats_wildcards() {
        let s = Subjects::new("mq");
        assert_eq!(s.filter("a/+/c").unwrap(), vec!["mq.m.a.*.c"]);
        assert_eq!(s.filter("a/#").unwrap(), vec!["mq.m.a.>", "mq.m.a"]);
        assert_eq!(s.filter("#").unwrap(), vec!["mq.m.>"]);
        assert_eq!(s.filter("+").unwrap(), vec!["mq.m.*"]);
        assert_eq!(s.filter("/#").unwrap(), vec!["mq.m._.>", "mq.m._"]);
        assert_eq!(
            s.filter("é/+/#").unwrap(),
            vec!["mq.m._C3_A9.*.>", "mq.m._C3_A9.*"]
        );
    }

    #[test]
    fn long_topics_and_filters_have_no_subject() {
        let s = Subjects::new("mq");
        let long = "x".repeat(MAX_SUBJECT);
        assert!(s.topic(&long).is_none());
        assert!(s.filter(&long).is_none());
        assert!(s.filter(&format!("{long}/#")).is_none());
        let claim = s.claim(&"é".repeat(2000));
        assert!(claim.len() < 64 && claim.starts_with("mq.c._h"));
        assert_eq!(s.claim("dev/1"), "mq.c.dev_2F1");
    }
}
