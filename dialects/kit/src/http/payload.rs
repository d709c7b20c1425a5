//! Payload encodings of management APIs: plain text, hex and base64.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use bytes::Bytes;

/// Standard alphabet; `=` padding accepted but not required (as Java's decoder).
const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayloadEncoding {
    #[default]
    Plain,
    Hex,
    Base64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is not valid hex")]
    BadHex,
    #[error("payload is not valid base64")]
    BadBase64,
}

impl PayloadEncoding {
    /// `plain`, `hex` or `base64` in any case; anything else is `None`.
    pub fn parse(name: &str) -> Option<PayloadEncoding> {
        match name.to_ascii_lowercase().as_str() {
            "plain" => Some(PayloadEncoding::Plain),
            "hex" => Some(PayloadEncoding::Hex),
            "base64" => Some(PayloadEncoding::Base64),
            _ => None,
        }
    }

    /// The wire bytes a client asked for.
    pub fn decode(&self, payload: &str) -> Result<Bytes, PayloadError> {
        match self {
            PayloadEncoding::Plain => Ok(Bytes::copy_from_slice(payload.as_bytes())),
            PayloadEncoding::Hex => hex::decode(payload)
                .map(Bytes::from)
                .map_err(|_| PayloadError::BadHex),
            PayloadEncoding::Base64 => BASE64_LENIENT
                .decode(payload)
                .map(Bytes::from)
                .map_err(|_| PayloadError::BadBase64),
        }
    }

    /// Renders wire bytes (plain: UTF-8, invalid sequences replaced).
    pub fn encode(&self, payload: &[u8]) -> String {
        match self {
            PayloadEncoding::Plain => String::from_utf8_lossy(payload).into_owned(),
            PayloadEncoding::Hex => hex::encode(payload),
            PayloadEncoding::Base64 => base64::engine::general_purpose::STANDARD.encode(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(
            PayloadEncoding::Hex.decode("48690a").unwrap(),
            Bytes::from_static(b"Hi\n")
        );
        assert_eq!(
            PayloadEncoding::Hex.decode("486"),
            Err(PayloadError::BadHex)
        );
        assert_eq!(
            PayloadEncoding::Base64.decode("SGk=").unwrap(),
            Bytes::from_static(b"Hi")
        );
        assert_eq!(
            PayloadEncoding::Base64.decode("SGk").unwrap(),
            Bytes::from_static(b"Hi")
        );
        assert_eq!(
            PayloadEncoding::Base64.decode("SGk=="),
            Err(PayloadError::BadBase64)
        );
        assert_eq!(
            PayloadEncoding::Base64.decode("S-k_"),
            Err(PayloadError::BadBase64)
        );
        assert_eq!(PayloadEncoding::Base64.encode(b"Hi"), "SGk=");
        assert_eq!(
            PayloadEncoding::parse("BASE64"),
            Some(PayloadEncoding::Base64)
        );
        assert_eq!(PayloadEncoding::parse("utf8"), None);
    }
}
