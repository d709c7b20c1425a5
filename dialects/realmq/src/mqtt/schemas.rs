//! The request schemas of the MQTT operations that a type alone cannot state:
//! topic names and filters as the handlers check them, lenient QoS and retain.

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::Object;

use crate::wire::{flag_schema, lenient_bool_schema};

/// A topic name, blanks around it ignored: no `+`, `#` or NUL.
const TOPIC_NAME: &str = r"^[^+#\u0000]*[^\s+#\u0000][^+#\u0000]*$";
/// Comma-separated topic names.
const TOPIC_NAMES: &str = r"^[^+#\u0000]*$";
/// A topic filter, blanks around it ignored: `+` only as a whole level, `#` only
/// as the whole last level.
const TOPIC_FILTER: &str = r"^\s*(?:(?:[^/+#\u0000]*|\+)(?:/(?:[^/+#\u0000]*|\+))*(?:/#)?|#)\s*$";
/// Comma-separated topic filters.
const TOPIC_FILTERS: &str = r"^(?:\s*(?:(?:[^/+#,\u0000]*|\+)(?:/(?:[^/+#,\u0000]*|\+))*(?:/#)?|#)\s*)(?:,\s*(?:(?:[^/+#,\u0000]*|\+)(?:/(?:[^/+#,\u0000]*|\+))*(?:/#)?|#)\s*)*$";

pub fn qos_schema() -> Object {
    flag_schema(
        "0 (default), 1 or 2; a number or a numeric string.",
        &[0, 1, 2],
        1,
    )
}

pub fn retain_schema() -> Object {
    lenient_bool_schema(
        "Whether the broker keeps the message for later subscribers (default false): true/false, 1/0, or their string forms.",
        false,
    )
}

/// A string (or null) matching `pattern`.
fn text_schema(description: &str, pattern: &str, example: Option<&str>) -> Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(description))
        .pattern(Some(pattern))
        .examples(example)
        .build()
}

pub fn publish_topic_schema() -> Object {
    text_schema(
        "A topic name (no `+`, `#` or NUL); `topic` or `topics` is required.",
        TOPIC_NAME,
        Some("test/topic"),
    )
}

pub fn publish_topics_schema() -> Object {
    text_schema(
        "Comma-separated topic names; blanks are skipped.",
        TOPIC_NAMES,
        None,
    )
}

pub fn filter_schema() -> Object {
    text_schema(
        "A topic filter; `topic` or `topics` is required.",
        TOPIC_FILTER,
        Some("topic1"),
    )
}

pub fn filters_schema() -> Object {
    text_schema(
        "Comma-separated topic filters; blanks are skipped.",
        TOPIC_FILTERS,
        Some("topic1,topic2,topic3"),
    )
}

#[cfg(test)]
mod tests {
    use mqgate_kit::topic::{is_valid_topic_filter, is_valid_topic_name};
    use regex::Regex;

    use super::*;
    use crate::mqtt::topic_list;

    /// Every string of up to `len` characters of `alphabet`.
    fn strings(alphabet: &[char], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    /// The documented patterns accept exactly what the handlers accept, for
    /// `topic` alone and for `topics` alone (a blank `topic` counts as absent).
    #[test]
    fn topic_patterns_match_the_handlers() {
        let non_blank = Regex::new(r"\S").unwrap();
        let has_entry = Regex::new(r"[^\s,]").unwrap();
        /// A pattern, what else the body must match, the handler's check of
        /// one topic, and whether the field is a comma-separated list.
        type Case<'a> = (&'a str, &'a Regex, fn(&str) -> bool, bool);
        let cases: [Case; 4] = [
            (TOPIC_NAME, &non_blank, is_valid_topic_name, false),
            (TOPIC_NAMES, &has_entry, is_valid_topic_name, true),
            (TOPIC_FILTER, &non_blank, is_valid_topic_filter, false),
            (TOPIC_FILTERS, &has_entry, is_valid_topic_filter, true),
        ];
        for (pattern, given, valid, list) in cases {
            let documented = Regex::new(pattern).unwrap();
            for s in strings(&['a', '/', '+', '#', ' ', ','], 5) {
                let topics = if list {
                    topic_list(None, Some(&s))
                } else {
                    topic_list(Some(&s), None)
                };
                let accepted = !topics.is_empty() && topics.iter().all(|t| valid(t));
                assert_eq!(
                    documented.is_match(&s) && given.is_match(&s),
                    accepted,
                    "{pattern} on {s:?}"
                );
            }
        }
    }
}
