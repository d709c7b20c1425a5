//! Tokens: the app token that authorizes REST calls, and user tokens that are MQTT
//! passwords (27-character MQTT tokens for any username, 130-character IM tokens
//! for configured users).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use mqgate_kit::clock::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::app::{new_long_token, new_mqtt_token, App, Token, TokenKind};
use crate::auth::{AppPath, AppToken};
use crate::error::{ApiError, ErrorBody, ErrorReply, Reply};

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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppTokenRequest {
    /// The application's client id (`YXA6…`, 26 characters).
    #[schema(example = "YXA6p0NgJ42hR6CTTbUjxmXLWA")]
    pub app_client_id: String,
    /// The application's secret (`YXA6…`, 31 characters).
    #[schema(example = "YXA6j5Ie*Td3Nmgf8Y4IvkJ*9L_epPY")]
    pub app_client_secret: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppTokenBody {
    /// Put this in the `Authorization` header of every other call.
    pub access_token: String,
    /// The application's UUID.
    pub application: String,
    /// Seconds the token stays valid.
    pub expires_in: u64,
}

/// Get an app token.
#[utoipa::path(
    post,
    path = "/openapi/rm/app/token",
    tag = "token",
    request_body = AppTokenRequest,
    responses(
        (status = 200, description = "The app token", body = Reply<AppTokenBody>),
        (status = 400, description = "`app_client_id can not be empty`, `app_client_secret can not be empty`, `app_client_id does not match`", body = ErrorReply),
    )
)]
pub async fn app_token(
    State(app): State<Arc<App>>,
    path: AppPath,
    body: Bytes,
) -> Result<Reply<AppTokenBody>, ApiError> {
    path.ensure_ours(ErrorBody::Null)?;
    let body = body_json(&body);
    let Some(client_id) = string_field(&body, "appClientId") else {
        return Err(ApiError::bad_request("app_client_id can not be empty"));
    };
    let Some(secret) = string_field(&body, "appClientSecret") else {
        return Err(ApiError::bad_request("app_client_secret can not be empty"));
    };
    if client_id != app.config.app_client_id || secret != app.config.app_client_secret {
        return Err(ApiError::bad_request("app_client_id does not match"));
    }
    let now = now_ms();
    let ttl = app.config.app_token_ttl_secs;
    let token = Token {
        token: new_long_token(),
        kind: TokenKind::App,
        username: None,
        cid: None,
        created_ms: now,
        expires_ms: now.saturating_add((ttl as i64).saturating_mul(1000)),
    };
    let access_token = token.token.clone();
    app.save_token(token).await.map_err(|e| {
        tracing::warn!("easemob: cannot store an app token: {e}");
        ApiError::fail()
    })?;
    Ok(Reply::ok(AppTokenBody {
        access_token,
        application: app.config.application.clone(),
        expires_in: ttl,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UserTokenRequest {
    /// Any user name for an MQTT token; a configured user for an IM token.
    #[schema(example = "test1")]
    pub username: String,
    /// Ask for an IM token of a configured user.
    pub password: Option<String>,
    /// MQTT token lifetime in seconds: over 60, default and at most 3 days.
    pub expires_in: Option<i64>,
    /// Bind the MQTT token to this client id.
    #[schema(example = "test1@ff6sc0")]
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
fn expires_in(body: &Value) -> Result<Option<i64>, ApiError> {
    let too_short = || ApiError::bad_request("expires_in should be greater than 60 seconds");
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

/// Get a user token (MQTT password).
#[utoipa::path(
    post,
    path = "/openapi/rm/user/token",
    tag = "token",
    request_body = UserTokenRequest,
    security(("app_token" = [])),
    responses(
        (status = 200, description = "An MQTT token (no password given) or an IM token", body = Reply<UserTokenBody>),
        (status = 400, description = "`username can not be empty`, `password can not be empty`, `username and password don't match`, `expires_in should be greater than 60 seconds`", body = ErrorReply),
        (status = 403, description = "`access deny`", body = ErrorReply),
    )
)]
pub async fn user_token(
    State(app): State<Arc<App>>,
    auth: AppToken,
    body: Bytes,
) -> Result<Reply<UserTokenBody>, ApiError> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let body = body_json(&body);
    let Some(username) = string_field(&body, "username") else {
        return Err(ApiError::bad_request("username can not be empty"));
    };
    let now = now_ms();
    let store_error = |e| {
        tracing::warn!("easemob: cannot store a user token: {e}");
        ApiError::fail()
    };
    if body.get("password").is_some() {
        let Some(password) = string_field(&body, "password") else {
            return Err(ApiError::bad_request("password can not be empty"));
        };
        let known = app
            .config
            .users
            .iter()
            .any(|u| u.username == username && u.password == password);
        if !known {
            return Err(ApiError::bad_request("username and password don't match"));
        }
        let ttl = app.config.app_token_ttl_secs;
        let token = Token {
            token: new_long_token(),
            kind: TokenKind::Im,
            username: Some(username.to_string()),
            cid: None,
            created_ms: now,
            expires_ms: now.saturating_add((ttl as i64).saturating_mul(1000)),
        };
        let access_token = token.token.clone();
        let user = app.user(username, now).await.map_err(store_error)?;
        app.save_token(token).await.map_err(store_error)?;
        return Ok(Reply::ok(UserTokenBody::Im(ImTokenBody {
            access_token,
            expires_in: ttl,
            user: ImUser {
                created: user.created_ms,
                modified: user.modified_ms,
                kind: "user",
                uuid: user.uuid,
                username: user.username,
                activated: true,
            },
        })));
    }
    let max = app.config.user_token_max_ttl_secs as i64;
    let ttl = expires_in(&body)?.unwrap_or(max).min(max);
    let cid = string_field(&body, "cid").map(str::to_string);
    let token = Token {
        token: new_mqtt_token(),
        kind: TokenKind::Mqtt,
        username: Some(username.to_string()),
        cid,
        created_ms: now,
        expires_ms: now.saturating_add(ttl.saturating_mul(1000)),
    };
    let access_token = token.token.clone();
    let user = app.user(username, now).await.map_err(store_error)?;
    app.save_token(token).await.map_err(store_error)?;
    Ok(Reply::ok(UserTokenBody::Mqtt(MqttTokenBody {
        access_token,
        expires_in: ttl,
        user: MqttUser {
            kind: "user",
            created: user.created_ms,
            username: user.username,
            activated: true,
        },
    })))
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
