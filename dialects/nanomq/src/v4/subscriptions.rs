//! `GET /subscriptions` and `/subscriptions/{clientid}`. NanoMQ ignores any query here
//! (`?clientid=` returns every row), and so does mqgate.

use mqgate_kit::{PageRequest, SubscriptionFilter};
use serde::Serialize;
use utoipa::ToSchema;

use crate::reply::Reply;
use crate::server::Nanomq;

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

fn subscriptions_matching(api: &Nanomq, filter: &SubscriptionFilter) -> Reply {
    let data = api
        .management
        .list_subscriptions(filter, PageRequest::ALL)
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

#[utoipa::path(
    get,
    path = "/api/v4/subscriptions",
    tag = "v4 subscriptions",
    responses((status = 200, description = "Every subscription (no paging, no filters)", body = SubscriptionList)),
    security(("basic" = []), ("bearer" = []))
)]
pub fn list_subscriptions(api: &Nanomq) -> Reply {
    subscriptions_matching(api, &SubscriptionFilter::default())
}

#[utoipa::path(
    get,
    path = "/api/v4/subscriptions/{clientid}",
    tag = "v4 subscriptions",
    params(("clientid" = String, Path, description = "Matched literally: not percent-decoded")),
    responses((status = 200, description = "The client's subscriptions, or `[]`", body = SubscriptionList)),
    security(("basic" = []), ("bearer" = []))
)]
pub fn lookup_client_subscriptions(api: &Nanomq, client_id: &str) -> Reply {
    subscriptions_matching(
        api,
        &SubscriptionFilter {
            client_id: Some(client_id.to_string()),
            ..Default::default()
        },
    )
}
