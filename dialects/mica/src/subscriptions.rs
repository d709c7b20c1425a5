//! Subscriptions made on a client's behalf: `/api/v1/mqtt/subscribe`, `/unsubscribe`
//! and their batches. (A client's subscription list is with the clients.)
//!
//! mica keeps a subscription for any client id, connected or not, and never tells
//! the client (MQTT has no server-initiated SUBSCRIBE); the broker does the same
//! with [`OnBehalf::CreateIfAbsent`]. Subscribing again to a filter keeps the
//! higher of the two QoS, as mica 2.6.8.3 does.

use axum::extract::State;
use axum::response::Response;
use mqgate_kit::topic::is_valid_topic_filter;
use mqgate_kit::{MgmtError, OnBehalf, PageRequest, SubscriptionFilter, SubscriptionRequest};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::error::{ok_without_data, CodeResponse, Error};
use crate::form::{self, batch_of, lenient, RawBody};
use crate::routes::Routes;
use crate::state::App;

pub fn router() -> Routes {
    Routes::new()
        .route(routes!(subscribe))
        .route(routes!(subscribe_batch))
        .route(routes!(unsubscribe))
        .route(routes!(unsubscribe_batch))
}

/// mica's `SubscribeForm`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeForm {
    /// Topic filter; `+` and `#` wildcards and `$share/<group>/` allowed.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "a/b/c", min_length = 1, max_length = 65535, pattern = "^(#|(\\+|[^+#\\u0000\\s][^+#/\\u0000]*)(/(\\+|[^+#/\\u0000]*))*(/#)?)$")]
    pub topic: Option<String>,
    /// The client to subscribe; it need not be connected, nor even known yet.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "example", pattern = "[^\\s]")]
    pub client_id: Option<String>,
    /// QoS 0, 1 or 2.
    #[serde(default, deserialize_with = "lenient::int")]
    #[schema(value_type = i32, default = 0, minimum = 0, maximum = 2, example = 1)]
    pub qos: Option<i32>,
}

batch_of!(SubscribeBatch, SubscribeForm);
batch_of!(UnsubscribeBatch, UnsubscribeForm);

/// mica's `BaseForm`, the body of an unsubscribe.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeForm {
    /// The exact filter to remove.
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "a/b/c", min_length = 1, max_length = 65535, pattern = "^(#|(\\+|[^+#\\u0000\\s][^+#/\\u0000]*)(/(\\+|[^+#/\\u0000]*))*(/#)?)$")]
    pub topic: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    #[schema(value_type = String, required = true, example = "example", pattern = "[^\\s]")]
    pub client_id: Option<String>,
}

/// A checked subscribe request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    client_id: String,
    filter: String,
    qos: u8,
}

impl SubscribeForm {
    fn check(&self) -> Result<Wanted, Error> {
        let (client_id, filter) = checked_pair(&self.client_id, &self.topic)?;
        let qos = self.qos.unwrap_or(0);
        if !(0..=2).contains(&qos) {
            return Err(Error::MissingParam);
        }
        Ok(Wanted {
            client_id,
            filter,
            qos: qos as u8,
        })
    }
}

impl UnsubscribeForm {
    fn check(&self) -> Result<(String, String), Error> {
        checked_pair(&self.client_id, &self.topic)
    }
}

/// mica's `validForm`: blank client id or topic is 101, a bad filter 102.
fn checked_pair(
    client_id: &Option<String>,
    topic: &Option<String>,
) -> Result<(String, String), Error> {
    let non_blank = |v: &Option<String>| {
        v.as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
            .ok_or(Error::MissingParam)
    };
    let client_id = non_blank(client_id)?;
    let topic = non_blank(topic)?;
    if !is_valid_topic_filter(&topic) {
        return Err(Error::InvalidParam);
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

async fn apply_subscriptions(app: &App, wanted: Vec<Wanted>) -> Result<(), Error> {
    for (client_id, mut requests) in group_by_client(wanted) {
        for request in &mut requests {
            let current = current_qos(app, &client_id, &request.topic_filter).await;
            request.qos = request.qos.max(current);
        }
        app.management
            .subscribe(&client_id, requests, OnBehalf::CreateIfAbsent)
            .await?;
    }
    Ok(())
}

/// The QoS the client already holds for exactly this filter (0 if none).
async fn current_qos(app: &App, client_id: &str, filter: &str) -> u8 {
    let existing = app
        .management
        .list_subscriptions(
            &SubscriptionFilter {
                client_id: Some(client_id.to_string()),
                topic_filter: Some(filter.to_string()),
                qos: None,
            },
            PageRequest::ALL,
        )
        .await;
    existing
        .items
        .iter()
        .filter(|s| s.client_id == client_id && s.topic_filter == filter)
        .map(|s| s.qos)
        .max()
        .unwrap_or(0)
}

async fn apply_unsubscriptions(app: &App, pairs: Vec<(String, String)>) -> Result<(), Error> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (client_id, filter) in pairs {
        match groups.iter_mut().find(|(c, _)| *c == client_id) {
            Some((_, filters)) => filters.push(filter),
            None => groups.push((client_id, vec![filter])),
        }
    }
    for (client_id, filters) in groups {
        match app.management.unsubscribe(&client_id, filters).await {
            // mica answers 1 whether or not there was anything to remove.
            Ok(_) | Err(MgmtError::ClientNotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Subscribe a client to a topic filter
///
/// A subscription on the client's behalf: it receives matching messages from the
/// moment this returns (no SUBACK, no retained messages). The client need not be
/// connected, nor even known yet.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/subscribe",
    tag = "subscriptions",
    operation_id = "subscribe",
    request_body(content = SubscribeForm, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Subscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no body, blank clientId or topic, qos outside 0..2; `{\"code\":102}` invalid filter", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` malformed JSON or wrong JSON type", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn subscribe(
    _: Authorized,
    State(app): State<App>,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    let form: SubscribeForm = form::json_object(&body)?;
    apply_subscriptions(&app, vec![form.check()?]).await?;
    Ok(ok_without_data())
}

/// Subscribe clients to topic filters
///
/// Subscriptions on behalf of one or more clients. Every element is validated before
/// any is applied.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/subscribe/batch",
    tag = "subscriptions",
    operation_id = "subscribeBatch",
    request_body(content = SubscribeBatch, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "All subscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no body, empty array, blank clientId or topic, qos outside 0..2; `{\"code\":102}` invalid filter. Nothing applied.", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` malformed JSON or not an array. Nothing applied.", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn subscribe_batch(
    _: Authorized,
    State(app): State<App>,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    let forms: Vec<SubscribeForm> = form::json_array(&body)?;
    let wanted = forms
        .iter()
        .map(SubscribeForm::check)
        .collect::<Result<Vec<_>, _>>()?;
    apply_subscriptions(&app, wanted).await?;
    Ok(ok_without_data())
}

/// Unsubscribe a client from a topic filter
///
/// Removes the client's subscription to exactly this filter; `{"code":1}` even if
/// there was none.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/unsubscribe",
    tag = "subscriptions",
    operation_id = "unsubscribe",
    request_body(content = UnsubscribeForm, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Unsubscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no body, blank clientId or topic; `{\"code\":102}` invalid filter", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` malformed JSON or wrong JSON type", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn unsubscribe(
    _: Authorized,
    State(app): State<App>,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    let form: UnsubscribeForm = form::json_object(&body)?;
    apply_unsubscriptions(&app, vec![form.check()?]).await?;
    Ok(ok_without_data())
}

/// Unsubscribe clients from topic filters
///
/// Removes several subscriptions. Every element is validated before any is applied.
#[utoipa::path(
    post,
    path = "/api/v1/mqtt/unsubscribe/batch",
    tag = "subscriptions",
    operation_id = "unsubscribeBatch",
    request_body(content = UnsubscribeBatch, description = "Read as JSON whatever the Content-Type", content_type = "application/json"),
    responses(
        (status = 200, description = "Unsubscribed: `{\"code\":1}`", body = CodeResponse, content_type = "application/json", example = json!({"code": 1})),
        (status = 400, description = "`{\"code\":101}` no body, empty array, blank clientId or topic; `{\"code\":102}` invalid filter. Nothing applied.", body = CodeResponse, content_type = "application/json", example = json!({"code": 101})),
        (status = 401, description = "Missing or wrong credentials", body = CodeResponse, content_type = "application/json", example = json!({"code": 103})),
        (status = 500, description = "`{\"code\":105}` malformed JSON or not an array. Nothing applied.", body = CodeResponse, content_type = "application/json", example = json!({"code": 105})),
    )
)]
pub async fn unsubscribe_batch(
    _: Authorized,
    State(app): State<App>,
    RawBody(body): RawBody,
) -> Result<Response, Error> {
    let forms: Vec<UnsubscribeForm> = form::json_array(&body)?;
    let pairs = forms
        .iter()
        .map(UnsubscribeForm::check)
        .collect::<Result<Vec<_>, _>>()?;
    apply_unsubscriptions(&app, pairs).await?;
    Ok(ok_without_data())
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
        assert_eq!(form(" ", "a", 0).check(), Err(Error::MissingParam));
        assert_eq!(form("c", "", 0).check(), Err(Error::MissingParam));
        assert_eq!(form("c", "a/#/b", 0).check(), Err(Error::InvalidParam));
        assert_eq!(form("c", "a+", 0).check(), Err(Error::InvalidParam));
        assert_eq!(form("c", "a", 3).check(), Err(Error::MissingParam));
        assert_eq!(form("c", "a", -1).check(), Err(Error::MissingParam));
        assert_eq!(SubscribeForm::default().check(), Err(Error::MissingParam));
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
}
