//! Request parameters taken from the query string and, where a vendor reads them
//! there too, from a urlencoded body. Decoding never fails: a malformed pair is kept
//! as well as it can be read (mica-mqtt drops the connection instead; we do not).

use axum::http::{header::CONTENT_TYPE, HeaderMap};

#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Pairs of a query string (`a=1&b=2`).
    pub fn from_query(query: Option<&str>) -> Params {
        let mut params = Params::default();
        if let Some(q) = query {
            params.extend_urlencoded(q.as_bytes());
        }
        params
    }

    /// Query pairs, then body pairs when the body is urlencoded or untyped (not
    /// `text/plain`, `multipart/form-data` or `application/json`).
    pub fn from_query_and_form(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut params = Params::from_query(query);
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let skip = ["text/plain", "multipart/form-data", "application/json"]
            .iter()
            .any(|t| content_type.starts_with(t));
        if !skip && !body.is_empty() {
            params.extend_urlencoded(body);
        }
        params
    }

    fn extend_urlencoded(&mut self, raw: &[u8]) {
        self.pairs
            .extend(form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())));
    }

    /// The first non-empty value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, empty or not.
    pub fn get_raw(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_form() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let p = Params::from_query_and_form(Some("a=1&b=&c=x%20y"), &h, b"clientId=z&a=2");
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.get("clientId"), Some("z"));
        let p = Params::from_query(Some("clientId=a=b"));
        assert_eq!(p.get("clientId"), Some("a=b"));
        h.insert(CONTENT_TYPE, "application/json".parse().unwrap());
        let p = Params::from_query_and_form(None, &h, b"clientId=z");
        assert_eq!(p.get("clientId"), None);
    }
}
