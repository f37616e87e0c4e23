//! Ids back to bytes: llama.cpp's `token_to_piece` and `detokenize` (leading-space removal for
//! SentencePiece, `clean_spaces` for most BPE vocabularies).

use super::Tokenizer;
use super::unicode;
use super::vocab::{ATTR_BYTE, ATTR_CONTROL, ATTR_NORMAL, ATTR_UNKNOWN, ATTR_USER_DEFINED, Kind};

impl Tokenizer {
    /// Bytes of one token as llama.cpp's `token_to_piece` renders it. Control and unknown
    /// tokens render as nothing unless `special`; out-of-range ids render as nothing.
    pub fn token_to_piece(&self, id: u32, special: bool) -> Vec<u8> {
        let v = &self.vocab;
        let Some(text) = v.texts.get(id as usize) else { return Vec::new() };
        let attr = v.attr(id);
        if attr & (ATTR_UNKNOWN | ATTR_CONTROL) != 0 {
            return if special { text.as_bytes().to_vec() } else { Vec::new() };
        }
        if attr & ATTR_USER_DEFINED != 0 {
            return text.as_bytes().to_vec();
        }
        if attr & ATTR_NORMAL != 0 {
            return match v.kind {
                Kind::Bpe => byte_decode(text),
                _ => text.replace('\u{2581}', " ").into_bytes(),
            };
        }
        if attr & ATTR_BYTE != 0 {
            return text.get(3..5).and_then(|h| u8::from_str_radix(h, 16).ok()).map(|b| vec![b]).unwrap_or_default();
        }
        Vec::new()
    }

    /// Raw bytes of a whole sequence (llama.cpp's `llama_detokenize` with remove_special =
    /// false, unparse_special = `special`), before lossy UTF-8 conversion.
    pub(crate) fn decode_bytes(&self, ids: &[u32], special: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut remove_space = self.vocab.add_space_prefix;
        for &id in ids {
            let piece = self.token_to_piece(id, special);
            let p = if remove_space && piece.first() == Some(&b' ') { &piece[1..] } else { &piece[..] };
            out.extend_from_slice(p);
            remove_space = false;
        }
        if self.vocab.clean_spaces {
            out = clean_spaces(&out);
        }
        out
    }

    /// Whole-sequence detokenization, lossy UTF-8.
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, special)).into_owned()
    }

    pub(crate) fn cleans_spaces(&self) -> bool {
        self.vocab.clean_spaces
    }
}

/// GPT-2 byte-level text back to bytes; characters outside the mapping are rendered the way
/// llama.cpp's `llama_decode_text` does.
fn byte_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match unicode::char_to_byte(c) {
            Some(b) => out.push(b),
            None => {
                out.extend_from_slice(b"[UNK_BYTE_0x");
                let mut tmp = [0u8; 4];
                for b in c.encode_utf8(&mut tmp).bytes() {
                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                }
                out.extend_from_slice(text.as_bytes());
                out.push(b']');
            }
        }
    }
    out
}

/// llama.cpp's three clean-up passes: drop the space in " ?", " !", " .", " ,"; turn " ' " into
/// "'"; drop the space before 's, 'm, 're and 've.
pub(crate) fn clean_spaces(text: &[u8]) -> Vec<u8> {
    if text.is_empty() {
        return Vec::new();
    }
    // pass 1
    let mut a: Vec<u8> = Vec::with_capacity(text.len());
    a.push(text[0]);
    for i in 1..text.len() {
        let x = text[i];
        if text[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            a.pop();
        }
        a.push(x);
    }
    // pass 2 (works in place on a copy, like the original, so a consumed space is seen as NUL)
    let mut t = a.clone();
    let mut b: Vec<u8> = Vec::with_capacity(t.len());
    b.push(t[0]);
    let mut i = 1;
    while i < t.len() {
        let x = t[i];
        if x == b'\'' && i + 1 < t.len() && t[i - 1] == b' ' && t[i + 1] == b' ' {
            b.pop();
            i += 1;
            t[i] = 0;
        }
        b.push(x);
        i += 1;
    }
    // pass 3
    let mut c: Vec<u8> = Vec::with_capacity(b.len());
    c.push(b[0]);
    for i in 1..b.len() {
        let x = b[i];
        if b[i - 1] == b' ' && x == b'\'' && i + 1 < b.len() {
            let x1 = b[i + 1];
            let short = matches!(x1, b's' | b'm');
            let long = i + 2 < b.len() && matches!((x1, b[i + 2]), (b'r', b'e') | (b'v', b'e'));
            if short || long {
                c.pop();
            }
        }
        c.push(x);
    }
    c
}
