//! The sandboxed minijinja environment, set up the way transformers sets up jinja2 for chat
//! templates (`_compile_jinja_template` in `utils/chat_template_utils.py`):
//!
//! - `trim_blocks` and `lstrip_blocks` on, trailing newline of the source dropped (jinja2's
//!   default `keep_trailing_newline=False`), no auto-escaping;
//! - loop controls (`{% break %}`, `{% continue %}`, jinja2's `loopcontrols` extension);
//! - `{% generation %}…{% endgeneration %}` (transformers' assistant-mask tag) renders its body;
//! - filter `tojson` = `json.dumps(ensure_ascii=False, …)` (see [`super::json`]);
//! - globals `raise_exception(msg)` and `strftime_now(fmt)`;
//! - Python string/dict methods (`.strip()`, `.split()`, `.items()`, …) from `minijinja-contrib`'s
//!   `pycompat`, with `strip`/`lstrip`/`rstrip` and the `trim` filter using Python's idea of
//!   whitespace; `None`/`True`/`False` and floats print as Python prints them.
//!
//! Sandbox: no loader (so no `include`/`import`/`extends` of other sources), no I/O, fuel bounds
//! the work and memory of one render, and the caller bounds the output size.

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};

use super::json;
use super::time::ChatDateTime;

/// The name the one template is stored under.
pub const TEMPLATE_NAME: &str = "chat_template";

/// What `raise_exception` throws, carried as the source of a minijinja error so that it can be
/// told apart from every other failure.
#[derive(Debug)]
pub struct Raised(pub String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

/// Python's `str.isspace()`: Unicode White_Space plus the four ASCII information separators.
pub fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip` / `lstrip` / `rstrip` with an optional set of characters.
fn py_strip<'a>(s: &'a str, chars: Option<&str>, left: bool, right: bool) -> &'a str {
    let set: Option<Vec<char>> = chars.map(|c| c.chars().collect());
    let strip = |c: char| match &set {
        Some(set) => set.contains(&c),
        None => py_space(c),
    };
    let mut out = s;
    if left {
        out = out.trim_start_matches(strip);
    }
    if right {
        out = out.trim_end_matches(strip);
    }
    out
}

fn method_callback(state: &mut State, value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    if let Some(s) = value.as_str()
        && let Some((left, right)) = match method {
            "strip" => Some((true, true)),
            "lstrip" => Some((true, false)),
            "rstrip" => Some((false, true)),
            _ => None,
        }
    {
        let chars = match args {
            [] => None,
            [a] if a.is_none() => None,
            [a] => Some(
                a.as_str().ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "strip arg must be None or str"))?,
            ),
            _ => return Err(Error::from(ErrorKind::TooManyArguments)),
        };
        return Ok(Value::from(py_strip(s, chars, left, right)));
    }
    if let Some(s) = value.as_str() {
        match (method, args) {
            // Python splits on its own whitespace (which includes \x1c-\x1f) when no separator is given.
            ("split", []) => return Ok(py_split_whitespace(s, -1).into_iter().map(Value::from).collect()),
            ("split", [sep]) | ("split", [sep, _]) if sep.is_none() => {
                let max = args.get(1).and_then(|m| m.as_i64()).unwrap_or(-1);
                return Ok(py_split_whitespace(s, max).into_iter().map(Value::from).collect());
            }
            ("splitlines", []) | ("splitlines", [_]) => {
                let keep = args.first().is_some_and(|k| k.is_true());
                return Ok(py_splitlines(s, keep).into_iter().map(Value::from).collect());
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Python's `str.split()` / `str.split(None, maxsplit)`.
fn py_split_whitespace(s: &str, maxsplit: i64) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s.trim_start_matches(py_space);
    while !rest.is_empty() {
        if maxsplit >= 0 && out.len() as i64 == maxsplit {
            out.push(rest);
            break;
        }
        let end = rest.find(py_space).unwrap_or(rest.len());
        out.push(&rest[..end]);
        rest = rest[end..].trim_start_matches(py_space);
    }
    out
}

/// Python's `str.splitlines(keepends)`: every Unicode line boundary Python knows.
fn py_splitlines(s: &str, keepends: bool) -> Vec<&str> {
    let is_break = |c: char| {
        matches!(
            c,
            '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        )
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if !is_break(c) {
            continue;
        }
        let mut end = i + c.len_utf8();
        if c == '\r' && it.peek().is_some_and(|&(_, n)| n == '\n') {
            it.next();
            end += 1;
        }
        out.push(if keepends { &s[start..end] } else { &s[start..i] });
        start = end;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Replaces transformers' `{% generation %}` / `{% endgeneration %}` tags, which minijinja does
/// not know, with `{% if true %}` / `{% endif %}`, keeping their whitespace-control marks.
pub fn rewrite_generation_tags(source: &str) -> String {
    if !source.contains("generation") {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let Some(end) = tag.find("%}") else {
            out.push_str(tag);
            return out;
        };
        let inner = &tag[2..end];
        let (lmark, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, rmark) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[body.len() - 1..]),
            None => (body, ""),
        };
        match body.trim() {
            "generation" => out.push_str(&format!("{{%{lmark} if true {rmark}%}}")),
            "endgeneration" => out.push_str(&format!("{{%{lmark} endif {rmark}%}}")),
            _ => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The `strftime_now(fmt)` global for a fixed moment, or for the clock when `None`.
pub fn set_now(env: &mut Environment<'static>, now: Option<ChatDateTime>) {
    env.add_function("strftime_now", move |fmt: &str| -> Result<String, Error> {
        // Without a clock (the browser) and without a caller-given date, use the date the
        // Llama 3.x templates themselves fall back to.
        let now = now.or_else(ChatDateTime::now_utc).unwrap_or(ChatDateTime {
            year: 2024,
            month: 7,
            day: 26,
            hour: 0,
            minute: 0,
            second: 0,
        });
        Ok(now.strftime(fmt))
    });
}

/// A fresh environment with everything chat templates use, fuel set to `fuel`.
pub fn new_env(fuel: u64) -> Environment<'static> {
    // Environment::new() brings minijinja's builtin filters, tests and functions (jinja2's set);
    // the ones whose Python behaviour differs are replaced below.
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .expect("default delimiters are valid"),
    );
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_fuel(Some(fuel));
    env.add_filter("tojson", json::tojson);
    env.add_filter("trim", |s: &str, chars: Option<&str>| py_strip(s, chars, true, true).to_string());
    env.add_function("raise_exception", |msg: Rest<Value>| -> Result<Value, Error> {
        let text = msg.first().map(|v| v.to_string()).unwrap_or_default();
        Err(Error::new(ErrorKind::InvalidOperation, "raise_exception() was called").with_source(Raised(text)))
    });
    set_now(&mut env, None);
    env.set_unknown_method_callback(method_callback);
    env.set_formatter(|out, state, value| match value.kind() {
        ValueKind::None => out.write_str("None").map_err(Error::from),
        ValueKind::Bool => out.write_str(if value.is_true() { "True" } else { "False" }).map_err(Error::from),
        ValueKind::Number if !value.is_integer() => {
            out.write_str(&json::py_float_repr(f64::try_from(value.clone()).unwrap_or(f64::NAN))).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}
