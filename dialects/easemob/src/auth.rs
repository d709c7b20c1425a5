//! Who may call: the app token on REST calls ([`AppToken`], an extractor every
//! guarded handler takes), and user tokens on MQTT CONNECT ([`TokenAuthenticator`]).

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use mqgate_kit::clock::now_ms;
use mqgate_kit::{AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal};

use crate::client_id::{check_client_id, is_app_id, tenant_mountpoint, ClientIdCheck};
use crate::error::{Error, ErrorBody};
use crate::state::AppState;
use crate::token_store::{Token, TokenKind, TokenStore};
use crate::DuplicateClientId;

/// The AppID named by a `/app/{AppID}/…` path, if the request came that way.
fn path_app_id(parts: &Parts) -> Option<String> {
    let path = parts
        .extensions
        .get::<OriginalUri>()
        .map(|u| u.0.path().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    let rest = path.strip_prefix("/app/")?;
    Some(rest.split('/').next().unwrap_or("").to_string())
}

/// The request came either at the root or under this application's `/app/{AppID}`.
pub struct AppPath {
    foreign: bool,
}

impl AppPath {
    /// `400 the appid cannnot use the service` (sic) for another application's path.
    pub fn ensure_ours(&self, body: ErrorBody) -> Result<(), Error> {
        if self.foreign {
            return Err(Error::bad_request("the appid cannnot use the service").with_body(body));
        }
        Ok(())
    }
}

#[async_trait]
impl FromRequestParts<Arc<AppState>> for AppPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Error> {
        let foreign = path_app_id(parts).is_some_and(|id| id != state.config.app_id);
        Ok(AppPath { foreign })
    }
}

/// The `Authorization` header carries a live app token. The header is the raw token
/// as Easemob's SDK and demos send it; a leading space or a `Bearer ` prefix is
/// tolerated.
pub struct AppToken {
    pub path: AppPath,
}

pub fn token_from_header(value: &str) -> &str {
    let value = value.trim();
    match value.get(..7) {
        Some(prefix) if prefix.eq_ignore_ascii_case("bearer ") => value[7..].trim_start(),
        _ => value,
    }
}

#[async_trait]
impl FromRequestParts<Arc<AppState>> for AppToken {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Error> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(token_from_header)
            .unwrap_or("");
        if header.is_empty() {
            return Err(Error::access_deny());
        }
        let token = state.tokens.find(header).await.map_err(|e| {
            tracing::warn!("easemob: token lookup failed: {e}");
            Error::fail()
        })?;
        match token {
            Some(t) if t.kind == TokenKind::App && t.is_live(now_ms()) => {}
            _ => return Err(Error::access_deny()),
        }
        let path = AppPath::from_request_parts(parts, state).await?;
        Ok(AppToken { path })
    }
}

/// Decides a CONNECT of an Easemob client from its credentials and the token its
/// password names (already looked up).
pub fn decide_login(
    app_id: &str,
    credentials: &ConnectCredentials<'_>,
    token: Option<&Token>,
    now_ms: i64,
) -> AuthDecision {
    let client_id = credentials.client_id;
    let Some((_, suffix)) = client_id.rsplit_once('@') else {
        return AuthDecision::NotMine;
    };
    // Ids like `user@example.com` are not Easemob's: leave them to the broker.
    if !is_app_id(suffix) {
        return AuthDecision::NotMine;
    }
    match check_client_id(client_id, app_id) {
        ClientIdCheck::Ours => {}
        ClientIdCheck::OtherApp => return AuthDecision::Deny(ConnectRefusal::NotAuthorized),
        ClientIdCheck::Invalid => {
            return AuthDecision::Deny(ConnectRefusal::ClientIdentifierNotValid)
        }
    }
    let (Some(username), Some(_)) = (credentials.username, credentials.password) else {
        return AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword);
    };
    let Some(token) = token else {
        return AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword);
    };
    let user_token = matches!(token.kind, TokenKind::Mqtt | TokenKind::Im);
    if !user_token || token.username.as_deref() != Some(username) || !token.is_live(now_ms) {
        return AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword);
    }
    if token.cid.as_deref().is_some_and(|cid| cid != client_id) {
        return AuthDecision::Deny(ConnectRefusal::NotAuthorized);
    }
    AuthDecision::Allow
}

/// The CONNECT authenticator of `deviceID@AppID` clients. It holds the token store
/// and the rules it needs, not the handlers' state: the broker keeps its
/// authenticators, and the state's `Management` handle would keep the broker.
pub struct TokenAuthenticator {
    pub tokens: Arc<TokenStore>,
    pub app_id: String,
    pub duplicate_client_id: DuplicateClientId,
}

#[async_trait]
impl ConnectAuthenticator for TokenAuthenticator {
    async fn authenticate(&self, credentials: &ConnectCredentials<'_>) -> AuthDecision {
        // Decide NotMine before touching the store: most clients are not Easemob's.
        let easemob_shaped = credentials
            .client_id
            .rsplit_once('@')
            .is_some_and(|(_, suffix)| is_app_id(suffix));
        if !easemob_shaped {
            return AuthDecision::NotMine;
        }
        let password = credentials
            .password
            .and_then(|p| std::str::from_utf8(p).ok())
            .unwrap_or("");
        let token = if password.is_empty() {
            None
        } else {
            match self.tokens.find(password).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("easemob: token lookup failed: {e}");
                    return AuthDecision::Deny(ConnectRefusal::ServerUnavailable);
                }
            }
        };
        match decide_login(&self.app_id, credentials, token.as_ref(), now_ms()) {
            AuthDecision::Allow
                if self.duplicate_client_id == DuplicateClientId::Reject
                    && credentials.already_connected =>
            {
                AuthDecision::Deny(ConnectRefusal::ClientIdentifierNotValid)
            }
            AuthDecision::Allow => AuthDecision::AllowMounted(tenant_mountpoint(&self.app_id)),
            other => other,
        }
    }

    fn asks_whether_connected(&self, client_id: &str) -> bool {
        self.duplicate_client_id == DuplicateClientId::Reject
            && check_client_id(client_id, &self.app_id) == ClientIdCheck::Ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqgate_kit::Transport;

    fn creds<'a>(
        client_id: &'a str,
        username: Option<&'a str>,
        password: Option<&'a [u8]>,
    ) -> ConnectCredentials<'a> {
        ConnectCredentials {
            client_id,
            username,
            password,
            peer: "127.0.0.1:1".parse().unwrap(),
            transport: Transport::Tcp,
            proto_ver: 4,
            already_connected: false,
        }
    }

    fn token(kind: TokenKind, cid: Option<&str>, expires_ms: i64) -> Token {
        Token {
            token: "T".repeat(27),
            kind,
            username: Some("u1".into()),
            cid: cid.map(str::to_string),
            created_ms: 0,
            expires_ms,
        }
    }

    #[test]
    fn login_decisions() {
        let pw = Some(&b"TTTTTTTTTTTTTTTTTTTTTTTTTTT"[..]);
        let live = token(TokenKind::Mqtt, None, 1_000);
        let ok =
            |c: &ConnectCredentials<'_>, t: Option<&Token>, now| decide_login("ab12cd", c, t, now);
        assert_eq!(
            ok(&creds("plain", Some("u1"), pw), Some(&live), 0),
            AuthDecision::NotMine
        );
        assert_eq!(
            ok(&creds("me@example.com", Some("u1"), pw), Some(&live), 0),
            AuthDecision::NotMine
        );
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u1"), pw), Some(&live), 0),
            AuthDecision::Allow
        );
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u1"), pw), Some(&live), 1_000),
            AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
        );
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u2"), pw), Some(&live), 0),
            AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
        );
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u1"), None), Some(&live), 0),
            AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
        );
        assert_eq!(
            ok(&creds("d@zz99zz", Some("u1"), pw), Some(&live), 0),
            AuthDecision::Deny(ConnectRefusal::NotAuthorized)
        );
        let long = format!("{}@ab12cd", "d".repeat(58));
        assert_eq!(
            ok(&creds(&long, Some("u1"), pw), Some(&live), 0),
            AuthDecision::Deny(ConnectRefusal::ClientIdentifierNotValid)
        );
        let bound = token(TokenKind::Mqtt, Some("d@ab12cd"), 1_000);
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u1"), pw), Some(&bound), 0),
            AuthDecision::Allow
        );
        assert_eq!(
            ok(&creds("e@ab12cd", Some("u1"), pw), Some(&bound), 0),
            AuthDecision::Deny(ConnectRefusal::NotAuthorized)
        );
        let app_token = token(TokenKind::App, None, 1_000);
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u1"), pw), Some(&app_token), 0),
            AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword)
        );
        let im = token(TokenKind::Im, None, 1_000);
        assert_eq!(
            ok(&creds("d@ab12cd", Some("u1"), pw), Some(&im), 0),
            AuthDecision::Allow
        );
    }

    #[test]
    fn authorization_header_forms() {
        assert_eq!(token_from_header("YWMtabc"), "YWMtabc");
        assert_eq!(token_from_header(" YWMtabc"), "YWMtabc");
        assert_eq!(token_from_header("Bearer YWMtabc"), "YWMtabc");
        assert_eq!(token_from_header("bearer  YWMtabc"), "YWMtabc");
        assert_eq!(token_from_header(""), "");
    }
}
