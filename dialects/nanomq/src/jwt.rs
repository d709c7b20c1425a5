//! JWT mode: RS256 bearer tokens verified with the configured public key, and the
//! signing side NanoMQ lacks ([`sign_token`]).
//!
//! NanoMQ's rules, kept: the algorithm is RS256 whatever the token's header says (a
//! token whose header names another algorithm, `none` or HS256 signed with the public
//! key as secret, is refused); `iss` must be the public key file's base name; `exp` is
//! required. Not kept: NanoMQ's JWT library accepts an `iss` that merely starts with the
//! configured name and skips the signature check on an empty signature segment; here
//! `iss` must be one string equal to the name (an array of names is refused), the
//! signature is always checked, and a token whose `nbf` is still in the future is
//! refused.

use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRejection {
    /// `exp` is in the past (NanoMQ's code 116).
    Expired,
    /// Anything else: bad signature, algorithm, issuer, shape, `nbf` in the future
    /// (code 103).
    Invalid(String),
}

/// Verifies tokens against one public key and issuer.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    issuer: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// The claims NanoMQ's documented tokens carry.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    iat: u64,
    exp: u64,
    #[serde(rename = "bodyEncode")]
    body_encode: String,
}

impl JwtVerifier {
    /// Reads the PEM public key at `keyfile`; the issuer is the file's base name.
    pub fn from_keyfile(keyfile: &Path) -> Result<JwtVerifier, String> {
        let pem = std::fs::read(keyfile)
            .map_err(|e| format!("cannot read JWT public key {}: {e}", keyfile.display()))?;
        let issuer = keyfile
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("JWT public key path {} has no file name", keyfile.display()))?;
        JwtVerifier::new(&pem, issuer)
    }

    pub fn new(public_key_pem: &[u8], issuer: &str) -> Result<JwtVerifier, String> {
        let key = DecodingKey::from_rsa_pem(public_key_pem)
            .map_err(|e| format!("JWT public key is not an RSA PEM key: {e}"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        Ok(JwtVerifier {
            key,
            validation,
            issuer: issuer.to_string(),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn verify(&self, token: &str) -> Result<(), TokenRejection> {
        match jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation) {
            // The library takes an array of issuers as matching when one of them does.
            Ok(data) if !data.claims.get("iss").is_some_and(|iss| iss.is_string()) => Err(
                TokenRejection::Invalid("iss is not a single string".to_string()),
            ),
            Ok(_) => Ok(()),
            Err(e) if *e.kind() == ErrorKind::ExpiredSignature => Err(TokenRejection::Expired),
            Err(e) => Err(TokenRejection::Invalid(e.to_string())),
        }
    }
}

/// Signs an RS256 token that the JWT mode accepts when its public key file is named
/// `issuer`: claims `iss`, `iat`, `exp` (now + `lifetime_secs`) and NanoMQ's
/// `bodyEncode: "0"`.
pub fn sign_token(
    private_key_pem: &[u8],
    issuer: &str,
    lifetime_secs: u64,
) -> Result<String, String> {
    let key = EncodingKey::from_rsa_pem(private_key_pem)
        .map_err(|e| format!("not an RSA private key in PEM form: {e}"))?;
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        iss: issuer.to_string(),
        iat: now,
        exp: now.saturating_add(lifetime_secs),
        body_encode: "0".to_string(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|e| format!("cannot sign the token: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/nanomq/jwt/private.pem");
    const PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/nanomq/jwt/nanomq.pub");

    fn signed(claims: serde_json::Value) -> String {
        let key = EncodingKey::from_rsa_pem(PRIVATE).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    }

    #[test]
    fn not_before_and_issuer_shape() {
        let verifier = JwtVerifier::new(PUBLIC, "nanomq.pub").unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now + 3600;
        assert_eq!(
            verifier.verify(&signed(json!({"iss":"nanomq.pub","exp":exp,"nbf":now - 5}))),
            Ok(())
        );
        assert!(matches!(
            verifier.verify(&signed(
                json!({"iss":"nanomq.pub","exp":exp,"nbf":now + 600})
            )),
            Err(TokenRejection::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify(&signed(json!({"iss":["nanomq.pub"],"exp":exp}))),
            Err(TokenRejection::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify(&signed(json!({"iss":["other","nanomq.pub"],"exp":exp}))),
            Err(TokenRejection::Invalid(_))
        ));
        assert_eq!(
            verifier.verify(&signed(json!({"iss":"nanomq.pub","exp":now - 10}))),
            Err(TokenRejection::Expired)
        );
    }
}
