//! MQTT 1→1 throughput through mqgate and, in the same run, through rumqttd's own
//! `Broker` with the same router settings: one rumqttc publisher, one rumqttc
//! subscriber, one topic, 64-byte payloads, TCP_NODELAY on both clients.
//!
//! Run: `cargo bench --bench throughput` (env: RUNS=5, QOS0_MESSAGES=200000,
//! QOS1_MESSAGES=100000). Prints every run and the medians.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, NetworkOptions, Packet, QoS};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(addr: SocketAddr, id: &str) -> (AsyncClient, EventLoop) {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(60));
    o.set_inflight(100);
    let (c, mut ev) = AsyncClient::new(o, 1000);
    let mut net = NetworkOptions::new();
    net.set_tcp_nodelay(true);
    ev.set_network_options(net);
    (c, ev)
}

/// One run: returns messages per second received by the subscriber.
async fn run_once(addr: SocketAddr, qos: QoS, messages: usize, run: usize) -> f64 {
    let topic = format!("bench/{run}/{qos:?}");
    let (sub, mut sub_ev) = client(addr, &format!("bench-sub-{run}-{qos:?}"));
    sub.subscribe(&topic, qos).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = sub_ev.poll().await.unwrap() {
            break;
        }
    }
    let (publisher, mut pub_ev) = client(addr, &format!("bench-pub-{run}-{qos:?}"));
    let pub_task = tokio::spawn(async move {
        loop {
            if pub_ev.poll().await.is_err() {
                break;
            }
        }
    });
    let payload = vec![b'x'; 64];
    let started = Instant::now();
    let producer = {
        let topic = topic.clone();
        tokio::spawn(async move {
            for _ in 0..messages {
                publisher
                    .publish(&topic, qos, false, payload.clone())
                    .await
                    .unwrap();
            }
            publisher
        })
    };
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received < messages && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), sub_ev.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => received += 1,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let publisher = producer.await.unwrap();
    let _ = publisher.disconnect().await;
    let _ = sub.disconnect().await;
    pub_task.abort();
    if received < messages {
        eprintln!("  lost {} of {messages}", messages - received);
    }
    received as f64 / elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// rumqttd's own server with the router settings mqgate's defaults give it.
fn start_rumqttd(addr: SocketAddr, defaults: &mqgate::config::Config) {
    let router = rumqttd::RouterConfig {
        max_connections: defaults.mqtt.max_connections + 2,
        max_outgoing_packet_count: defaults.mqtt.max_queued_messages as u64,
        max_segment_size: defaults.mqtt.router_segment_size,
        max_segment_count: defaults.mqtt.router_segment_count,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let server = rumqttd::ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: defaults.mqtt.max_packet_size as usize,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("v4".to_string(), server)])),
        ..Default::default()
    };
    std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        broker.start().unwrap();
    });
}

fn main() {
    let runs = env_or("RUNS", 5);
    let counts = [
        (QoS::AtMostOnce, env_or("QOS0_MESSAGES", 200_000)),
        (QoS::AtLeastOnce, env_or("QOS1_MESSAGES", 100_000)),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut config = mqgate::config::Config::for_tests(dir.path());
        // measure the broker, not the record keeper or the HTTP side
        config.records.scope = mqgate::recorder::RecordScope::Off;
        let gateway = mqgate::gateway::Gateway::start(config).await.unwrap();
        let mqgate_addr = gateway.mqtt_addr().unwrap();
        let rumqttd_addr: SocketAddr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        start_rumqttd(rumqttd_addr, &mqgate::config::Config::default());
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!("1→1 throughput, 64-byte payload, {runs} runs each, messages per second");
        for (qos, messages) in counts {
            let mut ours = Vec::new();
            let mut theirs = Vec::new();
            for run in 0..runs {
                let a = run_once(mqgate_addr, qos, messages, run).await;
                let b = run_once(rumqttd_addr, qos, messages, run + 1000).await;
                println!("  {qos:?} run {run}: mqgate {a:>10.0}   rumqttd Broker {b:>10.0}");
                ours.push(a);
                theirs.push(b);
            }
            let (m_ours, m_theirs) = (median(ours), median(theirs));
            println!(
                "{qos:?} ({messages} messages): median mqgate {m_ours:.0} msg/s, rumqttd Broker {m_theirs:.0} msg/s, ratio {:.2}",
                m_ours / m_theirs
            );
        }
        gateway.shutdown().await;
    });
}
