//! The sandboxed minijinja environment, set up the way transformers sets up jinja2 for chat
//! templates (`_compile_jinja_template` in `utils/chat_template_utils.py`):
//!
//! - `trim_blocks` and `lstrip_blocks` on, trailing newline of the source dropped (jinja2's
//!   default `keep_trailing_newline=False`), no auto-escaping;
//! - loop controls (`{% break %}`, `{% continue %}`, jinja2's `loopcontrols` extension);
//! - `{% generation %}…{% endgeneration %}` (transformers' assistant-mask tag) renders its body;
//! - filter `tojson` = `json.dumps(ensure_ascii=False, …)` (see `json.rs`);
//! - globals `raise_exception(msg)` and `strftime_now(fmt)`;
//! - Python string/dict methods (`.strip()`, `.split()`, `.items()`, …) from `minijinja-contrib`'s
//!   `pycompat`, with `strip`/`lstrip`/`rstrip` and the `trim` filter using Python's idea of
//!   whitespace, and `title()` / `split()` / `splitlines()` as Python defines them; `None`,
//!   `True`, `False` and floats print as Python prints them; jinja2's `center` and `wordcount`
//!   filters, which minijinja lacks.
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
            ("title", []) => return Ok(Value::from(py_title(s))),
            ("splitlines", []) | ("splitlines", [_]) => {
                let keep = args.first().is_some_and(|k| k.is_true());
                return Ok(py_splitlines(s, keep).into_iter().map(Value::from).collect());
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Python's `str.title()`: a cased character is upper-cased after an uncased one and
/// lower-cased after a cased one (so "they're" becomes "They'Re", unlike jinja2's `title` filter).
fn py_title(s: &str) -> String {
    // The four Latin digraphs with a distinct titlecase form (Unicode category Lt).
    const DIGRAPHS: [[char; 3]; 4] = [['Ǆ', 'ǅ', 'ǆ'], ['Ǉ', 'ǈ', 'ǉ'], ['Ǌ', 'ǋ', 'ǌ'], ['Ǳ', 'ǲ', 'ǳ']];
    let mut out = String::with_capacity(s.len());
    let mut prev_cased = false;
    for c in s.chars() {
        let digraph = DIGRAPHS.iter().find(|d| d.contains(&c));
        let cased = c.is_uppercase() || c.is_lowercase() || digraph.is_some();
        if cased && prev_cased {
            out.extend(c.to_lowercase());
        } else if let Some(d) = digraph {
            out.push(d[1]);
        } else if cased {
            // Titlecase: the first character of the upper-case mapping, the rest lower-cased
            // ("ß" -> "Ss", "ﬁ" -> "Fi"), which is what Unicode's titlecase mappings give.
            let mut upper = c.to_uppercase();
            out.extend(upper.next());
            out.extend(upper.flat_map(|u| u.to_lowercase()));
        } else {
            out.push(c);
        }
        prev_cased = cased;
    }
    out
}

/// jinja2's `center(width=80)`: Python's `str.center`, which puts the odd space on the left
/// when the width is odd.
fn py_center(s: &str, width: Option<i64>) -> String {
    let width = width.unwrap_or(80).clamp(0, 1 << 16) as usize;
    let len = s.chars().count();
    if width <= len {
        return s.to_string();
    }
    let marg = width - len;
    let left = marg / 2 + (marg & width & 1);
    format!("{}{s}{}", " ".repeat(left), " ".repeat(marg - left))
}

/// jinja2's `wordcount`: the number of `\w+` runs.
fn py_wordcount(s: &str) -> usize {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    s.split(|c: char| !word(c)).filter(|w| !w.is_empty()).count()
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
    env.add_filter("center", |s: &str, width: Option<i64>| py_center(s, width));
    env.add_filter("wordcount", |s: &str| py_wordcount(s));
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
            let x = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            // Python's str(float): repr, but "inf" / "nan" where JSON says Infinity / NaN.
            let text = match x {
                x if x.is_nan() => "nan".to_string(),
                x if x.is_infinite() => (if x > 0.0 { "inf" } else { "-inf" }).to_string(),
                x => json::py_float_repr(x),
            };
            out.write_str(&text).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    });
    env
}
