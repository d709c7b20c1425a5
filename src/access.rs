//! `[mqtt] password_file` and `acl_file`: NanoMQ-format files read at each
//! (re)start, so that nanomq-admin's Access page (write_file, then
//! `ctrl/restart`) takes effect. A file named in the configuration must be
//! usable; unset, NanoMQ's file name in the data directory is read if it exists.
//! With a shared store the files are first written from it ([`crate::shared_files`])
//! and their users are served by [`Users`], which a newer revision replaces.

use std::path::Path;
use std::sync::Arc;

use mqgate_broker::authz::{AclAuthorizer, Authorizer, DenyAction};
use mqgate_kit::access::{AclRules, PasswordFile, Permit};
use mqgate_kit::{AuthDecision, ConnectAuthenticator, ConnectCredentials, ConnectRefusal};
use parking_lot::RwLock;

use crate::config::{AccessFile, AclDenyAction, AclPermit, Config, ConfigError};

/// The file's text; `None` when it is a default file that does not exist.
fn read(file: &AccessFile, key: &str) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(&file.path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !file.configured => Ok(None),
        Err(e) => Err(unusable(&file.path, key, e)),
    }
}

fn unusable(path: &Path, key: &str, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: format!("{}: {e}", path.display()),
    }
}

/// The users of `[mqtt] users` and of the password file, in that order.
pub fn users(config: &Config) -> Result<Vec<(String, String)>, ConfigError> {
    let mut users: Vec<(String, String)> = config
        .mqtt
        .users
        .iter()
        .map(|u| (u.username.clone(), u.password.clone()))
        .collect();
    let file = config.mqtt.password_file_in(&config.data_dir);
    let key = "mqtt.password_file";
    if let Some(text) = read(&file, key)? {
        let parsed = PasswordFile::parse(&text).map_err(|e| unusable(&file.path, key, e))?;
        users.extend(parsed.users().map(|(u, p)| (u.to_string(), p.to_string())));
    }
    Ok(users)
}

/// The authorizer of the ACL file, if there is one.
pub fn authorizer(config: &Config) -> Result<Option<Arc<dyn Authorizer>>, ConfigError> {
    let file = config.mqtt.acl_file_in(&config.data_dir);
    let key = "mqtt.acl_file";
    let Some(text) = read(&file, key)? else {
        return Ok(None);
    };
    let rules = AclRules::parse(&text).map_err(|e| unusable(&file.path, key, e))?;
    tracing::info!("ACL: {} rules from {}", rules.len(), file.path.display());
    Ok(Some(Arc::new(AclAuthorizer {
        rules,
        no_match: match config.mqtt.no_match {
            AclPermit::Allow => Permit::Allow,
            AclPermit::Deny => Permit::Deny,
        },
        deny_action: match config.mqtt.deny_action {
            AclDenyAction::Ignore => DenyAction::Ignore,
            AclDenyAction::Disconnect => DenyAction::Disconnect,
        },
    })))
}

/// The users of [`users`] as a CONNECT authenticator whose list is replaced while
/// the broker runs: with a shared store, a password file written through another
/// process takes effect here without a restart. Registered after every dialect's
/// authenticator, it decides as the broker's own user list does (first entry of
/// the username; a username it does not list is left to `allow_anonymous`).
#[derive(Default)]
pub struct Users {
    list: RwLock<Arc<Vec<(String, String)>>>,
}

impl Users {
    pub fn new(list: Vec<(String, String)>) -> Users {
        Users {
            list: RwLock::new(Arc::new(list)),
        }
    }

    pub fn replace(&self, list: Vec<(String, String)>) {
        *self.list.write() = Arc::new(list);
    }
}

#[async_trait::async_trait]
impl ConnectAuthenticator for Users {
    async fn authenticate(&self, credentials: &ConnectCredentials<'_>) -> AuthDecision {
        let Some(username) = credentials.username else {
            return AuthDecision::NotMine;
        };
        let list = Arc::clone(&self.list.read());
        match list.iter().find(|(u, _)| u == username) {
            Some((_, password)) if credentials.password == Some(password.as_bytes()) => {
                AuthDecision::Allow
            }
            Some(_) => AuthDecision::Deny(ConnectRefusal::BadUsernameOrPassword),
            None => AuthDecision::NotMine,
        }
    }
}
