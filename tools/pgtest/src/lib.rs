//! # mqgate-pgtest
//!
//! A PostgreSQL server for tests: the first call to [`server`] in a test binary runs
//! Debian's `initdb` into a temporary directory and starts `postgres` on an ephemeral
//! loopback port (its socket in that directory too); every later call in the same
//! binary gets the same server, and each test takes a fresh database of its own
//! ([`TestServer::database`]). The server stops when the test binary exits (a fast
//! shutdown, then the directory is removed), and dies with it if the binary is killed.
//!
//! PostgreSQL refuses to run as root: as root, the server runs as the `postgres`
//! user. Without the binaries (`apt-get install postgresql`; looked up under
//! `/usr/lib/postgresql/*/bin`, or `MQGATE_PG_BIN`), [`server`] prints `SKIPPED` and
//! returns `None`, and the test passes without PostgreSQL, except where
//! `MQGATE_REQUIRE_POSTGRES=1` (as in CI): there it fails.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The running server of this test binary.
pub struct TestServer {
    port: u16,
    dir: PathBuf,
}

/// What the exit handler stops and removes.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
}

static SERVER: OnceLock<Option<TestServer>> = OnceLock::new();
static RUNNING: Mutex<Option<Running>> = Mutex::new(None);
static DATABASES: AtomicU32 = AtomicU32::new(0);

/// Set to `1` (CI does), a missing PostgreSQL fails the test instead of skipping it.
pub const REQUIRE_ENV: &str = "MQGATE_REQUIRE_POSTGRES";

/// The server of this test binary, started on first use; `None` (after printing
/// `SKIPPED`) when PostgreSQL is not installed, unless [`REQUIRE_ENV`] is `1`: then
/// it panics. `test` names the caller in that line.
pub fn server(test: &str) -> Option<&'static TestServer> {
    let server = SERVER.get_or_init(|| {
        bin_dir().map(|bin| start(&bin).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}")))
    });
    if server.is_none() {
        not_installed(test, std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1"));
    }
    server.as_ref()
}

/// A transaction kept open on another connection (see [`TestServer::hold`]); rolled
/// back when dropped.
pub struct Held {
    release: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        drop(self.release.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Says the test is skipped, or fails it when PostgreSQL is `required`.
fn not_installed(test: &str, required: bool) {
    let how = "apt-get install postgresql, or set MQGATE_PG_BIN";
    if required {
        panic!("{test}: PostgreSQL is not installed and {REQUIRE_ENV}=1 ({how})");
    }
    println!("SKIPPED {test}: PostgreSQL is not installed ({how})");
}

impl TestServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` as the superuser `postgres`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new empty database; returns its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}", DATABASES.fetch_add(1, Ordering::Relaxed));
        self.admin(&format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` (statements separated by `;`) as the superuser on the
    /// `postgres` database: to take a test's database away and give it back.
    pub fn admin(&self, sql: &str) {
        let (admin, sql) = (self.url("postgres"), sql.to_string());
        // the client blocks on a runtime of its own: not on an async test's thread
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&admin, postgres::NoTls)?;
            client.batch_execute(&sql)
        })
        .join()
        .expect("the admin thread ends")
        .unwrap_or_else(|e| panic!("admin statement failed: {e}"));
    }

    /// Runs `sql` on the database at `url` in a transaction that stays open until
    /// the returned [`Held`] is dropped: the locks it takes are held, as by a
    /// stuck client.
    pub fn hold(&self, url: &str, sql: &str) -> Held {
        let (url, statement) = (url.to_string(), sql.to_string());
        let (ready_tx, ready) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let held = postgres::Client::connect(&url, postgres::NoTls).and_then(|mut client| {
                let mut tx = client.transaction()?;
                tx.batch_execute(&statement)?;
                let _ = ready_tx.send(Ok(()));
                // until the sender is dropped
                let _ = released.recv();
                tx.rollback()
            });
            if let Err(e) = held {
                let _ = ready_tx.send(Err(e.to_string()));
            }
        });
        ready
            .recv()
            .expect("the holding thread answers")
            .unwrap_or_else(|e| panic!("cannot hold `{sql}`: {e}"));
        Held {
            release: Some(release),
            thread: Some(thread),
        }
    }

    /// The server's directory (data and socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Debian's PostgreSQL binaries: `MQGATE_PG_BIN`, or the newest
/// `/usr/lib/postgresql/<version>/bin` with `initdb` in it.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MQGATE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// The user the server runs as: `postgres` when we are root, else ourselves.
fn server_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam returns null or a pointer to a static record, read at once.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        return Err("running as root, and there is no `postgres` user to run the server".into());
    }
    // SAFETY: not null, see above.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

fn as_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start(bin: &Path) -> Result<TestServer, String> {
    let user = server_user()?;
    let dir = tempfile::Builder::new()
        .prefix("mqgate-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let data = dir.path().join("data");
    let initdb = as_user(&mut Command::new(bin.join("initdb")), user)
        .current_dir(dir.path())
        .args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("initdb: {e}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let port = free_port().map_err(|e| e.to_string())?;
    let child = spawn_keeper(
        bin.join("postgres"),
        user,
        data,
        dir.path().to_path_buf(),
        port,
    )?;
    let server = TestServer {
        port,
        dir: dir.path().to_path_buf(),
    };
    *RUNNING.lock().unwrap() = Some(Running { child, dir });
    // SAFETY: registers a plain function without arguments.
    unsafe { libc::atexit(stop_at_exit) };
    wait_ready(&server)?;
    Ok(server)
}

/// Starts the server from a thread that lives as long as the process: the server is
/// told to die with its parent thread (PR_SET_PDEATHSIG), i.e. with the process.
fn spawn_keeper(
    postgres: PathBuf,
    user: Option<(u32, u32)>,
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
) -> Result<Child, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("pgtest-keeper".into())
        .spawn(move || {
            let mut command = Command::new(postgres);
            as_user(&mut command, user)
                .current_dir(&socket_dir)
                .arg("-D")
                .arg(&data)
                .arg("-k")
                .arg(&socket_dir)
                .args(["-p", &port.to_string()])
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=300",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(socket_dir.join("server.log")).expect("server log"),
                ));
            // SAFETY: prctl is async-signal-safe; it only sets this child's death signal.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                    Ok(())
                })
            };
            let _ = tx.send(command.spawn().map_err(|e| format!("postgres: {e}")));
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv().map_err(|e| e.to_string())?
}

fn wait_ready(server: &TestServer) -> Result<(), String> {
    let url = server.url("postgres");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let url = url.clone();
        let attempt =
            std::thread::spawn(move || postgres::Client::connect(&url, postgres::NoTls).map(drop))
                .join()
                .expect("probe thread");
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                let log =
                    std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
                return Err(format!("not ready within 30 s: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Fast shutdown (SIGINT), then the directory goes.
extern "C" fn stop_at_exit() {
    let Ok(mut running) = RUNNING.lock() else {
        return;
    };
    if let Some(Running { mut child, dir }) = running.take() {
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        drop(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "MQGATE_REQUIRE_POSTGRES=1")]
    fn required_and_missing_fails() {
        not_installed("t", true);
    }

    #[test]
    fn missing_skips() {
        not_installed("t", false);
    }
}
