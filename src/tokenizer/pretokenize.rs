//! Pre-tokenizers for byte-level BPE: split text into words the way llama.cpp's
//! `unicode_regex_split` does, one regex after another, each refining the pieces of the last
//! (text between matches stays a piece of its own).
//!
//! Two patterns (GPT-2's and Llama 3's) are hand-written splitters, as in llama.cpp. Every other
//! pattern runs through `fancy-regex` on the same stand-in text llama.cpp hands `std::regex`:
//! with a `\p{..}` class in the pattern, each non-ASCII code point collapses to one marker per
//! category (so `\p{L}` means "ASCII letter or the letter marker"); without one, the text is
//! used as is, non-ASCII whitespace replaced by `\v`.

use super::TokenizerError;
use super::unicode::{self, ACCENT_MARK, LETTER, NUMBER, PUNCTUATION, SYMBOL, WHITESPACE};

pub const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
pub const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// (code points that Unicode normalization would change are written as escapes)
const DEEPSEEK_LLM_LETTERS: &str = "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
const CJK_RUN: &str = "[一-龥ࠀ-一가-퟿]+";

/// The regex list llama.cpp uses for a `tokenizer.ggml.pre` value, and whether the value was known
/// (unknown values fall back to llama.cpp's default list).
pub fn patterns_for(pre: &str) -> (Vec<&'static str>, bool) {
    let v = match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" | "dbrx"
        | "smaug-bpe" | "glm4" | "chatglm-bpe" => vec![LLAMA3],
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "megrez" | "stablelm2" | "hunyuan" | "solar-open" => vec![QWEN2],
        "qwen35" => vec![QWEN35],
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum"
        | "modern-bert" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling" | "exaone4" | "jina-v1-en"
        | "jina-v2-code" | "roberta-bpe" => vec![GPT2],
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
            vec![r"\p{N}", GPT2]
        }
        "falcon" => vec![r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
        "deepseek-llm" => {
            vec!["[\r\n]", DEEPSEEK_LLM_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", CJK_RUN, r"\p{N}+"]
        }
        "deepseek-coder" => vec!["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK_RUN, r"\p{N}"],
        "default" => return (default_patterns(), true),
        _ => return (default_patterns(), false),
    };
    (v, true)
}

fn default_patterns() -> Vec<&'static str> {
    vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]
}

enum Splitter {
    Gpt2,
    Llama3,
    Regex { re: fancy_regex::Regex, collapsed: bool },
}

/// A compiled pre-tokenizer: a list of splitters applied in turn.
pub struct PreTokenizer {
    splitters: Vec<Splitter>,
}

const CATEGORY_KEYS: [&str; 10] =
    [r"\p{N}", r"\p{L}", r"\p{P}", r"\p{M}", r"\p{S}", r"\p{Lu}", r"\p{Ll}", r"\p{Lt}", r"\p{Lm}", r"\p{Lo}"];

/// Marker code points standing in for non-ASCII characters in the collapsed text.
const M_OTHER: char = '\u{D0}';
const M_NUMBER: char = '\u{D1}';
const M_LETTER: char = '\u{D2}';
const M_PUNCT: char = '\u{D3}';
const M_MARK: char = '\u{D4}';
const M_SYMBOL: char = '\u{D5}';

/// Class body for a `\p{..}` in a collapsed pattern: the marker plus llama.cpp's ASCII members
/// (note `~` is in neither its punctuation nor its symbol set).
fn category_class(key: &str) -> Option<&'static str> {
    Some(match key {
        r"\p{N}" => r"\x{D1}0-9",
        r"\p{L}" | r"\p{Lu}" | r"\p{Ll}" | r"\p{Lt}" | r"\p{Lm}" | r"\p{Lo}" => r"\x{D2}A-Za-z",
        r"\p{P}" => r"\x{D3}!-#%-*,-/:-;?-@\[-\]_\{\}",
        r"\p{M}" => r"\x{D4}",
        r"\p{S}" => r"\x{D5}\$\+<->\^`\|",
        _ => return None,
    })
}

fn collapse_pattern(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::new();
    let mut inside = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'[' && (i == 0 || b[i - 1] != b'\\') {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && b[i] == b']' && b[i - 1] != b'\\' {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if p[i..].starts_with(r"\p{")
            && let Some(close) = p[i..].find('}')
            && let Some(body) = category_class(&p[i..i + close + 1])
        {
            if !inside {
                out.push('[');
            }
            out.push_str(body);
            if !inside {
                out.push(']');
            }
            i += close + 1;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

impl PreTokenizer {
    pub fn new(patterns: &[&str]) -> Result<Self, TokenizerError> {
        let mut splitters = Vec::new();
        for &p in patterns {
            let s = if p == GPT2 {
                Splitter::Gpt2
            } else if p == LLAMA3 {
                Splitter::Llama3
            } else {
                let collapsed = CATEGORY_KEYS.iter().any(|k| p.contains(k));
                let src = if collapsed { collapse_pattern(p) } else { p.to_string() };
                let re = fancy_regex::Regex::new(&src)
                    .map_err(|e| TokenizerError::Invalid(format!("pre-tokenizer regex {p:?}: {e}")))?;
                Splitter::Regex { re, collapsed }
            };
            splitters.push(s);
        }
        Ok(PreTokenizer { splitters })
    }

    /// Splits `text` into words (as `&str` slices of it).
    pub fn split<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let cpts: Vec<char> = text.chars().collect();
        let mut pieces: Vec<(usize, usize)> = if cpts.is_empty() { Vec::new() } else { vec![(0, cpts.len())] };
        let mut collapsed: Option<Stand> = None;
        let mut wide: Option<Stand> = None;
        for s in &self.splitters {
            pieces = match s {
                Splitter::Gpt2 => split_custom(&cpts, &pieces, gpt2_step),
                Splitter::Llama3 => split_custom(&cpts, &pieces, llama3_step),
                Splitter::Regex { re, collapsed: true } => {
                    let st = collapsed.get_or_insert_with(|| Stand::new(&cpts, collapse_char));
                    split_regex(re, st, &pieces)
                }
                Splitter::Regex { re, collapsed: false } => {
                    let st = wide.get_or_insert_with(|| Stand::new(&cpts, widen_char));
                    split_regex(re, st, &pieces)
                }
            };
        }
        // code-point ranges back to byte slices of the original text
        let mut byte_at = Vec::with_capacity(cpts.len() + 1);
        let mut off = 0;
        for c in &cpts {
            byte_at.push(off);
            off += c.len_utf8();
        }
        byte_at.push(off);
        pieces.iter().map(|&(a, b)| &text[byte_at[a]..byte_at[b]]).collect()
    }
}

fn collapse_char(c: char) -> char {
    if (c as u32) < 128 {
        return c;
    }
    let f = unicode::flags(c);
    if f & WHITESPACE != 0 {
        '\u{0B}'
    } else if f & NUMBER != 0 {
        M_NUMBER
    } else if f & LETTER != 0 {
        M_LETTER
    } else if f & PUNCTUATION != 0 {
        M_PUNCT
    } else if f & ACCENT_MARK != 0 {
        M_MARK
    } else if f & SYMBOL != 0 {
        M_SYMBOL
    } else {
        M_OTHER
    }
}

fn widen_char(c: char) -> char {
    if (c as u32) > 0x7F && c.is_whitespace() { '\u{0B}' } else { c }
}

/// The stand-in text a regex runs on, with code point <-> byte offset maps.
struct Stand {
    text: String,
    byte_of: Vec<usize>,
    /// code point index at each byte offset that starts one (and at the end)
    cpt_of: Vec<usize>,
}

impl Stand {
    fn new(cpts: &[char], f: fn(char) -> char) -> Self {
        let mut text = String::with_capacity(cpts.len());
        let mut byte_of = Vec::with_capacity(cpts.len() + 1);
        for &c in cpts {
            byte_of.push(text.len());
            text.push(f(c));
        }
        byte_of.push(text.len());
        let mut cpt_of = vec![usize::MAX; text.len() + 1];
        for (i, &b) in byte_of.iter().enumerate() {
            cpt_of[b] = i;
        }
        Stand { text, byte_of, cpt_of }
    }
}

fn split_regex(re: &fancy_regex::Regex, st: &Stand, pieces: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(pieces.len());
    for &(a, b) in pieces {
        let base = st.byte_of[a];
        let hay = &st.text[base..st.byte_of[b]];
        let mut last = a;
        for m in re.find_iter(hay) {
            let Ok(m) = m else { break };
            let (ms, me) = (st.cpt_of[base + m.start()], st.cpt_of[base + m.end()]);
            if ms > last {
                out.push((last, ms));
            }
            if me > ms {
                out.push((ms, me));
            }
            last = me;
        }
        if last < b {
            out.push((last, b));
        }
    }
    out
}

/// Runs a hand-written splitter over each piece. `step` gets the piece's code points and a
/// position and returns where the word starting there ends.
fn split_custom(cpts: &[char], pieces: &[(usize, usize)], step: fn(&[char], usize) -> usize) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(pieces.len());
    for &(a, b) in pieces {
        let s = &cpts[a..b];
        let mut pos = 0;
        while pos < s.len() {
            let end = step(s, pos).clamp(pos + 1, s.len());
            out.push((a + pos, a + end));
            pos = end;
        }
    }
    out
}

fn fl(s: &[char], i: usize) -> Option<u8> {
    s.get(i).map(|&c| unicode::flags(c))
}
fn is_l(s: &[char], i: usize) -> bool {
    fl(s, i).is_some_and(|f| f & LETTER != 0)
}
fn is_n(s: &[char], i: usize) -> bool {
    fl(s, i).is_some_and(|f| f & NUMBER != 0)
}
fn is_ws(s: &[char], i: usize) -> bool {
    fl(s, i).is_some_and(|f| f & WHITESPACE != 0)
}
/// `[^\s\p{L}\p{N}]`, false past the end.
fn is_other(s: &[char], i: usize) -> bool {
    fl(s, i).is_some_and(|f| f & (WHITESPACE | LETTER | NUMBER) == 0)
}

/// `'s|'t|'re|'ve|'m|'ll|'d`, case-sensitive or not; returns the length matched.
fn contraction(s: &[char], pos: usize, fold: bool) -> usize {
    if s[pos] != '\'' || pos + 1 >= s.len() {
        return 0;
    }
    let low = |c: char| if fold { c.to_ascii_lowercase() } else { c };
    let n1 = low(s[pos + 1]);
    if matches!(n1, 's' | 't' | 'm' | 'd') {
        return 2;
    }
    if pos + 2 < s.len() {
        let n2 = low(s[pos + 2]);
        if matches!((n1, n2), ('r', 'e') | ('v', 'e') | ('l', 'l')) {
            return 3;
        }
    }
    0
}

/// Whitespace handling shared by both splitters: `\s+(?!\S)|\s+`.
fn whitespace_run(s: &[char], pos: usize) -> usize {
    let mut n = 0;
    while is_ws(s, pos + n) {
        n += 1;
    }
    if n > 1 && pos + n < s.len() {
        pos + n - 1
    } else if n > 0 {
        pos + n
    } else {
        pos + 1
    }
}

/// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
fn gpt2_step(s: &[char], pos: usize) -> usize {
    let c = len_if(contraction(s, pos, false));
    if let Some(n) = c {
        return pos + n;
    }
    let sp = usize::from(s[pos] == ' ');
    let q = pos + sp;
    if is_l(s, q) {
        return run(s, q, is_l);
    }
    if is_n(s, q) {
        return run(s, q, is_n);
    }
    if is_other(s, q) {
        return run(s, q, is_other);
    }
    whitespace_run(s, pos)
}

/// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
fn llama3_step(s: &[char], pos: usize) -> usize {
    if let Some(n) = len_if(contraction(s, pos, true)) {
        return pos + n;
    }
    let c = s[pos];
    if !(c == '\r' || c == '\n' || is_n(s, pos)) && (is_l(s, pos) || is_l(s, pos + 1)) {
        return run(s, pos + 1, is_l);
    }
    if is_n(s, pos) {
        let end = run(s, pos, is_n);
        return end.min(pos + 3);
    }
    let q = pos + usize::from(c == ' ');
    if is_other(s, q) {
        let mut e = run(s, q, is_other);
        while e < s.len() && (s[e] == '\r' || s[e] == '\n') {
            e += 1;
        }
        return e;
    }
    let mut n = 0;
    let mut last_nl = None;
    while is_ws(s, pos + n) {
        if s[pos + n] == '\r' || s[pos + n] == '\n' {
            last_nl = Some(pos + n + 1);
        }
        n += 1;
    }
    if let Some(e) = last_nl {
        return e;
    }
    whitespace_run(s, pos)
}

fn len_if(n: usize) -> Option<usize> {
    (n > 0).then_some(n)
}

fn run(s: &[char], mut i: usize, pred: fn(&[char], usize) -> bool) -> usize {
    while pred(s, i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: &str, text: &str) -> Vec<String> {
        let (p, _) = patterns_for(pre);
        PreTokenizer::new(&p).unwrap().split(text).into_iter().map(String::from).collect()
    }

    #[test]
    fn gpt2_and_llama3_basics() {
        assert_eq!(words("gpt-2", "Hello world's  end"), ["Hello", " world", "'s", " ", " end"]);
        assert_eq!(words("llama-bpe", "abc 12345\n\n x"), ["abc", " ", "123", "45", "\n\n", " x"]);
    }

    #[test]
    fn collapsed_patterns() {
        assert_eq!(collapse_pattern(r"[^\s\p{L}]\p{N}"), r"[^\s\x{D2}A-Za-z][\x{D1}0-9]");
        assert_eq!(words("qwen2", "ab 12"), ["ab", " ", "1", "2"]);
    }
}
