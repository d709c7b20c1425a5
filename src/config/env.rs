//! Environment overrides: `MQGATE__SECTION__KEY=value` replaces one key of the
//! file's tree before it is checked.
//!
//! Environment values are text, so each is read by the type its key has in the
//! embedded defaults: text stays text (a password `123456` is not a number),
//! numbers and booleans are parsed, and lists and tables are JSON
//! (`MQGATE__NANOMQ__CORS_ORIGINS='["http://a"]'`,
//! `MQGATE__REALMQ__USERS='[{"username":"u","password":"p"}]'`). A key with no
//! default value (an optional key, a `[http.listeners.<name>]` entry) is read as
//! JSON when it looks like JSON and as text otherwise; see [`Override::guessed`].

use serde_json::{Map, Value};

use super::ConfigError;

/// Prefix of the variables; `__` separates the prefix and each key.
pub const PREFIX: &str = "MQGATE";

/// One variable applied to the tree.
#[derive(Debug)]
pub struct Override {
    /// Key path, e.g. `["mqtt", "tcp", "listen"]`.
    pub path: Vec<String>,
    /// The variable's text.
    pub raw: String,
    /// The key had no default to take its type from and the text was read as
    /// something other than text: if the configuration then wants text there,
    /// the raw text is put back (`token_secret = "123456"`).
    pub guessed: bool,
}

impl Override {
    /// `mica.password`, the form serde_path_to_error names keys in.
    pub fn dotted(&self) -> String {
        self.path.join(".")
    }
}

/// Applies every `MQGATE__…` variable of `env` onto `tree`, reading each value
/// by the type of its key in `defaults`.
pub fn apply(
    tree: &mut Value,
    defaults: &Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Override>, ConfigError> {
    let prefix = format!("{PREFIX}__");
    let mut applied = Vec::new();
    let mut vars: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .collect();
    // a stable order, so that a conflict is reported the same way every time
    vars.sort();
    for (name, raw) in vars {
        let path: Vec<String> = name[prefix.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(invalid(
                &name,
                "empty key segment (`__` twice, or at the end)",
            ));
        }
        let hint = path
            .iter()
            .try_fold(defaults, |node, key| node.get(key.as_str()));
        let (value, guessed) = read(&name, &raw, hint)?;
        set(tree, &path, value).map_err(|m| invalid(&name, &m))?;
        applied.push(Override { path, raw, guessed });
    }
    Ok(applied)
}

/// Puts `raw` back as text at `path` (see [`Override::guessed`]).
pub fn restore_text(tree: &mut Value, o: &Override) {
    let _ = set(tree, &o.path, Value::String(o.raw.clone()));
}

/// The value of a variable by its key's default; `true` when the type was guessed.
fn read(name: &str, raw: &str, hint: Option<&Value>) -> Result<(Value, bool), ConfigError> {
    let text = || Value::String(raw.to_string());
    Ok(match hint {
        Some(Value::String(_)) => (text(), false),
        Some(Value::Bool(_)) => (
            match raw.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                // serde names the key and says a boolean is expected
                _ => text(),
            },
            false,
        ),
        Some(Value::Number(_)) => (
            serde_json::from_str(raw.trim()).unwrap_or_else(|_| text()),
            false,
        ),
        Some(Value::Array(_) | Value::Object(_)) => (json(name, raw)?, false),
        Some(Value::Null) | None => {
            let trimmed = raw.trim();
            if trimmed.starts_with('[') || trimmed.starts_with('{') {
                (json(name, raw)?, false)
            } else {
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(v @ (Value::Bool(_) | Value::Number(_))) => (v, true),
                    _ => (text(), false),
                }
            }
        }
    })
}

fn json(name: &str, raw: &str) -> Result<Value, ConfigError> {
    serde_json::from_str(raw).map_err(|e| {
        invalid(
            name,
            &format!("lists and tables are written as JSON, e.g. '[\"a\", \"b\"]' ({e})"),
        )
    })
}

fn set(tree: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("at least one segment");
    let mut node = tree;
    for (depth, key) in parents.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(format!("`{}` is not a table", path[..depth].join(".")));
        };
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let Value::Object(map) = node else {
        return Err(format!("`{}` is not a table", parents.join(".")));
    };
    map.insert(last.clone(), value);
    Ok(())
}

fn invalid(variable: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: variable.to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply_one(defaults: Value, name: &str, raw: &str) -> Result<Value, ConfigError> {
        let mut tree = json!({});
        apply(&mut tree, &defaults, [(name.to_string(), raw.to_string())])?;
        Ok(tree)
    }

    #[test]
    fn values_take_the_type_of_their_default() {
        let defaults = json!({"a": {"text": "x", "n": 1, "on": true, "list": [], "opt": null}});
        let cases = [
            ("MQGATE__A__TEXT", "123456", json!("123456")),
            ("MQGATE__A__N", "42", json!(42)),
            ("MQGATE__A__ON", "false", json!(false)),
            (
                "MQGATE__A__LIST",
                r#"["http://a","*"]"#,
                json!(["http://a", "*"]),
            ),
            ("MQGATE__A__OPT", "config/x.pem", json!("config/x.pem")),
            ("MQGATE__A__OPT", "7", json!(7)),
        ];
        for (name, raw, want) in cases {
            let tree = apply_one(defaults.clone(), name, raw).unwrap();
            let key = name.rsplit("__").next().unwrap().to_ascii_lowercase();
            assert_eq!(tree["a"][&key], want, "{name}={raw}");
        }
    }

    #[test]
    fn a_list_that_is_not_json_names_the_variable() {
        let err = apply_one(json!({"a": {"list": []}}), "MQGATE__A__LIST", "a,b").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "bad configuration at `MQGATE__A__LIST`: lists and tables are written as JSON"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_key_under_a_value_is_refused() {
        let mut tree = json!({"data_dir": "data"});
        let err = apply(
            &mut tree,
            &json!({}),
            [("MQGATE__DATA_DIR__X".to_string(), "1".to_string())],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("`data_dir` is not a table"),
            "{err}"
        );
    }
}
