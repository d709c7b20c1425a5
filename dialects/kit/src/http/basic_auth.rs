//! HTTP Basic authentication against one configured user, with the outcome spelled
//! out so each dialect can answer in its vendor's 401 shape.

use axum::http::{header::AUTHORIZATION, HeaderMap};
use base64::Engine;

/// The expected user and password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: String,
}

/// How strictly the `Authorization` header's scheme word is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeCheck {
    /// `Basic` exactly, case-sensitive (NanoMQ).
    Exact,
    /// `basic` in any case (RFC 7235).
    CaseInsensitive,
    /// Any six characters before the token (mica-mqtt never reads the scheme word).
    Ignored,
}

/// What the `Authorization` header said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BasicOutcome {
    /// The user and password match.
    Authorized,
    /// No `Authorization` header, or an empty one.
    Missing,
    /// A header whose scheme is not Basic (or a Basic header with no token).
    NotBasic,
    /// A Basic token that is not base64 of `user:password`.
    Malformed,
    /// A well-formed Basic token with the wrong user or password.
    WrongCredentials,
}

impl BasicCredentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        BasicCredentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The base64 token a client sends for these credentials.
    pub fn token(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }

    pub fn check(&self, headers: &HeaderMap, scheme: SchemeCheck) -> BasicOutcome {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return BasicOutcome::Missing;
        };
        let Ok(value) = value.to_str() else {
            return BasicOutcome::Malformed;
        };
        self.check_value(value, scheme)
    }

    pub fn check_value(&self, value: &str, scheme: SchemeCheck) -> BasicOutcome {
        if value.trim().is_empty() {
            return BasicOutcome::Missing;
        }
        let token = match scheme {
            SchemeCheck::Exact => match value.strip_prefix("Basic ") {
                Some(t) => t,
                None => return BasicOutcome::NotBasic,
            },
            SchemeCheck::CaseInsensitive => match value.split_once(' ') {
                Some((s, t)) if s.eq_ignore_ascii_case("basic") => t.trim_start(),
                _ => return BasicOutcome::NotBasic,
            },
            SchemeCheck::Ignored => match value.get(6..) {
                Some(t) if !t.is_empty() => t,
                _ => return BasicOutcome::NotBasic,
            },
        };
        if token.is_empty() {
            return BasicOutcome::NotBasic;
        }
        if token == self.token() {
            return BasicOutcome::Authorized;
        }
        match decode_basic_token(token) {
            Some(_) => BasicOutcome::WrongCredentials,
            None => BasicOutcome::Malformed,
        }
    }
}

/// Decodes a Basic token into `(user, password)`.
pub fn decode_basic_token(token: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        let c = BasicCredentials::new("admin", "public");
        assert_eq!(c.token(), "YWRtaW46cHVibGlj");
        assert_eq!(
            c.check_value("Basic YWRtaW46cHVibGlj", SchemeCheck::Exact),
            BasicOutcome::Authorized
        );
        assert_eq!(
            c.check_value("basic YWRtaW46cHVibGlj", SchemeCheck::Exact),
            BasicOutcome::NotBasic
        );
        assert_eq!(
            c.check_value("basic YWRtaW46cHVibGlj", SchemeCheck::CaseInsensitive),
            BasicOutcome::Authorized
        );
        assert_eq!(
            c.check_value("xxxxx YWRtaW46cHVibGlj", SchemeCheck::Ignored),
            BasicOutcome::Authorized
        );
        assert_eq!(
            c.check_value("Basic", SchemeCheck::Exact),
            BasicOutcome::NotBasic
        );
        assert_eq!(c.check_value("", SchemeCheck::Exact), BasicOutcome::Missing);
        assert_eq!(
            c.check_value("Basic YWRt", SchemeCheck::Exact),
            BasicOutcome::Malformed
        );
        assert_eq!(
            c.check_value("Basic !!!!****", SchemeCheck::Exact),
            BasicOutcome::Malformed
        );
        assert_eq!(
            c.check_value("Basic YWRtaW46cHVibGljeA==", SchemeCheck::Exact),
            BasicOutcome::WrongCredentials
        );
    }
}
