//! Numbers as NanoMQ's JSON library (cJSON) prints them: integers that fit a C `int`
//! plainly, everything else with `%1.15g`, or `%1.17g` when 15 digits do not read back
//! to the same double; NaN and infinities as `null`.

use serde::{Serialize, Serializer};

/// Formats `value` exactly as cJSON's `PrintUnformatted` does.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return "null".to_string();
    }
    if value.fract() == 0.0 && value >= i32::MIN as f64 && value <= i32::MAX as f64 {
        return format!("{}", value as i32);
    }
    let short = format_g(value, 15);
    if short.parse::<f64>() == Ok(value) {
        short
    } else {
        format_g(value, 17)
    }
}

/// C's `%.{precision}g` for a finite, non-zero value.
fn format_g(value: f64, precision: usize) -> String {
    let scientific = format!("{:.*e}", precision - 1, value);
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("Rust's {:e} always has an exponent");
    let exponent: i32 = exponent.parse().expect("integer exponent");
    if exponent < -4 || exponent >= precision as i32 {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{}e{}{:02}",
            trim_fraction_zeros(mantissa),
            sign,
            exponent.abs()
        )
    } else {
        let decimals = (precision as i32 - 1 - exponent).max(0) as usize;
        trim_fraction_zeros(&format!("{:.*}", decimals, value)).to_string()
    }
}

fn trim_fraction_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// A double that serializes like cJSON would print it, as far as serde allows: whole
/// numbers without a fraction (`1250`, not `1250.0`), others as the shortest float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CNumber(pub f64);

impl Serialize for CNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if !v.is_finite() {
            serializer.serialize_none()
        } else if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
        }
    }
}

impl utoipa::PartialSchema for CNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        f64::schema()
    }
}

impl utoipa::ToSchema for CNumber {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_cjson() {
        assert_eq!(format_number(1111111.0), "1111111");
        assert_eq!(format_number(2f64.powi(63)), "9.2233720368547758e+18");
        assert_eq!(format_number(1.25), "1.25");
        assert_eq!(format_number(3_000_000_000.0), "3000000000");
        assert_eq!(format_number(0.1), "0.1");
        assert_eq!(format_number(1e-7), "1e-07");
        assert_eq!(format_number(f64::NAN), "null");
        assert_eq!(format_number(-0.0), "0");
        assert_eq!(serde_json::to_string(&CNumber(1250.0)).unwrap(), "1250");
        assert_eq!(serde_json::to_string(&CNumber(1.25)).unwrap(), "1.25");
    }
}
