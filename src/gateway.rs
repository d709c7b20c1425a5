//! Start-up, restart and shutdown of the whole gateway: the store, the broker,
//! the MQTT listeners, one HTTP listener per enabled dialect and the docs server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::{ControlAction, Dialect, DialectConfig, DialectContext, Management, Store};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::broker::{listeners, Broker, BrokerSettings};
use crate::config::Config;
use crate::management::GatewayManagement;
use crate::recorder::Recorder;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr} for `{name}`: {source}")]
    Bind {
        name: String,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory: {0}")]
    Store(#[from] mqgate_kit::store::StoreError),
    #[error("{0}")]
    Dialect(#[from] mqgate_kit::DialectBuildError),
    #[error("broker: {0}")]
    Broker(String),
}

pub struct Gateway;

/// A started gateway. Restarts (NanoMQ's `ctrl/restart`) happen inside it, on
/// the same addresses.
pub struct RunningGateway {
    addrs: Vec<(String, SocketAddr)>,
    control: mpsc::UnboundedSender<ControlAction>,
    current: Arc<Mutex<Arc<GatewayManagement>>>,
    stopped: watch::Receiver<bool>,
    supervisor: JoinHandle<()>,
}

impl Gateway {
    pub async fn start(config: Config) -> Result<RunningGateway, StartError> {
        config.validate()?;
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let instance = Instance::start(&config, control_tx.clone()).await?;
        let addrs = instance.addrs.clone();
        // a restart binds the same addresses again, ephemeral ports included
        let mut resolved = config.clone();
        for (name, addr) in &addrs {
            match name.as_str() {
                "mqtt.tcp" => resolved.mqtt.tcp.listen = *addr,
                "mqtt.ws" => resolved.mqtt.ws.listen = *addr,
                "docs" => resolved.docs.listen = *addr,
                "mica" => resolved.mica.listen = *addr,
                "nanomq" => resolved.nanomq.listen = *addr,
                "realmq" => resolved.realmq.listen = *addr,
                "easemob" => resolved.easemob.listen = *addr,
                _ => {}
            }
        }
        let current = Arc::new(Mutex::new(Arc::clone(&instance.management)));
        let (stopped_tx, stopped) = watch::channel(false);
        let supervisor = tokio::spawn(supervise(
            instance,
            resolved,
            control_rx,
            control_tx.clone(),
            Arc::clone(&current),
            stopped_tx,
        ));
        Ok(RunningGateway {
            addrs,
            control: control_tx,
            current,
            stopped,
            supervisor,
        })
    }
}

impl RunningGateway {
    fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.addrs.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.addr("mqtt.tcp")
    }

    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.addr("mqtt.ws")
    }

    pub fn docs_addr(&self) -> Option<SocketAddr> {
        self.addr("docs")
    }

    pub fn dialect_addr(&self, name: &str) -> Option<SocketAddr> {
        self.addr(name)
    }

    /// Every listener with the address it is bound to.
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.addrs
    }

    /// The management interface of the running instance.
    pub fn management(&self) -> Arc<dyn Management> {
        self.current.lock().clone()
    }

    /// Waits until the gateway stops (a management `stop`, or [`Self::shutdown`]).
    pub async fn stopped(&mut self) {
        while !*self.stopped.borrow() {
            if self.stopped.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stops gracefully and waits for the end.
    pub async fn shutdown(self) {
        let _ = self.control.send(ControlAction::Stop);
        let _ = self.supervisor.await;
    }
}

async fn supervise(
    mut instance: Instance,
    config: Config,
    mut control_rx: mpsc::UnboundedReceiver<ControlAction>,
    control_tx: mpsc::UnboundedSender<ControlAction>,
    current: Arc<Mutex<Arc<GatewayManagement>>>,
    stopped: watch::Sender<bool>,
) {
    loop {
        let action = control_rx.recv().await.unwrap_or(ControlAction::Stop);
        // let the HTTP answer that asked for this leave first
        tokio::time::sleep(Duration::from_millis(100)).await;
        instance.stop().await;
        if action == ControlAction::Stop {
            break;
        }
        tracing::info!("restarting");
        match Instance::start(&config, control_tx.clone()).await {
            Ok(next) => {
                *current.lock() = Arc::clone(&next.management);
                instance = next;
            }
            Err(e) => {
                tracing::error!("restart failed: {e}");
                break;
            }
        }
    }
    let _ = stopped.send(true);
}

/// One life of the gateway between start and stop.
struct Instance {
    broker: Arc<Broker>,
    records: Option<Arc<Recorder>>,
    management: Arc<GatewayManagement>,
    addrs: Vec<(String, SocketAddr)>,
    http_shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn bind(name: &str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    listeners::bind(addr).map_err(|source| StartError::Bind {
        name: name.to_string(),
        addr,
        source,
    })
}

/// The URL a browser on this machine reaches a listener at.
pub fn server_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

type DialectBuilder =
    Box<dyn FnOnce(DialectContext) -> Result<Arc<dyn Dialect>, mqgate_kit::DialectBuildError>>;

impl Instance {
    async fn start(
        config: &Config,
        control: mpsc::UnboundedSender<ControlAction>,
    ) -> Result<Instance, StartError> {
        let store = Store::open(&config.data_dir)?;
        let records = Recorder::open(config)?;
        let broker = Broker::start(BrokerSettings {
            max_connections: config.mqtt.max_connections,
            connect_timeout: Duration::from_secs(config.mqtt.connect_timeout_secs),
            hot: config.hot(),
            users: config
                .mqtt
                .users
                .iter()
                .map(|u| (u.username.clone(), u.password.clone()))
                .collect(),
            max_segment_size: config.mqtt.router_segment_size,
            max_segment_count: config.mqtt.router_segment_count,
            max_outgoing_packet_count: config.mqtt.max_queued_messages as u64,
        })
        .await
        .map_err(StartError::Broker)?;
        if let Some(r) = &records {
            broker.add_observer(Arc::clone(r) as Arc<dyn mqgate_kit::BrokerObserver>);
        }

        // Bind everything before serving anything, so a taken port fails the start.
        let mut addrs = Vec::new();
        let mut mqtt_listeners = Vec::new();
        if config.mqtt.tcp.enabled {
            let l = bind("mqtt.tcp", config.mqtt.tcp.listen)?;
            addrs.push(("mqtt.tcp".to_string(), l.local_addr().expect("bound")));
            mqtt_listeners.push(("tcp", l));
        }
        if config.mqtt.ws.enabled {
            let l = bind("mqtt.ws", config.mqtt.ws.listen)?;
            addrs.push(("mqtt.ws".to_string(), l.local_addr().expect("bound")));
            mqtt_listeners.push(("ws", l));
        }
        let mut builders: Vec<(&'static str, SocketAddr, DialectBuilder)> = Vec::new();
        macro_rules! dialect {
            ($name:literal, $cfg:expr, $krate:ident) => {
                if $cfg.enabled() {
                    let cfg = $cfg.clone();
                    builders.push((
                        $name,
                        $cfg.listen(),
                        Box::new(move |ctx| $krate::build(&cfg, ctx)),
                    ));
                }
            };
        }
        dialect!("mica", config.mica, mqgate_mica);
        dialect!("nanomq", config.nanomq, mqgate_nanomq);
        dialect!("realmq", config.realmq, mqgate_realmq);
        dialect!("easemob", config.easemob, mqgate_easemob);
        let mut http_listeners = Vec::new();
        for (name, listen, builder) in builders {
            let l = bind(name, listen)?;
            let addr = l.local_addr().expect("bound");
            addrs.push((name.to_string(), addr));
            http_listeners.push((name, addr, l, builder));
        }
        let docs_listener = if config.docs.enabled {
            let l = bind("docs", config.docs.listen)?;
            addrs.push(("docs".to_string(), l.local_addr().expect("bound")));
            Some(l)
        } else {
            None
        };

        let management = Arc::new(GatewayManagement::new(
            Arc::clone(&broker),
            records.clone(),
            config.clone(),
            addrs.clone(),
            control,
        ));
        let (http_shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut docs = Vec::new();
        for (name, addr, listener, builder) in http_listeners {
            let dialect = builder(DialectContext {
                management: Arc::clone(&management) as Arc<dyn Management>,
                store: Arc::clone(&store),
                data_dir: config.data_dir.clone(),
                listen: addr,
            })?;
            if let Some(a) = dialect.authenticator() {
                broker.add_authenticator(a);
            }
            if let Some(o) = dialect.observer() {
                broker.add_observer(o);
            }
            docs.push((name, dialect.title(), dialect.openapi(&server_url(addr))));
            tasks.push(serve_http(
                name,
                listener,
                dialect.router(),
                http_shutdown.subscribe(),
            ));
        }
        if let Some(listener) = docs_listener {
            tasks.push(serve_http(
                "docs",
                listener,
                crate::docs::router(docs),
                http_shutdown.subscribe(),
            ));
        }
        // MQTT last: every authenticator is registered before the first CONNECT.
        for (kind, listener) in mqtt_listeners {
            tasks.push(match kind {
                "tcp" => listeners::spawn_tcp(Arc::clone(&broker), listener),
                _ => listeners::spawn_ws(Arc::clone(&broker), listener, &config.mqtt.ws.path),
            });
        }
        for (name, addr) in &addrs {
            tracing::info!("{name} listening on {addr}");
        }
        Ok(Instance {
            broker,
            records,
            management,
            addrs,
            http_shutdown,
            tasks,
        })
    }

    async fn stop(self) {
        let _ = self.http_shutdown.send(true);
        self.broker.shutdown(Duration::from_secs(5)).await;
        if let Some(r) = &self.records {
            r.close();
        }
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

fn serve_http(
    name: &'static str,
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let serve = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown.changed().await;
        });
        if let Err(e) = serve.await {
            tracing::error!("{name} HTTP listener failed: {e}");
        }
    })
}
