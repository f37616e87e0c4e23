//! The synthetic models' vocabulary: a complete SentencePiece ("llama") vocabulary of any size
//! that llama.cpp loads: `<unk>`, `<s>`, `</s>`, the 256 byte tokens `<0x00>`..`<0xFF>`, then
//! unique word pieces.

use crate::gguf::{Array, GgufWriter, Value};
use std::collections::HashSet;

/// Tokens before the word pieces: three specials and the 256 byte tokens.
pub const N_SPECIAL: usize = 3 + 256;

/// The most word pieces [`word_pieces`] can make (see its list of stages).
pub const MAX_PIECES: usize = 1 + 26 + 26 + 26usize.pow(2) * 2 + 26usize.pow(3) * 2 + 26usize.pow(4);

/// Writes the `tokenizer.ggml.*` keys of a vocabulary of `n` tokens.
///
/// Panics unless `N_SPECIAL < n <= N_SPECIAL + MAX_PIECES` (a programming error in a
/// [`super::SynthConfig`], not input).
pub fn add_vocab(w: &mut GgufWriter, n: usize) {
    assert!(
        n > N_SPECIAL && n - N_SPECIAL <= MAX_PIECES,
        "a synthetic vocabulary has {} to {} tokens, not {n}",
        N_SPECIAL + 1,
        N_SPECIAL + MAX_PIECES
    );
    const UNKNOWN: i32 = 2;
    const CONTROL: i32 = 3;
    const NORMAL: i32 = 1;
    const BYTE: i32 = 6;
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![UNKNOWN, CONTROL, CONTROL];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(BYTE);
    }
    debug_assert_eq!(tokens.len(), N_SPECIAL);
    for piece in word_pieces(n - N_SPECIAL) {
        tokens.push(piece);
        types.push(NORMAL);
    }
    // Special and byte tokens score 0; pieces get decreasing scores (their merge priority).
    let scores: Vec<f32> = (0..n).map(|i| if i < N_SPECIAL { 0.0 } else { -((i - N_SPECIAL) as f32) }).collect();
    w.set("tokenizer.ggml.model", Value::String("llama".into()))
        .set("tokenizer.ggml.pre", Value::String("default".into()))
        .set("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
        .set("tokenizer.ggml.scores", Value::Array(Array::F32(scores)))
        .set("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
        .set("tokenizer.ggml.bos_token_id", Value::U32(1))
        .set("tokenizer.ggml.eos_token_id", Value::U32(2))
        .set("tokenizer.ggml.unknown_token_id", Value::U32(0))
        .set("tokenizer.ggml.add_bos_token", Value::Bool(true))
        .set("tokenizer.ggml.add_eos_token", Value::Bool(false));
}

/// The first `count` distinct pieces of: "▁", single letters, "▁"+letter, common English
/// bigrams, "▁"+common words, "▁"+2 letters, 2 letters, "▁"+3 letters, 3 letters, "▁"+4
/// letters (letter strings in alphabetical order; a piece already listed is skipped). Every
/// piece is its longest proper prefix, already listed, plus one letter, so SentencePiece can
/// build it by merges. The 512-token vocabulary of the golden models only reaches "▁"+2 letters.
pub fn word_pieces(count: usize) -> Vec<String> {
    const BIGRAMS: &str = "th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de hi ri ro ic ne ea ra ce";
    const WORDS: &str = "the and of to in is it was he for on are as with his they at be this from";
    let sp = |s: String| format!("\u{2581}{s}");
    let stages = std::iter::once("\u{2581}".to_string())
        .chain(letter_strings(1))
        .chain(letter_strings(1).map(sp))
        .chain(BIGRAMS.split(' ').map(String::from))
        .chain(WORDS.split(' ').map(|w| sp(w.into())))
        .chain(letter_strings(2).map(sp))
        .chain(letter_strings(2))
        .chain(letter_strings(3).map(sp))
        .chain(letter_strings(3))
        .chain(letter_strings(4).map(sp));
    let mut seen = HashSet::with_capacity(count);
    stages.filter(|p| seen.insert(p.clone())).take(count).collect()
}

/// All `len`-letter strings over a..z, in alphabetical order.
fn letter_strings(len: u32) -> impl Iterator<Item = String> {
    (0..26usize.pow(len)).map(move |mut i| {
        let mut s = vec![b'a'; len as usize];
        for c in s.iter_mut().rev() {
            *c += (i % 26) as u8;
            i /= 26;
        }
        String::from_utf8(s).unwrap()
    })
}
