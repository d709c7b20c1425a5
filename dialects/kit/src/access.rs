//! MQTT access files in NanoMQ's format: the password file (`"user": "pass"`
//! members of a HOCON object) and the ACL file (`rules = [ {...} ... ]`), parsed
//! with [`crate::hocon`] and evaluated the way NanoMQ evaluates them: rules in file
//! order, the first that fully matches decides, `no_match` otherwise.
//!
//! The broker enforces them; the NanoMQ dialect checks a file nanomq-admin writes
//! with the same parser, so a file it accepts is a file the broker can load.

use std::net::IpAddr;

use serde_json::{Map, Value};

/// NanoMQ's file names of the two files (its package installs them in `/etc`); the
/// gateway looks for them in its data directory when no path is configured.
pub const PASSWORD_FILE_NAME: &str = "nanomq_pwd.conf";
pub const ACL_FILE_NAME: &str = "nanomq_acl.conf";

use crate::hocon::{self, HoconError, Limits};

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Subscribe,
}

/// What a rule or `no_match` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    Allow,
    Deny,
}

/// The client a rule is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Who<'a> {
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub ip: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Everyone,
    ClientId(String),
    Username(String),
    Ip(String),
    Ips(Vec<String>),
    And(Vec<Selector>),
    Or(Vec<Selector>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    permit: Permit,
    /// `None`: publish and subscribe.
    action: Option<Action>,
    who: Selector,
    /// Empty: every topic.
    topics: Vec<String>,
}

/// The rules of an ACL file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclRules {
    rules: Vec<Rule>,
}

/// Why an access file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessFileError {
    #[error("{0}")]
    Syntax(HoconError),
    #[error("{0}")]
    Shape(String),
}

/// `"#"` means everyone; any other value is compared exactly.
fn selector_value(value: &Value, make: fn(String) -> Selector) -> Option<Selector> {
    match value.as_str()? {
        "#" => Some(Selector::Everyone),
        v => Some(make(v.to_string())),
    }
}

/// NanoMQ reads one selector per rule, in this order of precedence.
fn selector(rule: &Map<String, Value>) -> Selector {
    if let Some(s) = rule
        .get("ipaddr")
        .and_then(|v| selector_value(v, Selector::Ip))
    {
        return s;
    }
    if let Some(list) = rule.get("ipaddrs").and_then(Value::as_array) {
        let ips = list.iter().filter_map(Value::as_str).map(str::to_string);
        return Selector::Ips(ips.collect());
    }
    if let Some(s) = rule
        .get("username")
        .and_then(|v| selector_value(v, Selector::Username))
    {
        return s;
    }
    if let Some(s) = rule
        .get("clientid")
        .and_then(|v| selector_value(v, Selector::ClientId))
    {
        return s;
    }
    for (key, make) in [("and", Selector::And as fn(_) -> _), ("or", Selector::Or)] {
        if let Some(parts) = rule.get(key).and_then(Value::as_array) {
            let parts = parts
                .iter()
                .filter_map(Value::as_object)
                .map(selector)
                .collect();
            return make(parts);
        }
    }
    Selector::Everyone
}

/// A rule as NanoMQ keeps it; `None` for a rule NanoMQ drops (no valid `permit`
/// or an unknown `action`).
fn rule(value: &Value) -> Option<Rule> {
    let map = value.as_object()?;
    let permit = match map.get("permit")?.as_str()? {
        "allow" => Permit::Allow,
        "deny" => Permit::Deny,
        _ => return None,
    };
    let action = match map.get("action").map(Value::as_str) {
        None => None,
        Some(Some("pubsub")) => None,
        Some(Some("publish")) => Some(Action::Publish),
        Some(Some("subscribe")) => Some(Action::Subscribe),
        Some(_) => return None,
    };
    let topics = map
        .get("topics")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(Rule {
        permit,
        action,
        who: selector(map),
        topics,
    })
}

impl AclRules {
    /// Parses an ACL file: `rules = [ {...} {...} ]`.
    pub fn parse(text: &str) -> Result<AclRules, AccessFileError> {
        let root = hocon::parse(text, Limits::DEFAULT).map_err(AccessFileError::Syntax)?;
        let rules = match root.get("rules") {
            None => Vec::new(),
            Some(Value::Array(rules)) => rules.iter().filter_map(rule).collect(),
            Some(_) => {
                return Err(AccessFileError::Shape(
                    "`rules` must be an array of rules".into(),
                ))
            }
        };
        Ok(AclRules { rules })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The decision of the first rule that matches `who`, `action` and `topic`
    /// (a topic name for a publish, a filter for a subscribe); `None` when no rule
    /// does and `no_match` applies.
    pub fn decide(&self, who: &Who<'_>, action: Action, topic: &str) -> Option<Permit> {
        self.rules
            .iter()
            .filter(|r| r.action.is_none_or(|a| a == action))
            .filter(|r| applies(&r.who, who))
            .find_map(|r| rule_matches_topic(r, who, topic).then_some(r.permit))
    }
}

fn applies(selector: &Selector, who: &Who<'_>) -> bool {
    match selector {
        Selector::Everyone => true,
        Selector::ClientId(id) => who.client_id == id,
        Selector::Username(u) => who.username == Some(u.as_str()),
        Selector::Ip(ip) => who.ip.to_string() == *ip,
        Selector::Ips(ips) => ips.iter().any(|ip| who.ip.to_string() == *ip),
        Selector::And(parts) => parts.iter().all(|p| applies(p, who)),
        Selector::Or(parts) => parts.iter().any(|p| applies(p, who)),
    }
}

/// Whether one of the rule's topics covers `topic`; no topics cover everything.
fn rule_matches_topic(rule: &Rule, who: &Who<'_>, topic: &str) -> bool {
    if rule.topics.is_empty() {
        return true;
    }
    rule.topics.iter().any(|pattern| {
        let placeholder = pattern.contains("${clientid}") || pattern.contains("${username}");
        if placeholder {
            // an id or username holding wildcards would widen the rule: never
            let wild = |s: &str| s.contains(['+', '#', '/']);
            if wild(who.client_id) || who.username.is_some_and(wild) {
                return false;
            }
        }
        let mut pattern = pattern.replace("${clientid}", who.client_id);
        if let Some(u) = who.username {
            pattern = pattern.replace("${username}", u);
        }
        match pattern.strip_prefix('@') {
            Some(exact) => exact == topic,
            None => filter_covers(&pattern, topic),
        }
    })
}

/// Whether filter `rule` covers `subject`, itself a topic or a filter: `a/#`
/// covers `a/+`, `+` covers `+` but not `#`.
pub fn filter_covers(rule: &str, subject: &str) -> bool {
    let mut r = rule.split('/');
    let mut s = subject.split('/');
    loop {
        match (r.next(), s.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(level)) if level != "#" => {}
            (Some(a), Some(b)) if a == b && a != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The users of a password file: every member with a string value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PasswordFile {
    users: Vec<(String, String)>,
}

impl PasswordFile {
    pub fn parse(text: &str) -> Result<PasswordFile, AccessFileError> {
        let root = hocon::parse(text, Limits::DEFAULT).map_err(AccessFileError::Syntax)?;
        let users = root
            .into_iter()
            .filter_map(|(user, pass)| Some((user, pass.as_str()?.to_string())))
            .collect();
        Ok(PasswordFile { users })
    }

    /// The password of `username`, if the file names it.
    pub fn password(&self, username: &str) -> Option<&str> {
        self.users
            .iter()
            .find(|(u, _)| u == username)
            .map(|(_, p)| p.as_str())
    }

    pub fn users(&self) -> impl Iterator<Item = (&str, &str)> {
        self.users.iter().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who<'a>(client_id: &'a str, username: Option<&'a str>) -> Who<'a> {
        Who {
            client_id,
            username,
            ip: "10.0.0.7".parse().unwrap(),
        }
    }

    const ACL: &str = r##"
rules = [
    # the first rule that matches decides
    {"permit": "deny", "username": "#", "action": "subscribe", "topics": ["$SYS/#", "@#"]}
    {"permit": "allow", "clientid": "dash", "action": "subscribe", "topics": ["#"]}
    {"permit": "deny", "action": "subscribe", "topics": ["test/nosubscribe"]}
    {"permit": "allow", "username": "dev", "topics": ["dev/${username}/#", "c/${clientid}"]}
    {"permit": "deny", "topics": ["dev/#"]}
    {"permit": "allow", "ipaddr": "10.0.0.7", "action": "publish", "topics": ["lan/+"]}
    {"permit": "maybe", "topics": ["dropped"]}
    {"permit": "deny", "action": "everything"}
]
"##;

    #[test]
    fn first_matching_rule_decides() {
        let acl = AclRules::parse(ACL).unwrap();
        assert_eq!(acl.len(), 6, "the unknown permit and action are dropped");
        let sub = Action::Subscribe;
        let publish = Action::Publish;
        let anyone = who("c1", None);
        assert_eq!(
            acl.decide(&anyone, sub, "$SYS/broker/uptime"),
            Some(Permit::Deny)
        );
        assert_eq!(
            acl.decide(&anyone, sub, "#"),
            Some(Permit::Deny),
            "@# is exact"
        );
        assert_eq!(
            acl.decide(&who("dash", None), sub, "x/#"),
            Some(Permit::Allow)
        );
        assert_eq!(
            acl.decide(&anyone, sub, "test/nosubscribe"),
            Some(Permit::Deny)
        );
        assert_eq!(acl.decide(&anyone, publish, "test/nosubscribe"), None);
        let dev = who("d1", Some("dev"));
        assert_eq!(acl.decide(&dev, publish, "dev/dev/t"), Some(Permit::Allow));
        assert_eq!(acl.decide(&dev, sub, "dev/dev/+"), Some(Permit::Allow));
        assert_eq!(acl.decide(&dev, publish, "c/d1"), Some(Permit::Allow));
        assert_eq!(acl.decide(&dev, publish, "dev/other/t"), Some(Permit::Deny));
        assert_eq!(acl.decide(&anyone, publish, "lan/x"), Some(Permit::Allow));
        assert_eq!(acl.decide(&anyone, publish, "wan/x"), None);
    }

    #[test]
    fn wildcards_in_an_id_never_widen_a_placeholder() {
        let acl = AclRules::parse(r##"rules = [{"permit":"allow","topics":["c/${clientid}"]}]"##)
            .unwrap();
        assert_eq!(acl.decide(&who("#", None), Action::Subscribe, "c/#"), None);
        assert_eq!(
            acl.decide(&who("ok", None), Action::Subscribe, "c/ok"),
            Some(Permit::Allow)
        );
    }

    #[test]
    fn filters_cover_filters() {
        assert!(filter_covers("a/#", "a/+"));
        assert!(filter_covers("a/#", "a"));
        assert!(filter_covers("+/b", "x/b"));
        assert!(filter_covers("+/b", "+/b"));
        assert!(!filter_covers("+/b", "#"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(
            filter_covers("#", "$SYS/x"),
            "NanoMQ's `#` covers `$` topics too"
        );
    }

    #[test]
    fn password_file_takes_string_members_in_every_form() {
        let f =
            PasswordFile::parse("\"admin\": \"public\"\nclient = secret\npin: 123456\n").unwrap();
        assert_eq!(f.password("admin"), Some("public"));
        assert_eq!(f.password("client"), Some("secret"));
        assert_eq!(
            f.password("pin"),
            None,
            "a number is not a password (as NanoMQ)"
        );
        assert!(PasswordFile::parse("{").is_err());
    }
}
