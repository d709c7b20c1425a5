//! The v1 RPC of NanoMQ 0.5–0.8.0: every method and every path under `/api/v1` takes a
//! JSON object `{"req":N,"seq":S,...}` and answers `{"code":0,"seq":S,"rep":N,"data":...}`.
//!
//! 0.8.0's order of checks is kept: the body must be a JSON object before anything else
//! (400 `{"code":109,"seq":0}`, even without credentials), then `req`/`seq` are read as
//! C casts of doubles (a missing `seq` echoes as 2^63, a missing `req` drops `rep`),
//! then credentials, then the request code. Every reply, success or error, carries the
//! request's Content-Type.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Router;
use bytes::Bytes;
use mqgate_kit::{ClientFilter, ControlAction, PageRequest, SubscriptionFilter};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::cjson;
use crate::error::Error;
use crate::reply::{ContentType, Reply};
use crate::settings::{self, Setter};
use crate::state::App;
use crate::v4::topic_tree;

/// The RPC's one documented route.
pub fn routes() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default().routes(routes!(handle))
}

/// Every method and every path under `/api/v1` reach [`handle`].
pub fn router(app: Arc<App>) -> Router {
    let (routes, _) = routes().split_for_parts();
    routes
        .fallback(handle)
        .method_not_allowed_fallback(handle)
        .with_state(app)
}

/// 2^63: what NanoMQ's cast of a missing (NaN) `seq` yields on x86-64.
const NAN_SEQ: u64 = 1 << 63;

/// Declares the request shape of a `req` that takes nothing else.
macro_rules! plain_request {
    ($name:ident, $req:tt, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Deserialize, ToSchema)]
        pub struct $name {
            #[schema(minimum = $req, maximum = $req, example = $req)]
            pub req: i32,
            /// Echoed in the reply.
            #[schema(example = 1)]
            pub seq: u64,
        }
    };
}

plain_request!(BrokerStatsRequest, 2, "req 2: broker statistics.");
plain_request!(
    SubscriptionsRequest,
    4,
    "req 4: every client's subscriptions."
);
plain_request!(ClientsRequest, 5, "req 5: every client.");
plain_request!(ConfigRequest, 11, "req 11: the configuration.");
plain_request!(TopicTreeRequest, 13, "req 13: the topic tree.");

/// req 10: stop or restart the broker.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ControlRequest {
    #[schema(minimum = 10, maximum = 10, example = 10)]
    pub req: i32,
    #[schema(example = 1)]
    pub seq: u64,
    /// Any case; another action answers success and does nothing, as NanoMQ 0.8.0.
    pub action: ControlActionName,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ControlActionName {
    Restart,
    Stop,
}

/// req 12: change the configuration.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetConfigRequest {
    #[schema(minimum = 12, maximum = 12, example = 12)]
    pub req: i32,
    #[schema(example = 1)]
    pub seq: u64,
    /// req 11's shape, any subset; `msq_len` and `allow_anonymous` are applied.
    #[schema(value_type = Object, example = json!({"allow_anonymous": true}))]
    pub data: Value,
}

/// One RPC request, by `req` (documentation only: the body is read field by field, as
/// NanoMQ 0.8.0 reads it).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum RpcRequest {
    BrokerStats(BrokerStatsRequest),
    Subscriptions(SubscriptionsRequest),
    Clients(ClientsRequest),
    Control(ControlRequest),
    Config(ConfigRequest),
    SetConfig(SetConfigRequest),
    TopicTree(TopicTreeRequest),
}

/// Declares the reply shape of a `req`.
macro_rules! reply {
    ($name:ident, $req:tt, $doc:literal $(, $field:ident: $data:ty)?) => {
        #[doc = $doc]
        #[derive(Debug, Serialize, ToSchema)]
        pub struct $name {
            #[schema(example = 0)]
            pub code: i32,
            #[schema(example = 1)]
            pub seq: u64,
            #[schema(minimum = $req, maximum = $req, example = $req)]
            pub rep: i32,
            $(pub $field: $data,)?
        }
    };
}

reply!(BrokerStatsReply, 2, "req 2's reply.", data: RpcBrokerStats);
reply!(SubscriptionsReply, 4, "req 4's reply.", data: Vec<RpcClientSubscriptions>);
reply!(ClientsReply, 5, "req 5's reply.", data: Vec<RpcClient>);
reply!(ControlReply, 10, "req 10's reply.");
reply!(ConfigReply, 11, "req 11's reply.", data: RpcConfig);
reply!(
    SetConfigReply,
    12,
    "req 12's reply; `not_applied` only when a written value was not applied.",
    not_applied: Option<Vec<String>>
);
reply!(TopicTreeReply, 13, "req 13's reply.", data: Vec<Vec<topic_tree::TreeNode>>);

/// One RPC reply, by `req`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum RpcReply {
    BrokerStats(BrokerStatsReply),
    Subscriptions(SubscriptionsReply),
    Clients(ClientsReply),
    Control(ControlReply),
    Config(Box<ConfigReply>),
    SetConfig(SetConfigReply),
    TopicTree(TopicTreeReply),
}

/// A failed call: `{"code":C,"seq":S[,"rep":R]}` (`rep` left out when `req` was missing).
#[derive(Debug, Serialize, ToSchema)]
pub struct RpcError {
    pub code: u16,
    pub seq: u64,
    pub rep: Option<i32>,
}

/// `(int)` of a double as x86-64 computes it: out of range and NaN give INT_MIN.
fn c_int(value: Option<&Value>) -> i32 {
    match value.and_then(Value::as_f64) {
        Some(f) if f > i32::MIN as f64 - 1.0 && f < i32::MAX as f64 + 1.0 => f.trunc() as i32,
        _ => i32::MIN,
    }
}

/// `(uint64_t)` of a double as x86-64 computes it: NaN and out of range give 2^63.
fn c_u64(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(NAN_SEQ),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if (0.0..18_446_744_073_709_551_616.0).contains(&f) => f.trunc() as u64,
            Some(f) if f < 0.0 && f > i64::MIN as f64 => f.trunc() as i64 as u64,
            _ => NAN_SEQ,
        },
        _ => NAN_SEQ,
    }
}

/// Call the v1 RPC
///
/// NanoMQ 0.5-0.8.0's req/seq RPC: every method and every path under `/api/v1` take a
/// JSON object `{"req":N,"seq":S,...}` and answer `{"code":0,"seq":S,"rep":N,...}`.
#[utoipa::path(
    post,
    path = "/api/v1",
    tag = "v1 RPC",
    request_body(content = RpcRequest, description = "`{\"req\":N,\"seq\":S}`; req 10 adds `action`, req 12 adds `data`", example = json!({"req": 2, "seq": 1})),
    responses(
        (status = 200, description = "`{\"code\":0,\"seq\":S,\"rep\":N[,\"data\":...]}`, one shape per `req`", body = RpcReply, example = json!({"code": 0, "seq": 1, "rep": 2, "data": {"client_size": 1, "message_in": 4, "message_out": 0, "message_drop": 4}})),
        (status = 400, description = "The body is not a JSON object", body = RpcError, example = json!({"code": 109, "seq": 0})),
        (status = 401, description = "103 wrong credentials, 104 none, 116 expired token", body = RpcError, example = json!({"code": 104, "seq": 1, "rep": 2})),
        (status = 404, description = "Unknown `req`", body = RpcError, example = json!({"code": 108, "seq": 1, "rep": 3}))
    ),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn handle(
    caller: Result<Authorized, Error>,
    State(app): State<Arc<App>>,
    body: Bytes,
) -> Reply {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return Error::not_json().in_rpc(0, 0).reply(),
    };
    let req = c_int(body.get("req"));
    let seq = c_u64(body.get("seq"));
    if let Err(unauthorized) = caller {
        return unauthorized.in_rpc(seq, req).reply();
    }
    let outcome = match req {
        2 => Ok(Some(data(&broker_stats(&app).await))),
        4 => Ok(Some(data(&client_subscriptions(&app).await))),
        5 => Ok(Some(data(&clients(&app).await))),
        10 => control(&app, body.get("action")).map(|()| None),
        11 => Ok(Some(data(&config(&app)))),
        12 => Ok(set_config(&app, body.get("data"))),
        13 => Ok(Some(data(
            &topic_tree::levels(app.management.as_ref(), "client_id").await,
        ))),
        _ => Err(Error::new(StatusCode::NOT_FOUND, 108)),
    };
    match outcome {
        Ok(extra) => success(seq, req, extra),
        Err(error) => error.in_rpc(seq, req).reply(),
    }
}

fn data<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_string());
    format!(",\"data\":{text}")
}

/// `{"code":0,"seq":S,"rep":R` + `extra` (`,"data":...` or `,"not_applied":[...]`) + `}`,
/// with the request's Content-Type.
fn success(seq: u64, rep: i32, extra: Option<String>) -> Reply {
    let body = format!(
        "{{\"code\":0,\"seq\":{},\"rep\":{rep}{}}}",
        cjson::format_number(seq as f64),
        extra.unwrap_or_default()
    );
    Reply {
        status: StatusCode::OK,
        content_type: ContentType::EchoRequest,
        body: Bytes::from(body),
    }
}

/// req 2.
#[derive(Debug, Serialize, ToSchema)]
pub struct RpcBrokerStats {
    /// Clients connected now.
    pub client_size: u64,
    pub message_in: u64,
    pub message_out: u64,
    pub message_drop: u64,
}

async fn broker_stats(app: &App) -> RpcBrokerStats {
    let stats = app.management.stats().await;
    RpcBrokerStats {
        client_size: stats.connections,
        message_in: stats.messages_received,
        message_out: stats.messages_sent,
        message_drop: stats.messages_dropped,
    }
}

/// req 4: one entry per client holding subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct RpcClientSubscriptions {
    pub client_id: String,
    pub subscriptions: Vec<RpcSubscription>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RpcSubscription {
    pub topic: String,
    pub qos: u8,
}

async fn client_subscriptions(app: &App) -> Vec<RpcClientSubscriptions> {
    let page = app
        .management
        .list_subscriptions(&SubscriptionFilter::default(), PageRequest::ALL)
        .await;
    let mut grouped: Vec<RpcClientSubscriptions> = Vec::new();
    for sub in page.items {
        let entry = RpcSubscription {
            topic: sub.topic_filter,
            qos: sub.qos,
        };
        match grouped.iter_mut().find(|g| g.client_id == sub.client_id) {
            Some(group) => group.subscriptions.push(entry),
            None => grouped.push(RpcClientSubscriptions {
                client_id: sub.client_id,
                subscriptions: vec![entry],
            }),
        }
    }
    grouped
}

/// req 5.
#[derive(Debug, Serialize, ToSchema)]
pub struct RpcClient {
    pub client_id: String,
    /// `""` without a username.
    pub username: String,
    pub keepalive: u16,
    /// The MQTT protocol level (4 for 3.1.1, 5).
    pub protocol: u8,
    /// 1 connected, 0 offline session.
    pub connect_status: u8,
    /// Messages delivered to the client.
    pub message_receive: u64,
}

async fn clients(app: &App) -> Vec<RpcClient> {
    app.management
        .list_clients(&ClientFilter::default(), PageRequest::ALL)
        .await
        .items
        .into_iter()
        .map(|c| RpcClient {
            client_id: c.client_id,
            username: c.username.unwrap_or_default(),
            keepalive: c.keepalive,
            protocol: c.proto_ver,
            connect_status: u8::from(c.connected),
            message_receive: c.counters.messages_out,
        })
        .collect()
}

/// req 10. NanoMQ 0.8.0 answers an unknown action with success and does nothing; that
/// is kept. A missing action crashed it; here it is 400 `{"code":107}`.
fn control(app: &App, action: Option<&Value>) -> Result<(), Error> {
    let action = action
        .and_then(Value::as_str)
        .ok_or(Error::new(StatusCode::BAD_REQUEST, 107))?;
    let action = match action.to_ascii_lowercase().as_str() {
        "stop" => ControlAction::Stop,
        "restart" => ControlAction::Restart,
        _ => return Ok(()),
    };
    app.management
        .control(action)
        .map_err(|_| Error::new(StatusCode::INTERNAL_SERVER_ERROR, 101))
}

/// req 11, in the shape 0.8.0 printed (absent strings omitted, TLS files `null`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RpcConfig {
    pub url: Option<String>,
    pub num_taskq_thread: u32,
    pub max_taskq_thread: u32,
    pub parallel: u32,
    pub property_size: u32,
    /// Largest number of queued messages per client.
    pub msq_len: u32,
    pub allow_anonymous: bool,
    pub daemon: bool,
    pub tls: RpcTls,
    pub websocket: RpcWebsocket,
    pub http_server: RpcHttpServer,
    pub bridge: RpcBridge,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RpcTls {
    pub enable: bool,
    pub key_password: Option<String>,
    pub key: Option<String>,
    pub cert: Option<String>,
    pub cacert: Option<String>,
    pub verify_peer: bool,
    pub fail_if_no_peer_cert: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RpcWebsocket {
    pub enable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RpcHttpServer {
    pub enable: bool,
    pub port: u16,
    pub username: String,
    pub password: String,
    pub auth_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RpcBridge {
    pub bridge_mode: bool,
    pub proto_ver: u8,
    pub clean_start: bool,
    pub keepalive: u16,
    pub parallel: u32,
    pub forwards: Vec<String>,
    pub subscription: Vec<RpcSubscription>,
}

fn config(app: &App) -> RpcConfig {
    let view = app.management.config();
    let threads = settings::task_threads();
    RpcConfig {
        url: settings::tcp_url(&view),
        num_taskq_thread: threads,
        max_taskq_thread: threads,
        parallel: threads,
        property_size: settings::PROPERTY_SIZE,
        msq_len: view.hot.max_queued_messages,
        allow_anonymous: view.hot.allow_anonymous,
        daemon: false,
        tls: RpcTls {
            enable: false,
            key_password: None,
            key: None,
            cert: None,
            cacert: None,
            verify_peer: false,
            fail_if_no_peer_cert: false,
        },
        websocket: RpcWebsocket {
            enable: view.mqtt.ws_listen.is_some(),
            url: settings::ws_url(&view),
        },
        http_server: RpcHttpServer {
            enable: true,
            port: app.listen.port(),
            username: app.config.username.clone(),
            password: app.config.password.clone(),
            auth_type: app.config.auth_type.reported_name().to_string(),
        },
        bridge: RpcBridge {
            bridge_mode: false,
            proto_ver: 0,
            clean_start: false,
            keepalive: 0,
            parallel: 1,
            forwards: Vec::new(),
            subscription: Vec::new(),
        },
    }
}

/// req 12: applies `msq_len` and `allow_anonymous`; other changed values are reported
/// in `not_applied`.
fn set_config(app: &App, written: Option<&Value>) -> Option<String> {
    let written = written.filter(|v| v.is_object())?;
    let current = serde_json::to_value(config(app)).unwrap_or(Value::Null);
    let setters: &[(&str, Setter)] = &[
        ("msq_len", settings::set_queue_len),
        ("allow_anonymous", settings::set_allow_anonymous),
    ];
    let plan = settings::plan_write(&current, written, setters);
    let not_applied = settings::apply(app.management.as_ref(), "v1 req 12", plan);
    if not_applied.is_empty() {
        None
    } else {
        let list = serde_json::to_string(&not_applied).unwrap_or_default();
        Some(format!(",\"not_applied\":{list}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn c_casts() {
        assert_eq!(c_int(Some(&json!(2.9))), 2);
        assert_eq!(c_int(Some(&json!("2"))), i32::MIN);
        assert_eq!(c_int(None), i32::MIN);
        assert_eq!(c_u64(Some(&json!(7.5))), 7);
        assert_eq!(c_u64(Some(&json!("7"))), NAN_SEQ);
        assert_eq!(c_u64(Some(&json!(1111111))), 1111111);
        assert_eq!(c_u64(None), NAN_SEQ);
    }
}
