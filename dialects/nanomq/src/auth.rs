//! Who may call the API: Basic, JWT or nobody checked, as `auth_type` says. NanoMQ
//! checks credentials before it routes, for every method and path of an API, and
//! answers failures with 401 and no `WWW-Authenticate` (so a browser never shows a
//! login prompt). Every handler, and the v4 answers for unknown routes and methods,
//! take the [`Authorized`] extractor first; v1 takes it as a `Result` because it reads
//! its body before the credentials.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use mqgate_kit::http::basic_auth::{BasicCredentials, BasicOutcome, SchemeCheck};

use crate::error::Error;
use crate::jwt::{JwtVerifier, TokenRejection};
use crate::{AuthType, Config};

/// NanoMQ's result codes for refused credentials.
pub const WRONG_USERNAME_OR_PASSWORD: u16 = 103;
pub const EMPTY_USERNAME_OR_PASSWORD: u16 = 104;
pub const TOKEN_EXPIRED: u16 = 116;

#[derive(Debug, Clone)]
pub enum Auth {
    Basic(BasicCredentials),
    Jwt(Box<JwtVerifier>),
    NoAuth,
}

impl Auth {
    pub fn from_config(config: &Config) -> Result<Auth, String> {
        match config.auth_type {
            AuthType::Basic => Ok(Auth::Basic(BasicCredentials::new(
                config.username.clone(),
                config.password.clone(),
            ))),
            AuthType::NoAuth => Ok(Auth::NoAuth),
            AuthType::Jwt => {
                let keyfile = config
                    .jwt_public_keyfile
                    .as_deref()
                    .ok_or("auth_type = \"jwt\" needs jwt_public_keyfile")?;
                Ok(Auth::Jwt(Box::new(JwtVerifier::from_keyfile(keyfile)?)))
            }
        }
    }

    /// `Err(code)` when the request may not proceed.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), u16> {
        match self {
            Auth::NoAuth => Ok(()),
            Auth::Basic(credentials) => match credentials.check(headers, SchemeCheck::Exact) {
                BasicOutcome::Authorized => Ok(()),
                BasicOutcome::Missing | BasicOutcome::NotBasic => Err(EMPTY_USERNAME_OR_PASSWORD),
                BasicOutcome::Malformed | BasicOutcome::WrongCredentials => {
                    Err(WRONG_USERNAME_OR_PASSWORD)
                }
            },
            Auth::Jwt(verifier) => {
                let token = headers
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .and_then(|rest| rest.split_ascii_whitespace().next())
                    .ok_or(EMPTY_USERNAME_OR_PASSWORD)?;
                match verifier.verify(token) {
                    Ok(()) => Ok(()),
                    Err(TokenRejection::Expired) => Err(TOKEN_EXPIRED),
                    Err(TokenRejection::Invalid(reason)) => {
                        tracing::debug!(%reason, "nanomq: bearer token refused");
                        Err(WRONG_USERNAME_OR_PASSWORD)
                    }
                }
            }
        }
    }
}

/// A state that knows how the API authenticates.
pub trait AuthState {
    fn auth(&self) -> &Auth;
}

/// Proof that the request's credentials passed; 401 with NanoMQ's code otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Authorized;

#[axum::async_trait]
impl<S: AuthState + Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        state
            .auth()
            .check(&parts.headers)
            .map(|()| Authorized)
            .map_err(Error::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn basic_codes_match_nanomq() {
        let auth = Auth::from_config(&Config::default()).unwrap();
        assert_eq!(auth.check(&HeaderMap::new()), Err(104));
        assert_eq!(auth.check(&headers("Basic YWRtaW46cHVibGlj")), Ok(()));
        assert_eq!(auth.check(&headers("basic YWRtaW46cHVibGlj")), Err(104));
        assert_eq!(auth.check(&headers("Basic")), Err(104));
        assert_eq!(auth.check(&headers("Basic YWRt")), Err(103));
        assert_eq!(auth.check(&headers("Basic !!!!****")), Err(103));
        assert_eq!(auth.check(&headers("Basic YWRtaW46cHVibGljeA==")), Err(103));
        assert_eq!(
            auth.check(&headers("Bearer eyJhbGciOiJSUzI1NiJ9.e30.x")),
            Err(104)
        );
    }

    #[test]
    fn jwt_round_trip() {
        let private = include_bytes!("../../../tests/fixtures/nanomq/jwt/private.pem");
        let public = include_bytes!("../../../tests/fixtures/nanomq/jwt/nanomq.pub");
        let auth = Auth::Jwt(Box::new(JwtVerifier::new(public, "nanomq.pub").unwrap()));
        let good = crate::sign_token(private, "nanomq.pub", 3600).unwrap();
        assert_eq!(auth.check(&headers(&format!("Bearer {good}"))), Ok(()));
        let other = crate::sign_token(private, "other.pub", 3600).unwrap();
        assert_eq!(auth.check(&headers(&format!("Bearer {other}"))), Err(103));
        assert_eq!(auth.check(&headers(&format!("Basic {good}"))), Err(104));
        let unsigned = good.rsplit_once('.').unwrap().0.to_string() + ".";
        assert_eq!(
            auth.check(&headers(&format!("Bearer {unsigned}"))),
            Err(103)
        );
    }
}
