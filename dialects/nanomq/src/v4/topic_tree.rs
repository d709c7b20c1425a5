//! `GET /topic-tree` (and v1's req 13): the subscription tree level by level from the
//! root (topic `""`). Each node gives its level name, its number of children and, where
//! filters end, the subscribing clients (most recent first, as NanoMQ lists them).

use std::sync::Arc;

use axum::extract::State;
use mqgate_kit::{Management, PageRequest, SubscriptionFilter};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authorized;
use crate::reply::Reply;
use crate::state::App;

pub fn router() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::default().routes(routes!(list_topic_tree))
}

/// One node; the client list's key is `clientid` in v4 and `client_id` in v1.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
pub struct TreeNode {
    pub topic: String,
    pub cld_cnt: usize,
    /// Omitted when no filter ends here.
    #[schema(required = false)]
    pub clientid: Vec<String>,
    #[schema(ignore)]
    pub client_key: &'static str,
}

impl Serialize for TreeNode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let with_clients = !self.clientid.is_empty();
        let mut map = serializer.serialize_map(Some(2 + usize::from(with_clients)))?;
        map.serialize_entry("topic", &self.topic)?;
        map.serialize_entry("cld_cnt", &self.cld_cnt)?;
        if with_clients {
            map.serialize_entry(self.client_key, &self.clientid)?;
        }
        map.end()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopicTree {
    pub code: u16,
    pub data: Vec<Vec<TreeNode>>,
}

struct Node {
    name: String,
    children: Vec<usize>,
    clients: Vec<String>,
}

/// Builds the levels from `(client_id, filter)` pairs in subscription order.
pub fn build_levels<'a>(
    subscriptions: impl IntoIterator<Item = (&'a str, &'a str)>,
    client_key: &'static str,
) -> Vec<Vec<TreeNode>> {
    let mut nodes = vec![Node {
        name: String::new(),
        children: Vec::new(),
        clients: Vec::new(),
    }];
    for (client_id, filter) in subscriptions {
        let mut at = 0;
        for level in filter.split('/') {
            let existing = nodes[at]
                .children
                .iter()
                .copied()
                .find(|&c| nodes[c].name == level);
            at = match existing {
                Some(child) => child,
                None => {
                    nodes.push(Node {
                        name: level.to_string(),
                        children: Vec::new(),
                        clients: Vec::new(),
                    });
                    let child = nodes.len() - 1;
                    nodes[at].children.push(child);
                    child
                }
            };
        }
        if !nodes[at].clients.iter().any(|c| c == client_id) {
            nodes[at].clients.push(client_id.to_string());
        }
    }
    let mut levels = Vec::new();
    let mut current = vec![0usize];
    while !current.is_empty() {
        levels.push(
            current
                .iter()
                .map(|&i| TreeNode {
                    topic: nodes[i].name.clone(),
                    cld_cnt: nodes[i].children.len(),
                    clientid: nodes[i].clients.iter().rev().cloned().collect(),
                    client_key,
                })
                .collect(),
        );
        current = current
            .iter()
            .flat_map(|&i| nodes[i].children.iter().copied())
            .collect();
    }
    levels
}

/// The live tree from the broker's subscriptions.
pub async fn levels(management: &dyn Management, client_key: &'static str) -> Vec<Vec<TreeNode>> {
    let subscriptions = management
        .list_subscriptions(&SubscriptionFilter::default(), PageRequest::ALL)
        .await
        .items;
    build_levels(
        subscriptions
            .iter()
            .map(|s| (s.client_id.as_str(), s.topic_filter.as_str())),
        client_key,
    )
}

/// Get the topic tree
///
/// The subscription tree level by level from the root, with the clients where filters
/// end.
#[utoipa::path(
    get,
    path = "/api/v4/topic-tree",
    tag = "v4 topic-tree",
    responses((status = 200, description = "The tree, one array per level", body = TopicTree)),
    security(("basic" = []), ("bearer" = []))
)]
pub async fn list_topic_tree(_: Authorized, State(app): State<Arc<App>>) -> Reply {
    Reply::json(&TopicTree {
        code: 0,
        data: levels(app.management.as_ref(), "clientid").await,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_transcript() {
        let subs = [
            ("client-v5", "a/b/c"),
            ("client-v5", "sensor/+/temp"),
            ("client-v311", "a/b/c"),
        ];
        let levels = build_levels(subs, "clientid");
        assert_eq!(
            serde_json::to_string(&levels).unwrap(),
            r#"[[{"topic":"","cld_cnt":2}],[{"topic":"a","cld_cnt":1},{"topic":"sensor","cld_cnt":1}],[{"topic":"b","cld_cnt":1},{"topic":"+","cld_cnt":1}],[{"topic":"c","cld_cnt":0,"clientid":["client-v311","client-v5"]},{"topic":"temp","cld_cnt":0,"clientid":["client-v5"]}]]"#
        );
    }
}
