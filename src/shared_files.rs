//! `[store] backend = "postgres"`: the NanoMQ configuration file, the password file
//! and the ACL file belong to every process on the database, not to one. The store
//! holds each one's content and revision (`kit::store::files`); the NanoMQ API's
//! `write_file` and `config_update` write there, and `get_file` reads there.
//!
//! Each process keeps its local copy (the paths `[mqtt] password_file`/`acl_file`
//! name, else NanoMQ's names in the data directory) in step: at every start and
//! restart each stored file is written over the local one before the broker loads
//! it, and then every `store.files_poll_ms` one query compares the stored
//! revisions with those applied; a newer file is written locally and, for the
//! password and ACL files, the broker's users and ACL are reloaded from it at once
//! (connected clients stay; their next CONNECT, PUBLISH or SUBSCRIBE is judged by
//! the new file). A file never written through the API stays as it is on disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mqgate_broker::Broker;
use mqgate_kit::access::{ACL_FILE_NAME, PASSWORD_FILE_NAME};
use mqgate_kit::store::{files, StoreError};
use mqgate_kit::Store;
use mqgate_nanomq::config_files::{self, CONFIG_FILE_NAME};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::access;
use crate::config::Config;

/// Why the stored files could not be put in place at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("store: PostgreSQL: {0}")]
    Store(#[from] StoreError),
    #[error("shared file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A stored file's name (its NanoMQ file name) and this process's copy of it.
struct Local {
    name: &'static str,
    path: PathBuf,
}

/// This process's copies of the shared files and the revisions they are at.
pub struct SharedFiles {
    store: Arc<Store>,
    locals: Vec<Local>,
    seen: Mutex<HashMap<&'static str, i64>>,
}

impl SharedFiles {
    /// With a shared store: creates the table if needed and writes every stored
    /// file over its local copy; `None` with SQLite, where nothing changes.
    pub async fn open(
        store: &Arc<Store>,
        config: &Config,
    ) -> Result<Option<Arc<SharedFiles>>, LoadError> {
        if !store.is_shared() {
            return Ok(None);
        }
        let data_dir = &config.data_dir;
        let shared = Arc::new(SharedFiles {
            store: Arc::clone(store),
            locals: vec![
                Local {
                    name: CONFIG_FILE_NAME,
                    path: data_dir.join(CONFIG_FILE_NAME),
                },
                Local {
                    name: PASSWORD_FILE_NAME,
                    path: config.mqtt.password_file_in(data_dir).path,
                },
                Local {
                    name: ACL_FILE_NAME,
                    path: config.mqtt.acl_file_in(data_dir).path,
                },
            ],
            seen: Mutex::default(),
        });
        let loading = Arc::clone(&shared);
        let caught = tokio::task::spawn_blocking(move || {
            files::migrate(&loading.store)?;
            loading.catch_up()
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))??;
        match caught.failed {
            Some(e) => Err(e),
            None => Ok(Some(shared)),
        }
    }

    /// Writes every file stored at a revision past the one applied over its local
    /// copy. Blocks.
    fn catch_up(&self) -> Result<CaughtUp, StoreError> {
        let stored = self.store.read(files::revisions)?;
        let mut caught = CaughtUp::default();
        for local in &self.locals {
            let applied = self.seen.lock().get(local.name).copied().unwrap_or(0);
            let newer = stored
                .iter()
                .any(|(name, revision)| name == local.name && *revision > applied);
            if !newer {
                continue;
            }
            let name = local.name;
            let Some(file) = self.store.read(move |tx| files::get(tx, name))? else {
                continue;
            };
            if std::fs::read(&local.path).ok().as_ref() != Some(&file.content) {
                if let Err(source) = config_files::write_atomically(&local.path, &file.content) {
                    // not marked as applied: the next check tries again
                    caught.failed.get_or_insert(LoadError::Write {
                        path: local.path.clone(),
                        source,
                    });
                    continue;
                }
            }
            tracing::info!(
                "shared file {name} at revision {} in {}",
                file.revision,
                local.path.display()
            );
            self.seen.lock().insert(name, file.revision);
            caught.changed.push(name);
        }
        Ok(caught)
    }
}

/// What one catch-up did.
#[derive(Debug, Default)]
struct CaughtUp {
    /// The files now at a newer revision locally.
    changed: Vec<&'static str>,
    /// The first local copy that could not be written.
    failed: Option<LoadError>,
}

/// Every `every`, brings the local copies up to date and reloads the broker's users
/// and ACL when the password or ACL file changed. Runs until aborted.
pub fn watch(
    shared: Arc<SharedFiles>,
    config: Config,
    broker: Arc<Broker>,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        // an outage is told once, not at every check
        let mut failing = false;
        loop {
            ticks.tick().await;
            let checking = Arc::clone(&shared);
            let caught = tokio::task::spawn_blocking(move || checking.catch_up())
                .await
                .map_err(|e| StoreError::Join(e.to_string()))
                .and_then(|caught| caught);
            let changed = match caught {
                Ok(CaughtUp { changed, failed }) => {
                    if let Some(e) = failed {
                        tracing::warn!("shared files: {e}");
                    }
                    if std::mem::take(&mut failing) {
                        tracing::info!("shared files: the store answers again");
                    }
                    changed
                }
                Err(e) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!("shared files: cannot check the store: {e}");
                    }
                    continue;
                }
            };
            if changed.contains(&PASSWORD_FILE_NAME) {
                match access::users(&config) {
                    Ok(list) => broker.set_users(list),
                    Err(e) => tracing::warn!("shared password file not applied: {e}"),
                }
            }
            if changed.contains(&ACL_FILE_NAME) {
                match access::authorizer(&config) {
                    Ok(authorizer) => broker.set_authorizer(authorizer),
                    Err(e) => tracing::warn!("shared ACL file not applied: {e}"),
                }
            }
        }
    })
}
