//! Tokenizers built from GGUF metadata (`tokenizer.ggml.*`), matching llama.cpp's
//! `llama_tokenize` / `llama_token_to_piece` / `llama_detokenize` token for token.
//!
//! - `vocab`: the loader (token attributes, special ids, llama.cpp's fix-ups);
//! - `spm`: SentencePiece bigram merging by score; `bpe`: byte-level BPE by merge rank;
//!   `wpm`: BERT WordPiece;
//! - `pretokenize`: the BPE word splitters chosen by `tokenizer.ggml.pre`; `unicode`: categories;
//! - `decode`: pieces and whole-sequence detokenization; `stream`: incremental UTF-8-safe output.

mod bpe;
mod decode;
mod pretokenize;
mod spm;
mod stream;
mod unicode;
mod vocab;
mod wpm;

pub use stream::StreamDecoder;

use thiserror::Error;

use crate::gguf::Metadata;
use vocab::{ATTR_CONTROL, ATTR_LSTRIP, ATTR_RSTRIP, ATTR_UNKNOWN, Kind, Vocab};

#[derive(Debug, Error, Clone, PartialEq)]
pub enum TokenizerError {
    #[error("missing metadata key {0}")]
    MissingKey(&'static str),
    #[error("unsupported tokenizer model {0:?}")]
    UnsupportedModel(String),
    #[error("invalid tokenizer data: {0}")]
    Invalid(String),
}

enum Engine {
    Spm { bytes: Box<[Option<u32>; 256]> },
    Bpe { merges: bpe::Merges, pre: pretokenize::PreTokenizer },
    Wpm { norm: wpm::Normalizer, max_token_len: usize },
}

pub struct Tokenizer {
    vocab: Vocab,
    engine: Engine,
}

/// A piece of input: raw text, or a special token already recognised in it.
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

impl Tokenizer {
    pub fn from_metadata(md: &Metadata) -> Result<Self, TokenizerError> {
        let vocab = Vocab::from_metadata(md)?;
        let engine = match vocab.kind {
            Kind::Spm => Engine::Spm { bytes: Box::new(spm::byte_tokens(&vocab)) },
            Kind::Bpe => {
                let (patterns, _known) = pretokenize::patterns_for(&vocab.pre);
                Engine::Bpe { merges: bpe::load_merges(md)?, pre: pretokenize::PreTokenizer::new(&patterns)? }
            }
            Kind::Wpm => Engine::Wpm {
                norm: wpm::Normalizer::from_metadata(md),
                max_token_len: vocab.texts.iter().map(String::len).max().unwrap_or(0),
            },
        };
        Ok(Tokenizer { vocab, engine })
    }

    pub fn n_vocab(&self) -> usize {
        self.vocab.texts.len()
    }

    /// llama.cpp's `llama_tokenize(text, add_special, parse_special)`.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let v = &self.vocab;
        let frags = self.partition(text, parse_special);
        let mut out = Vec::new();
        let wordpiece = matches!(self.engine, Engine::Wpm { .. });
        // WordPiece always wraps in [CLS] .. [SEP] when asked for special tokens
        if add_special && (v.add_bos || wordpiece) {
            out.extend(v.bos);
        }
        match &self.engine {
            Engine::Spm { bytes } => {
                let mut prev_special = true;
                let mut buf = String::new();
                for f in &frags {
                    match *f {
                        Fragment::Text(t) => {
                            buf.clear();
                            if v.add_space_prefix && prev_special {
                                buf.push(' ');
                            }
                            buf.push_str(t);
                            let escaped = buf.replace(' ', "\u{2581}");
                            spm::tokenize(v, bytes, &escaped, &mut out);
                            prev_special = false;
                        }
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                    }
                }
            }
            Engine::Bpe { merges, pre } => {
                let (mut word, mut buf) = (String::new(), String::new());
                for f in &frags {
                    match *f {
                        Fragment::Text(t) => {
                            for w in pre.split(t) {
                                bpe::byte_encode(w, &mut word);
                                bpe::tokenize_word(v, merges, &word, &mut buf, &mut out);
                            }
                        }
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
            Engine::Wpm { norm, max_token_len } => {
                for f in &frags {
                    match *f {
                        Fragment::Text(t) => wpm::tokenize(v, norm, *max_token_len, t, &mut out),
                        Fragment::Token(id) => out.push(id),
                    }
                }
            }
        }
        if wordpiece {
            if add_special {
                out.extend(v.sep);
            }
        } else if add_special && v.add_eos {
            out.extend(v.eos);
        }
        out
    }

    /// llama.cpp's `tokenizer_st_partition`: cut special-token texts out of the input, longest
    /// token first. Without `parse_special` only user-defined tokens are cut out.
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let v = &self.vocab;
        let mut frags = if text.is_empty() { Vec::new() } else { vec![Fragment::Text(text)] };
        for &id in &v.special_cache {
            let attr = v.attr(id);
            if !parse_special && attr & (ATTR_CONTROL | ATTR_UNKNOWN) != 0 {
                continue;
            }
            let tok = v.texts[id as usize].as_str();
            if !frags.iter().any(|f| matches!(f, Fragment::Text(t) if t.contains(tok))) {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                let Fragment::Text(mut rest) = f else {
                    next.push(f);
                    continue;
                };
                while let Some(at) = rest.find(tok) {
                    let mut left = &rest[..at];
                    if attr & ATTR_LSTRIP != 0 {
                        left = left.trim_end_matches(is_c_space);
                    }
                    if !left.is_empty() {
                        next.push(Fragment::Text(left));
                    }
                    next.push(Fragment::Token(id));
                    rest = &rest[at + tok.len()..];
                    if attr & ATTR_RSTRIP != 0 {
                        rest = rest.trim_start_matches(is_c_space);
                    }
                }
                if !rest.is_empty() {
                    next.push(Fragment::Text(rest));
                }
            }
            frags = next;
        }
        frags
    }

    pub fn bos(&self) -> Option<u32> {
        self.vocab.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.vocab.eos
    }
    pub fn eot(&self) -> Option<u32> {
        self.vocab.eot
    }
    pub fn add_bos(&self) -> bool {
        self.vocab.add_bos
    }
    pub fn add_eos(&self) -> bool {
        self.vocab.add_eos
    }

    /// End of generation: eos, eot, eom and llama.cpp's name-based additions.
    pub fn is_eog(&self, id: u32) -> bool {
        self.vocab.eog.contains(&id)
    }

    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.texts.get(id as usize).map(String::as_str)
    }
}

/// C's `isspace` in the "C" locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}
