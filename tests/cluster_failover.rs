//! Cluster mode, node failure: three `mqgate` processes on a real `nats-server`
//! and a throwaway PostgreSQL (`[store] backend = "postgres"`), behind a real
//! HAProxy (TCP, health checks every 200 ms). One node is killed with SIGKILL:
//! its clients reconnect through the balancer to the others and messages flow
//! again, every RealMQ registry write it acknowledged is still there (listed and
//! logging in), and the survivors' client lists stop showing its sessions.
//! SKIPPED without `nats-server`, `postgresql` or `haproxy`, unless the matching
//! `MQGATE_REQUIRE_*` is `1` (as in CI).

mod common;
mod spawned;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::haproxy::{self, Haproxy};
use reqwest::Method;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::{json, Value};
use spawned::{Options, Spawned};

const NODES: usize = 3;
/// Clients dialled through the balancer; `leastconn` spreads them three per node.
const CLIENTS: usize = 9;
const TOPIC: &str = "failover/t";

/// Node `i` of the cluster: every listener on an ephemeral port, its registry in
/// the shared database, MQTT logins checked against it (no anonymous clients).
fn node(i: usize, nats_url: &str, postgres_url: &str) -> Spawned {
    let name = format!("node-{i}");
    Spawned::start(Options {
        env: vec![
            ("MQGATE__CLUSTER__ENABLED", "true"),
            ("MQGATE__CLUSTER__NODE_NAME", &name),
            ("MQGATE__CLUSTER__NATS_URL", nats_url),
            ("MQGATE__CLUSTER__RECONNECT_MAX_DELAY_MS", "200"),
            ("MQGATE__CLUSTER__MANAGEMENT_TIMEOUT_MS", "1000"),
            ("MQGATE__STORE__BACKEND", "postgres"),
            ("MQGATE__STORE__POSTGRES_URL", postgres_url),
            ("MQGATE__STORE__CONNECT_TIMEOUT_SECS", "2"),
            ("MQGATE__MQTT__ALLOW_ANONYMOUS", "false"),
        ],
        ..Options::default()
    })
}

/// A RealMQ API call (as `root`) to the node whose RealMQ listener is `api`.
async fn realmq(
    api: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), reqwest::Error> {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{api}{path}"))
        .basic_auth("root", Some("123456"))
        .timeout(Duration::from_secs(10));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Registers device `name` (username `u-<name>`, client id `c-<name>`, password
/// `pw-<name>`) of product `key` through `api`; `Ok` once the API acknowledged it.
async fn create_device(api: SocketAddr, key: &str, name: &str) -> Result<(), String> {
    let body = json!({
        "name": name, "product_key": key, "username": format!("u-{name}"),
        "mqtt_client_id": format!("c-{name}"), "password": format!("pw-{name}"),
    });
    match realmq(api, Method::POST, "/api/v1/devices", Some(body)).await {
        Ok((200, answer)) if answer == json!({"code": 0}) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

/// The names of the devices of product `key`, as `node`'s RealMQ API lists them.
async fn listed_devices(node: &Spawned, key: &str) -> HashSet<String> {
    let path = format!("/api/v1/devices?product_key={key}&_limit=1000");
    let (status, list) = realmq(node.addr("realmq"), Method::GET, &path, None)
        .await
        .expect("a surviving node answers");
    assert_eq!(status, 200, "{list}");
    let rows = list["data"].as_array().expect("a device list");
    rows.iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

/// The connected client ids on a client list: mica's `/api/v1/clients`
/// (`dialect` "mica") or NanoMQ's `/api/v4/clients` ("nanomq") at `addr`.
async fn listed_clients(dialect: &str, addr: SocketAddr) -> Vec<String> {
    let (path, user, password, ok) = match dialect {
        "mica" => ("/api/v1/clients?_page=1&_limit=10000", "mica", "mica", 1),
        _ => ("/api/v4/clients", "admin", "public", 0),
    };
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .basic_auth(user, Some(password))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("a surviving node answers");
    let status = response.status().as_u16();
    let list: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (status, &list["code"]),
        (200, &json!(ok)),
        "{dialect}: {list}"
    );
    let (rows, id, state, connected) = match dialect {
        "mica" => (&list["data"]["list"], "clientId", "connected", json!(true)),
        _ => (&list["data"], "client_id", "conn_state", json!("connected")),
    };
    let rows = rows.as_array().expect("a client list");
    rows.iter()
        .filter(|c| c[state] == connected)
        .map(|c| c[id].as_str().unwrap().to_string())
        .collect()
}

/// Polls the mica and NanoMQ client lists of `nodes` every 50 ms, up to 10 s,
/// until none shows `gone` or a client twice and each (lists are cluster-wide)
/// shows every one of `alive`; how long after `since` that first held.
async fn lists_converge(
    nodes: Vec<(SocketAddr, SocketAddr)>,
    alive: Vec<String>,
    gone: String,
    since: Instant,
) -> Option<Duration> {
    while since.elapsed() < Duration::from_secs(10) {
        let mut converged = true;
        for (mica, nanomq) in &nodes {
            for (dialect, addr) in [("mica", mica), ("nanomq", nanomq)] {
                let list = listed_clients(dialect, *addr).await;
                let distinct: HashSet<&String> = list.iter().collect();
                converged &= distinct.len() == list.len()
                    && !distinct.contains(&gone)
                    && alive.iter().all(|id| distinct.contains(id));
            }
        }
        if converged {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The CONNACK code `addr` answers device `name` with (`password` as given).
async fn device_connack(addr: SocketAddr, name: &str, password: &str) -> ConnectReturnCode {
    let mut options = MqttOptions::new(format!("c-{name}"), addr.ip().to_string(), addr.port());
    options.set_credentials(format!("u-{name}"), password);
    common::try_connect_v4(options)
        .await
        .unwrap_or_else(|e| panic!("no CONNACK from {addr}: {e}"))
}

/// What a member's event loop saw, shared with the test.
#[derive(Default)]
struct Seen {
    connacks: Vec<Instant>,
    /// Filters subscribed again after each reconnect (clean sessions start empty).
    filters: Vec<String>,
    /// Whether to dial again after the connection drops.
    reconnect: bool,
}

/// A device's MQTT client dialled through the balancer; its event loop re-dials
/// (rumqttc does so when polled after an error) every 100 ms while `reconnect`.
struct Member {
    id: String,
    client: AsyncClient,
    publishes: tokio::sync::mpsc::UnboundedReceiver<Publish>,
    seen: Arc<Mutex<Seen>>,
}

impl Member {
    async fn connect(balancer: SocketAddr, name: &str) -> Member {
        let id = format!("c-{name}");
        let mut options = MqttOptions::new(&id, balancer.ip().to_string(), balancer.port());
        options.set_credentials(format!("u-{name}"), format!("pw-{name}"));
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, publishes) = tokio::sync::mpsc::unbounded_channel();
        let seen = Arc::new(Mutex::new(Seen {
            reconnect: true,
            ..Seen::default()
        }));
        let (loop_seen, loop_client) = (Arc::clone(&seen), client.clone());
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let filters = {
                            let mut seen = loop_seen.lock().unwrap();
                            seen.connacks.push(Instant::now());
                            seen.filters.clone()
                        };
                        for filter in filters {
                            let _ = loop_client.try_subscribe(filter, QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(_) => {}
                    Err(_) if loop_seen.lock().unwrap().reconnect => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(_) => return,
                }
            }
        });
        let member = Member {
            id,
            client,
            publishes,
            seen,
        };
        assert!(
            member.connacks_within(1, Duration::from_secs(10)).await,
            "{} connects through the balancer",
            member.id
        );
        member
    }

    async fn subscribe(&self, filter: &str) {
        self.seen.lock().unwrap().filters.push(filter.to_string());
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
    }

    fn connacks(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().connacks.clone()
    }

    async fn connacks_within(&self, count: usize, within: Duration) -> bool {
        let seen = Arc::clone(&self.seen);
        common::eventually_async(within.as_secs(), move || {
            let seen = Arc::clone(&seen);
            async move { seen.lock().unwrap().connacks.len() >= count }
        })
        .await
    }

    /// Payloads received so far (without waiting).
    fn drain(&mut self) -> Vec<String> {
        let mut got = Vec::new();
        while let Ok(p) = self.publishes.try_recv() {
            got.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
        got
    }
}

/// The server whose session count grew by one against `before`.
async fn placed(haproxy: &Haproxy, before: &BTreeMap<String, u64>) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = sessions(haproxy);
        let grown: Vec<&String> = now
            .iter()
            .filter(|(name, n)| **n > before.get(*name).copied().unwrap_or(0))
            .map(|(name, _)| name)
            .collect();
        if grown.len() == 1 {
            return grown[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "placement unclear: {before:?} -> {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sessions(haproxy: &Haproxy) -> BTreeMap<String, u64> {
    haproxy
        .servers()
        .into_iter()
        .map(|(name, state)| (name, state.sessions))
        .collect()
}

/// Publishes `<label>-<n>` at QoS 1 every 200 ms until every subscriber has
/// received one (a new subscription reaches other nodes a NATS round trip after
/// its SUBACK), at most `secs`; how long that took.
async fn until_everyone_hears(
    publisher: &Member,
    subscribers: &mut [&mut Member],
    label: &str,
    secs: u64,
) -> Duration {
    let started = Instant::now();
    let mut heard = vec![false; subscribers.len()];
    for n in 0.. {
        publisher
            .client
            .publish(TOPIC, QoS::AtLeastOnce, false, format!("{label}-{n}"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (s, heard) in subscribers.iter_mut().zip(heard.iter_mut()) {
            *heard |= s.drain().iter().any(|p| p.starts_with(label));
        }
        if heard.iter().all(|h| *h) {
            return started.elapsed();
        }
        let deaf: Vec<&str> = subscribers
            .iter()
            .zip(&heard)
            .filter(|(_, h)| !**h)
            .map(|(s, _)| s.id.as_str())
            .collect();
        assert!(
            started.elapsed() < Duration::from_secs(secs),
            "{label}: no message reached {deaf:?} in {secs} s"
        );
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_clients_carry_on_through_the_balancer_and_nothing_acknowledged_is_lost() {
    let test_started = Instant::now();
    let Some(nats) = common::nats_server().await else {
        return;
    };
    let Some(pg) = mqgate_pgtest::server("node failure") else {
        return;
    };
    let postgres_url = pg.database();
    let mut nodes: Vec<Option<Spawned>> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..NODES)
            .map(|i| {
                let (nats_url, postgres_url) = (&nats.url, &postgres_url);
                scope.spawn(move || node(i, nats_url, postgres_url))
            })
            .collect();
        started
            .into_iter()
            .map(|s| Some(s.join().unwrap()))
            .collect()
    });
    let names: Vec<String> = (0..NODES).map(|i| format!("n{i}")).collect();
    let backends: Vec<(&str, SocketAddr)> = names
        .iter()
        .zip(&nodes)
        .map(|(name, node)| (name.as_str(), node.as_ref().unwrap().addr("mqtt.tcp")))
        .collect();
    let Some(balancer) = haproxy::start(&backends).await else {
        return;
    };
    let node0 = nodes[0].as_ref().unwrap();

    // 1. A product and the clients' devices, registered through node 0.
    let (status, product) = realmq(
        node0.addr("realmq"),
        Method::POST,
        "/api/v1/products",
        Some(json!({"name": "p-failover"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{product}");
    let key = product["data"]["product_key"].as_str().unwrap().to_string();
    let mut acknowledged: Vec<String> = Vec::new();
    for i in 0..CLIENTS {
        let name = format!("m{i}");
        create_device(node0.addr("realmq"), &key, &name)
            .await
            .unwrap();
        acknowledged.push(name);
    }

    // 2. The clients dialled one after another through the balancer; HAProxy's
    // session counts say which node each landed on.
    let mut by_node: BTreeMap<String, Vec<Member>> = BTreeMap::new();
    for i in 0..CLIENTS {
        let before = sessions(&balancer);
        let member = Member::connect(balancer.addr, &format!("m{i}")).await;
        let server = placed(&balancer, &before).await;
        by_node.entry(server).or_default().push(member);
    }
    let counts: Vec<usize> = names
        .iter()
        .map(|n| by_node.get(n).map_or(0, Vec::len))
        .collect();
    assert_eq!(counts, [3, 3, 3], "leastconn spreads the clients evenly");
    // Roles: on the node to be killed a subscriber, the publisher and a client
    // that will not dial again; on each other node a subscriber and two clients.
    let mut doomed = by_node.remove("n0").unwrap();
    let bystander = doomed.pop().unwrap();
    bystander.seen.lock().unwrap().reconnect = false;
    let publisher = doomed.pop().unwrap();
    let mut subscribers = vec![doomed.pop().unwrap()];
    let mut others = Vec::new();
    for members in by_node.into_values() {
        let mut members = members.into_iter();
        subscribers.push(members.next().unwrap());
        others.extend(members);
    }
    for s in &subscribers {
        s.subscribe(TOPIC).await;
    }
    let everyone: Vec<String> = subscribers
        .iter()
        .chain(&others)
        .chain([&publisher, &bystander])
        .map(|m| m.id.clone())
        .collect();
    for dialect in ["mica", "nanomq"] {
        let mut listed: HashSet<String> = HashSet::new();
        for node in nodes.iter().flatten() {
            listed.extend(listed_clients(dialect, node.addr(dialect)).await);
        }
        for id in &everyone {
            assert!(
                listed.contains(id),
                "{dialect}: {id} listed before the kill: {listed:?}"
            );
        }
    }
    // across nodes: the publisher is on node 0, two subscribers elsewhere
    until_everyone_hears(
        &publisher,
        &mut subscribers.iter_mut().collect::<Vec<_>>(),
        "before",
        10,
    )
    .await;

    // 3. Registry writes keep coming through node 0 while it is killed.
    let writes = Arc::new(Mutex::new(Vec::<String>::new()));
    let writer = {
        let (node0_api, key, writes) = (node0.addr("realmq"), key.clone(), Arc::clone(&writes));
        tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{i}");
                if create_device(node0_api, &key, &name).await.is_err() {
                    return;
                }
                writes.lock().unwrap().push(name);
            }
        })
    };
    let writes_seen = Arc::clone(&writes);
    assert!(
        common::eventually(10, move || writes_seen.lock().unwrap().len() >= 5).await,
        "registry writes through node 0 acknowledged"
    );
    let killed = Instant::now();
    drop(nodes[0].take()); // SIGKILL (Child::kill), then reaped
    let survivors: Vec<&Spawned> = nodes.iter().flatten().collect();
    let lists = tokio::spawn(lists_converge(
        survivors
            .iter()
            .map(|n| (n.addr("mica"), n.addr("nanomq")))
            .collect(),
        everyone
            .iter()
            .filter(|id| **id != bystander.id)
            .cloned()
            .collect(),
        bystander.id.clone(),
        killed,
    ));
    tokio::time::timeout(Duration::from_secs(15), writer)
        .await
        .expect("writes through the dead node stop")
        .unwrap();
    acknowledged.extend(writes.lock().unwrap().iter().cloned());

    // 4. HAProxy takes node 0 out; its clients dial again and land on the others.
    let down = common::eventually(10, || balancer.servers()["n0"].status.starts_with("DOWN")).await;
    assert!(
        down,
        "haproxy marks the dead node down: {:?}",
        balancer.servers()
    );
    let marked_down = killed.elapsed();
    let mut reconnects = Vec::new();
    for m in [&subscribers[0], &publisher] {
        assert!(
            m.connacks_within(2, Duration::from_secs(15)).await,
            "{} reconnects through the balancer",
            m.id
        );
        reconnects.push(m.connacks()[1] - killed);
    }
    let reconnect = reconnects.iter().max().copied().unwrap();
    assert!(
        reconnect < Duration::from_secs(10),
        "reconnected in {reconnect:?}"
    );
    let reconnected = CLIENTS - 1; // all but the bystander
    let landed = common::eventually(5, || {
        let now = sessions(&balancer);
        now["n0"] == 0 && now.values().sum::<u64>() == reconnected as u64
    })
    .await;
    assert!(
        landed,
        "every client on a surviving node: {:?}",
        sessions(&balancer)
    );
    for m in subscribers[1..].iter().chain(&others) {
        assert_eq!(
            m.connacks().len(),
            1,
            "{} on a surviving node kept its connection",
            m.id
        );
    }
    assert_eq!(bystander.connacks().len(), 1);

    // messages flow again end to end, the moved subscriber subscribed again
    let flowing = until_everyone_hears(
        &publisher,
        &mut subscribers.iter_mut().collect::<Vec<_>>(),
        "after",
        10,
    )
    .await;
    let flow_restored = killed.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    for s in subscribers.iter_mut() {
        s.drain();
    }
    publisher
        .client
        .publish(TOPIC, QoS::AtLeastOnce, false, "final")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for s in subscribers.iter_mut() {
        let finals = s.drain().into_iter().filter(|p| p == "final").count();
        assert_eq!(finals, 1, "{} gets the message once", s.id);
    }

    // No acknowledged registry write lost: every device is listed by each
    // survivor and the last one written logs in there (a wrong password does not).
    let last = acknowledged.last().unwrap().clone();
    for node in &survivors {
        let listed = listed_devices(node, &key).await;
        for name in &acknowledged {
            assert!(
                listed.contains(name),
                "{name} acknowledged, then lost: {listed:?}"
            );
        }
        let mqtt = node.addr("mqtt.tcp");
        let code = device_connack(mqtt, &last, &format!("pw-{last}")).await;
        assert_eq!(code, ConnectReturnCode::Success, "{last} logs in on {mqtt}");
        let code = device_connack(mqtt, &last, "not-the-password").await;
        assert_eq!(code, ConnectReturnCode::BadUserNamePassword);
    }
    let code = device_connack(balancer.addr, &last, &format!("pw-{last}")).await;
    assert_eq!(code, ConnectReturnCode::Success, "through the balancer too");

    // 5. The survivors' client lists: the dead node's session that did not come
    // back is gone, every other client listed once per list.
    let lists_converged = lists
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("the survivors' lists drop {} within 10 s", bystander.id));

    // RealMQ's status filter looks clients up cluster-wide: each survivor calls
    // online exactly the devices connected now, on whichever node
    let mut online_now: Vec<String> = everyone
        .iter()
        .filter(|id| **id != bystander.id)
        .map(|id| id.trim_start_matches("c-").to_string())
        .collect();
    online_now.sort();
    for node in &survivors {
        let path = format!("/api/v1/devices?product_key={key}&status=3&_limit=1000");
        let (status, list) = realmq(node.addr("realmq"), Method::GET, &path, None)
            .await
            .expect("a surviving node answers");
        assert_eq!(status, 200, "{list}");
        let mut online: Vec<String> = list["data"]
            .as_array()
            .expect("a device list")
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_string())
            .collect();
        online.sort();
        assert_eq!(online, online_now, "online through {}", node.addr("realmq"));
    }

    for node in &survivors {
        assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
    }
    eprintln!(
        "node failure: haproxy marked the node down after {marked_down:?}; its clients \
         reconnected within {reconnect:?} (each: {reconnects:?}); messages flowed again \
         {flow_restored:?} after the kill ({flowing:?} of publishing); {} acknowledged \
         devices all kept; lists without the dead node's session {lists_converged:?} after \
         the kill; whole test {:?}",
        acknowledged.len(),
        test_started.elapsed()
    );
}
