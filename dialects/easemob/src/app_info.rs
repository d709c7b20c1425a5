//! The application's MQTT address (`user/info`): the host and port MQTT clients
//! should connect to. The official server SDK's `queryMqttAppInfo` calls it; the
//! vendor's document does not list it.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::http::uri::Authority;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AppToken;
use crate::error::{Error, ErrorBody, ErrorReply, Reply};
use crate::params::from_query;
use crate::state::AppState;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/openapi/rm/user/info", get(app_info))
}

/// MQTT's registered port, advertised when the TCP listener is disabled and no
/// port is configured.
const MQTT_PORT: u16 = 1883;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppInfoParams {
    /// The AppID of this application.
    #[param(required = true, value_type = String, pattern = r"^mq7g4e$", example = "mq7g4e")]
    pub appid: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppInfo {
    /// The host MQTT clients connect to: `[easemob] advertised_host`, else the
    /// host this request was sent to.
    #[schema(example = "localhost")]
    pub domain: String,
    #[schema(example = "mq7g4e")]
    pub appid: String,
    /// The MQTT port, as a string: `[easemob] advertised_port`, else the port of
    /// the MQTT TCP listener.
    #[schema(example = "1883")]
    pub port: String,
}

/// The host part of the request's `Host` header (IPv6 in brackets), if any.
fn request_host(headers: &axum::http::HeaderMap) -> Option<String> {
    let authority: Authority = headers.get(HOST)?.to_str().ok()?.parse().ok()?;
    let host = authority.host();
    (!host.is_empty()).then(|| host.to_string())
}

/// The host part of the request's `Host` header.
pub struct RequestHost(Option<String>);

#[async_trait::async_trait]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RequestHost {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestHost(request_host(&parts.headers)))
    }
}

/// Get the application's MQTT address
///
/// The host and port MQTT clients of the application connect to. Not in the
/// vendor's document; the official server SDK calls it (`queryMqttAppInfo`), and
/// refreshes its app token when this answers 403.
#[utoipa::path(
    get,
    path = "/openapi/rm/user/info",
    tag = "client",
    params(AppInfoParams),
    security(("app_token" = [])),
    responses(
        (status = 200, description = "The MQTT address", body = Reply<AppInfo>),
        (status = 400, description = "appid can not be empty, the appid cannnot use the service (another application)", body = ErrorReply),
        (status = 403, description = "access deny: no valid app token", body = ErrorReply),
    )
)]
pub async fn app_info(
    State(state): State<Arc<AppState>>,
    auth: AppToken,
    RequestHost(host): RequestHost,
    RawQuery(raw): RawQuery,
) -> Result<Reply<AppInfo>, Error> {
    auth.path.ensure_ours(ErrorBody::Null)?;
    let p: AppInfoParams = from_query(raw.as_deref());
    let Some(appid) = p.appid else {
        return Err(Error::bad_request("appid can not be empty"));
    };
    if appid != state.config.app_id {
        return Err(Error::bad_request("the appid cannnot use the service"));
    }
    let config = &state.config;
    let domain = config
        .advertised_host
        .clone()
        .or(host)
        .unwrap_or_else(|| "localhost".to_string());
    let port = config.advertised_port.unwrap_or_else(|| {
        state
            .management
            .config()
            .mqtt
            .tcp_listen
            .map_or(MQTT_PORT, |a| a.port())
    });
    Ok(Reply::ok(AppInfo {
        domain,
        appid,
        port: port.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> Option<String> {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(HOST, value.parse().unwrap());
        request_host(&headers)
    }

    #[test]
    fn host_header_without_port() {
        assert_eq!(
            host("mqtt.example.com:8088").as_deref(),
            Some("mqtt.example.com")
        );
        assert_eq!(host("10.0.0.5").as_deref(), Some("10.0.0.5"));
        assert_eq!(host("[::1]:8088").as_deref(), Some("[::1]"));
        assert_eq!(host("bad host"), None);
        assert_eq!(request_host(&axum::http::HeaderMap::new()), None);
    }
}
