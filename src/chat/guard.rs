//! A pre-parse check that keeps hostile templates from overflowing the stack.
//!
//! minijinja limits nesting of brackets and blocks, but a long flat chain of operators in one
//! expression (`1 + 1 + … + 1`, `x|trim|trim|…`, `not not … x`, `a.b.c.…`) becomes an equally
//! deep syntax tree, and compiling or dropping a few thousand levels overflows a 2 MiB thread
//! stack (the browser's wasm stack is 1 MiB): the process aborts. So before minijinja sees a
//! template, every `{{ … }}` and `{% … %}` tag is scanned and may hold at most
//! [`MAX_TAG_OPERATORS`] operators (string literals and comments are skipped). Real templates
//! use a few dozen at most (the busiest tag among the templates in `tests/data/chat_templates` has 22).

/// Operators (and operator keywords) one tag may contain.
pub const MAX_TAG_OPERATORS: usize = 256;

const KEYWORDS: [&[u8]; 7] = [b"not", b"and", b"or", b"if", b"else", b"is", b"in"];

/// The largest number of operators in one tag of `src`.
pub fn max_tag_operators(src: &str) -> usize {
    let b = src.as_bytes();
    let mut worst = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'{', b'#') => {
                i = src[i + 2..].find("#}").map_or(b.len(), |e| i + 2 + e + 2);
            }
            (b'{', open @ (b'{' | b'%')) => {
                let (ops, end) = scan_tag(b, i + 2, open == b'{');
                worst = worst.max(ops);
                i = end;
            }
            _ => i += 1,
        }
    }
    worst
}

/// Counts operators from `i` to the end of the tag; returns the count and the index after it.
/// In `{{ … }}` braces nest (dict literals), so the tag ends at a `}}` outside any `{ … }`.
fn scan_tag(b: &[u8], mut i: usize, expression: bool) -> (usize, usize) {
    let mut ops = 0;
    let mut braces = 0usize;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b'\'' | b'"' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            b'}' if expression && braces == 0 && next == Some(b'}') => return (ops, i + 2),
            b'%' if !expression && next == Some(b'}') => return (ops, i + 2),
            b'{' => braces += 1,
            b'}' => braces = braces.saturating_sub(1),
            b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'|' | b'.' | b'[' | b'(' | b'<' | b'>' | b'=' | b'!' => ops += 1,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                if KEYWORDS.contains(&&b[start..i]) {
                    ops += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (ops, b.len())
}

#[cfg(test)]
mod tests {
    use super::max_tag_operators;

    #[test]
    fn counts_operators_per_tag_outside_strings() {
        assert_eq!(max_tag_operators("hello {# a + b + c #} world"), 0);
        assert_eq!(max_tag_operators("{{ a + b }}{% if not x and y %}{{ '+++|||' }}"), 3);
        assert_eq!(max_tag_operators(r#"{{ "a\"+" ~ x|trim }}"#), 2);
        // A dict literal's closing braces do not end the tag early.
        assert_eq!(max_tag_operators("{{ {'a': {'b': 1}} + 1 + 1 }}"), 2);
        assert_eq!(max_tag_operators(&format!("{{{{ 1{} }}}}", " + 1".repeat(1000))), 1000);
    }
}
