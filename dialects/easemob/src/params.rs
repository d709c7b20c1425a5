//! Reading the URL parameters every query operation shares: the client id of this
//! application, the `beginTime`/`endTime` window, `currentPage`/`pageSize`, `order`,
//! and the 16-hex ids.

use mqgate_kit::history::SortOrder;
use mqgate_kit::http::paging::page_request;
use mqgate_kit::http::params::Params;
use mqgate_kit::http::time::parse_datetime;
use mqgate_kit::PageRequest;
use serde::de::DeserializeOwned;

use crate::client_id::{check_client_id, ClientIdCheck};
use crate::error::Error;

/// Default `pageSize` of every paged operation.
pub const DEFAULT_PAGE_SIZE: usize = 10;

/// Fills a parameter struct (all `Option<String>` fields) from a query string. An
/// empty value counts as absent; of repeated names the first non-empty one wins.
pub fn from_query<T: DeserializeOwned + Default>(raw: Option<&str>) -> T {
    let params = Params::from_query(raw);
    let mut object = serde_json::Map::new();
    for (name, _) in params.pairs() {
        if object.contains_key(name) {
            continue;
        }
        if let Some(value) = params.get(name) {
            object.insert(name.clone(), serde_json::Value::String(value.to_string()));
        }
    }
    serde_json::from_value(serde_json::Value::Object(object)).unwrap_or_default()
}

/// A `deviceID@AppID` client id of this application.
pub fn client_id(value: Option<&str>, app_id: &str) -> Result<String, Error> {
    let Some(value) = value else {
        return Err(Error::bad_request("clientid can not be empty"));
    };
    match check_client_id(value, app_id) {
        ClientIdCheck::Ours => Ok(value.to_string()),
        ClientIdCheck::OtherApp => Err(Error::bad_request("clientid and appid doesn't match")),
        ClientIdCheck::Invalid => Err(Error::bad_request("invalid clientid")),
    }
}

/// `[beginTime, endTime]` as epoch ms; `endTime` covers its whole second.
pub fn window(begin: Option<&str>, end: Option<&str>) -> Result<(i64, i64), Error> {
    let (Some(begin), Some(end)) = (begin, end) else {
        return Err(Error::bad_request("beginTime and endTime can not be empty"));
    };
    let (Some(from_ms), Some(to_ms)) = (parse_datetime(begin), parse_datetime(end)) else {
        return Err(Error::bad_request(
            "beginTime and endTime must be formatted as yyyy-MM-dd HH:mm:ss",
        ));
    };
    if to_ms <= from_ms {
        return Err(Error::bad_request(
            "end time must be greater than the start time",
        ));
    }
    Ok((from_ms, to_ms + 999))
}

/// `currentPage` (default 1) and `pageSize` (default 10); unreadable or
/// non-positive values mean the defaults.
pub fn page(current_page: Option<&str>, page_size: Option<&str>) -> PageRequest {
    page_request(
        current_page,
        page_size,
        DEFAULT_PAGE_SIZE,
        DEFAULT_PAGE_SIZE,
    )
}

/// `ASC` or `DESC` in any case; anything else means `default`.
pub fn order(value: Option<&str>, default: SortOrder) -> SortOrder {
    match value.map(str::to_ascii_uppercase).as_deref() {
        Some("ASC") => SortOrder::Asc,
        Some("DESC") => SortOrder::Desc,
        _ => default,
    }
}

/// A message or connection id as Easemob writes it: 16 upper-case hex digits.
pub fn hex_id(id: u64) -> String {
    format!("{id:016X}")
}

/// Reads a 16-hex id (any case). `None` when it cannot name any id.
pub fn parse_hex_id(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    struct P {
        clientid: Option<String>,
        #[serde(rename = "beginTime")]
        begin_time: Option<String>,
    }

    #[test]
    fn query_struct() {
        let p: P = from_query(Some(
            "clientid=&clientid=a%40b&beginTime=2021-08-20+15:00:00&x=1",
        ));
        assert_eq!(p.clientid.as_deref(), Some("a@b"));
        assert_eq!(p.begin_time.as_deref(), Some("2021-08-20 15:00:00"));
        let p: P = from_query(None);
        assert_eq!(p, P::default());
    }

    #[test]
    fn windows() {
        let (from, to) = window(Some("2021-08-20 15:00:00"), Some("2021-08-20 15:00:01")).unwrap();
        assert_eq!(to - from, 1999);
        assert_eq!(
            window(None, Some("2021-08-20 15:00:00")).unwrap_err().msg,
            "beginTime and endTime can not be empty"
        );
        assert_eq!(
            window(Some("2021-08-20 15:00:00"), Some("2021-08-20 15:00:00"))
                .unwrap_err()
                .msg,
            "end time must be greater than the start time"
        );
        assert_eq!(
            window(Some("yesterday"), Some("2021-08-20 15:00:00"))
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn ids() {
        assert_eq!(hex_id(0x04D2B21648002000), "04D2B21648002000");
        assert_eq!(hex_id(1), "0000000000000001");
        assert_eq!(parse_hex_id("04d2b21648002000"), Some(0x04D2B21648002000));
        assert_eq!(parse_hex_id("xyz"), None);
        assert_eq!(parse_hex_id("04D2B2164800200000"), None);
        assert_eq!(order(Some("desc"), SortOrder::Asc), SortOrder::Desc);
        assert_eq!(order(Some("sideways"), SortOrder::Asc), SortOrder::Asc);
        assert_eq!(page(Some("0"), Some("x")), PageRequest::new(1, 10));
    }
}
