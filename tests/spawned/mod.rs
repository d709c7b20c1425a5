//! The `mqgate` binary as a child process: every listener on an ephemeral
//! loopback port, a fresh data directory, its log read line by line, and its
//! threads, files and memory read from `/proc/<pid>`. For what only a process
//! shows: the open-file limit, log lines, restarts measured from outside.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub struct Spawned {
    child: Child,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
    /// Listener name (`mica`, `mqtt.tcp`, ...) to its bound address.
    pub addrs: HashMap<String, SocketAddr>,
    _dir: tempfile::TempDir,
}

/// How to start the child.
#[derive(Default)]
pub struct Options<'a> {
    /// Extra `MQGATE__…` (or other) variables.
    pub env: Vec<(&'a str, &'a str)>,
    /// `RUST_LOG`; `info` when unset.
    pub rust_log: Option<&'a str>,
    /// Soft and hard open-file limits of the child (it may raise the soft one
    /// to the hard one, no further).
    pub open_files: Option<(u64, u64)>,
}

/// The binary, run in `dir` on the embedded defaults (no config/mqgate.toml
/// there) with its data in `dir/data` and every listener on an ephemeral
/// loopback port; stdin closed.
pub fn command(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mqgate"));
    command
        .current_dir(dir)
        .env("MQGATE__DATA_DIR", dir.join("data"))
        .stdin(Stdio::null());
    for key in [
        "MQTT__TCP",
        "MQTT__WS",
        "DOCS",
        "MICA",
        "NANOMQ",
        "REALMQ",
        "EASEMOB",
    ] {
        command.env(format!("MQGATE__{key}__LISTEN"), "127.0.0.1:0");
    }
    command
}

impl Spawned {
    pub fn start(options: Options) -> Spawned {
        let dir = tempfile::tempdir().unwrap();
        let mut command = command(dir.path());
        command
            .env("RUST_LOG", options.rust_log.unwrap_or("info"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &options.env {
            command.env(k, v);
        }
        if let Some((soft, hard)) = options.open_files {
            limit_open_files(&mut command, soft, hard);
        }
        let mut child = command.spawn().expect("mqgate binary starts");
        let log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    log.0.lock().unwrap().push(line);
                    log.1.notify_all();
                }
            });
        }
        let mut spawned = Spawned {
            child,
            log,
            addrs: HashMap::new(),
            _dir: dir,
        };
        // one line per listener: two MQTT, the docs, four dialects
        spawned
            .wait_for_count(Duration::from_secs(20), 7, |l| l.contains(" listening on "))
            .unwrap_or_else(|| panic!("not every listener started:\n{}", spawned.log_text()));
        spawned.addrs = spawned.listening();
        spawned
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        *self
            .addrs
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` listener in:\n{}", self.log_text()))
    }

    /// Every line logged so far (stdout and stderr).
    pub fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    pub fn log_text(&self) -> String {
        self.lines().join("\n")
    }

    /// Waits up to `within` for a line matching `wanted`.
    pub fn wait_for_line(&self, within: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_for_count(within, 1, wanted)
    }

    /// Waits up to `within` until `count` lines match `wanted`; returns the last.
    pub fn wait_for_count(
        &self,
        within: Duration,
        count: usize,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + within;
        let mut lines = self.log.0.lock().unwrap();
        loop {
            let matching: Vec<&String> = lines.iter().filter(|l| wanted(l)).collect();
            if matching.len() >= count {
                return Some(matching[count - 1].clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            lines = self.log.1.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// `<name> listening on <addr>` lines of the most recent start.
    fn listening(&self) -> HashMap<String, SocketAddr> {
        self.lines()
            .iter()
            .filter_map(|l| {
                let (before, addr) = l.split_once(" listening on ")?;
                let name = before.rsplit(' ').next()?;
                Some((name.to_string(), addr.trim().parse().ok()?))
            })
            .collect()
    }

    /// Threads, open files and resident memory now, from /proc.
    pub fn sample(&self) -> Sample {
        let proc = format!("/proc/{}", self.pid());
        let status = std::fs::read_to_string(format!("{proc}/status")).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} in {proc}/status"))
        };
        let mut thread_names: Vec<String> = std::fs::read_dir(format!("{proc}/task"))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect();
        thread_names.sort();
        let targets: Vec<String> = std::fs::read_dir(format!("{proc}/fd"))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .map(|t| t.display().to_string())
            .collect();
        Sample {
            threads: field("Threads:"),
            files: targets.len() as u64,
            sockets: targets.iter().filter(|t| t.starts_with("socket:")).count() as u64,
            rss_kib: field("VmRSS:"),
            thread_names,
        }
    }

    /// SIGTERM, then the exit status (killed after 10 s).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: signals our own child by its pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().unwrap()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub threads: u64,
    /// Open file descriptors.
    pub files: u64,
    /// Of which sockets (listeners and connections).
    pub sockets: u64,
    pub rss_kib: u64,
    pub thread_names: Vec<String>,
}

impl Sample {
    /// Thread names present more often in `self` than in `before`, with the surplus.
    pub fn threads_grown_since(&self, before: &Sample) -> Vec<(String, usize)> {
        let count = |names: &[String]| {
            let mut m: HashMap<String, usize> = HashMap::new();
            for n in names {
                *m.entry(n.clone()).or_default() += 1;
            }
            m
        };
        let (now, then) = (count(&self.thread_names), count(&before.thread_names));
        let mut grown: Vec<(String, usize)> = now
            .into_iter()
            .filter_map(|(name, n)| {
                let was = then.get(&name).copied().unwrap_or(0);
                (n > was).then(|| (name, n - was))
            })
            .collect();
        grown.sort();
        grown
    }
}

fn limit_open_files(command: &mut Command, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only setrlimit between fork and exec, no allocation.
    unsafe {
        command.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
