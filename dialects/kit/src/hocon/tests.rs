//! The parser against NanoMQ's shapes, syntax errors and hostile input (each parse
//! timed: under 2 s in a debug build).

use super::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn ok(text: &str) -> Value {
    Value::Object(parse(text, Limits::DEFAULT).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn refused(text: &str) -> HoconError {
    match parse(text, Limits::DEFAULT) {
        Ok(v) => panic!("accepted {text:?} as {v:?}"),
        Err(e) => e,
    }
}

/// Parses within 2 s (debug build), whatever the outcome.
fn timed(text: &str) -> Result<Map<String, Value>, HoconError> {
    let start = Instant::now();
    let result = parse(text, Limits::DEFAULT);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    result
}

#[test]
fn nanomq_shapes() {
    let v = ok(include_str!(
        "../../../../tests/fixtures/nanomq/nanomq.conf"
    ));
    assert_eq!(v["mqtt"]["max_packet_size"], "260MB");
    assert_eq!(v["mqtt"]["max_mqueue_len"], 2048);
    assert_eq!(v["mqtt"]["keepalive_multiplier"], 1.25);
    assert_eq!(v["mqtt"]["retry_interval"], "10s");
    assert_eq!(v["listeners"]["tcp"]["bind"], "0.0.0.0:1883");
    assert_eq!(v["listeners"]["ws"]["bind"], "0.0.0.0:8083/mqtt");
    assert_eq!(
        v["http_server"]["jwt"]["public"]["keyfile"],
        "/etc/certs/jwt/jwtRS256.key.pub"
    );
    assert_eq!(v["http_server"]["username"], "admin");
    assert_eq!(v["log"]["to"], json!(["file", "console"]));
    assert_eq!(v["log"]["rotation"]["size"], "10MB");
    assert_eq!(v["auth"]["allow_anonymous"], true);
    assert_eq!(v["auth"]["cache"]["ttl"], "1m");
    assert_eq!(v["auth"]["password"], "include /etc/nanomq_pwd.conf");
    assert_eq!(v["auth"]["acl"], "include /etc/nanomq_acl.conf");
}

#[test]
fn separators_comments_and_braces() {
    assert_eq!(
        ok("{a: 1, b = 2,\n c {d: true}, // c\n e: null # e\n}"),
        json!({"a":1,"b":2,"c":{"d":true},"e":null})
    );
    assert_eq!(ok(""), json!({}));
    assert_eq!(ok("# only a comment\n"), json!({}));
    assert_eq!(
        ok("a.b.c = 1\na.b.d = 2\na { e = 3 }\n\"x.y\".z = 4"),
        json!({"a":{"b":{"c":1,"d":2},"e":3},"x.y":{"z":4}})
    );
    assert_eq!(ok("a = {x = 1}\na = 5"), json!({"a":5}));
    assert_eq!(ok("a = 5\na.b = 1"), json!({"a":{"b":1}}));
    assert_eq!(
        ok("rules = [\n\t{\"permit\": \"allow\"}\n\t{\"permit\": \"deny\", \"topics\": [\"#\"]},\n]"),
        json!({"rules":[{"permit":"allow"},{"permit":"deny","topics":["#"]}]})
    );
    assert_eq!(ok("a += 1\na += x"), json!({"a":[1,"x"]}));
}

#[test]
fn scalars() {
    let v = ok(concat!(
        "i = -42\nf = 1.5e3\nbig = 18446744073709551615\ns = \"q\\\"\\u00e9\\n\"\n",
        "u = a/b-c_d.e\nsize = 10 MB\nt = \"\"\"multi\nline\"\"\"\nsub = ${HOME}\n",
        "v = 1.2.3\nnon_ascii = é ü\nurl = \"nmq-tcp://0.0.0.0:1883\"\nleading = 007\n"
    ));
    assert_eq!(v["i"], -42);
    assert_eq!(v["f"], 1500.0);
    assert_eq!(v["big"], json!(18446744073709551615u64));
    assert_eq!(v["s"], "q\"é\n");
    assert_eq!(v["u"], "a/b-c_d.e");
    assert_eq!(v["size"], "10 MB");
    assert_eq!(v["t"], "multi\nline");
    assert_eq!(v["sub"], "${HOME}");
    assert_eq!(v["v"], "1.2.3");
    assert_eq!(v["non_ascii"], "é ü");
    assert_eq!(v["url"], "nmq-tcp://0.0.0.0:1883");
    assert_eq!(v["leading"], 7);
    assert_eq!(
        ok("a = {x:1} {y:2}\nb = [1] [2]"),
        json!({"a":{"x":1,"y":2},"b":[1,2]})
    );
}

#[test]
fn includes_are_kept_as_text() {
    assert_eq!(
        ok("auth {\n password = {include \"/etc/p.conf\"}\n acl = { include required(file(\"/etc/a.conf\")) }\n}"),
        json!({"auth":{"password":"include /etc/p.conf","acl":"include /etc/a.conf"}})
    );
    assert_eq!(
        ok("include \"/etc/x.conf\"\na = 1"),
        json!({"include":"/etc/x.conf","a":1})
    );
    assert_eq!(ok("include = 3"), json!({"include":3}));
    refused("a = {include file(\"x\"}");
}

#[test]
fn syntax_errors() {
    for text in [
        "this is { not hocon",
        "a = ",
        "a = 1 b = 2",
        "a = [1, 2",
        "a { b = 1",
        "a = 1 }",
        "a = \"open",
        "a = \"bad \\q escape\"",
        "= 1",
        "a..b = 1",
        "a = b^c",
        "[1, 2]",
        "{a = 1} b = 2",
        "a = {x: 1} 5",
        "a = 1\na += 2",
        "a = ${x",
    ] {
        refused(text);
    }
    assert_eq!(refused("a = 1\nb = ]").line, 2);
}

#[test]
fn limits_refuse_fast_and_never_overflow_the_stack() {
    let deep_ok = format!("{}{}", "a {".repeat(32), "}".repeat(32));
    assert!(timed(&deep_ok).is_ok());
    let too_deep = format!("{}{}", "a {".repeat(33), "}".repeat(33));
    assert!(timed(&too_deep).is_err());
    assert!(timed(&format!("a = {}", "[".repeat(100_000))).is_err());
    assert!(timed(&format!("a = {}", "{".repeat(100_000))).is_err());
    // The hardening issue's dotted key: ~3,000 segments in 6 KB.
    let dotted = format!("{} = 1", vec!["a"; 3000].join("."));
    assert!(timed(&dotted).unwrap_err().message.contains("segments"));
    let dotted_ok = format!("{} = 1", vec!["a"; 32].join("."));
    assert!(timed(&dotted_ok).is_ok());
    // Dotted segments count as nesting levels.
    let mixed = format!("{} {{ b.c = 1 }}", vec!["a"; 32].join("."));
    assert!(timed(&mixed).is_err());
    // The one-line array of 32,000 elements is refused, 10,000 parse.
    let long = format!("a = [{}]", vec!["1"; 32_000].join(","));
    assert!(timed(&long).unwrap_err().message.contains("elements"));
    let fine = format!("a = [{}]", vec!["1"; 10_000].join(","));
    assert_eq!(timed(&fine).unwrap()["a"].as_array().unwrap().len(), 10_000);
    let appended = "a += 1\n".repeat(10_001);
    assert!(timed(&appended).is_err());
    // Many keys in one object stay linear.
    let keys: String = (0..15_000).map(|i| format!("k{i} = {i}\n")).collect();
    assert_eq!(timed(&keys).unwrap().len(), 15_000);
    let big = "a = 1\n".repeat(50_000);
    assert!(timed(&big).unwrap_err().message.contains("bytes"));
    // Non-ASCII text anywhere neither panics nor is mangled.
    assert_eq!(timed("a = é").unwrap()["a"], "é");
    assert_eq!(timed("é = ü\n\"日本\" = 語").unwrap()["é"], "ü");
    assert!(timed("a = \"\\u12\"").is_err());
    assert!(timed("a = \"é").is_err());
}
