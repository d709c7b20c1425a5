//! Start-up, restart and shutdown of the whole gateway: the store, the broker,
//! the MQTT listeners, one HTTP listener per enabled dialect and the docs server.
//!
//! A stop or restart is one signal: every HTTP listener closes its socket at
//! once, idle connections close, requests in progress get
//! `http.shutdown_grace_secs` to finish (the answer to `ctrl/restart` itself
//! leaves this way), and requests begun after the signal get 503. A restart
//! starts the next instance as soon as the old sockets are closed; the old
//! instance's last connections end in the background within the grace.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mqgate_kit::{ControlAction, Dialect, DialectContext, Management, Store};
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::access;
use crate::config::{Config, ConfigError, HttpConfig, StoreBackend};
use crate::dialects::{self, DialectSpec};
use crate::docs::{self, DocsEntry};
use crate::http::{self, Serving};
use crate::listener::Listener;
use crate::management::GatewayManagement;
use crate::memory;
use crate::recorder::Recorder;
use crate::shared_files::{self, SharedFiles};
use crate::tls;
use mqgate_broker::{listeners, Broker};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr} for `{listener}`: {source}")]
    Bind {
        listener: Listener,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory: {0}")]
    Store(#[from] mqgate_kit::store::StoreError),
    #[error("store: PostgreSQL: {0}")]
    Postgres(mqgate_kit::store::StoreError),
    #[error("{0}")]
    Dialect(#[from] mqgate_kit::DialectBuildError),
    #[error("cluster: {0}")]
    Cluster(#[from] mqgate_broker::cluster::ClusterError),
    #[error("{0}")]
    SharedFiles(#[from] shared_files::LoadError),
}

pub struct Gateway;

/// A started gateway. Restarts (NanoMQ's `ctrl/restart`) happen inside it, on
/// the same addresses.
pub struct RunningGateway {
    addrs: Vec<(Listener, SocketAddr)>,
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
        let mut resolved = config;
        for (listener, addr) in &addrs {
            resolved.set_listen(*listener, *addr);
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
    /// The address `listener` is bound to, if it is enabled.
    pub fn addr(&self, listener: Listener) -> Option<SocketAddr> {
        self.addrs
            .iter()
            .find(|(l, _)| *l == listener)
            .map(|(_, a)| *a)
    }

    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.addr(Listener::MqttTcp)
    }

    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.addr(Listener::MqttWs)
    }

    pub fn docs_addr(&self) -> Option<SocketAddr> {
        self.addr(Listener::Docs)
    }

    /// The address of the dialect called `name` (a row of [`dialects::DIALECTS`]).
    pub fn dialect_addr(&self, name: &str) -> Option<SocketAddr> {
        self.addr(Listener::Dialect(dialects::find(name)?))
    }

    /// Every listener with the address it is bound to.
    pub fn listeners(&self) -> &[(Listener, SocketAddr)] {
        &self.addrs
    }

    /// The management interface of the running instance.
    pub fn management(&self) -> Arc<dyn Management> {
        self.current.lock().clone()
    }

    /// Waits until the gateway stops (a management `stop`, or [`Self::shutdown`]).
    pub async fn stopped(&mut self) {
        let _ = self.stopped.wait_for(|stopped| *stopped).await;
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
        let draining = instance.stop().await;
        if action == ControlAction::Stop {
            futures::future::join_all(draining.into_iter().map(Serving::ended)).await;
            break;
        }
        // the old instance's last connections end by themselves within the grace
        drop(draining);
        tracing::info!("restarting");
        match Instance::start(&config, control_tx.clone()).await {
            Ok(next) => {
                *current.lock() = Arc::clone(&next.management);
                instance = next;
                tracing::info!("restarted");
            }
            Err(e) => {
                tracing::error!("restart failed: {e}");
                break;
            }
        }
    }
    stopped.send_replace(true);
}

/// One life of the gateway between start and stop.
struct Instance {
    broker: Arc<Broker>,
    records: Option<Arc<Recorder>>,
    management: Arc<GatewayManagement>,
    addrs: Vec<(Listener, SocketAddr)>,
    http_shutdown: watch::Sender<bool>,
    http: Vec<Serving>,
    mqtt: Vec<JoinHandle<()>>,
    /// Every built dialect, told to stop its own workers at stop.
    dialects: Built,
    /// With a shared store: the task applying newer shared files.
    shared_files: Option<JoinHandle<()>>,
}

/// The URL a browser on this machine reaches a listener at.
pub fn server_url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

/// Every enabled listener's socket, bound before anything is served so that a
/// taken port fails the start.
struct Bound {
    mqtt: Vec<(Listener, TcpListener)>,
    http: Vec<(Listener, TcpListener)>,
    addrs: Vec<(Listener, SocketAddr)>,
}

impl Bound {
    fn bind(config: &Config) -> Result<Bound, StartError> {
        let mut bound = Bound {
            mqtt: Vec::new(),
            http: Vec::new(),
            addrs: Vec::new(),
        };
        for (listener, addr) in config.listeners() {
            let socket = listeners::bind(addr).map_err(|source| StartError::Bind {
                listener,
                addr,
                source,
            })?;
            bound
                .addrs
                .push((listener, socket.local_addr().expect("bound")));
            match listener {
                Listener::MqttTcp | Listener::MqttWs | Listener::MqttTls | Listener::MqttWss => {
                    bound.mqtt.push((listener, socket))
                }
                Listener::Docs | Listener::Dialect(_) => bound.http.push((listener, socket)),
            }
        }
        Ok(bound)
    }

    fn addr(&self, listener: Listener) -> SocketAddr {
        self.addrs
            .iter()
            .find(|(l, _)| *l == listener)
            .map(|(_, a)| *a)
            .expect("every bound listener has an address")
    }
}

/// The built dialects, in table order.
type Built = Vec<(&'static DialectSpec, Arc<dyn Dialect>)>;

impl Instance {
    async fn start(
        config: &Config,
        control: mpsc::UnboundedSender<ControlAction>,
    ) -> Result<Instance, StartError> {
        // unusable certificates fail the start before anything is opened
        let tls = tls_configs(config)?;
        // local files live here whatever the store: the NanoMQ, password and ACL
        // files, records.db and its records-blocks/, mqgate.db
        std::fs::create_dir_all(&config.data_dir).map_err(|source| {
            mqgate_kit::store::StoreError::CreateDir {
                path: config.data_dir.clone(),
                source,
            }
        })?;
        let store = open_store(config).await?;
        // the shared files over the local ones before the broker loads them
        let shared = SharedFiles::open(&store, config).await?;
        let records = Recorder::open(config, &store)?;
        let broker = start_broker(config, records.as_ref())?;
        if config.cluster.enabled {
            // before any listener: every session is announced to the cluster
            mqgate_broker::cluster::join(&broker, config.cluster.settings()).await?;
        }
        let bound = Bound::bind(config)?;
        let management = Arc::new(GatewayManagement::new(
            Arc::clone(&broker),
            records.clone(),
            config.clone(),
            bound.addrs.clone(),
            control,
        ));
        let built = build_dialects(config, &bound, &management, &store, &broker)?;
        let shared_files = shared.map(|shared| {
            let every = Duration::from_millis(config.store.files_poll_ms);
            shared_files::watch(shared, config.clone(), Arc::clone(&broker), every)
        });
        let addrs = bound.addrs.clone();
        let (http_shutdown, _) = watch::channel(false);
        let health = docs::health_router(Arc::clone(&management) as Arc<dyn Management>);
        let mut http = serve_http(config, bound.http, &built, health, &tls, &http_shutdown);
        // MQTT last: every authenticator is registered before the first CONNECT.
        let mut mqtt = Vec::new();
        for (listener, socket) in bound.mqtt {
            let tls = tls.get(&listener).cloned();
            match listener {
                Listener::MqttWs | Listener::MqttWss => http.push(http::serve(
                    listener.name(),
                    socket,
                    listeners::ws_router(Arc::clone(&broker), &config.mqtt.ws.paths),
                    config.http.limits(listener),
                    tls,
                    http_shutdown.subscribe(),
                )),
                _ => mqtt.push(listeners::spawn_tcp(Arc::clone(&broker), socket, tls)),
            }
        }
        for (listener, addr) in &addrs {
            tracing::info!("{listener} listening on {addr}");
        }
        memory::trim_after_shrinks(&broker);
        Ok(Instance {
            broker,
            records,
            management,
            addrs,
            http_shutdown,
            http,
            mqtt,
            dialects: built,
            shared_files,
        })
    }

    /// Stops the instance; what is returned resolves once its last HTTP
    /// connections have ended.
    async fn stop(mut self) -> Vec<Serving> {
        if let Some(watch) = self.shared_files.take() {
            watch.abort();
        }
        self.http_shutdown.send_replace(true);
        for serving in &mut self.http {
            serving.closed().await;
        }
        self.broker.shutdown(Duration::from_secs(5)).await;
        if let Some(r) = self.records.take() {
            // writes what is queued and joins the writer thread
            let _ = tokio::task::spawn_blocking(move || r.close()).await;
        }
        for task in self.mqtt {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        for (_, dialect) in self.dialects {
            let _ = tokio::task::spawn_blocking(move || dialect.shutdown()).await;
        }
        self.http
    }
}

/// The TLS configuration of every enabled HTTP listener that has one.
fn tls_configs(
    config: &Config,
) -> Result<HashMap<Listener, Arc<rustls::ServerConfig>>, StartError> {
    let mut out = HashMap::new();
    for (listener, _) in config.listeners() {
        let (files, alpn, key): (_, &[&[u8]], _) = match listener {
            // MQTT clients rarely offer ALPN, and a list they do not share would fail them
            Listener::MqttTls => (config.mqtt.tls.files(), &[], "mqtt.tls"),
            Listener::MqttWss => (config.mqtt.wss.files(), &[b"http/1.1"], "mqtt.wss"),
            _ => (config.http.tls(listener), &[b"http/1.1"], ""),
        };
        let Some(files) = files else {
            continue;
        };
        let server = tls::server_config(&files, alpn).map_err(|(file, e)| {
            let key = match key {
                "" => HttpConfig::tls_key(listener, file),
                section => format!("{section}.{}", tls::file_key(file)),
            };
            ConfigError::Invalid {
                key,
                message: e.to_string(),
            }
        })?;
        out.insert(listener, server);
    }
    Ok(out)
}

fn start_broker(
    config: &Config,
    records: Option<&Arc<Recorder>>,
) -> Result<Arc<Broker>, StartError> {
    let users = access::users(config)?;
    let broker = Broker::start(config.mqtt.broker_settings(config.hot(), users));
    broker.set_authorizer(access::authorizer(config)?);
    if let Some(r) = records {
        if let Some(slot) = r.id_slot() {
            broker.use_message_id_slot(slot);
        }
        broker.add_observer(Arc::clone(r) as Arc<dyn mqgate_kit::BrokerObserver>);
        let recorder = Arc::downgrade(r);
        broker.add_sys_counter(
            "$SYS/broker/records/dropped",
            Box::new(move || {
                recorder
                    .upgrade()
                    .map_or(0, |r| mqgate_kit::History::dropped_records(&*r))
            }),
        );
    }
    Ok(broker)
}

/// The configured store; connecting to PostgreSQL blocks, so not on a runtime thread.
async fn open_store(config: &Config) -> Result<Arc<Store>, StartError> {
    let (settings, data_dir) = (config.store.clone(), config.data_dir.clone());
    let opened = tokio::task::spawn_blocking(move || settings.open(&data_dir))
        .await
        .map_err(|e| mqgate_kit::store::StoreError::Join(e.to_string()))?;
    match config.store.backend {
        StoreBackend::Postgres => opened.map_err(StartError::Postgres),
        StoreBackend::Sqlite => Ok(opened?),
    }
}

/// Builds every enabled dialect and hands its CONNECT authenticator and event
/// observer to the broker.
fn build_dialects(
    config: &Config,
    bound: &Bound,
    management: &Arc<GatewayManagement>,
    store: &Arc<Store>,
    broker: &Broker,
) -> Result<Built, StartError> {
    let mut built = Vec::new();
    for spec in &dialects::DIALECTS {
        if !(spec.section)(config).enabled() {
            continue;
        }
        let context = DialectContext {
            management: Arc::clone(management) as Arc<dyn Management>,
            store: Arc::clone(store),
            data_dir: config.data_dir.clone(),
            listen: bound.addr(Listener::Dialect(spec)),
        };
        let dialect = (spec.build)(config, context)?;
        if let Some(a) = dialect.authenticator() {
            broker.add_authenticator(a);
        }
        if let Some(o) = dialect.observer() {
            broker.add_observer(o);
        }
        built.push((spec, dialect));
    }
    Ok(built)
}

fn serve_http(
    config: &Config,
    sockets: Vec<(Listener, TcpListener)>,
    built: &Built,
    health: axum::Router,
    tls: &HashMap<Listener, Arc<rustls::ServerConfig>>,
    shutdown: &watch::Sender<bool>,
) -> Vec<Serving> {
    sockets
        .into_iter()
        .map(|(listener, socket)| {
            let router = match listener {
                Listener::Dialect(spec) => dialect_of(built, spec).router(),
                _ => docs::router(docs_entries(built)).merge(health.clone()),
            };
            http::serve(
                listener.name(),
                socket,
                router,
                config.http.limits(listener),
                tls.get(&listener).cloned(),
                shutdown.subscribe(),
            )
        })
        .collect()
}

fn dialect_of<'a>(built: &'a Built, spec: &DialectSpec) -> &'a Arc<dyn Dialect> {
    built
        .iter()
        .find(|(s, _)| *s == spec)
        .map(|(_, d)| d)
        .expect("an enabled dialect is built")
}

fn docs_entries(built: &Built) -> Vec<DocsEntry> {
    built
        .iter()
        .map(|(spec, dialect)| DocsEntry {
            name: spec.name,
            title: dialect.title(),
            document: dialect.openapi(&docs::try_prefix(spec.name)),
            api: dialect.router(),
        })
        .collect()
}
