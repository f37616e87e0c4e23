//! WordPiece (`tokenizer.ggml.model = "bert"`) as llama.cpp runs it: a BERT-style normalizer
//! (llama.cpp's one-code-point "NFD", lowercase, accent stripping, control removal), words split
//! at whitespace and around punctuation and CJK ideographs, then greedy longest-match against a
//! vocabulary where word-initial pieces carry a `▁` prefix.

use super::unicode::{self, ACCENT_MARK, CONTROL, PUNCTUATION, SYMBOL, WHITESPACE};
use super::vocab::Vocab;

pub struct Normalizer {
    pub lowercase: bool,
    pub strip_accents: bool,
}

impl Normalizer {
    pub fn from_metadata(md: &crate::gguf::Metadata) -> Self {
        let lowercase = md.get_bool("tokenizer.ggml.normalizer.lowercase").unwrap_or(true);
        let strip_accents = md.get_bool("tokenizer.ggml.normalizer.strip_accents").unwrap_or(lowercase);
        Normalizer { lowercase, strip_accents }
    }
}

/// llama.cpp's NFD keeps only the first code point of the canonical decomposition
/// (so `é` -> `e`, and a Hangul syllable -> its leading consonant).
fn nfd_first(c: char) -> char {
    let mut first = None;
    unicode_normalization::char::decompose_canonical(c, |d| {
        first.get_or_insert(d);
    });
    first.unwrap_or(c)
}

fn is_chinese(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

fn words(text: &str, norm: &Normalizer) -> Vec<String> {
    let mut words = vec![String::new()];
    for c in text.chars() {
        let c = if norm.strip_accents { nfd_first(c) } else { c };
        let f = unicode::flags(c);
        if f & WHITESPACE != 0 {
            if !words.last().unwrap().is_empty() {
                words.push(String::new());
            }
            continue;
        }
        if c == '\0' || c == '\u{FFFD}' || f & CONTROL != 0 {
            continue;
        }
        if norm.strip_accents && f & ACCENT_MARK != 0 {
            continue;
        }
        let lc = if norm.lowercase { c.to_lowercase().next().unwrap_or(c) } else { c };
        if f & PUNCTUATION != 0 || ((c as u32) < 0x7F && f & SYMBOL != 0) || is_chinese(c) {
            if !words.last().unwrap().is_empty() {
                words.push(String::new());
            }
            words.last_mut().unwrap().push(lc);
            words.push(String::new());
        } else {
            words.last_mut().unwrap().push(lc);
        }
    }
    if words.last().is_some_and(|w| w.is_empty()) {
        words.pop();
    }
    words
}

/// Tokenizes one text fragment, appending to `out`.
pub fn tokenize(v: &Vocab, norm: &Normalizer, max_token_len: usize, text: &str, out: &mut Vec<u32>) {
    for word in words(text, norm) {
        if word.is_empty() {
            continue;
        }
        let w = format!("\u{2581}{word}");
        let n = w.len();
        let before = out.len();
        let mut i = 0;
        while i < n {
            let mut found = None;
            let mut j = n.min(i + max_token_len + 1);
            while j > i {
                if let Some(id) = w.get(i..j).and_then(|s| v.id(s)) {
                    found = Some((id, j));
                    break;
                }
                j -= 1;
            }
            match found {
                Some((id, j)) => {
                    out.push(id);
                    i = j;
                }
                None => {
                    out.truncate(before);
                    break;
                }
            }
        }
        if out.len() == before {
            out.extend(v.unk);
        }
    }
}
