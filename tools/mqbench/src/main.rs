//! `mqbench`: see the crate doc and `mqbench --help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use mqbench::client::Target;
use mqbench::packet::Version;
use mqbench::pubsub::{Run, Shape};
use mqbench::{connect, http, idle, pubsub, Report};

#[derive(Parser)]
#[command(
    name = "mqbench",
    about = "Load any MQTT broker; check every message for loss, duplicates and order"
)]
struct Cli {
    /// The broker's MQTT address.
    #[arg(long, default_value = "127.0.0.1:1883", global = true)]
    host: String,
    /// Where the subscribers connect, when not to `--host` (another node of a
    /// cluster: messages then cross nodes).
    #[arg(long, global = true)]
    sub_host: Option<String>,
    /// MQTT version: 4 (3.1.1) or 5.
    #[arg(long, default_value_t = 4, global = true)]
    mqtt: u8,
    #[arg(long, global = true)]
    username: Option<String>,
    #[arg(long, global = true)]
    password: Option<String>,
    /// Appended to every client id (e.g. `@AppID` for Easemob clients).
    #[arg(long, default_value = "", global = true)]
    client_suffix: String,
    /// A run ends when nothing arrived for this long (what is missing is lost).
    #[arg(long, default_value_t = 5, global = true)]
    idle_secs: u64,
    /// Exit with 1 when anything was lost, duplicated, reordered or unacknowledged.
    #[arg(long, global = true)]
    strict: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args, Clone)]
struct Messages {
    /// QoS of publishes and subscriptions.
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// Messages per publisher.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Payload bytes (at least 20: publisher, sequence number, send time).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// Unacknowledged QoS 1/2 publishes per publisher.
    #[arg(long, default_value_t = 100)]
    inflight: usize,
}

#[derive(Subcommand)]
enum Scenario {
    /// One publisher, one subscriber, one topic.
    OneToOne(Messages),
    /// One publisher, many subscribers on its topic.
    FanOut {
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        #[command(flatten)]
        messages: Messages,
    },
    /// Many publishers on their own topics, one subscriber on a `+` filter.
    FanIn {
        #[arg(long, default_value_t = 100)]
        publishers: usize,
        #[command(flatten)]
        messages: Messages,
    },
    /// N publisher/subscriber pairs, each on its own topic.
    Pairs {
        #[arg(long, default_value_t = 1000)]
        pairs: usize,
        #[command(flatten)]
        messages: Messages,
    },
    /// CONNECT/CONNACK/DISCONNECT rate; concurrency 1 is sequential.
    Connect {
        #[arg(long, default_value_t = 2000)]
        count: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
    /// Resident memory of the broker process per idle connection, and after they left.
    Idle {
        /// The broker's process id (its /proc/<pid>/status is read).
        #[arg(long)]
        pid: u32,
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Filters each client subscribes to (unique ones, QoS 1).
        #[arg(long, default_value_t = 0)]
        filters: usize,
        /// Seconds to wait before each reading.
        #[arg(long, default_value_t = 2)]
        settle_secs: u64,
    },
    /// Latency of an HTTP GET (a management API).
    Http {
        #[arg(long)]
        url: String,
        /// `user:password` for HTTP Basic.
        #[arg(long)]
        basic: Option<String>,
        /// Extra header, `Name: value` (repeatable).
        #[arg(long)]
        header: Vec<String>,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
    },
}

fn pubsub_run(name: String, shape: Shape, pubs: usize, subs: usize, m: Messages, idle: u64) -> Run {
    Run {
        name,
        shape,
        publishers: pubs,
        subscribers: subs,
        count: m.count,
        qos: m.qos.min(2),
        payload: m.payload,
        inflight: m.inflight,
        idle: Duration::from_secs(idle),
        concurrency: 100,
        topic: format!("mqbench/{}", std::process::id()),
        clients: format!("mqbench-{}", std::process::id()),
    }
}

fn target(cli: &Cli) -> Target {
    Target {
        addr: cli.host.clone(),
        version: if cli.mqtt == 5 {
            Version::V5
        } else {
            Version::V4
        },
        username: cli.username.clone(),
        password: cli.password.clone(),
        client_suffix: cli.client_suffix.clone(),
    }
}

async fn run(cli: Cli) -> std::io::Result<Report> {
    let target = target(&cli);
    let idle_secs = cli.idle_secs;
    let shaped = |name: String, shape, pubs, subs, m: Messages| {
        pubsub_run(name, shape, pubs, subs, m, idle_secs)
    };
    match cli.scenario {
        Scenario::OneToOne(m) => {
            let name = format!("1to1-qos{}", m.qos);
            let subs = Target {
                addr: cli.sub_host.clone().unwrap_or_else(|| target.addr.clone()),
                ..target.clone()
            };
            pubsub::run_across(&target, &subs, &shaped(name, Shape::Shared, 1, 1, m)).await
        }
        Scenario::FanOut {
            subscribers,
            messages: m,
        } => {
            let name = format!("fanout-1to{subscribers}-qos{}", m.qos);
            pubsub::run(&target, &shaped(name, Shape::Shared, 1, subscribers, m)).await
        }
        Scenario::FanIn {
            publishers,
            messages: m,
        } => {
            let name = format!("fanin-{publishers}to1-qos{}", m.qos);
            pubsub::run(&target, &shaped(name, Shape::Wildcard, publishers, 1, m)).await
        }
        Scenario::Pairs { pairs, messages: m } => {
            let name = format!("pairs-{pairs}-qos{}", m.qos);
            pubsub::run(&target, &shaped(name, Shape::Pairs, pairs, pairs, m)).await
        }
        Scenario::Connect { count, concurrency } => connect::run(&target, count, concurrency).await,
        Scenario::Idle {
            pid,
            count,
            filters,
            settle_secs,
        } => {
            let idle = idle::Idle {
                pid,
                count,
                concurrency: 100,
                filters,
                settle: Duration::from_secs(settle_secs),
            };
            idle::run(&target, &idle).await
        }
        Scenario::Http {
            url,
            basic,
            header,
            requests,
            concurrency,
        } => {
            http::run(&http::Get {
                url,
                basic,
                headers: header,
                requests,
                concurrency,
            })
            .await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let strict = cli.strict;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(report) => {
            println!(
                "{}: {:.1} {} (p50 {:.3} ms, p99 {:.3} ms), {} of {} arrived, lost {}, duplicates {}, reordered {}, unacknowledged {}",
                report.name,
                report.rate,
                report.unit,
                report.p50_ms,
                report.p99_ms,
                report.received,
                report.expected,
                report.lost,
                report.duplicates,
                report.reordered,
                report.unacked
            );
            println!("{}", report.result_line());
            if strict && !report.is_clean() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("mqbench: {e}");
            ExitCode::from(2)
        }
    }
}
