//! Management access: `POST /api/v1/auth` (login) and the [`Authenticated`]
//! extractor every other handler takes first, accepting Basic credentials of a
//! configured user or a Bearer token issued by the login.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mqgate_kit::http::basic_auth::{BasicCredentials, BasicOutcome, SchemeCheck};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, ErrorBody};
use crate::state::AppState;
use crate::wire::{json_object, required};
use crate::ManagementUser;

/// The only role RealMQ reports for management users.
const ROLE: &str = "administrator";

/// Checks management credentials and issues login tokens.
pub struct Access {
    users: Vec<BasicCredentials>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifetime_secs: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: String,
    iat: u64,
    exp: u64,
}

impl Access {
    pub fn new(users: &[ManagementUser], secret: &[u8], lifetime_secs: u64) -> Access {
        Access {
            users: users
                .iter()
                .map(|u| BasicCredentials::new(&u.username, &u.password))
                .collect(),
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            lifetime_secs,
        }
    }

    fn is_user(&self, username: &str, password: &str) -> bool {
        self.users
            .iter()
            .any(|u| u.username == username && u.password == password)
    }

    /// A signed token for `username`, valid for the configured lifetime.
    pub fn issue(&self, username: &str) -> Result<String, Error> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: username.to_string(),
            role: ROLE.to_string(),
            iat: now,
            exp: now + self.lifetime_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal(format!("cannot sign token: {e}")))
    }

    /// Accepts `Basic` credentials of a configured user or a valid `Bearer` token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), Error> {
        let value = match headers.get(AUTHORIZATION) {
            None => return Err(Error::missing_credentials()),
            Some(v) => v
                .to_str()
                .map_err(|_| Error::bad_credentials("malformed Authorization header"))?,
        };
        if value.trim().is_empty() {
            return Err(Error::missing_credentials());
        }
        if let Some((scheme, token)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return self.check_token(token.trim());
            }
        }
        let mut outcome = BasicOutcome::NotBasic;
        for user in &self.users {
            outcome = user.check_value(value, SchemeCheck::CaseInsensitive);
            if outcome == BasicOutcome::Authorized {
                return Ok(());
            }
        }
        Err(match outcome {
            BasicOutcome::Missing => Error::missing_credentials(),
            BasicOutcome::NotBasic => {
                Error::bad_credentials("unsupported authorization: use Basic or Bearer")
            }
            BasicOutcome::Malformed => Error::bad_credentials("malformed Basic credentials"),
            _ => Error::bad_credentials("username or password error"),
        })
    }

    fn check_token(&self, token: &str) -> Result<(), Error> {
        let mut validation = Validation::new(Algorithm::HS256);
        // An expired token is refused at the second it expires, not a minute later.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => Error::bad_credentials("token expired"),
                _ => Error::bad_credentials("invalid token"),
            },
        )?;
        // A user removed from the configuration loses the tokens it holds.
        if !self.users.iter().any(|u| u.username == data.claims.sub) {
            return Err(Error::bad_credentials("invalid token"));
        }
        Ok(())
    }
}

/// A request with valid management credentials. Handlers take it as their first
/// argument, so a request without credentials is refused, in the vendor's shape,
/// before its path or body is read.
pub struct Authenticated;

#[async_trait]
impl FromRequestParts<Arc<AppState>> for Authenticated {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Error> {
        state.access.check(&parts.headers)?;
        Ok(Authenticated)
    }
}

/// The login route, the only one that needs no credentials.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/auth", post(login))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// A management user (`[realmq] users`).
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, pattern = r"\S", example = "root")]
    pub username: Option<String>,
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, pattern = r"\S", example = "123456")]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginData {
    /// Send it as `Authorization: Bearer <token>`.
    pub token: String,
    #[schema(example = "administrator")]
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub data: LoginData,
    #[schema(example = 0)]
    pub code: u32,
}

/// Log in
///
/// Exchanges a management user's password for a token to send as
/// `Authorization: Bearer <token>`.
#[utoipa::path(
    post,
    path = "/api/v1/auth",
    operation_id = "login",
    tag = "auth",
    request_body(content = LoginRequest, example = json!({"username": "root", "password": "123456"})),
    responses(
        (status = 200, description = "Logged in", body = LoginResponse),
        (status = 400, description = "Missing username or password, or not JSON", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
    ),
    security(()),
)]
pub async fn login(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<LoginResponse>, Error> {
    let request: LoginRequest = json_object(&body)?;
    let username = required(request.username, "username")?;
    let password = required(request.password, "password")?;
    if !state.access.is_user(&username, &password) {
        return Err(Error::bad_credentials("username or password error"));
    }
    Ok(Json(LoginResponse {
        data: LoginData {
            token: state.access.issue(&username)?,
            role: ROLE.to_string(),
        },
        code: 0,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(lifetime: u64) -> Access {
        Access::new(
            &[ManagementUser {
                username: "root".into(),
                password: "123456".into(),
            }],
            b"secret",
            lifetime,
        )
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn basic_and_bearer() {
        let a = access(60);
        assert_eq!(a.check(&headers("Basic cm9vdDoxMjM0NTY=")), Ok(()));
        assert_eq!(a.check(&HeaderMap::new()).unwrap_err().code, 104);
        assert_eq!(a.check(&headers("Basic cm9vdDp4")).unwrap_err().code, 103);
        let token = a.issue("root").unwrap();
        assert_eq!(a.check(&headers(&format!("Bearer {token}"))), Ok(()));
        assert_eq!(
            a.check(&headers(&format!("Bearer {token}x")))
                .unwrap_err()
                .code,
            103
        );
        let other = Access::new(
            &[ManagementUser {
                username: "root".into(),
                password: "123456".into(),
            }],
            b"another secret",
            60,
        );
        assert_eq!(
            other
                .check(&headers(&format!("Bearer {token}")))
                .unwrap_err()
                .code,
            103
        );
    }

    #[test]
    fn expired_token() {
        let a = access(60);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: "root".into(),
            role: ROLE.into(),
            iat: now - 100,
            exp: now - 1,
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &a.encoding).unwrap();
        let e = a.check(&headers(&format!("Bearer {token}"))).unwrap_err();
        assert_eq!((e.code, e.message.as_str()), (103, "token expired"));
    }
}
