//! `_page` / `_limit` style paging parameters, read leniently as the vendors do.

use crate::model::{Page, PageRequest};

/// Parses a decimal integer; anything else (absent, empty, non-numeric, overflow)
/// gives `None`.
pub fn parse_int(raw: Option<&str>) -> Option<i64> {
    raw.map(str::trim).filter(|s| !s.is_empty())?.parse().ok()
}

/// `_page` and `_limit` with the vendor's defaults: a non-numeric value means the
/// default; `page < 1` means 1; `limit < 1` means `limit_if_not_positive`.
pub fn page_request(
    page: Option<&str>,
    limit: Option<&str>,
    default_limit: usize,
    limit_if_not_positive: usize,
) -> PageRequest {
    let page = parse_int(page).unwrap_or(1).max(1) as usize;
    let limit = match parse_int(limit) {
        None => default_limit,
        Some(l) if l < 1 => limit_if_not_positive,
        Some(l) => l as usize,
    };
    PageRequest::new(page, limit)
}

/// One page of an in-memory list, with the list's length as the total.
pub fn slice<T>(items: Vec<T>, page: PageRequest) -> Page<T> {
    let total = items.len();
    let items = items
        .into_iter()
        .skip(page.offset())
        .take(page.limit)
        .collect();
    Page { items, total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient() {
        assert_eq!(
            page_request(None, None, 10000, 20),
            PageRequest::new(1, 10000)
        );
        assert_eq!(
            page_request(Some("0"), Some("0"), 10000, 20),
            PageRequest::new(1, 20)
        );
        assert_eq!(
            page_request(Some("x"), Some("y"), 10, 10),
            PageRequest::new(1, 10)
        );
        assert_eq!(
            page_request(Some("3"), Some("5"), 10, 10),
            PageRequest::new(3, 5)
        );
        assert_eq!(PageRequest::new(3, 5).offset(), 10);
        let page = slice((0..12).collect(), PageRequest::new(3, 5));
        assert_eq!((page.items, page.total), (vec![10, 11], 12));
        assert!(slice((0..3).collect::<Vec<_>>(), PageRequest::new(9, 5))
            .items
            .is_empty());
    }
}
