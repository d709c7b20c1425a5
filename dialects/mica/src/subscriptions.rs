//! Subscriptions made on a client's behalf (`/api/v1/mqtt/subscribe`,
//! `/unsubscribe` and their batches) and a client's subscription list
//! (`/api/v1/client/subscriptions`).
//!
//! mica keeps a subscription for any client id, connected or not, and never tells
//! the client (MQTT has no server-initiated SUBSCRIBE); the broker does the same
//! with [`OnBehalf::CreateIfAbsent`]. Subscribing again to a filter keeps the
//! higher of the two QoS, as mica 2.6.8.3 does.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use mqgate_kit::topic::is_valid_topic_filter;
use mqgate_kit::{
    MgmtError, OnBehalf, PageRequest, SubscriptionFilter, SubscriptionInfo, SubscriptionRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{json_response, ok_without_data, CodeResponse, MicaError, CODE_OK};
use crate::form::{self, lenient, FormParams, RawBody};
use crate::Mica;

pub const SUBSCRIBE: &str = "/api/v1/mqtt/subscribe";
pub const SUBSCRIBE_BATCH: &str = "/api/v1/mqtt/subscribe/batch";
pub const UNSUBSCRIBE: &str = "/api/v1/mqtt/unsubscribe";
pub const UNSUBSCRIBE_BATCH: &str = "/api/v1/mqtt/unsubscribe/batch";
pub const CLIENT_SUBSCRIPTIONS: &str = "/api/v1/client/subscriptions";

/// mica's `SubscribeForm`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeForm {
    /// Topic filter; `+` and `#` wildcards and `$share/<group>/` allowed.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "a/b/c")]
    pub topic: Option<String>,
    /// The client to subscribe; it need not be connected, nor even known yet.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "example")]
    pub client_id: Option<String>,
    /// QoS 0, 1 or 2.
    #[serde(default, deserialize_with = "lenient::int")]
    #[schema(value_type = i32, default = 0)]
    pub qos: Option<i32>,
}

/// mica's `BaseForm`, the body of an unsubscribe.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeForm {
    /// The exact filter to remove.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "a")]
    pub topic: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "example")]
    pub client_id: Option<String>,
}

/// mica's `Subscribe`: one subscription of a client.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subscribe {
    /// The filter, `$share/<group>/` prefix included.
    pub topic_filter: String,
    pub client_id: String,
    #[serde(rename = "mqttQoS")]
    pub mqtt_qos: u8,
    pub no_local: bool,
}

/// `{"data":[Subscribe…],"code":1}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionsResponse {
    pub data: Vec<Subscribe>,
    /// 1.
    pub code: i32,
}

/// A checked subscribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    client_id: String,
    filter: String,
    qos: u8,
}

impl SubscribeForm {
    fn check(&self) -> Result<Wanted, MicaError> {
        let (client_id, filter) = checked_pair(&self.client_id, &self.topic)?;
        let qos = self.qos.unwrap_or(0);
        if !(0..=2).contains(&qos) {
            return Err(MicaError::MissingParam);
        }
        Ok(Wanted {
            client_id,
            filter,
            qos: qos as u8,
        })
    }
}

impl UnsubscribeForm {
    fn check(&self) -> Result<(String, String), MicaError> {
        checked_pair(&self.client_id, &self.topic)
    }
}

/// mica's `validForm`: blank client id or topic is 101, a bad filter 102.
fn checked_pair(
    client_id: &Option<String>,
    topic: &Option<String>,
) -> Result<(String, String), MicaError> {
    let non_blank = |v: &Option<String>| {
        v.as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
            .ok_or(MicaError::MissingParam)
    };
    let client_id = non_blank(client_id)?;
    let topic = non_blank(topic)?;
    if !is_valid_topic_filter(&topic) {
        return Err(MicaError::InvalidParam);
    }
    Ok((client_id, topic))
}

/// Groups the requests per client, in first-seen order, keeping the higher QoS
/// of a filter named twice.
fn group_by_client(wanted: Vec<Wanted>) -> Vec<(String, Vec<SubscriptionRequest>)> {
    let mut groups: Vec<(String, Vec<SubscriptionRequest>)> = Vec::new();
    for w in wanted {
        let index = match groups.iter().position(|(c, _)| *c == w.client_id) {
            Some(i) => i,
            None => {
                groups.push((w.client_id.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let requests = &mut groups[index].1;
        match requests.iter_mut().find(|r| r.topic_filter == w.filter) {
            Some(existing) => existing.qos = existing.qos.max(w.qos),
            None => requests.push(SubscriptionRequest {
                topic_filter: w.filter,
                qos: w.qos,
            }),
        }
    }
    groups
}

async fn apply_subscriptions(mica: &Mica, wanted: Vec<Wanted>) -> Result<(), MicaError> {
    for (client_id, mut requests) in group_by_client(wanted) {
        for request in &mut requests {
            request.qos = request
                .qos
                .max(current_qos(mica, &client_id, &request.topic_filter));
        }
        mica.mgmt
            .subscribe(&client_id, requests, OnBehalf::CreateIfAbsent)
            .await?;
    }
    Ok(())
}

/// The QoS the client already holds for exactly this filter (0 if none).
fn current_qos(mica: &Mica, client_id: &str, filter: &str) -> u8 {
    let existing = mica.mgmt.list_subscriptions(
        &SubscriptionFilter {
            client_id: Some(client_id.to_string()),
            topic_filter: Some(filter.to_string()),
            qos: None,
        },
        PageRequest::ALL,
    );
    existing
        .items
        .iter()
        .filter(|s| s.client_id == client_id && s.topic_filter == filter)
        .map(|s| s.qos)
        .max()
        .unwrap_or(0)
}

async fn apply_unsubscriptions(mica: &Mica, pairs: Vec<(String, String)>) -> Result<(), MicaError> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (client_id, filter) in pairs {
        match groups.iter_mut().find(|(c, _)| *c == client_id) {
            Some((_, filters)) => filters.push(filter),
            None => groups.push((client_id, vec![filter])),
        }
    }
    for (client_id, filters) in groups {
        match mica.mgmt.unsubscribe(&client_id, filters).await {
            // mica answers 1 whether or not there was anything to remove.
            Ok(_) | Err(MgmtError::ClientNotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Subscribes a client to a filter on its behalf; it receives matching messages
/// from the moment this returns (no SUBACK, no retained messages).
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/subscribe",
    tag = "subscriptions",
    operation_id = "subscribe",
    request_body(content = SubscribeForm, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Subscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no body, blank clientId or topic, qos outside 0..2; `{\"code\":102}` invalid filter", body = CodeResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials: `{\"code\":103}`", body = CodeResponse, content_type = "application/json"),
        (status = 500, description = "`{\"code\":105}` malformed JSON or wrong JSON type", body = CodeResponse, content_type = "application/json"),
    )
)]
pub async fn subscribe(
    State(mica): State<Mica>,
    RawBody(body): RawBody,
) -> Result<Response, MicaError> {
    let form: SubscribeForm = form::json_object(&body)?;
    apply_subscriptions(&mica, vec![form.check()?]).await?;
    Ok(ok_without_data())
}

/// Subscribes on behalf of one or more clients. Every element is validated before
/// any is applied.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/subscribe/batch",
    tag = "subscriptions",
    operation_id = "subscribeBatch",
    request_body(content = Vec<SubscribeForm>, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "All subscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no body, empty array, blank clientId or topic, qos outside 0..2; `{\"code\":102}` invalid filter. Nothing applied.", body = CodeResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials: `{\"code\":103}`", body = CodeResponse, content_type = "application/json"),
        (status = 500, description = "`{\"code\":105}` malformed JSON or not an array. Nothing applied.", body = CodeResponse, content_type = "application/json"),
    )
)]
pub async fn subscribe_batch(
    State(mica): State<Mica>,
    RawBody(body): RawBody,
) -> Result<Response, MicaError> {
    let forms: Vec<SubscribeForm> = form::json_array(&body)?;
    let wanted = forms
        .iter()
        .map(SubscribeForm::check)
        .collect::<Result<Vec<_>, _>>()?;
    apply_subscriptions(&mica, wanted).await?;
    Ok(ok_without_data())
}

/// Removes a client's subscription to exactly this filter; `{"code":1}` even if
/// there was none.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/unsubscribe",
    tag = "subscriptions",
    operation_id = "unsubscribe",
    request_body(content = UnsubscribeForm, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Unsubscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no body, blank clientId or topic; `{\"code\":102}` invalid filter", body = CodeResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials: `{\"code\":103}`", body = CodeResponse, content_type = "application/json"),
        (status = 500, description = "`{\"code\":105}` malformed JSON or wrong JSON type", body = CodeResponse, content_type = "application/json"),
    )
)]
pub async fn unsubscribe(
    State(mica): State<Mica>,
    RawBody(body): RawBody,
) -> Result<Response, MicaError> {
    let form: UnsubscribeForm = form::json_object(&body)?;
    apply_unsubscriptions(&mica, vec![form.check()?]).await?;
    Ok(ok_without_data())
}

/// Removes several subscriptions. Every element is validated before any is applied.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/unsubscribe/batch",
    tag = "subscriptions",
    operation_id = "unsubscribeBatch",
    request_body(content = Vec<UnsubscribeForm>, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Unsubscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no body, empty array, blank clientId or topic; `{\"code\":102}` invalid filter. Nothing applied.", body = CodeResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials: `{\"code\":103}`", body = CodeResponse, content_type = "application/json"),
        (status = 500, description = "`{\"code\":105}` malformed JSON or not an array. Nothing applied.", body = CodeResponse, content_type = "application/json"),
    )
)]
pub async fn unsubscribe_batch(
    State(mica): State<Mica>,
    RawBody(body): RawBody,
) -> Result<Response, MicaError> {
    let forms: Vec<UnsubscribeForm> = form::json_array(&body)?;
    let pairs = forms
        .iter()
        .map(UnsubscribeForm::check)
        .collect::<Result<Vec<_>, _>>()?;
    apply_unsubscriptions(&mica, pairs).await?;
    Ok(ok_without_data())
}

/// The subscriptions a client's session holds, connected or not; `[]` for an
/// unknown client.
#[utoipa::path(
    get,
    path = "/api/v1/client/subscriptions",
    tag = "subscriptions",
    operation_id = "clientSubscriptions",
    params(
        ("clientId" = String, Query, description = "Client id (query string or urlencoded body)"),
    ),
    responses(
        (status = 200, description = "The subscriptions", body = SubscriptionsResponse, content_type = "application/json"),
        (status = 400, description = "`{\"code\":101}` no clientId", body = CodeResponse, content_type = "application/json"),
        (status = 401, description = "Missing or wrong credentials: `{\"code\":103}`", body = CodeResponse, content_type = "application/json"),
    )
)]
pub async fn client_subscriptions(
    State(mica): State<Mica>,
    FormParams(params): FormParams,
) -> Result<Response, MicaError> {
    let client_id = form::required(&params, "clientId")?;
    let page = mica.mgmt.list_subscriptions(
        &SubscriptionFilter {
            client_id: Some(client_id.to_string()),
            ..SubscriptionFilter::default()
        },
        PageRequest::ALL,
    );
    let data = page.items.iter().map(Subscribe::from_info).collect();
    Ok(json_response(
        StatusCode::OK,
        &SubscriptionsResponse {
            data,
            code: CODE_OK,
        },
    ))
}

impl Subscribe {
    fn from_info(info: &SubscriptionInfo) -> Subscribe {
        Subscribe {
            topic_filter: info.topic_filter.clone(),
            client_id: info.client_id.clone(),
            mqtt_qos: info.qos,
            no_local: info.no_local,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(client: &str, topic: &str, qos: i32) -> SubscribeForm {
        SubscribeForm {
            client_id: Some(client.into()),
            topic: Some(topic.into()),
            qos: Some(qos),
        }
    }

    #[test]
    fn validation_codes() {
        assert!(form("c", "a/+/b", 2).check().is_ok());
        assert_eq!(form(" ", "a", 0).check(), Err(MicaError::MissingParam));
        assert_eq!(form("c", "", 0).check(), Err(MicaError::MissingParam));
        assert_eq!(form("c", "a/#/b", 0).check(), Err(MicaError::InvalidParam));
        assert_eq!(form("c", "a+", 0).check(), Err(MicaError::InvalidParam));
        assert_eq!(form("c", "a", 3).check(), Err(MicaError::MissingParam));
        assert_eq!(form("c", "a", -1).check(), Err(MicaError::MissingParam));
        assert_eq!(
            SubscribeForm::default().check(),
            Err(MicaError::MissingParam)
        );
    }

    #[test]
    fn batches_group_per_client_and_keep_the_higher_qos() {
        let wanted = ["a", "b", "a"]
            .iter()
            .zip([1, 0, 2])
            .map(|(t, q)| form("c1", t, q).check().unwrap())
            .chain([form("c2", "a", 0).check().unwrap()])
            .collect();
        let groups = group_by_client(wanted);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0, "c1");
        assert_eq!(
            groups[0].1,
            vec![
                SubscriptionRequest {
                    topic_filter: "a".into(),
                    qos: 2
                },
                SubscriptionRequest {
                    topic_filter: "b".into(),
                    qos: 0
                }
            ]
        );
        assert_eq!(groups[1].0, "c2");
    }

    #[test]
    fn subscribe_json_names() {
        let s = Subscribe::from_info(&SubscriptionInfo {
            client_id: "123".into(),
            topic_filter: "#".into(),
            qos: 1,
            no_local: false,
            retain_as_published: false,
            retain_handling: 0,
        });
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r##"{"topicFilter":"#","clientId":"123","mqttQoS":1,"noLocal":false}"##
        );
    }
}
