//! The router over a scripted broker: dispatch order, envelopes and what reaches
//! the Management calls, without a gateway.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use bytes::Bytes;
use mqgate_kit::*;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tower::ServiceExt;

#[derive(Default)]
struct FakeBroker {
    published: Mutex<Vec<PublishRequest>>,
    subscribed: Mutex<Vec<(String, Vec<SubscriptionRequest>, OnBehalf)>>,
    held: Mutex<Vec<SubscriptionInfo>>,
    unsubscribed: Mutex<Vec<(String, Vec<String>)>>,
    kicked: Mutex<Vec<(String, bool)>>,
}

#[async_trait::async_trait]
impl Management for FakeBroker {
    async fn list_clients(&self, _: &ClientFilter, _: PageRequest) -> Page<ClientInfo> {
        Page {
            items: Vec::new(),
            total: 0,
        }
    }
    async fn get_clients(&self, ids: &[&str]) -> Vec<Option<ClientInfo>> {
        vec![None; ids.len()]
    }
    async fn kick(&self, client_id: &str, options: KickOptions) -> Result<KickOutcome, MgmtError> {
        self.kicked
            .lock()
            .push((client_id.to_string(), options.discard_session));
        Ok(KickOutcome::NotFound)
    }
    async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        _: PageRequest,
    ) -> Page<SubscriptionInfo> {
        let items: Vec<_> = self
            .held
            .lock()
            .iter()
            .filter(|s| filter.client_id.as_ref().is_none_or(|c| *c == s.client_id))
            .filter(|s| {
                filter
                    .topic_filter
                    .as_ref()
                    .is_none_or(|t| *t == s.topic_filter)
            })
            .cloned()
            .collect();
        Page {
            total: items.len(),
            items,
        }
    }
    async fn subscribe(
        &self,
        client_id: &str,
        subscriptions: Vec<SubscriptionRequest>,
        mode: OnBehalf,
    ) -> Result<SubscribeOutcome, MgmtError> {
        self.subscribed
            .lock()
            .push((client_id.to_string(), subscriptions, mode));
        Ok(SubscribeOutcome::Pending)
    }
    async fn unsubscribe(
        &self,
        client_id: &str,
        filters: Vec<String>,
    ) -> Result<Vec<bool>, MgmtError> {
        let n = filters.len();
        self.unsubscribed
            .lock()
            .push((client_id.to_string(), filters));
        Err(if n > 0 {
            MgmtError::ClientNotFound
        } else {
            MgmtError::Timeout
        })
    }
    async fn publish(&self, request: PublishRequest) -> Result<MessageId, MgmtError> {
        self.published.lock().push(request);
        Ok(1)
    }
    fn node_stats(&self) -> Stats {
        Stats::default()
    }
    async fn nodes(&self) -> Vec<Stats> {
        vec![Stats::default()]
    }
    fn history(&self) -> Option<Arc<dyn History>> {
        None
    }
    fn config(&self) -> ConfigView {
        unimplemented!("not used by the mica dialect")
    }
    fn update_config(&self, _: HotConfigPatch) -> Result<ConfigView, MgmtError> {
        Err(MgmtError::Unsupported("config"))
    }
    fn control(&self, _: ControlAction) -> Result<(), MgmtError> {
        Err(MgmtError::Unsupported("control"))
    }
}

fn app() -> (Arc<FakeBroker>, axum::Router) {
    let broker = Arc::new(FakeBroker::default());
    let router = crate::router(
        broker.clone(),
        Arc::new(http::basic_auth::BasicCredentials::new("mica", "mica")),
    );
    (broker, router)
}

const AUTH: &str = "Basic bWljYTptaWNh";

async fn call(
    router: &axum::Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, Bytes) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let request = request.body(Body::from(body.to_string())).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, headers, body)
}

async fn json_call(router: &axum::Router, method: Method, uri: &str, body: &str) -> (u16, Value) {
    let (status, headers, body) = call(router, method, uri, Some(AUTH), body).await;
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["server"], "mica-net");
    (status.as_u16(), serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn routes_are_matched_before_credentials() {
    let (_, router) = app();
    for (method, uri) in [
        (Method::GET, "/nope"),
        (Method::HEAD, "/api/v1/stats"),
        (Method::OPTIONS, "/api/v1/stats"),
        (Method::POST, "/api/v1/stats"),
        (Method::GET, "/api/v1/mqtt/publish"),
    ] {
        let (status, _, body) = call(&router, method.clone(), uri, None, "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        if method != Method::HEAD {
            assert_eq!(&body[..], br#"{"code":404}"#);
        }
    }
    let (status, headers, body) = call(&router, Method::GET, "/api/v1/stats", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers["www-authenticate"],
        "Basic realm=\"Mica mqtt realm\""
    );
    assert_eq!(&body[..], br#"{"code":103}"#);
    let (status, _, body) = call(
        &router,
        Method::GET,
        "//api/v1/stats/?x=1",
        Some("basic bWljYTptaWNh"),
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(br#"{"data":{"connections":"#));
    assert!(body.ends_with(br#","code":1}"#));
}

#[tokio::test]
async fn publish_batch_decodes_everything_before_sending() {
    let (broker, router) = app();
    let bad = r#"[{"topic":"t","clientId":"c","payload":"aGk="},{"topic":"t","clientId":"c","payload":"!!","encoding":"base64"}]"#;
    assert_eq!(
        json_call(&router, Method::POST, "/api/v1/mqtt/publish/batch", bad).await,
        (500, json!({"code": 105}))
    );
    assert!(broker.published.lock().is_empty());
    let good = r#"[{"topic":"$retain/60/t","clientId":"c","payload":"aGk=","encoding":"base64","retain":true,"qos":"1"},{"topic":"t","clientId":"c","qos":7},{"topic":"u","clientId":"c","payload":" "}]"#;
    assert_eq!(
        json_call(&router, Method::POST, "/api/v1/mqtt/publish/batch", good).await,
        (200, json!({"code": 1}))
    );
    let published = broker.published.lock().clone();
    assert_eq!(published.len(), 2, "the qos 7 message is dropped");
    assert_eq!(published[0].topic, "t");
    assert_eq!(&published[0].payload[..], b"hi");
    assert_eq!((published[0].qos, published[0].retain), (1, true));
    assert_eq!(published[0].properties.message_expiry_interval, Some(60));
    assert_eq!(published[0].sender.as_deref(), Some("c"));
    assert_eq!(published[1].topic, "u");
    assert!(published[1].payload.is_empty());
    assert_eq!(
        json_call(
            &router,
            Method::POST,
            "/api/v1/mqtt/publish",
            r#"{"topic":"$retain/x/t","clientId":"c","retain":true}"#
        )
        .await,
        (400, json!({"code": 102}))
    );
}

#[tokio::test]
async fn subscribe_keeps_the_higher_qos_and_creates_sessions() {
    let (broker, router) = app();
    broker.held.lock().push(SubscriptionInfo {
        client_id: "c1".into(),
        topic_filter: "a/#".into(),
        qos: 2,
        no_local: false,
        retain_as_published: false,
        retain_handling: 0,
    });
    let body =
        r##"[{"topic":"a/#","clientId":"c1","qos":0},{"topic":"b","clientId":"c2","qos":1}]"##;
    assert_eq!(
        json_call(&router, Method::POST, "/api/v1/mqtt/subscribe/batch", body).await,
        (200, json!({"code": 1}))
    );
    let subscribed = broker.subscribed.lock().clone();
    assert_eq!(subscribed.len(), 2);
    assert_eq!(subscribed[0].0, "c1");
    assert_eq!(subscribed[0].1[0].qos, 2);
    assert_eq!(subscribed[0].2, OnBehalf::CreateIfAbsent);
    assert_eq!(
        (subscribed[1].0.as_str(), subscribed[1].1[0].qos),
        ("c2", 1)
    );
    assert_eq!(
        json_call(
            &router,
            Method::GET,
            "/api/v1/client/subscriptions?clientId=c1",
            ""
        )
        .await,
        (
            200,
            json!({"data":[{"topicFilter":"a/#","clientId":"c1","mqttQoS":2,"noLocal":false}],"code":1})
        )
    );
}

#[tokio::test]
async fn unsubscribe_of_nothing_and_kick_of_nobody_succeed() {
    let (broker, router) = app();
    assert_eq!(
        json_call(
            &router,
            Method::POST,
            "/api/v1/mqtt/unsubscribe",
            r#"{"topic":"a","clientId":"ghost"}"#
        )
        .await,
        (200, json!({"code": 1}))
    );
    assert_eq!(
        broker.unsubscribed.lock()[0],
        ("ghost".to_string(), vec!["a".to_string()])
    );
    assert_eq!(
        json_call(
            &router,
            Method::POST,
            "/api/v1/clients/delete?clientId=ghost",
            ""
        )
        .await,
        (200, json!({"code": 1}))
    );
    assert_eq!(broker.kicked.lock()[0], ("ghost".to_string(), true));
    assert_eq!(
        json_call(
            &router,
            Method::GET,
            "/api/v1/clients/info?clientId=ghost",
            ""
        )
        .await,
        (400, json!({"code": 101}))
    );
    assert_eq!(
        json_call(&router, Method::GET, "/api/v1/clients?_page=3&_limit=0", "").await,
        (
            200,
            json!({"data":{"list":[],"pageNumber":3,"pageSize":0,"totalRow":0,"totalPage":0,
                "firstPage":false,"lastPage":true},"code":1})
        )
    );
}
