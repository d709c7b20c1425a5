//! `GET/POST /configuration[/{section}]` and `POST /config_update`: NanoMQ's whole
//! configuration, shaped as 0.25 prints it, filled with mqgate's live settings.
//!
//! Writes go through [`crate::settings`]: the `basic` keys mqgate has are applied,
//! every other changed value is reported in `not_applied`. `config_update` takes
//! NanoMQ's HOCON file text: it is parsed (a syntax error is 400 `{"code":117}`; NanoMQ
//! exits the process instead), the keys mqgate has are applied, and the text is kept as
//! `nanomq.conf` in mqgate's data directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::cjson::CNumber;
use crate::config_files::{Role, CONFIG_FILE_NAME};
use crate::error::Error;
use crate::reply::{CodeReply, Reply};
use crate::settings::{self, Setter, WriteReply};
use crate::state::App;
use crate::v4::files;
use crate::v4::request::{json_object, RawSegment};
use mqgate_kit::hocon;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(get_broker_configuration, set_broker_configuration))
        .routes(routes!(
            get_configuration_section,
            set_configuration_section
        ))
        .routes(routes!(update_configuration_file))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BasicSection {
    pub url: Option<String>,
    pub num_taskq_thread: u32,
    pub max_taskq_thread: u32,
    pub parallel: u32,
    pub property_size: u32,
    pub daemon: bool,
    /// KiB.
    pub max_packet_size: u32,
    /// KiB.
    pub client_max_packet_size: u32,
    pub msq_len: u32,
    pub qos_duration: u32,
    pub keepalive_backoff: CNumber,
    pub allow_anonymous: bool,
    pub ipc_internal: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TlsSection {
    pub enable: bool,
    pub url: Option<String>,
    pub key_password: Option<String>,
    pub key: Option<String>,
    pub cert: Option<String>,
    pub cacert: Option<String>,
    pub verify_peer: bool,
    pub fail_if_no_peer_cert: bool,
}

impl TlsSection {
    fn disabled() -> TlsSection {
        TlsSection {
            enable: false,
            url: None,
            key_password: None,
            key: None,
            cert: None,
            cacert: None,
            verify_peer: false,
            fail_if_no_peer_cert: false,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthHttpRequest {
    pub url: Option<String>,
    pub method: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub params: Vec<String>,
    pub tls: TlsSection,
}

impl AuthHttpRequest {
    fn unset() -> AuthHttpRequest {
        AuthHttpRequest {
            url: None,
            method: None,
            headers: BTreeMap::new(),
            params: Vec::new(),
            tls: TlsSection::disabled(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthHttpSection {
    pub enable: bool,
    pub timeout: u32,
    pub connect_timeout: u32,
    pub pool_size: u32,
    pub cache_ttl: u32,
    pub auth_req: AuthHttpRequest,
    pub acl_req: AuthHttpRequest,
    pub super_req: AuthHttpRequest,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebsocketSection {
    pub enable: bool,
    pub tls_enable: bool,
    pub url: Option<String>,
    pub tls_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HttpServerSection {
    pub enable: bool,
    pub port: u16,
    pub addr: String,
    pub username: String,
    pub password: String,
    /// `basic` or `jwt` (`no_auth` reports `basic`, as NanoMQ does).
    pub auth_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SqliteSection {
    pub enable: bool,
    pub disk_cache_size: u32,
    pub flush_mem_threshold: u32,
    pub resend_interval: u32,
    pub mounted_file_path: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BridgeSection {
    /// Bridges; mqgate has none.
    #[schema(value_type = Vec<Object>)]
    pub nodes: Vec<Value>,
}

impl BridgeSection {
    pub fn none() -> BridgeSection {
        BridgeSection { nodes: Vec::new() }
    }
}

/// The whole configuration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Configuration {
    pub basic: BasicSection,
    pub tls: TlsSection,
    /// Username/password pairs; mqgate reports none.
    #[schema(value_type = Vec<Object>)]
    pub auth: Vec<Value>,
    pub auth_http: AuthHttpSection,
    pub websocket: WebsocketSection,
    pub http_server: HttpServerSection,
    pub sqlite: SqliteSection,
    pub bridge: BridgeSection,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigurationReply {
    pub code: u16,
    pub data: Configuration,
}

/// A configuration section.
// Documentation only: the path segment is read as NanoMQ reads it.
#[derive(Debug, Clone, Copy, ToSchema)]
#[allow(non_camel_case_types, dead_code)]
pub enum Section {
    basic,
    tls,
    auth,
    auth_http,
    websocket,
    http_server,
    sqlite,
    bridge,
}

/// The sections `/configuration/{section}` serves; others are 404 `{"code":101,"data":{}}`.
pub const SECTIONS: [&str; 8] = [
    "basic",
    "tls",
    "auth",
    "auth_http",
    "websocket",
    "http_server",
    "sqlite",
    "bridge",
];

pub fn configuration(app: &App) -> Configuration {
    let view = app.management.config();
    let hot = settings::hot_config(app.management.as_ref());
    let threads = settings::task_threads();
    Configuration {
        basic: BasicSection {
            url: settings::tcp_url(&view),
            num_taskq_thread: threads,
            max_taskq_thread: threads,
            parallel: threads,
            property_size: hot.property_size,
            daemon: false,
            max_packet_size: hot.max_packet_size,
            client_max_packet_size: hot.client_max_packet_size,
            msq_len: hot.msq_len,
            qos_duration: hot.qos_duration,
            keepalive_backoff: hot.keepalive_backoff,
            allow_anonymous: hot.allow_anonymous,
            ipc_internal: false,
        },
        tls: TlsSection::disabled(),
        auth: Vec::new(),
        auth_http: AuthHttpSection {
            enable: false,
            timeout: 5,
            connect_timeout: 5,
            pool_size: 32,
            cache_ttl: 0,
            auth_req: AuthHttpRequest::unset(),
            acl_req: AuthHttpRequest::unset(),
            super_req: AuthHttpRequest::unset(),
        },
        websocket: WebsocketSection {
            enable: view.mqtt.ws_listen.is_some(),
            tls_enable: false,
            url: settings::ws_url(&view),
            tls_url: None,
        },
        http_server: HttpServerSection {
            enable: true,
            port: app.listen.port(),
            addr: app.listen.ip().to_string(),
            username: app.config.username.clone(),
            password: app.config.password.clone(),
            auth_type: app.config.auth_type.reported_name().to_string(),
        },
        sqlite: SqliteSection {
            enable: false,
            disk_cache_size: 102400,
            flush_mem_threshold: 100,
            resend_interval: 0,
            mounted_file_path: None,
        },
        bridge: BridgeSection::none(),
    }
}

/// Get the whole configuration
///
/// NanoMQ's configuration sections filled with mqgate's live settings. Includes the
/// API's own username and password, as NanoMQ does.
#[utoipa::path(
    get,
    path = "/api/v4/configuration",
    tag = "v4 configuration",
    responses((status = 200, description = "The whole configuration", body = ConfigurationReply)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_broker_configuration(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    Reply::json(&ConfigurationReply {
        code: 0,
        data: configuration(&app),
    })
}

/// Get one configuration section
///
/// One of `basic`, `tls`, `auth`, `auth_http`, `websocket`, `http_server`, `sqlite`,
/// `bridge`.
#[utoipa::path(
    get,
    path = "/api/v4/configuration/{section}",
    tag = "v4 configuration",
    params(("section" = inline(Section), Path)),
    responses(
        (status = 200, description = "`{\"code\":0,\"data\":{\"<section>\":...}}`", body = Object, example = json!({"code": 0, "data": {"websocket": {"enable": true, "tls_enable": false, "url": "nmq-ws://0.0.0.0:8083/mqtt", "tls_url": null}}})),
        (status = 404, description = "Another section (also the listed `webhook` and `aws_bridge`)", body = Object, example = json!({"code": 101, "data": {}}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn get_configuration_section(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawSegment(section): RawSegment,
) -> Result<Reply, Error> {
    let section = section.as_str();
    if !SECTIONS.contains(&section) {
        return Err(Error::new(StatusCode::NOT_FOUND, 101)
            .labelled_json()
            .with_empty_data());
    }
    let whole = configuration(&app);
    let section_json = match section {
        "basic" => serde_json::to_string(&whole.basic),
        "tls" => serde_json::to_string(&whole.tls),
        "auth" => serde_json::to_string(&whole.auth),
        "auth_http" => serde_json::to_string(&whole.auth_http),
        "websocket" => serde_json::to_string(&whole.websocket),
        "http_server" => serde_json::to_string(&whole.http_server),
        "sqlite" => serde_json::to_string(&whole.sqlite),
        _ => serde_json::to_string(&whole.bridge),
    }
    .unwrap_or_else(|_| "null".to_string());
    // Written by hand because a `Value` object would sort the section's keys.
    let body = format!("{{\"code\":0,\"data\":{{\"{section}\":{section_json}}}}}");
    Ok(Reply::json_text(body))
}

/// Keys of `basic` mqgate applies, as paths inside the written `data`.
const BASIC_SETTERS: &[(&str, Setter)] = &[
    ("basic.msq_len", settings::set_queue_len),
    ("basic.allow_anonymous", settings::set_allow_anonymous),
    ("basic.max_packet_size", settings::set_max_packet_kib),
    (
        "basic.client_max_packet_size",
        settings::set_client_max_packet_kib,
    ),
    ("basic.keepalive_backoff", settings::set_keepalive_backoff),
];

/// Change the configuration
///
/// Applies the `basic` keys mqgate has now; other changed values are listed in
/// `not_applied`.
#[utoipa::path(
    post,
    path = "/api/v4/configuration",
    tag = "v4 configuration",
    request_body(content = Object, description = "`{\"data\":{\"basic\":{...},...}}` in GET's shape (also at `/configuration/{section}`)", example = json!({"data": {"basic": {"allow_anonymous": true}}})),
    responses(
        (status = 200, description = "`{\"code\":0}`; `not_applied` lists written values mqgate cannot apply", body = WriteReply),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn set_broker_configuration(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let body = json_object(&body)?;
    let Some(written) = body.get("data").filter(|d| d.is_object()) else {
        return Ok(Reply::code(0));
    };
    let current = serde_json::to_value(configuration(&app)).unwrap_or(Value::Null);
    Ok(settings::write_reply(
        app.management.as_ref(),
        "v4 /configuration",
        settings::plan_write(&current, written, BASIC_SETTERS),
    ))
}

/// Change the configuration (section path)
///
/// NanoMQ takes the same write at `/configuration/{section}`, whatever the section.
#[utoipa::path(
    post,
    path = "/api/v4/configuration/{section}",
    tag = "v4 configuration",
    params(("section" = String, Path, description = "Any name; the body decides what is written", example = "basic")),
    request_body(content = Object, description = "`{\"data\":{\"basic\":{...},...}}` as for `POST /configuration`", example = json!({"data": {"basic": {"allow_anonymous": true}}})),
    responses(
        (status = 200, description = "`{\"code\":0}`; `not_applied` lists written values mqgate cannot apply", body = WriteReply),
        (status = 400, description = "Not a JSON object", body = CodeReply, example = json!({"code": 109}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn set_configuration_section(
    caller: Authorized,
    state: State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    set_broker_configuration(caller, state, body).await
}

/// Keys of NanoMQ's HOCON file mqgate applies.
const HOCON_SETTERS: &[(&str, Setter)] = &[
    ("mqtt.max_packet_size", settings::set_max_packet_size_text),
    (
        "mqtt.client_max_packet_size",
        settings::set_client_max_packet_size_text,
    ),
    ("mqtt.max_mqueue_len", settings::set_queue_len),
    ("mqtt.keepalive_multiplier", settings::set_keepalive_backoff),
    ("auth.allow_anonymous", settings::set_allow_anonymous),
];

/// Replace the configuration file
///
/// Takes NanoMQ's HOCON configuration text: the keys mqgate has are applied, every
/// other key is listed in `not_applied`, and the text is kept as
/// `<data_dir>/nanomq.conf`. Invalid HOCON is 400 `{"code":117}` (NanoMQ exits
/// instead).
#[utoipa::path(
    post,
    path = "/api/v4/config_update",
    tag = "v4 configuration",
    request_body(content = String, content_type = "text/plain", description = "A NanoMQ HOCON configuration file (at most 256 KiB, 32 levels deep)", example = json!("mqtt {\n    max_mqueue_len = 200\n}\n\nauth {\n    allow_anonymous = true\n}\n")),
    responses(
        (status = 200, description = "`{\"code\":0}` (with `not_applied`: every key mqgate does not apply); `{\"code\":118}` the file could not be written", body = WriteReply),
        (status = 400, description = "Not valid HOCON, or beyond the parser's limits; the broker keeps running", body = CodeReply, example = json!({"code": 117}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn update_configuration_file(
    _: Authorized,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Result<Reply, Error> {
    let hocon_error = || Error::new(StatusCode::BAD_REQUEST, 117);
    let text = std::str::from_utf8(&body).map_err(|_| hocon_error())?;
    let parsed = match hocon::parse(text, hocon::Limits::DEFAULT) {
        Ok(object) => Value::Object(object),
        Err(e) => {
            tracing::debug!(error = %e, "nanomq: config_update body is not HOCON");
            return Err(hocon_error());
        }
    };
    // Nothing of the file exists in mqgate's own configuration except what the setters
    // map, so every other key is reported.
    let plan = settings::plan_write(&Value::Object(Default::default()), &parsed, HOCON_SETTERS);
    let not_applied = settings::apply(app.management.as_ref(), "v4 /config_update", plan);
    let path = app.data_dir.join(CONFIG_FILE_NAME);
    if !files::save(&app, Role::Config, &path, text.to_string()).await {
        return Ok(Reply::code(118));
    }
    Ok(Reply::json(&WriteReply {
        code: 0,
        not_applied,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hocon_keys_map_onto_settings() {
        let v = hocon::parse(
            "mqtt {\n max_packet_size = 10KB\n max_mqueue_len = 512\n}\nauth.allow_anonymous = false\n",
            hocon::Limits::DEFAULT,
        )
        .unwrap();
        let plan = settings::plan_write(
            &Value::Object(Default::default()),
            &Value::Object(v),
            HOCON_SETTERS,
        );
        let patch = plan.merged();
        assert_eq!(patch.max_packet_size, Some(10240));
        assert_eq!(patch.max_queued_messages, Some(512));
        assert_eq!(patch.allow_anonymous, Some(false));
        assert!(plan.not_applied.is_empty());
    }
}
