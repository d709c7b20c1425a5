//! The tokens this application issues and the users they name, kept in the
//! embedded store (`easemob_tokens`, `easemob_users`) so they survive restarts.

use std::sync::Arc;

use mqgate_kit::params;
use mqgate_kit::store::{Migrations, Row, StoreError};
use mqgate_kit::Store;
use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;

const MIGRATIONS: Migrations = Migrations {
    sqlite: &["
CREATE TABLE easemob_tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    username TEXT,
    cid TEXT,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX easemob_tokens_expiry ON easemob_tokens (expires_ms);
CREATE TABLE easemob_users (
    username TEXT PRIMARY KEY,
    uuid TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL
);
"],
    postgres: &["
CREATE TABLE easemob_tokens (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    username TEXT,
    cid TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX easemob_tokens_expiry ON easemob_tokens (expires_ms);
CREATE TABLE easemob_users (
    username TEXT PRIMARY KEY,
    uuid TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    modified_ms BIGINT NOT NULL
);
"],
};

/// Tokens and users in the embedded store.
pub struct TokenStore {
    store: Arc<Store>,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Authorizes REST calls (`Authorization` header).
    App,
    /// 27-character MQTT password for one username.
    Mqtt,
    /// 130-character MQTT password of a configured (console) user.
    Im,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::App => "app",
            TokenKind::Mqtt => "mqtt",
            TokenKind::Im => "im",
        }
    }

    fn parse(text: &str) -> Option<TokenKind> {
        match text {
            "app" => Some(TokenKind::App),
            "mqtt" => Some(TokenKind::Mqtt),
            "im" => Some(TokenKind::Im),
            _ => None,
        }
    }
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub kind: TokenKind,
    pub username: Option<String>,
    /// The only client id that may log in with it, when bound.
    pub cid: Option<String>,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl Token {
    pub fn is_live(&self, now_ms: i64) -> bool {
        now_ms < self.expires_ms
    }
}

/// `YWMt` followed by 126 base64url characters, 130 in all: the shape of Easemob's
/// app and IM tokens.
pub fn new_long_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    let pick = Uniform::from(0..ALPHABET.len());
    let mut token = String::with_capacity(130);
    token.push_str("YWMt");
    token.extend((0..126).map(|_| ALPHABET[pick.sample(&mut rng)] as char));
    token
}

/// 27 letters and digits: the shape of an MQTT user token.
pub fn new_mqtt_token() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(27)
        .map(char::from)
        .collect()
}

/// A random version-4 UUID, for users first seen here.
pub fn new_uuid() -> String {
    let bytes: [u8; 16] = rand::thread_rng().gen();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let version = format!("4{}", &hex[13..16]);
    let variant = format!("{:x}{}", 8 | (bytes[8] >> 4 & 0x3), &hex[17..20]);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        version,
        variant,
        &hex[20..32]
    )
}

/// A user as `user/token` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub username: String,
    pub uuid: String,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl TokenStore {
    /// Migrates the dialect's tables.
    pub fn open(store: Arc<Store>) -> Result<TokenStore, StoreError> {
        store.migrate("easemob", &MIGRATIONS)?;
        Ok(TokenStore { store })
    }

    /// Stores a new token (and drops the expired ones while at it).
    pub async fn save(&self, token: Token) -> Result<(), StoreError> {
        self.store
            .write_async(move |tx| {
                tx.execute(
                    "DELETE FROM easemob_tokens WHERE expires_ms <= $1",
                    &params![token.created_ms],
                )?;
                tx.execute(
                    "INSERT INTO easemob_tokens (token, kind, username, cid, created_ms, expires_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &params![
                        token.token,
                        token.kind.as_str(),
                        token.username,
                        token.cid,
                        token.created_ms,
                        token.expires_ms
                    ],
                )?;
                Ok(())
            })
            .await
    }

    pub async fn find(&self, token: &str) -> Result<Option<Token>, StoreError> {
        let token = token.to_string();
        self.store
            .read_async(move |tx| {
                tx.query_opt(
                    "SELECT token, kind, username, cid, created_ms, expires_ms
                     FROM easemob_tokens WHERE token = $1",
                    &params![token],
                    token_from_row,
                )
                .map(Option::flatten)
            })
            .await
    }

    /// The user row of `username`, created on first use.
    pub async fn user(&self, username: &str, now_ms: i64) -> Result<UserRow, StoreError> {
        let username = username.to_string();
        let uuid = new_uuid();
        self.store
            .write_async(move |tx| {
                tx.execute(
                    "INSERT INTO easemob_users (username, uuid, created_ms, modified_ms)
                     VALUES ($1, $2, $3, $3) ON CONFLICT (username) DO NOTHING",
                    &params![username, uuid, now_ms],
                )?;
                tx.query_one(
                    "SELECT username, uuid, created_ms, modified_ms FROM easemob_users
                     WHERE username = $1",
                    &params![username],
                    |row| {
                        Ok(UserRow {
                            username: row.get(0)?,
                            uuid: row.get(1)?,
                            created_ms: row.get(2)?,
                            modified_ms: row.get(3)?,
                        })
                    },
                )
            })
            .await
    }
}

/// A token row; `None` for a kind this version does not know.
fn token_from_row(row: &Row<'_>) -> Result<Option<Token>, StoreError> {
    let kind: String = row.get(1)?;
    let Some(kind) = TokenKind::parse(&kind) else {
        return Ok(None);
    };
    Ok(Some(Token {
        token: row.get(0)?,
        kind,
        username: row.get(2)?,
        cid: row.get(3)?,
        created_ms: row.get(4)?,
        expires_ms: row.get(5)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shapes() {
        let long = new_long_token();
        assert_eq!(long.len(), 130);
        assert!(long.starts_with("YWMt"));
        assert!(long
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let short = new_mqtt_token();
        assert_eq!(short.len(), 27);
        assert!(short.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(new_mqtt_token(), short);
        let uuid = new_uuid();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }
}
