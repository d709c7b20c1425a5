//! `[mqtt] password_file` and `acl_file`: NanoMQ-format files read at each
//! (re)start, so that nanomq-admin's Access page (write_file, then
//! `ctrl/restart`) takes effect. A file named in the configuration must be
//! usable; unset, NanoMQ's file name in the data directory is read if it exists.
//! With a shared store the files are first written from it ([`crate::shared_files`]),
//! which also hands the broker the users of a newer password file.

use std::path::Path;
use std::sync::Arc;

use mqgate_broker::authz::{AclAuthorizer, Authorizer, DenyAction};
use mqgate_kit::access::{AclRules, PasswordFile, Permit};

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
