//! rumqttd 0.20's own server (`rumqttd::Broker`) as a peer for side-by-side runs,
//! with router settings under which it loses nothing in mqbench's scenarios:
//! 100 MiB × 10 commit-log segments per filter (rumqttd's own example figures),
//! deep outgoing queues, 100 inflight per client.
//!
//! `mqbench-rumqttd [--listen 127.0.0.1:1885] [--listen-v5 ADDR]`; runs until killed.

use std::collections::HashMap;
use std::net::SocketAddr;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "mqbench-rumqttd",
    about = "rumqttd's own MQTT server, as a benchmark peer"
)]
struct Cli {
    /// MQTT 3.1.1 listener.
    #[arg(long, default_value = "127.0.0.1:1885")]
    listen: SocketAddr,
    /// MQTT 5 listener (none unless given).
    #[arg(long)]
    listen_v5: Option<SocketAddr>,
    /// Most clients connected at once.
    #[arg(long, default_value_t = 100_000)]
    max_connections: usize,
}

fn server(name: &str, listen: SocketAddr) -> rumqttd::ServerSettings {
    rumqttd::ServerSettings {
        name: name.into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    }
}

fn main() {
    let cli = Cli::parse();
    let router = rumqttd::RouterConfig {
        max_connections: cli.max_connections,
        max_outgoing_packet_count: 200_000,
        max_segment_size: 100 * 1024 * 1024,
        max_segment_count: 10,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    let config = rumqttd::Config {
        id: 0,
        router,
        v4: Some(HashMap::from([(
            "v4".to_string(),
            server("v4", cli.listen),
        )])),
        v5: cli
            .listen_v5
            .map(|addr| HashMap::from([("v5".to_string(), server("v5", addr))])),
        ..Default::default()
    };
    println!(
        "rumqttd 0.20 on {} (pid {})",
        cli.listen,
        std::process::id()
    );
    let mut broker = rumqttd::Broker::new(config);
    if let Err(e) = broker.start() {
        eprintln!("mqbench-rumqttd: {e}");
        std::process::exit(1);
    }
}
