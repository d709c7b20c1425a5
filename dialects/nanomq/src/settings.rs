//! mqgate's real configuration through NanoMQ's eyes, and NanoMQ-shaped writes mapped
//! back onto what mqgate can change while running.
//!
//! Reads report mqgate's live values where mqgate has the setting and NanoMQ's defaults
//! for what mqgate does not have (task threads, property size, TLS, bridges...). Writes
//! apply what maps onto [`HotConfigPatch`]; every other written value that differs from
//! what a read reports cannot be applied and is listed, by dotted key path, in the
//! reply's `not_applied` array (and logged) instead of being dropped silently. Writing
//! back what was read is therefore always clean.

use mqgate_kit::{ConfigView, HotConfigPatch, Management};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::cjson::CNumber;
use crate::reply::Reply;

/// NanoMQ's defaults for settings mqgate does not have; reported as they are.
pub const PROPERTY_SIZE: u32 = 32;
pub const QOS_DURATION: u32 = 10;

/// Worker threads: mqgate runs one async worker per core, the closest thing to
/// NanoMQ's task queue threads.
pub fn task_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1)
}

/// `nmq-tcp://host:port` of the MQTT TCP listener.
pub fn tcp_url(view: &ConfigView) -> Option<String> {
    view.mqtt.tcp_listen.map(|a| format!("nmq-tcp://{a}"))
}

/// `nmq-ws://host:port/path` of the MQTT WebSocket listener.
pub fn ws_url(view: &ConfigView) -> Option<String> {
    view.mqtt.ws_listen.map(|a| {
        let path = view.mqtt.ws_paths.first().map_or("/mqtt", String::as_str);
        format!("nmq-ws://{a}{path}")
    })
}

/// The hot-updatable settings in NanoMQ's shape: `GET /reload`'s data, and the
/// values of `/configuration`'s `basic` section.
#[derive(Debug, Serialize, ToSchema)]
pub struct HotConfig {
    pub property_size: u32,
    /// KiB.
    pub max_packet_size: u32,
    /// KiB.
    pub client_max_packet_size: u32,
    /// Largest number of queued messages per client.
    pub msq_len: u32,
    pub qos_duration: u32,
    pub keepalive_backoff: CNumber,
    pub allow_anonymous: bool,
    pub enable_mqtt_stream: bool,
    pub bridge_mode: bool,
}

/// The hot-updatable settings as NanoMQ reports them.
pub fn hot_config(management: &dyn Management) -> HotConfig {
    let hot = management.config().hot;
    HotConfig {
        property_size: PROPERTY_SIZE,
        max_packet_size: kib(hot.max_packet_size),
        client_max_packet_size: kib(hot.client_max_packet_size),
        msq_len: hot.max_queued_messages,
        qos_duration: QOS_DURATION,
        keepalive_backoff: CNumber(f64::from(hot.keepalive_backoff)),
        allow_anonymous: hot.allow_anonymous,
        enable_mqtt_stream: false,
        bridge_mode: false,
    }
}

/// The reply to a configuration write: `{"code":0}`, plus the key paths that were
/// written but could not be applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteReply {
    pub code: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_applied: Vec<String>,
}

/// Applies a plan and answers NanoMQ's success, listing what was not applied.
pub fn write_reply(management: &dyn Management, origin: &str, plan: WritePlan) -> Reply {
    let not_applied = apply(management, origin, plan);
    Reply::json(&WriteReply {
        code: 0,
        not_applied,
    })
}

/// NanoMQ reports packet sizes in KiB.
pub fn kib(bytes: u32) -> u32 {
    bytes / 1024
}

/// A write mapped onto mqgate: one single-setting patch per applicable key path, and
/// the key paths that cannot be applied.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WritePlan {
    pub changes: Vec<(String, HotConfigPatch)>,
    pub not_applied: Vec<String>,
}

impl WritePlan {
    /// Every change merged into one patch.
    pub fn merged(&self) -> HotConfigPatch {
        let mut all = HotConfigPatch::default();
        for (_, p) in &self.changes {
            all.allow_anonymous = p.allow_anonymous.or(all.allow_anonymous);
            all.max_packet_size = p.max_packet_size.or(all.max_packet_size);
            all.client_max_packet_size = p.client_max_packet_size.or(all.client_max_packet_size);
            all.keepalive_backoff = p.keepalive_backoff.or(all.keepalive_backoff);
            all.max_queued_messages = p.max_queued_messages.or(all.max_queued_messages);
        }
        all
    }
}

/// Applies the plan one setting at a time, so that a value the broker refuses (NanoMQ
/// takes any number) is reported with the others instead of failing the whole write.
/// Returns every key path that was not applied, sorted, and logs them.
pub fn apply(management: &dyn Management, origin: &str, plan: WritePlan) -> Vec<String> {
    let mut not_applied = plan.not_applied;
    for (path, patch) in plan.changes {
        if let Err(e) = management.update_config(patch) {
            tracing::warn!(origin, %path, error = %e, "nanomq: the broker refused a setting");
            not_applied.push(path);
        }
    }
    not_applied.sort();
    if !not_applied.is_empty() {
        tracing::warn!(
            origin,
            ?not_applied,
            "nanomq: configuration values mqgate cannot apply"
        );
    }
    not_applied
}

/// Puts one written value into the patch; `false` when the value has the wrong type or
/// range.
pub type Setter = fn(&Value, &mut HotConfigPatch) -> bool;

pub fn set_allow_anonymous(v: &Value, p: &mut HotConfigPatch) -> bool {
    v.as_bool().map(|b| p.allow_anonymous = Some(b)).is_some()
}

pub fn set_queue_len(v: &Value, p: &mut HotConfigPatch) -> bool {
    as_u32(v).map(|n| p.max_queued_messages = Some(n)).is_some()
}

pub fn set_keepalive_backoff(v: &Value, p: &mut HotConfigPatch) -> bool {
    v.as_f64()
        .filter(|f| f.is_finite() && *f > 0.0)
        .map(|f| p.keepalive_backoff = Some(f as f32))
        .is_some()
}

pub fn set_max_packet_kib(v: &Value, p: &mut HotConfigPatch) -> bool {
    kib_to_bytes(v)
        .map(|n| p.max_packet_size = Some(n))
        .is_some()
}

pub fn set_client_max_packet_kib(v: &Value, p: &mut HotConfigPatch) -> bool {
    kib_to_bytes(v)
        .map(|n| p.client_max_packet_size = Some(n))
        .is_some()
}

pub fn set_max_packet_size_text(v: &Value, p: &mut HotConfigPatch) -> bool {
    size_in_bytes(v)
        .map(|n| p.max_packet_size = Some(n))
        .is_some()
}

pub fn set_client_max_packet_size_text(v: &Value, p: &mut HotConfigPatch) -> bool {
    size_in_bytes(v)
        .map(|n| p.client_max_packet_size = Some(n))
        .is_some()
}

fn as_u32(v: &Value) -> Option<u32> {
    let f = v.as_f64()?;
    (f >= 0.0 && f <= u32::MAX as f64).then_some(f as u32)
}

fn kib_to_bytes(v: &Value) -> Option<u32> {
    as_u32(v)?.checked_mul(1024)
}

/// A HOCON size: a byte count, or text such as `256KB`, `10MB`, `1GiB`.
fn size_in_bytes(v: &Value) -> Option<u32> {
    if let Some(n) = as_u32(v) {
        return Some(n);
    }
    let text = v.as_str()?.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1024,
        "M" | "MB" | "MIB" => 1024 * 1024,
        "G" | "GB" | "GIB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    u32::try_from(n.checked_mul(factor)?).ok()
}

/// Maps `written` onto mqgate. `current` is what a read of the same shape reports;
/// `setters` name the dotted paths (relative to `written`) mqgate can apply.
pub fn plan_write(current: &Value, written: &Value, setters: &[(&str, Setter)]) -> WritePlan {
    let mut plan = WritePlan::default();
    walk(current, written, "", setters, &mut plan);
    plan
}

fn walk(
    current: &Value,
    written: &Value,
    prefix: &str,
    setters: &[(&str, Setter)],
    plan: &mut WritePlan,
) {
    let Some(fields) = written.as_object() else {
        return;
    };
    for (key, value) in fields {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let now = current.get(key).unwrap_or(&Value::Null);
        if let Some((_, setter)) = setters.iter().find(|(p, _)| *p == path) {
            let mut patch = HotConfigPatch::default();
            if setter(value, &mut patch) {
                plan.changes.push((path, patch));
            } else {
                plan.not_applied.push(path);
            }
        } else if value.is_object() && (now.is_object() || now.is_null()) {
            walk(now, value, &path, setters, plan);
        } else if !same_value(now, value) {
            plan.not_applied.push(path);
        }
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans_writes() {
        let current = json!({"property_size":32,"msq_len":2048,"keepalive_backoff":1.25,
            "tls":{"enable":false,"url":null}});
        let setters: &[(&str, Setter)] = &[
            ("msq_len", set_queue_len),
            ("max_packet_size", set_max_packet_kib),
            ("keepalive_backoff", set_keepalive_backoff),
        ];
        let plan = plan_write(
            &current,
            &json!({"property_size":32.0,"msq_len":10,"max_packet_size":3,
                "tls":{"enable":true,"url":null},"qos_duration":"x","keepalive_backoff":"no"}),
            setters,
        );
        assert_eq!(plan.merged().max_queued_messages, Some(10));
        assert_eq!(plan.merged().max_packet_size, Some(3072));
        // serde_json objects iterate in key order, so the report is sorted.
        assert_eq!(
            plan.not_applied,
            vec!["keepalive_backoff", "qos_duration", "tls.enable"]
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(size_in_bytes(&json!("256KB")), Some(262144));
        assert_eq!(size_in_bytes(&json!(100)), Some(100));
        assert_eq!(size_in_bytes(&json!("10 MB")), Some(10 * 1024 * 1024));
        assert_eq!(size_in_bytes(&json!("10XB")), None);
    }
}
