//! JSON numbers read as integers the way JSON Schema's `integer` reads them: a
//! number with a zero fraction (`3.0`) is the integer 3. A body that an OpenAPI
//! document calls valid is then valid for the handler too.

use serde::de::{Deserialize, Deserializer, Error as _};
use serde_json::Number;

/// Largest integer an `f64` holds exactly.
const EXACT_F64: f64 = 9_007_199_254_740_992.0;

/// `n` as an integer, when it is one (`5`, `5.0`, `-2e3`).
pub fn whole_number(n: &Number) -> Option<i64> {
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= EXACT_F64)
            .map(|f| f as i64)
    })
}

/// For `#[serde(deserialize_with = "…")]` on an `Option` of an integer type:
/// null or absent is `None`, a whole number in `T`'s range is `Some`.
pub fn optional_whole<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64>,
{
    match Option::<Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_number(&n)
            .and_then(|i| T::try_from(i).ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected an integer in range, got {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(default, deserialize_with = "optional_whole")]
        v: Option<u8>,
    }

    #[test]
    fn zero_fractions_are_integers() {
        let n = |text: &str| whole_number(&serde_json::from_str(text).unwrap());
        assert_eq!(n("5"), Some(5));
        assert_eq!(n("5.0"), Some(5));
        assert_eq!(n("-2e3"), Some(-2000));
        assert_eq!(n("5.5"), None);
        assert_eq!(n("1e300"), None);
        let probe = |text: &str| serde_json::from_str::<Probe>(text).map(|p| p.v);
        assert_eq!(probe(r#"{"v": 1.0}"#).unwrap(), Some(1));
        assert_eq!(probe(r#"{"v": null}"#).unwrap(), None);
        assert_eq!(probe("{}").unwrap(), None);
        assert!(probe(r#"{"v": 256}"#).is_err());
        assert!(probe(r#"{"v": 1.5}"#).is_err());
        assert!(probe(r#"{"v": "1"}"#).is_err());
    }
}
