//! `GET /subscriptions` and `/subscriptions/{clientid}`. NanoMQ ignores any query here
//! (`?clientid=` returns every row), and so does mqgate.

use std::sync::Arc;

use axum::extract::State;
use mqgate_kit::{PageRequest, SubscriptionFilter};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::reply::Reply;
use crate::state::App;
use crate::v4::request::RawSegment;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default()
        .routes(routes!(list_subscriptions))
        .routes(routes!(lookup_client_subscriptions))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub code: u16,
    pub data: Vec<Subscription>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Subscription {
    /// `clientid` here, unlike `client_id` in `/clients`.
    pub clientid: String,
    pub topic: String,
    pub qos: u8,
}

async fn subscriptions_matching(app: &App, filter: &SubscriptionFilter) -> Reply {
    let data = app
        .management
        .list_subscriptions(filter, PageRequest::ALL)
        .await
        .items
        .into_iter()
        .map(|s| Subscription {
            clientid: s.client_id,
            topic: s.topic_filter,
            qos: s.qos,
        })
        .collect();
    Reply::json(&SubscriptionList { code: 0, data })
}

/// List subscriptions
///
/// Every subscription of every session (no paging, no filters).
#[utoipa::path(
    get,
    path = "/api/v4/subscriptions",
    tag = "v4 subscriptions",
    responses((status = 200, description = "Every subscription (no paging, no filters)", body = SubscriptionList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_subscriptions(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    subscriptions_matching(&app, &SubscriptionFilter::default()).await
}

/// List a client's subscriptions
///
/// The subscriptions of the session whose id is the raw path segment, or `[]`.
#[utoipa::path(
    get,
    path = "/api/v4/subscriptions/{clientid}",
    tag = "v4 subscriptions",
    params(("clientid" = String, Path, description = "Matched literally: not percent-decoded", example = "example")),
    responses((status = 200, description = "The client's subscriptions, or `[]`", body = SubscriptionList)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn lookup_client_subscriptions(
    _: Authorized,
    State(app): State<Arc<App>>,
    RawSegment(client_id): RawSegment,
) -> Reply {
    subscriptions_matching(
        &app,
        &SubscriptionFilter {
            client_id: Some(client_id),
            ..Default::default()
        },
    )
    .await
}
