//! Streaming detokenization: text that is always a prefix of what `decode` gives for the whole
//! sequence, never splitting a UTF-8 character.
//!
//! Bytes are held back while they might still change: an incomplete UTF-8 sequence at the end,
//! and (for vocabularies with llama.cpp's `clean_spaces`) the last few bytes when they contain a
//! space or apostrophe, since a later character can still delete that space.

use super::Tokenizer;
use super::decode::clean_spaces;

#[derive(Debug, Clone)]
pub struct StreamDecoder {
    special: bool,
    first: bool,
    /// whether the tokenizer seen in `push` applies llama.cpp's `clean_spaces`
    cleaning: bool,
    /// raw piece bytes (SentencePiece leading space already removed)
    raw: Vec<u8>,
    /// bytes of the cleaned text already turned into output
    done: usize,
}

/// How many trailing cleaned bytes a later character can still affect.
const CLEAN_LOOKAHEAD: usize = 3;

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    /// A decoder that renders control tokens as nothing (like `decode(ids, false)`).
    pub fn new() -> Self {
        Self::with_special(false)
    }

    /// A decoder matching `decode(ids, special)`.
    pub fn with_special(special: bool) -> Self {
        StreamDecoder { special, first: true, cleaning: false, raw: Vec::new(), done: 0 }
    }

    /// Adds one token; returns the text that became final.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> String {
        let piece = tok.token_to_piece(id, self.special);
        let strip = self.first && tok.vocab.add_space_prefix && piece.first() == Some(&b' ');
        self.raw.extend_from_slice(if strip { &piece[1..] } else { &piece[..] });
        self.first = false;
        self.cleaning = tok.cleans_spaces();
        if self.cleaning {
            let cleaned = clean_spaces(&self.raw);
            let tail_start = cleaned.len().saturating_sub(CLEAN_LOOKAHEAD);
            let stable = cleaned[tail_start..]
                .iter()
                .position(|&b| b == b' ' || b == b'\'')
                .map_or(cleaned.len(), |p| tail_start + p);
            self.take(&cleaned, stable, false)
        } else {
            let raw = std::mem::take(&mut self.raw);
            let s = self.take(&raw, raw.len(), false);
            self.raw = raw;
            s
        }
    }

    /// Everything still held back (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let text = if self.raw.is_empty() {
            Vec::new()
        } else if self.cleaning {
            clean_spaces(&self.raw)
        } else {
            self.raw.clone()
        };
        let s = self.take(&text, text.len(), true);
        *self = Self::with_special(self.special);
        s
    }

    /// Converts `text[self.done..end]` to a string, holding back an incomplete trailing UTF-8
    /// sequence unless `last`.
    fn take(&mut self, text: &[u8], end: usize, last: bool) -> String {
        let mut out = String::new();
        if end <= self.done {
            return out;
        }
        let mut pos = self.done;
        while pos < end {
            match std::str::from_utf8(&text[pos..end]) {
                Ok(s) => {
                    out.push_str(s);
                    pos = end;
                }
                Err(e) => {
                    let ok = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&text[pos..pos + ok]).unwrap());
                    pos += ok;
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            pos += n;
                        }
                        None if last => {
                            out.push('\u{FFFD}');
                            pos = end;
                        }
                        None => break,
                    }
                }
            }
        }
        self.done = pos;
        out
    }
}
