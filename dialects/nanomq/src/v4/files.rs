//! `GET /get_file` and `POST /write_file`, as NanoMQ 0.24.1–0.25.2 served them (0.25.3
//! removed both). nanomq-admin's Configuration page reads the broker's configuration
//! file with `get_file?default=true`; its Access page reads the password and ACL files
//! (`?path=%2Fetc%2Fnanomq_pwd.conf`, `?path=%2Fetc%2Fnanomq_acl.conf`), writes both back
//! with `write_file` and restarts the broker with `POST /ctrl/restart`.
//!
//! Only the files of [`AllowList`] are reachable, looked up per request; any other path
//! is 404 `{"code":102}`, NanoMQ 0.25.3's answer for both routes. With a shared store
//! both routes use the store's copy ([`read`], [`save`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use bytes::Bytes;
use mqgate_kit::http::params::Params;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::config_files::{self, AllowList, ReadOutcome, Role, CONFIG_FILE_NAME};
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::state::App;
use crate::v4::request::json_object;
use mqgate_kit::access::{AclRules, PasswordFile};
use mqgate_kit::hocon;
use mqgate_kit::store::files;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(get_file))
        .routes(routes!(write_file))
}

/// `{"code":0,"data":{"path":...,"content":...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileReply {
    #[schema(example = 0)]
    pub code: u16,
    pub data: FileData,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FileData {
    /// The path as requested (decoded); for `default=true`, the configuration file's.
    #[schema(example = "/etc/nanomq_pwd.conf")]
    pub path: String,
    /// The file's text (up to a NUL byte, if any).
    #[schema(example = "\"admin\": \"public\"\n")]
    pub content: String,
}

/// `write_file`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"data": {"path": "/etc/nanomq.conf",
    "content": "auth {\n    allow_anonymous = true\n}\n"}}))]
pub struct WriteFileBody {
    pub data: FileData,
}

/// The allow-list as configured at this moment.
fn allow_list(app: &App) -> AllowList {
    let mqtt = app.management.config().mqtt;
    AllowList {
        config: app.data_dir.join(CONFIG_FILE_NAME),
        password: mqtt.password_file.map(PathBuf::from),
        acl: mqtt.acl_file.map(PathBuf::from),
    }
}

/// 404 `{"code":102}`: outside the allow-list.
fn refused() -> Error {
    Error::no_route()
}

/// What `get_file`'s query asks for: NanoMQ scans the parameters in order and takes
/// the first `default=true` or key starting with `path` (its value percent-decoded,
/// `+` a space); other `default` values are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wanted {
    ConfigFile,
    Path(String),
}

fn wanted(query: Option<&str>) -> Option<Wanted> {
    Params::from_query(query)
        .pairs()
        .iter()
        .find_map(|(key, value)| match key.as_str() {
            "default" => (value == "true").then_some(Wanted::ConfigFile),
            key if key.starts_with("path") => Some(Wanted::Path(value.clone())),
            _ => None,
        })
}

/// Read a configuration file
///
/// The broker's configuration file (`default=true`), its password file or its ACL file;
/// any other path is refused. Before `config_update` has written a configuration file,
/// it reads as mqgate's live settings in NanoMQ's format; the data directory's password
/// or ACL file not written yet reads as empty (no users, `rules = []`). A configured
/// password or ACL file that does not exist is 410 `{"code":108}`, as in NanoMQ.
#[utoipa::path(
    get,
    path = "/api/v4/get_file",
    tag = "v4 configuration",
    params(
        ("default" = Option<bool>, Query, description = "`true`: the broker's configuration file", example = true),
        ("path" = Option<String>, Query, description = "A file of the allow-list: the configuration file, the password file (`/etc/nanomq_pwd.conf` or its configured path), the ACL file (`/etc/nanomq_acl.conf` or its configured path)", example = "/etc/nanomq.conf"),
    ),
    responses(
        (status = 200, description = "The file", body = FileReply, content_type = "application/json"),
        (status = 400, description = "Neither `default=true` nor `path`", body = CodeReply, example = json!({"code": 108})),
        (status = 404, description = "Not a file of the allow-list", body = CodeReply, example = json!({"code": 102})),
        (status = 410, description = "A configured file does not exist", body = CodeReply, example = json!({"code": 108})),
        (status = 500, description = "The file could not be read, or is over 4 MiB", body = CodeReply, example = json!({"code": 102}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_file(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawQuery(query): RawQuery,
) -> Result<Reply, Error> {
    let wanted = wanted(query.as_deref()).ok_or_else(Error::bad_param)?;
    let list = allow_list(&app);
    let (role, path, shown) = match wanted {
        Wanted::ConfigFile => (
            Role::Config,
            list.config.as_path(),
            list.config.display().to_string(),
        ),
        Wanted::Path(requested) => {
            let (role, path) = list.resolve(&requested).ok_or_else(refused)?;
            (role, path, requested)
        }
    };
    let outcome = read(&app, role, path).await?;
    let content = match outcome {
        ReadOutcome::Text(text) => text,
        ReadOutcome::Missing if role == Role::Config => {
            config_files::live_config_text(&app.management.config().hot)
        }
        // the data directory's file not written yet reads as what is in force, no
        // users or no rules (NanoMQ ships both files; a 410 would leave
        // nanomq-admin's Access page in an error on a default gateway)
        ReadOutcome::Missing if path == config_files::default_path(&app.data_dir, role) => {
            config_files::empty_text(role).to_string()
        }
        ReadOutcome::Missing => return Err(Error::new(StatusCode::GONE, 108)),
        ReadOutcome::TooLarge | ReadOutcome::Failed(_) => {
            tracing::warn!(path = %path.display(), ?outcome, "nanomq: get_file cannot read");
            return Err(Error::new(StatusCode::INTERNAL_SERVER_ERROR, 102));
        }
    };
    Ok(Reply::json(&FileReply {
        code: 0,
        data: FileData {
            path: shown,
            content,
        },
    }))
}

/// Write a configuration file
///
/// Replaces the configuration, password or ACL file with HOCON text, atomically,
/// keeping its permissions; any other path is refused. On one node nothing is
/// reloaded (nanomq-admin restarts the broker next); with a shared store every node
/// applies a new password or ACL file within `store.files_poll_ms`.
#[utoipa::path(
    post,
    path = "/api/v4/write_file",
    tag = "v4 configuration",
    request_body(content = WriteFileBody, content_type = "application/json"),
    responses(
        (status = 200, description = "`{\"code\":0}` written; `{\"code\":118}` the file could not be written", body = CodeReply, example = json!({"code": 0})),
        (status = 400, description = "`{\"code\":109}` not a JSON object; `{\"code\":108}` no `data.path` or `data.content` string; `{\"code\":117}` the content is not a HOCON object", body = CodeReply, example = json!({"code": 117})),
        (status = 404, description = "Not a file of the allow-list", body = CodeReply, example = json!({"code": 102}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn write_file(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let body = json_object(&body)?;
    let data = body.get("data");
    let text = |key: &str| data.and_then(|d| d.get(key)).and_then(Value::as_str);
    let requested = text("path").ok_or_else(Error::bad_param)?;
    let list = allow_list(&app);
    let (role, path) = list.resolve(requested).ok_or_else(refused)?;
    let content = text("content").ok_or_else(Error::bad_param)?;
    // the broker loads the password and ACL files at the next restart: a file it
    // could not load is refused here rather than stopping that restart
    let checked = match role {
        Role::Config => hocon::parse(content, hocon::Limits::DEFAULT)
            .map(drop)
            .map_err(|e| e.to_string()),
        Role::Password => PasswordFile::parse(content)
            .map(drop)
            .map_err(|e| e.to_string()),
        Role::Acl => AclRules::parse(content)
            .map(drop)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = checked {
        tracing::debug!(error = %e, "nanomq: write_file content refused");
        return Err(Error::new(StatusCode::BAD_REQUEST, 117));
    }
    if save(&app, role, path, content.to_string()).await {
        Ok(Reply::code(0))
    } else {
        Ok(Reply::code(118))
    }
}

/// The file of `role`: from the shared store when there is one and it holds the
/// file, else from `path` on this node's disk.
async fn read(app: &App, role: Role, path: &Path) -> Result<ReadOutcome, Error> {
    let failed = || Error::new(StatusCode::INTERNAL_SERVER_ERROR, 102);
    if let Some(store) = &app.shared {
        let name = role.file_name();
        match store.read_async(move |tx| files::get(tx, name)).await {
            Ok(Some(file)) => return Ok(ReadOutcome::Text(config_files::text_of(&file.content))),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "nanomq: get_file cannot read the shared {name}");
                return Err(failed());
            }
        }
    }
    let to_read = path.to_path_buf();
    tokio::task::spawn_blocking(move || config_files::read(&to_read))
        .await
        .map_err(|_| failed())
}

/// Replaces the file of `role`: in the shared store when there is one (every node
/// writes its own copy from there), else atomically at `path`. `false`: not written.
pub async fn save(app: &App, role: Role, path: &Path, content: String) -> bool {
    let written = match &app.shared {
        Some(store) => {
            let name = role.file_name();
            store
                .write_async(move |tx| files::put(tx, name, content.as_bytes()))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
        None => {
            let target = path.to_path_buf();
            tokio::task::spawn_blocking(move || {
                config_files::write_atomically(&target, content.as_bytes())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|written| written.map_err(|e| e.to_string()))
        }
    };
    if let Err(e) = &written {
        tracing::warn!(path = %path.display(), error = %e, "nanomq: cannot write the file");
    }
    written.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_in_order() {
        let path = |p: &str| Some(Wanted::Path(p.to_string()));
        assert_eq!(wanted(Some("default=true")), Some(Wanted::ConfigFile));
        assert_eq!(
            wanted(Some("path=%2Fetc%2Fnanomq_acl.conf")),
            path("/etc/nanomq_acl.conf")
        );
        assert_eq!(wanted(Some("default=false&path=a+b")), path("a b"));
        assert_eq!(wanted(Some("pathname=x&default=true")), path("x"));
        assert_eq!(
            wanted(Some("default=true&path=x")),
            Some(Wanted::ConfigFile)
        );
        assert_eq!(wanted(Some("default=yes&file=x")), None);
        assert_eq!(wanted(None), None);
    }
}
