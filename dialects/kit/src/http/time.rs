//! The timestamp formats vendors use. Local time is the process's time zone (UTC
//! in the container image unless `TZ` says otherwise). The clock itself is
//! [`crate::clock`].

use chrono::{Local, LocalResult, NaiveDateTime, TimeZone};

fn local(ms: i64) -> Option<chrono::DateTime<Local>> {
    match Local.timestamp_millis_opt(ms) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => None,
    }
}

/// `YYYY-MM-DD HH:MM:SS` in local time.
pub fn format_datetime(ms: i64) -> String {
    local(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS.mmm` in local time.
pub fn format_datetime_millis(ms: i64) -> String {
    local(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
        .unwrap_or_default()
}

/// Parses `YYYY-MM-DD HH:MM:SS` (optionally `.mmm`) in local time to epoch ms.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let text = text.trim();
    let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S"))
        .ok()?;
    match Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp_millis()),
        LocalResult::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ms = parse_datetime("2021-08-20 15:00:00").unwrap();
        assert_eq!(format_datetime(ms), "2021-08-20 15:00:00");
        assert_eq!(format_datetime_millis(ms + 718), "2021-08-20 15:00:00.718");
        assert_eq!(parse_datetime("2021-08-20 15:00:00.718"), Some(ms + 718));
        assert_eq!(parse_datetime("2021/08/20"), None);
    }
}
