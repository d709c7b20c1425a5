//! The `mqgate` binary: configuration errors stop the start with a message that
//! names the culprit and exit code 2; `openapi` writes every document.

use std::process::Command;

fn mqgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mqgate"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn conflicting_addresses_exit_2_and_name_both_listeners() {
    let out = mqgate()
        .args(["check-config"])
        .env("MQGATE__REALMQ__LISTEN", "0.0.0.0:18083")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "mqgate: listeners `mica` and `realmq` both ask for 0.0.0.0:18083"
    );
}

#[test]
fn unknown_key_exits_2_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[mqtt]\nmax_conections = 5\n").unwrap();
    let out = mqgate()
        .args(["--config", file.to_str().unwrap(), "run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "mqgate: bad configuration at `mqtt.max_conections`: unknown field `max_conections`"
        ),
        "{err}"
    );
}

#[test]
fn bad_value_exits_2_and_names_the_key() {
    let out = mqgate()
        .args(["check-config"])
        .env("MQGATE__MQTT__KEEPALIVE_BACKOFF", "0.5")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`mqtt.keepalive_backoff`"));
}

#[test]
fn openapi_subcommand_writes_every_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let out = mqgate()
        .args(["openapi", "--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    for name in ["mica", "nanomq", "realmq", "easemob"] {
        let text = std::fs::read_to_string(dir.path().join(format!("{name}.json"))).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(doc["info"]["title"].is_string());
    }
}
