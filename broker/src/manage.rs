//! What the management APIs do to clients: look them up, list them, kick them,
//! and change their subscriptions on their behalf (plain calls into the routing
//! core: the client sees no packet).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::{
    ClientFilter, ClientInfo, KickOptions, KickOutcome, MgmtError, OnBehalf, Page, PageRequest,
    Stats, SubscribeOutcome, SubscriptionFilter, SubscriptionInfo, SubscriptionRequest,
};
use tokio::sync::oneshot;

use crate::broker::Broker;
use crate::cluster::query::{Query, To};
use crate::cluster::remote::{Answer, Command};
use crate::cluster::Cluster;
use crate::session::{ClientDetails, Control, Session, SessionKind, SubOptions};
use crate::wire::reason;

/// How long a kick waits for the connection's teardown.
const KICK_WAIT: Duration = Duration::from_secs(5);

/// Client ids per look-up query: their JSON stays well under NATS's largest message.
const LOOKUP_BYTES: usize = 256 * 1024;

/// `client_ids` in batches of at most [`LOOKUP_BYTES`].
fn lookup_batches<'a>(
    client_ids: impl Iterator<Item = &'a str>,
) -> impl Iterator<Item = Vec<String>> {
    let mut batches: Vec<Vec<String>> = Vec::new();
    let mut bytes = usize::MAX;
    for id in client_ids {
        if bytes.saturating_add(id.len()) > LOOKUP_BYTES {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += id.len() + 3;
        batches
            .last_mut()
            .expect("a batch was pushed")
            .push(id.to_string());
    }
    batches.into_iter()
}

impl Broker {
    /// Clients matching `filter`, on every node in cluster mode
    /// ([`crate::cluster::query`] says in which order).
    pub async fn list_clients(&self, filter: &ClientFilter, page: PageRequest) -> Page<ClientInfo> {
        let here = |offset, limit| self.table.list_range(filter, offset, limit);
        let Some(cluster) = self.linked() else {
            return here(page.offset(), page.limit);
        };
        let ask = |offset, limit| Query::Clients {
            filter: filter.clone(),
            offset,
            limit,
        };
        cluster.page(here, ask, page).await
    }

    /// Clients by id, in the order asked; in cluster mode, those held
    /// by no session here are looked for on the other nodes.
    pub async fn get_clients(&self, client_ids: &[&str]) -> Vec<Option<ClientInfo>> {
        let mut found: Vec<Option<ClientInfo>> = client_ids
            .iter()
            .map(|id| self.table.get(id).map(|s| s.info()))
            .collect();
        let Some(cluster) = self.linked() else {
            return found;
        };
        let mut missing: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, id) in client_ids.iter().enumerate() {
            if found[i].is_none() {
                missing.entry(id).or_default().push(i);
            }
        }
        let asked = lookup_batches(missing.keys().copied()).map(|client_ids| {
            let query = Query::Lookup { client_ids };
            async move { cluster.gather::<ClientInfo>(To::Every, &query).await }
        });
        for answer in futures::future::join_all(asked).await.into_iter().flatten() {
            for info in answer.items {
                for &i in missing.get(info.client_id.as_str()).into_iter().flatten() {
                    // an id held on two nodes a moment after a takeover: the connected one
                    if found[i].as_ref().is_none_or(|f| !f.connected) {
                        found[i] = Some(info.clone());
                    }
                }
            }
        }
        found
    }

    pub async fn list_subscriptions(
        &self,
        filter: &SubscriptionFilter,
        page: PageRequest,
    ) -> Page<SubscriptionInfo> {
        let here = |offset, limit| self.table.subscriptions_range(filter, offset, limit);
        let Some(cluster) = self.linked() else {
            return here(page.offset(), page.limit);
        };
        let ask = |offset, limit| Query::Subscriptions {
            filter: filter.clone(),
            offset,
            limit,
        };
        cluster.page(here, ask, page).await
    }

    /// Every node's figures, this node's first, then the others' by name.
    pub async fn nodes(&self) -> Vec<Stats> {
        let mut nodes = vec![self.node_stats()];
        if let Some(cluster) = self.linked() {
            let mut others: Vec<Stats> = cluster
                .gather::<Stats>(To::Every, &Query::Stats)
                .await
                .into_iter()
                .flat_map(|a| a.items)
                .collect();
            others.sort_by(|a, b| a.cluster_node.cmp(&b.cluster_node));
            nodes.extend(others);
        }
        nodes
    }

    /// The cluster, while it can be asked.
    fn linked(&self) -> Option<&Arc<Cluster>> {
        self.cluster.get().filter(|c| c.is_connected())
    }

    /// Closes a client's connection (MQTT 5: DISCONNECT 0x98; its will is
    /// published) and, if asked, ends its session; on whichever node holds it.
    pub async fn kick(
        &self,
        client_id: &str,
        options: KickOptions,
    ) -> Result<KickOutcome, MgmtError> {
        let command = || Command::Kick {
            discard_session: options.discard_session,
        };
        match self.elsewhere(client_id, command).await? {
            Some(answer) => answer.kicked(),
            None => self.kick_here(client_id, options).await,
        }
    }

    /// In cluster mode, for a client id this node holds no session of: the
    /// answer of the node that does, if one does.
    async fn elsewhere(
        &self,
        client_id: &str,
        command: impl FnOnce() -> Command,
    ) -> Result<Option<Answer>, MgmtError> {
        let Some(cluster) = self.cluster.get() else {
            return Ok(None);
        };
        if self.table.get(client_id).is_some() || self.table.get_pending(client_id).is_some() {
            return Ok(None);
        }
        cluster.command(client_id, command()).await
    }

    /// [`Self::kick`] of a client of this node.
    pub(crate) async fn kick_here(
        &self,
        client_id: &str,
        options: KickOptions,
    ) -> Result<KickOutcome, MgmtError> {
        let Some(session) = self.table.get(client_id) else {
            return Ok(KickOutcome::NotFound);
        };
        if let Some(control) = session.control() {
            let (done, wait) = oneshot::channel();
            let close = Control::Close {
                reason: reason::ADMINISTRATIVE_ACTION,
                discard: options.discard_session,
                done: Some(done),
            };
            control.send(close);
            let _ = tokio::time::timeout(KICK_WAIT, wait).await;
            return Ok(KickOutcome::Disconnected);
        }
        if !options.discard_session {
            return Ok(KickOutcome::NotFound);
        }
        let _guard = self.locks.lock(client_id).await;
        if session.kind() == SessionKind::Connected {
            // it reconnected meanwhile: that connection's session is not ours to end
            return Ok(KickOutcome::Disconnected);
        }
        self.end_session(&session);
        Ok(KickOutcome::SessionDiscarded)
    }

    fn check_filter(&self, filter: &str) -> Result<(), MgmtError> {
        let valid = mqgate_kit::topic::is_valid_topic_filter(filter)
            && filter.split('/').count() <= self.settings.max_topic_levels;
        match valid {
            true => Ok(()),
            false => Err(MgmtError::InvalidTopicFilter(filter.to_string())),
        }
    }

    /// The filter as routed for this session (its mountpoint prepended).
    fn mounted(session: &Session, filter: &str) -> String {
        match session.state().details.mountpoint.clone() {
            None => filter.to_string(),
            Some(mount) => crate::connection::mount_filter(&mount, filter),
        }
    }

    /// Subscribes a client on its behalf; matching messages are routed to it from
    /// the moment this returns (queued while it is offline). Retained messages
    /// are not sent. A client held by another node is subscribed there; a
    /// subscription kept for an unknown client id stays on this node.
    pub async fn subscribe(
        &self,
        client_id: &str,
        requests: Vec<SubscriptionRequest>,
        mode: OnBehalf,
    ) -> Result<SubscribeOutcome, MgmtError> {
        self.check_requests(&requests)?;
        let command = || Command::Subscribe {
            subscriptions: requests
                .iter()
                .map(|r| (r.topic_filter.clone(), r.qos))
                .collect(),
        };
        match self.elsewhere(client_id, command).await? {
            Some(answer) => answer.subscribed(),
            None => self.subscribe_here(client_id, requests, mode).await,
        }
    }

    /// Every filter valid and every QoS 0-2 (also for requests from another
    /// node: what arrives over NATS is checked here like any API input).
    pub(crate) fn check_requests(&self, requests: &[SubscriptionRequest]) -> Result<(), MgmtError> {
        for r in requests {
            self.check_filter(&r.topic_filter)?;
            if r.qos > 2 {
                return Err(MgmtError::InvalidQos(r.qos));
            }
        }
        Ok(())
    }

    /// [`Self::subscribe`] on this node, of requests already checked.
    pub(crate) async fn subscribe_here(
        &self,
        client_id: &str,
        requests: Vec<SubscriptionRequest>,
        mode: OnBehalf,
    ) -> Result<SubscribeOutcome, MgmtError> {
        let _guard = self.locks.lock(client_id).await;
        if let Some(session) = self.table.get(client_id) {
            for r in requests {
                let filter = Self::mounted(&session, &r.topic_filter);
                self.router
                    .subscribe(&session, &filter, SubOptions::with_qos(r.qos));
            }
            return Ok(match session.kind() {
                SessionKind::Connected => SubscribeOutcome::Live,
                _ => SubscribeOutcome::Offline,
            });
        }
        let pending = match (self.table.get_pending(client_id), mode) {
            (Some(p), _) => p,
            (None, OnBehalf::CreateIfAbsent) => {
                let p = Session::new(
                    self.next_session_id(),
                    client_id.into(),
                    SessionKind::Pending,
                    ClientDetails::placeholder(mqgate_kit::clock::now_ms()),
                );
                self.table.insert(&p);
                if let Some(cluster) = self.cluster.get() {
                    // the node where the id first connects claims these
                    cluster.hold(&p.client_id, p.id);
                }
                p
            }
            (None, OnBehalf::ExistingSession) => return Err(MgmtError::ClientNotFound),
        };
        for r in requests {
            pending.record_subscription(&r.topic_filter, SubOptions::with_qos(r.qos));
        }
        Ok(SubscribeOutcome::Pending)
    }

    /// Removes subscriptions of a client, on whichever node holds it; per
    /// filter, whether it existed.
    pub async fn unsubscribe(
        &self,
        client_id: &str,
        filters: Vec<String>,
    ) -> Result<Vec<bool>, MgmtError> {
        let command = || Command::Unsubscribe {
            filters: filters.clone(),
        };
        match self.elsewhere(client_id, command).await? {
            Some(answer) => answer.unsubscribed(),
            None => self.unsubscribe_here(client_id, filters).await,
        }
    }

    /// [`Self::unsubscribe`] on this node.
    pub(crate) async fn unsubscribe_here(
        &self,
        client_id: &str,
        filters: Vec<String>,
    ) -> Result<Vec<bool>, MgmtError> {
        let _guard = self.locks.lock(client_id).await;
        if let Some(session) = self.table.get(client_id) {
            return Ok(filters
                .iter()
                .map(|f| {
                    let filter = Self::mounted(&session, f);
                    self.router.unsubscribe(&session, &filter)
                })
                .collect());
        }
        let Some(pending) = self.table.get_pending(client_id) else {
            return Err(MgmtError::ClientNotFound);
        };
        let existed = filters
            .iter()
            .map(|f| pending.forget_subscription(f))
            .collect();
        if pending.subscription_count() == 0 {
            self.forget_pending(&pending);
        }
        Ok(existed)
    }
}
