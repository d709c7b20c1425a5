//! Request URIs rewritten before routing.

use axum::http::Uri;

/// `uri` with its path replaced by `path`, the query kept; `None` when that is not a
/// valid URI.
pub fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    Uri::builder().path_and_query(path_and_query).build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_query() {
        let uri: Uri = "//a//b/?x=1&y".parse().unwrap();
        assert_eq!(with_path(&uri, "/a/b").unwrap(), "/a/b?x=1&y");
        let uri: Uri = "/a/".parse().unwrap();
        assert_eq!(with_path(&uri, "/a").unwrap(), "/a");
        assert!(with_path(&uri, "no slash").is_none());
    }
}
