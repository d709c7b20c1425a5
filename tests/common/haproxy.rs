//! A real HAProxy (Debian's `haproxy`) in TCP mode in front of a few MQTT
//! listeners, its configuration and admin socket in a temporary directory.
//! Health checks every 200 ms (`fall 1 rise 1`) take a dead node out quickly;
//! the admin socket's `show stat` says which server holds how many sessions.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::{eventually_async, free_port, Process};

/// Set to `1` (CI does), a missing `haproxy` fails the test instead of skipping it.
pub const REQUIRE_ENV: &str = "MQGATE_REQUIRE_HAPROXY";

pub struct Haproxy {
    /// The frontend clients dial.
    pub addr: SocketAddr,
    socket: std::path::PathBuf,
    _process: Process,
    _dir: tempfile::TempDir,
}

/// One backend server as HAProxy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// `UP`, `DOWN`, ... (the `status` column).
    pub status: String,
    /// Current sessions through it (the `scur` column; health checks do not count).
    pub sessions: u64,
}

/// Starts HAProxy balancing (`leastconn`) over `servers` (name, MQTT address) and
/// waits until its frontend accepts connections and every server is `UP`. `None`
/// when it is not installed, unless `MQGATE_REQUIRE_HAPROXY=1`.
pub async fn start(servers: &[(&str, SocketAddr)]) -> Option<Haproxy> {
    let binary = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(binary) = binary else {
        assert!(
            std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
            "haproxy is not installed and {REQUIRE_ENV}=1"
        );
        eprintln!("SKIPPED: haproxy is not installed (apt-get install haproxy)");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("admin.sock");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(&config, configuration(addr, &socket, servers)).unwrap();
    let child = std::process::Command::new(binary)
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy starts");
    let haproxy = Haproxy {
        addr,
        socket,
        _process: Process(child),
        _dir: dir,
    };
    let ready = eventually_async(15, || async {
        let states = haproxy.servers();
        tokio::net::TcpStream::connect(addr).await.is_ok()
            && states.len() == servers.len()
            && states.values().all(|s| s.status == "UP")
    })
    .await;
    assert!(ready, "haproxy ready on {addr}: {:?}", haproxy.servers());
    Some(haproxy)
}

/// TCP mode; a connection to a server that refuses is tried again on another
/// (`retries`, `option redispatch`), so clients rarely meet a dead node even
/// before its health check fails.
fn configuration(
    addr: SocketAddr,
    socket: &std::path::Path,
    servers: &[(&str, SocketAddr)],
) -> String {
    let mut text = format!(
        "global\n    maxconn 1000\n    stats socket {} mode 600 level admin\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 5m\n    timeout server 5m\n\
         \x20   retries 3\n    option redispatch 1\n\
         frontend mqtt\n    bind {addr}\n    default_backend nodes\n\
         backend nodes\n    balance leastconn\n",
        socket.display()
    );
    for (name, server) in servers {
        text.push_str(&format!(
            "    server {name} {server} check inter 200ms fall 1 rise 1\n"
        ));
    }
    text
}

impl Haproxy {
    /// Each backend server's state by name, from `show stat` on the admin
    /// socket; empty when the socket does not answer (yet).
    pub fn servers(&self) -> BTreeMap<String, ServerState> {
        let Ok(text) = self.command("show stat") else {
            return BTreeMap::new();
        };
        let mut lines = text.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return BTreeMap::new();
        };
        let columns: Vec<&str> = header.split(',').collect();
        let column = |name: &str| columns.iter().position(|c| *c == name).unwrap();
        let (proxy, server, scur, status) = (
            column("pxname"),
            column("svname"),
            column("scur"),
            column("status"),
        );
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > status && f[proxy] == "nodes")
            .filter(|f| f[server] != "FRONTEND" && f[server] != "BACKEND")
            .map(|f| {
                let state = ServerState {
                    status: f[status].to_string(),
                    sessions: f[scur].parse().unwrap_or(0),
                };
                (f[server].to_string(), state)
            })
            .collect()
    }

    /// One command on the admin socket and its whole answer.
    fn command(&self, command: &str) -> std::io::Result<String> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(format!("{command}\n").as_bytes())?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        Ok(answer)
    }
}
