//! Tokens: the app token that authorizes REST calls, and user tokens that are MQTT
//! passwords (27-character MQTT tokens for any username, 130-character IM tokens
//! for configured users).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use mqgate_kit::clock::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::{AppPath, AppToken};
use crate::error::{Error, ErrorBody, ErrorReply, Reply};
use crate::state::AppState;
use crate::token_store::{new_long_token, new_mqtt_token, Token, TokenKind, UserRow};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/openapi/rm/app/token", post(app_token))
        .route("/openapi/rm/user/token", post(user_token))
}

/// Shortest MQTT token lifetime is anything over this many seconds.
const MIN_USER_TOKEN_SECS: i64 = 60;

/// The request body as documented; fields are read one by one so each missing
/// one gets its own message.
fn string_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn body_json(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// `now` plus `secs`, epoch ms.
fn expiry(now: i64, secs: i64) -> i64 {
    now.saturating_add(secs.saturating_mul(1000))
}

fn store_error(e: mqgate_kit::store::StoreError) -> Error {
    tracing::warn!("easemob: cannot store a token: {e}");
    Error::fail()
}

/// The request of `app/token`; the example is mqgate's default application.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppTokenRequest {
    /// The application's client id (`[easemob] app_client_id`; Easemob's are
    /// `YXA6…`, 26 characters).
    #[schema(min_length = 1, example = "YXA6mQgAtE7eAsEmObApPcLiEn")]
    pub app_client_id: String,
    /// The application's secret (`[easemob] app_client_secret`).
    #[schema(min_length = 1, example = "YXA6mQgAtEsEcReT-cHaNgE-Me-NoW1")]
    pub app_client_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppTokenBody {
    /// Put this in the `Authorization` header of every other call.
    #[schema(
        example = "YWMtalB8VgfhEeyOSLcWiNHg2gAAAAAAAAAAAAAAAAAAAxGnQ2AnjaFHoJNNtSPGZctYAgMAAAF7jBD3yQBPGgDfuTFLefbMq-zYo_n0bU2vGkBNrOFCZGUD-VwNsuv0hw"
    )]
    pub access_token: String,
    /// The application's UUID.
    #[schema(example = "6d716761-7465-4e61-8065-6173656d6f62")]
    pub application: String,
    /// Seconds the token stays valid.
    #[schema(example = 5183999)]
    pub expires_in: u64,
}

/// Get an app token
///
/// The token authorizes every other call, sent raw as the `Authorization` header.
/// The example is the default application's id and secret.
#[utoipa::path(
    post,
    path = "/openapi/rm/app/token",
    tag = "token",
    request_body = AppTokenRequest,
    responses(
        (status = 200, description = "The app token", body = Reply<AppTokenBody>),
        (status = 400, description = "app_client_id can not be empty, app_client_secret can not be empty, app_client_id does not match", body = ErrorReply),
    )
)]
pub async fn app_token(
    State(state): State<Arc<AppState>>,
    path: AppPath,
    body: Bytes,
) -> Result<Reply<AppTokenBody>, Error> {
    path.ensure_ours(ErrorBody::Null)?;
    let body = body_json(&body);
    let Some(client_id) = string_field(&body, "appClientId") else {
        return Err(Error::bad_request("app_client_id can not be empty"));
    };
    let Some(secret) = string_field(&body, "appClientSecret") else {
        return Err(Error::bad_request("app_client_secret can not be empty"));
    };
    let config = &state.config;
    if client_id != config.app_client_id || secret != config.app_client_secret {
        return Err(Error::bad_request("app_client_id does not match"));
    }
    let now = now_ms();
    let ttl = config.app_token_ttl_secs;
    let token = Token {
        token: new_long_token(),
        kind: TokenKind::App,
        username: None,
        cid: None,
        created_ms: now,
        expires_ms: expiry(now, ttl as i64),
    };
    let access_token = token.token.clone();
    state.tokens.save(token).await.map_err(store_error)?;
    Ok(Reply::ok(AppTokenBody {
        access_token,
        application: config.application.clone(),
        expires_in: ttl,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserTokenRequest {
    /// Any user name for an MQTT token; a configured user for an IM token.
    #[schema(min_length = 1, example = "test1")]
    pub username: String,
    /// Asks for an IM token of a configured user (`[easemob] users`); leave it
    /// out for an MQTT token.
    #[schema(min_length = 1)]
    pub password: Option<String>,
    /// MQTT token lifetime in seconds: over 60; default and most
    /// `[easemob] user_token_max_ttl_secs` (3 days).
    #[schema(minimum = 61, example = 86400)]
    pub expires_in: Option<i64>,
    /// Bind the MQTT token to this client id (`deviceID@AppID`).
    #[schema(example = "test1@mq7g4e")]
    pub cid: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MqttUser {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the user was first seen, epoch ms.
    pub created: i64,
    pub username: String,
    pub activated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImUser {
    pub created: i64,
    pub modified: i64,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub uuid: String,
    pub username: String,
    pub activated: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MqttTokenBody {
    /// 27 characters; the MQTT password of `username`.
    pub access_token: String,
    pub expires_in: i64,
    pub user: MqttUser,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImTokenBody {
    /// 130 characters; the MQTT password of `username`.
    pub access_token: String,
    pub expires_in: u64,
    pub user: ImUser,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserTokenBody {
    Mqtt(MqttTokenBody),
    Im(ImTokenBody),
}

/// `expires_in` as a number or a numeric string.
fn expires_in(body: &Value) -> Result<Option<i64>, Error> {
    let too_short = || Error::bad_request("expires_in should be greater than 60 seconds");
    let seconds = match body.get("expires_in") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        Some(_) => None,
    };
    match seconds {
        Some(s) if s > MIN_USER_TOKEN_SECS => Ok(Some(s)),
        _ => Err(too_short()),
    }
}

/// Get a user token
///
/// The MQTT password of `username`: a 27-character MQTT token, or with `password`
/// a 130-character IM token of a configured user.
#[utoipa::path(
    post,
    path = "/openapi/rm/user/token",
    tag = "token",
    request_body(content = UserTokenRequest, example = json!({"username": "test1", "cid": "test1@mq7g4e"})),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "An MQTT token (no password given) or an IM token", body = Reply<UserTokenBody>),
        (status = 400, description = "username can not be empty, password can not be empty, username and password don't match, expires_in should be greater than 60 seconds", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn user_token(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    body: Bytes,
) -> Result<Reply<UserTokenBody>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let body = body_json(&body);
    let Some(username) = string_field(&body, "username") else {
        return Err(Error::bad_request("username can not be empty"));
    };
    let now = now_ms();
    let (token, expires_in) = if body.get("password").is_some() {
        im_token(&state, &body, username, now)?
    } else {
        mqtt_token(&state, &body, username, now)?
    };
    let user = state
        .tokens
        .user(username, now)
        .await
        .map_err(store_error)?;
    let access_token = token.token.clone();
    let kind = token.kind;
    state.tokens.save(token).await.map_err(store_error)?;
    Ok(Reply::ok(token_body(kind, access_token, expires_in, user)))
}

/// An IM token, for a configured user whose password matches, and its lifetime.
fn im_token(
    state: &AppState,
    body: &Value,
    username: &str,
    now: i64,
) -> Result<(Token, i64), Error> {
    let Some(password) = string_field(body, "password") else {
        return Err(Error::bad_request("password can not be empty"));
    };
    let known = state
        .config
        .users
        .iter()
        .any(|u| u.username == username && u.password == password);
    if !known {
        return Err(Error::bad_request("username and password don't match"));
    }
    let ttl = state.config.app_token_ttl_secs as i64;
    let token = Token {
        token: new_long_token(),
        kind: TokenKind::Im,
        username: Some(username.to_string()),
        cid: None,
        created_ms: now,
        expires_ms: expiry(now, ttl),
    };
    Ok((token, ttl))
}

/// An MQTT token for any user name, bound to `cid` when given, and its lifetime:
/// the one asked for, within the maximum.
fn mqtt_token(
    state: &AppState,
    body: &Value,
    username: &str,
    now: i64,
) -> Result<(Token, i64), Error> {
    let max = state.config.user_token_max_ttl_secs as i64;
    let ttl = expires_in(body)?.unwrap_or(max).min(max);
    let token = Token {
        token: new_mqtt_token(),
        kind: TokenKind::Mqtt,
        username: Some(username.to_string()),
        cid: string_field(body, "cid").map(str::to_string),
        created_ms: now,
        expires_ms: expiry(now, ttl),
    };
    Ok((token, ttl))
}

fn token_body(
    kind: TokenKind,
    access_token: String,
    expires_in: i64,
    user: UserRow,
) -> UserTokenBody {
    match kind {
        TokenKind::Im => UserTokenBody::Im(ImTokenBody {
            access_token,
            expires_in: expires_in as u64,
            user: ImUser {
                created: user.created_ms,
                modified: user.modified_ms,
                kind: "user",
                uuid: user.uuid,
                username: user.username,
                activated: true,
            },
        }),
        _ => UserTokenBody::Mqtt(MqttTokenBody {
            access_token,
            expires_in,
            user: MqttUser {
                kind: "user",
                created: user.created_ms,
                username: user.username,
                activated: true,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lifetimes() {
        assert_eq!(expires_in(&json!({})).unwrap(), None);
        assert_eq!(expires_in(&json!({"expires_in": 61})).unwrap(), Some(61));
        assert_eq!(
            expires_in(&json!({"expires_in": "120"})).unwrap(),
            Some(120)
        );
        assert!(expires_in(&json!({"expires_in": 60})).is_err());
        assert!(expires_in(&json!({"expires_in": -5})).is_err());
        assert!(expires_in(&json!({"expires_in": "soon"})).is_err());
    }
}
