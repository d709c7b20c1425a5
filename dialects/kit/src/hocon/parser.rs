//! The recursive-descent parser behind [`super::parse`]. Recursion follows nesting and
//! stops at [`Limits::max_depth`]; every loop consumes input.

use serde_json::{Map, Number, Value};

use super::{HoconError, Limits};

/// The field an `include` directive becomes.
const INCLUDE_KEY: &str = "include";

/// What an object member turned out to be.
enum Member {
    /// `key = value`, `key { ... }`.
    Field(Vec<String>, Value),
    /// `key += value`.
    Append(Vec<String>, Value),
    /// `include "target"`.
    Include(String),
}

/// One piece of a value written on one line, before concatenation.
enum Part {
    Object(Map<String, Value>),
    Array(Vec<Value>),
    /// A string, number, boolean or null, with its source text for concatenation.
    Simple(Value, String),
}

pub(super) struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    limits: Limits,
}

/// Characters that end an unquoted string (HOCON's forbidden set, plus whitespace).
fn ends_unquoted(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '$' | '"'
                | '{'
                | '}'
                | '['
                | ']'
                | ':'
                | '='
                | ','
                | '+'
                | '#'
                | '`'
                | '^'
                | '?'
                | '!'
                | '@'
                | '*'
                | '&'
                | '\\'
        )
}

impl Parser {
    pub(super) fn new(text: &str, limits: Limits) -> Parser {
        Parser {
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
            limits,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn starts_with(&self, text: &str) -> bool {
        text.chars()
            .enumerate()
            .all(|(i, c)| self.peek_at(i) == Some(c))
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, HoconError> {
        let line = 1 + self.chars[..self.pos.min(self.chars.len())]
            .iter()
            .filter(|c| **c == '\n')
            .count();
        Err(HoconError {
            line,
            message: message.into(),
        })
    }

    fn at_comment(&self) -> bool {
        self.peek() == Some('#') || self.starts_with("//")
    }

    /// Skips spaces and tabs (not newlines) and a comment up to the end of the line.
    fn skip_inline_space(&mut self) {
        while let Some(c) = self.peek() {
            if c != '\n' && c.is_whitespace() {
                self.pos += 1;
            } else if self.at_comment() {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    /// Skips whitespace, newlines and comments; true when a newline was crossed.
    fn skip_space(&mut self) -> bool {
        let mut newline = false;
        loop {
            self.skip_inline_space();
            if self.peek() == Some('\n') {
                newline = true;
                self.pos += 1;
            } else {
                return newline;
            }
        }
    }

    fn enter(&mut self, levels: usize) -> Result<(), HoconError> {
        if self.depth + levels > self.limits.max_depth {
            return self.error(format!(
                "nested deeper than {} levels",
                self.limits.max_depth
            ));
        }
        self.depth += levels;
        Ok(())
    }

    pub(super) fn document(&mut self) -> Result<Map<String, Value>, HoconError> {
        self.skip_space();
        let root = if self.peek() == Some('{') {
            self.braced_object()?
        } else if self.peek() == Some('[') {
            return self.error("the root is an array, not an object");
        } else {
            self.object_body(None)?
        };
        self.skip_space();
        if self.peek().is_some() {
            return self.error("text after the root object");
        }
        Ok(root)
    }

    fn braced_object(&mut self) -> Result<Map<String, Value>, HoconError> {
        self.enter(1)?;
        self.pos += 1;
        let object = self.object_body(Some('}'))?;
        self.pos += 1;
        self.depth -= 1;
        Ok(object)
    }

    /// Members up to `close` (consumed by the caller) or the end of the text.
    fn object_body(&mut self, close: Option<char>) -> Result<Map<String, Value>, HoconError> {
        let mut object = Map::new();
        loop {
            self.skip_space();
            match self.peek() {
                None if close.is_none() => break,
                None => return self.error("missing '}'"),
                Some(c) if Some(c) == close => break,
                Some(_) => {}
            }
            match self.member()? {
                Member::Field(path, value) => self.set(&mut object, &path, value, false)?,
                Member::Append(path, value) => self.set(&mut object, &path, value, true)?,
                Member::Include(target) => {
                    object.insert(INCLUDE_KEY.to_string(), Value::String(target));
                }
            }
            self.end_of_member(close)?;
        }
        Ok(object)
    }

    /// After a member: a comma, a newline, or the closing brace.
    fn end_of_member(&mut self, close: Option<char>) -> Result<(), HoconError> {
        self.skip_inline_space();
        match self.peek() {
            Some(',') => {
                self.pos += 1;
                Ok(())
            }
            Some('\n') => Ok(()),
            None => Ok(()),
            Some(c) if Some(c) == close => Ok(()),
            Some(c) => self.error(format!("unexpected {c:?} after a value")),
        }
    }

    fn member(&mut self) -> Result<Member, HoconError> {
        if let Some(target) = self.include()? {
            return Ok(Member::Include(target));
        }
        let path = self.key()?;
        self.skip_inline_space();
        let append = match self.peek() {
            Some('=') | Some(':') => {
                self.pos += 1;
                false
            }
            Some('+') if self.peek_at(1) == Some('=') => {
                self.pos += 2;
                true
            }
            Some('{') => false,
            _ => return self.error("expected '=', ':' or '{' after a key"),
        };
        self.skip_inline_space();
        self.enter(path.len() - 1)?;
        let value = self.value()?;
        self.depth -= path.len() - 1;
        Ok(if append {
            Member::Append(path, value)
        } else {
            Member::Field(path, value)
        })
    }

    /// `include "x"`, `include file("x")`, `include required(file("x"))`: the target.
    fn include(&mut self) -> Result<Option<String>, HoconError> {
        if !self.starts_with("include") {
            return Ok(None);
        }
        let after = self.pos + "include".len();
        let next = self.chars.get(after).copied();
        if !next.is_some_and(|c| c == ' ' || c == '\t') {
            return Ok(None);
        }
        let start = self.pos;
        self.pos = after;
        self.skip_inline_space();
        let mut wrappers = 0;
        for word in ["required(", "file(", "url(", "classpath("] {
            if self.starts_with(word) {
                self.pos += word.len();
                wrappers += 1;
                self.skip_inline_space();
            }
        }
        if self.peek() != Some('"') {
            // `include = ...` or `include foo`: an ordinary key.
            self.pos = start;
            return Ok(None);
        }
        let target = self.quoted()?;
        for _ in 0..wrappers {
            self.skip_inline_space();
            if self.peek() != Some(')') {
                return self.error("missing ')' in an include");
            }
            self.pos += 1;
        }
        Ok(Some(target))
    }

    fn key(&mut self) -> Result<Vec<String>, HoconError> {
        let mut path = Vec::new();
        loop {
            if path.len() == self.limits.max_key_segments {
                return self.error(format!(
                    "a key with more than {} segments",
                    self.limits.max_key_segments
                ));
            }
            let segment = if self.peek() == Some('"') {
                self.quoted()?
            } else {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| c != '.' && !ends_unquoted(c) && !self.starts_with("//"))
                {
                    self.pos += 1;
                }
                if start == self.pos {
                    return self.error("expected a key");
                }
                self.chars[start..self.pos].iter().collect()
            };
            path.push(segment);
            if self.peek() == Some('.') {
                self.pos += 1;
            } else {
                return Ok(path);
            }
        }
    }

    /// A value and whatever follows it on the same line, concatenated.
    fn value(&mut self) -> Result<Value, HoconError> {
        let mut parts = vec![self.part()?];
        loop {
            let before_space = self.pos;
            self.skip_inline_space();
            match self.peek() {
                None | Some('\n') | Some(',') | Some('}') | Some(']') => break,
                Some(_) if self.at_comment() => break,
                Some(_) => {}
            }
            // No comment was skipped (it would have ended the line): only blanks.
            let gap: String = self.chars[before_space..self.pos].iter().collect();
            let part = self.part()?;
            if let (Part::Simple(_, text), Some(Part::Simple(..))) = (&part, parts.last()) {
                parts.push(Part::Simple(Value::Null, gap));
                parts.push(Part::Simple(Value::Null, text.clone()));
            } else {
                parts.push(part);
            }
        }
        concatenate(parts).or_else(|message| self.error(message))
    }

    fn part(&mut self) -> Result<Part, HoconError> {
        match self.peek() {
            Some('{') => {
                let object = self.braced_object()?;
                // `{include "file"}` alone reads as one value naming the file.
                match object.get(INCLUDE_KEY) {
                    Some(Value::String(target)) if object.len() == 1 => {
                        let text = format!("include {target}");
                        Ok(Part::Simple(Value::String(text.clone()), text))
                    }
                    _ => Ok(Part::Object(object)),
                }
            }
            Some('[') => Ok(Part::Array(self.array()?)),
            Some('"') if self.starts_with("\"\"\"") => {
                let text = self.triple_quoted()?;
                Ok(Part::Simple(Value::String(text.clone()), text))
            }
            Some('"') => {
                let text = self.quoted()?;
                Ok(Part::Simple(Value::String(text.clone()), text))
            }
            Some('$') if self.peek_at(1) == Some('{') => {
                let text = self.substitution()?;
                Ok(Part::Simple(Value::String(text.clone()), text))
            }
            _ => self.unquoted(),
        }
    }

    fn array(&mut self) -> Result<Vec<Value>, HoconError> {
        self.enter(1)?;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None => return self.error("missing ']'"),
                Some(']') => break,
                Some(_) => {}
            }
            if items.len() == self.limits.max_array_len {
                return self.error(format!(
                    "an array of more than {} elements",
                    self.limits.max_array_len
                ));
            }
            items.push(self.value()?);
            self.end_of_member(Some(']'))?;
        }
        self.pos += 1;
        self.depth -= 1;
        Ok(items)
    }

    fn quoted(&mut self) -> Result<String, HoconError> {
        self.pos += 1;
        let mut text = String::new();
        loop {
            let Some(c) = self.peek() else {
                return self.error("unterminated string");
            };
            self.pos += 1;
            match c {
                '"' => return Ok(text),
                '\n' => return self.error("newline inside a quoted string"),
                '\\' => text.push(self.escape()?),
                c => text.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, HoconError> {
        let Some(c) = self.peek() else {
            return self.error("unterminated escape");
        };
        self.pos += 1;
        Ok(match c {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let hex: String = self.chars.iter().skip(self.pos).take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4);
                let Some(c) = code.and_then(char::from_u32) else {
                    return self.error("bad \\u escape");
                };
                self.pos += 4;
                c
            }
            other => return self.error(format!("unknown escape \\{other}")),
        })
    }

    fn triple_quoted(&mut self) -> Result<String, HoconError> {
        self.pos += 3;
        let start = self.pos;
        while !self.starts_with("\"\"\"") {
            if self.peek().is_none() {
                return self.error("unterminated \"\"\" string");
            }
            self.pos += 1;
        }
        // Extra quotes before the closing three belong to the string.
        while self.peek_at(3) == Some('"') {
            self.pos += 1;
        }
        let text = self.chars[start..self.pos].iter().collect();
        self.pos += 3;
        Ok(text)
    }

    fn substitution(&mut self) -> Result<String, HoconError> {
        let start = self.pos;
        while self.peek() != Some('}') {
            match self.peek() {
                None | Some('\n') => return self.error("unterminated ${"),
                _ => self.pos += 1,
            }
        }
        self.pos += 1;
        Ok(self.chars[start..self.pos].iter().collect())
    }

    fn unquoted(&mut self) -> Result<Part, HoconError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| !ends_unquoted(c) && !self.starts_with("//"))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return match self.peek() {
                Some(c) => self.error(format!("unexpected {c:?} where a value belongs")),
                None => self.error("missing value"),
            };
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let value = match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            _ => number(&text).unwrap_or_else(|| Value::String(text.clone())),
        };
        Ok(Part::Simple(value, text))
    }

    /// Puts `value` at `path` inside `object`, merging objects as HOCON does.
    fn set(
        &self,
        object: &mut Map<String, Value>,
        path: &[String],
        value: Value,
        append: bool,
    ) -> Result<(), HoconError> {
        let (last, parents) = path.split_last().expect("a key has a segment");
        let mut target = object;
        for segment in parents {
            let slot = target
                .entry(segment.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            target = slot.as_object_mut().expect("made an object above");
        }
        match (target.get_mut(last), append) {
            (Some(Value::Array(items)), true) => {
                if items.len() == self.limits.max_array_len {
                    return self.error("an array grown past its limit");
                }
                items.push(value);
            }
            (Some(_), true) => return self.error("'+=' on something that is not an array"),
            (None, true) => {
                target.insert(last.clone(), Value::Array(vec![value]));
            }
            (Some(Value::Object(existing)), false) if value.is_object() => {
                if let Value::Object(new) = value {
                    merge(existing, new);
                }
            }
            (_, false) => {
                target.insert(last.clone(), value);
            }
        }
        Ok(())
    }
}

/// Fields of `new` into `existing`; objects on both sides merge, anything else is
/// replaced. Recursion is bounded by the depth cap the values were parsed under.
fn merge(existing: &mut Map<String, Value>, new: Map<String, Value>) {
    for (key, value) in new {
        match (existing.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => merge(old, new),
            (_, value) => {
                existing.insert(key, value);
            }
        }
    }
}

/// One value from the parts written on one line.
fn concatenate(parts: Vec<Part>) -> Result<Value, String> {
    let mut parts = parts.into_iter();
    let first = parts.next().expect("a value has a part");
    let mut rest = parts.peekable();
    if rest.peek().is_none() {
        return Ok(match first {
            Part::Object(map) => Value::Object(map),
            Part::Array(items) => Value::Array(items),
            Part::Simple(value, _) => value,
        });
    }
    match first {
        Part::Object(mut map) => {
            for part in rest {
                match part {
                    Part::Object(next) => merge(&mut map, next),
                    _ => return Err("an object concatenated with something else".into()),
                }
            }
            Ok(Value::Object(map))
        }
        Part::Array(mut items) => {
            for part in rest {
                match part {
                    Part::Array(next) => items.extend(next),
                    _ => return Err("an array concatenated with something else".into()),
                }
            }
            Ok(Value::Array(items))
        }
        Part::Simple(_, mut text) => {
            for part in rest {
                match part {
                    Part::Simple(_, next) => text.push_str(&next),
                    _ => return Err("a string concatenated with an object or array".into()),
                }
            }
            Ok(Value::String(text))
        }
    }
}

/// A JSON number, or `None` for text that is not one (`10MB`, `1.2.3`, `inf`).
fn number(text: &str) -> Option<Value> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.starts_with(|c: char| c.is_ascii_digit())
        || !digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-'))
    {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    if let Ok(u) = text.parse::<u64>() {
        return Some(Value::from(u));
    }
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite())?;
    Number::from_f64(f).map(Value::Number)
}
