//! The subset of HOCON that NanoMQ's configuration files (and the bodies of
//! `config_update` and `write_file`) are written in, parsed into JSON values.
//!
//! Covered: a root object with or without braces; fields `key = value`, `key: value`,
//! `key { ... }` and `key += value` (append to an array); dotted keys (`a.b.c`, quoted
//! segments `"a.b".c`); objects with the same key merged; fields and array elements
//! separated by commas or newlines, a trailing comma allowed; `#` and `//` comments;
//! quoted strings with JSON escapes, `"""triple-quoted"""` strings, unquoted strings
//! (`warn`, `10MB`, `1m`, `é`); numbers, `true`, `false`, `null`; value concatenation on
//! one line (`10 seconds` is one string, `{a:1} {b:2}` one object, `[1] [2]` one array).
//!
//! Not followed, kept as text: `include "file"` directives (a field `include` holding
//! the target; an object that holds nothing but an include becomes the string
//! `include <target>`, which is how NanoMQ writes `password = {include "..."}`), and
//! `${substitutions}` (kept as the literal text `${...}`). mqgate never opens a file or
//! reads the environment because of a request.
//!
//! Every input gets an answer in time and memory proportional to its size: the text,
//! nesting depth (dotted-key segments count as levels), key segments and array lengths
//! are capped by [`Limits`], recursion never goes deeper than the depth cap, and every
//! step consumes input.

use serde_json::{Map, Value};

mod parser;
#[cfg(test)]
mod tests;

/// Caps on what the parser accepts. Anything beyond them is refused like a syntax
/// error (the endpoints answer 400 `{"code":117}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest text, bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays, each segment of a dotted key counting as
    /// one level.
    pub max_depth: usize,
    /// Most segments in one dotted key.
    pub max_key_segments: usize,
    /// Most elements in one array.
    pub max_array_len: usize,
}

impl Limits {
    /// A NanoMQ configuration is a few hundred lines, five levels deep; password and
    /// ACL files are flat lists. These caps are far above that and far below what
    /// could hurt: a 256 KiB text parses in milliseconds.
    pub const DEFAULT: Limits = Limits {
        max_bytes: 256 * 1024,
        max_depth: 32,
        max_key_segments: 32,
        max_array_len: 10_000,
    };
}

/// Why a text was refused (logged at debug; clients only see code 117).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoconError {
    /// 1-based line of the problem.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for HoconError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses `text` into a JSON object. Anything that is not an object at the root, is
/// not valid in the subset, or is beyond `limits` is an error.
pub fn parse(text: &str, limits: Limits) -> Result<Map<String, Value>, HoconError> {
    if text.len() > limits.max_bytes {
        return Err(HoconError {
            line: 1,
            message: format!("text over {} bytes", limits.max_bytes),
        });
    }
    parser::Parser::new(text, limits).document()
}
