//! `[mqtt] password_file` and `acl_file`: NanoMQ-format files read at each
//! (re)start, so that nanomq-admin's Access page (write_file, then
//! `ctrl/restart`) takes effect.

use std::path::Path;
use std::sync::Arc;

use mqgate_broker::authz::{AclAuthorizer, Authorizer, DenyAction};
use mqgate_kit::access::{AclRules, PasswordFile, Permit};

use crate::config::{AclDenyAction, AclPermit, Config, ConfigError};

fn read(path: &Path, key: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
        key: key.to_string(),
        message: format!("{}: {e}", path.display()),
    })
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
    if let Some(path) = &config.mqtt.password_file {
        let key = "mqtt.password_file";
        let file = PasswordFile::parse(&read(path, key)?).map_err(|e| unusable(path, key, e))?;
        users.extend(file.users().map(|(u, p)| (u.to_string(), p.to_string())));
    }
    Ok(users)
}

/// The authorizer of `[mqtt] acl_file`, if one is configured.
pub fn authorizer(config: &Config) -> Result<Option<Arc<dyn Authorizer>>, ConfigError> {
    let Some(path) = &config.mqtt.acl_file else {
        return Ok(None);
    };
    let key = "mqtt.acl_file";
    let rules = AclRules::parse(&read(path, key)?).map_err(|e| unusable(path, key, e))?;
    tracing::info!("ACL: {} rules from {}", rules.len(), path.display());
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
