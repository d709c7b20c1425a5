//! The files NanoMQ's configuration routes read and write, and nothing else.
//!
//! NanoMQ 0.24–0.25.2 let `get_file`/`write_file` read and write any path the process
//! could reach (0.25.3 removed the routes for that reason). mqgate keeps them for
//! nanomq-admin, limited to three files looked up when each request arrives:
//!
//! - the NanoMQ configuration file `config_update` writes, `<data_dir>/nanomq.conf`;
//! - the password file `[mqtt] password_file` names, else `<data_dir>/nanomq_pwd.conf`;
//! - the ACL file `[mqtt] acl_file` names, else `<data_dir>/nanomq_acl.conf`.
//!
//! A requested path selects one of them and is never opened itself: it selects a file
//! when it equals that file's configured path, or when its file name is NanoMQ's
//! default name for that file (`nanomq.conf`, `nanomq_pwd.conf`, `nanomq_acl.conf`), which
//! is how nanomq-admin asks for them (`/etc/nanomq_pwd.conf`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mqgate_kit::access::{ACL_FILE_NAME, PASSWORD_FILE_NAME};
use mqgate_kit::HotConfig;

/// The file `config_update` writes, in mqgate's data directory.
pub const CONFIG_FILE_NAME: &str = "nanomq.conf";

/// Largest file `get_file` reads. Files written through the API are far smaller (the
/// request body limit is 1 MiB).
pub const MAX_READ_BYTES: u64 = 4 * 1024 * 1024;

/// Which of the three files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Config,
    Password,
    Acl,
}

/// The files the routes may touch, as configured now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList {
    pub config: PathBuf,
    pub password: Option<PathBuf>,
    pub acl: Option<PathBuf>,
}

impl AllowList {
    /// The configured file `requested` selects, or `None`: outside the list.
    pub fn resolve(&self, requested: &str) -> Option<(Role, &Path)> {
        let files = [
            (Role::Config, Some(&self.config), CONFIG_FILE_NAME),
            (Role::Password, self.password.as_ref(), PASSWORD_FILE_NAME),
            (Role::Acl, self.acl.as_ref(), ACL_FILE_NAME),
        ];
        let configured = files
            .iter()
            .filter_map(|(role, path, name)| Some((*role, (*path)?, *name)));
        let requested_name = Path::new(requested).file_name();
        let mut by_name = None;
        for (role, path, default_name) in configured {
            if Path::new(requested) == path {
                return Some((role, path.as_path()));
            }
            if by_name.is_none() && requested_name.is_some_and(|n| n == default_name) {
                by_name = Some((role, path.as_path()));
            }
        }
        by_name
    }
}

impl Role {
    /// NanoMQ's file name for it: also its name in a shared store.
    pub fn file_name(self) -> &'static str {
        match self {
            Role::Config => CONFIG_FILE_NAME,
            Role::Password => PASSWORD_FILE_NAME,
            Role::Acl => ACL_FILE_NAME,
        }
    }
}

/// Where the gateway looks for the file of `role` when the configuration names none.
pub fn default_path(data_dir: &Path, role: Role) -> PathBuf {
    data_dir.join(role.file_name())
}

/// The text of a password or ACL file that grants and denies nothing.
pub fn empty_text(role: Role) -> &'static str {
    match role {
        Role::Acl => "rules = []\n",
        Role::Config | Role::Password => "",
    }
}

/// What reading a file found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// The text up to the first NUL (NanoMQ's string ends there), invalid UTF-8 replaced.
    Text(String),
    Missing,
    TooLarge,
    Failed(std::io::Error),
}

/// Reads a file of the allow-list.
pub fn read(path: &Path) -> ReadOutcome {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return ReadOutcome::Missing,
        Err(e) => return ReadOutcome::Failed(e),
    };
    let mut bytes = Vec::new();
    use std::io::Read;
    if let Err(e) = file.take(MAX_READ_BYTES + 1).read_to_end(&mut bytes) {
        return ReadOutcome::Failed(e);
    }
    if bytes.len() as u64 > MAX_READ_BYTES {
        return ReadOutcome::TooLarge;
    }
    ReadOutcome::Text(text_of(&bytes))
}

/// A file's bytes as `get_file` serves them: up to the first NUL, invalid UTF-8
/// replaced.
pub fn text_of(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Replaces the file at `path` (the file a symlink points to, when it is one) with
/// `content`, so that a reader sees the old text or the new, never a part: the text
/// goes to a temporary file beside it, is flushed to disk, takes over the old file's
/// permissions, and is renamed over it.
pub fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = target
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?
        .to_string_lossy();
    let temp = target.with_file_name(format!(
        ".{name}.mqgate-{}-{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(content)?;
        file.sync_all()?;
        if let Ok(old) = std::fs::metadata(&target) {
            std::fs::set_permissions(&temp, old.permissions())?;
        }
        std::fs::rename(&temp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// mqgate's live settings written as a NanoMQ configuration file: what the
/// configuration file reads as before `config_update` has written one. It holds the
/// keys mqgate applies, so sending it back through `config_update` changes nothing and
/// reports nothing.
pub fn live_config_text(hot: &HotConfig) -> String {
    format!(
        "# mqgate's live settings in NanoMQ's configuration format. config_update\n\
         # applies these keys and reports any other one as not applied.\n\
         mqtt {{\n    max_packet_size = {}\n    client_max_packet_size = {}\n    \
         max_mqueue_len = {}\n    keepalive_multiplier = {}\n}}\n\n\
         auth {{\n    allow_anonymous = {}\n}}\n",
        size_text(hot.max_packet_size),
        size_text(hot.client_max_packet_size),
        hot.max_queued_messages,
        hot.keepalive_backoff,
        hot.allow_anonymous
    )
}

/// A byte count as NanoMQ writes sizes: `10MB`, `512KB`, or plain bytes.
fn size_text(bytes: u32) -> String {
    const KIB: u32 = 1024;
    match bytes {
        0 => "0".to_string(),
        b if b % (KIB * KIB) == 0 => format!("{}MB", b / (KIB * KIB)),
        b if b % KIB == 0 => format!("{}KB", b / KIB),
        b => b.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        AllowList {
            config: PathBuf::from("data/nanomq.conf"),
            password: Some(PathBuf::from("/srv/mqgate/users.conf")),
            acl: None,
        }
    }

    #[test]
    fn requested_paths_select_configured_files() {
        let list = list();
        let config = Some((Role::Config, Path::new("data/nanomq.conf")));
        let password = Some((Role::Password, Path::new("/srv/mqgate/users.conf")));
        assert_eq!(list.resolve("data/nanomq.conf"), config);
        assert_eq!(list.resolve("/etc/nanomq.conf"), config);
        assert_eq!(list.resolve("/etc/nanomq_pwd.conf"), password);
        assert_eq!(list.resolve("/srv/mqgate/users.conf"), password);
        assert_eq!(list.resolve("../../x/nanomq_pwd.conf"), password);
        // No ACL file configured: its name selects nothing.
        assert_eq!(list.resolve("/etc/nanomq_acl.conf"), None);
        for outside in [
            "/etc/passwd",
            "users.conf",
            "",
            "/",
            "nanomq",
            "nanomq_pwd.conf.bak",
        ] {
            assert_eq!(list.resolve(outside), None, "{outside}");
        }
    }

    #[test]
    fn atomic_writes_keep_permissions_and_leave_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acl.conf");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"rules = []").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "rules = []");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let fresh = dir.path().join("new.conf");
        write_atomically(&fresh, b"a = 1").unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "a = 1");
        assert!(write_atomically(&dir.path().join("no/such/dir.conf"), b"x").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn reads_stop_at_nul_and_at_the_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"a = 1\0rest").unwrap();
        assert!(matches!(read(&path), ReadOutcome::Text(t) if t == "a = 1"));
        assert!(matches!(
            read(&dir.path().join("none")),
            ReadOutcome::Missing
        ));
        std::fs::write(&path, vec![b'x'; MAX_READ_BYTES as usize + 1]).unwrap();
        assert!(matches!(read(&path), ReadOutcome::TooLarge));
    }

    #[test]
    fn sizes_as_nanomq_writes_them() {
        assert_eq!(size_text(0), "0");
        assert_eq!(size_text(1024 * 1024), "1MB");
        assert_eq!(size_text(512 * 1024), "512KB");
        assert_eq!(size_text(1000), "1000");
    }
}
