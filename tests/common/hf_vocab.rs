//! A Hugging Face SentencePiece-BPE tokenizer.json (Gemma's) as the GGUF tokenizer keys
//! llama.cpp's converter writes for it: shared by tests/gemma_vocab.rs and
//! examples/tokenizer_bench.rs (which includes this file by path).
#![allow(dead_code)]

use pocketllm::gguf::{Array, Metadata, Value};
use serde_json::Value as Json;

/// The GGUF tokenizer keys of a SentencePiece-BPE tokenizer.json, as llama.cpp's converter
/// writes them for Gemma: each token's score is minus the rank of the first merge that makes
/// it (SentencePiece merges the highest-scoring pair; Hugging Face's merges were ranked by
/// those scores), single characters 0; byte type for `<0xNN>`; added tokens as the
/// converter's `_create_vocab_sentencepiece` makes them: score -1000, control when special or
/// special-looking (`<mask>`, `<unusedN>`, `<|...|>`), else user-defined with `▁` written as
/// a space (Gemma's whitespace runs), unknown for `<unk>`.
pub fn gguf_vocab(tj: &Json) -> Metadata {
    let model = &tj["model"];
    let vocab = model["vocab"].as_object().unwrap();
    let n = vocab.len();
    let mut tokens = vec![String::new(); n];
    for (t, id) in vocab {
        tokens[id.as_u64().unwrap() as usize] = t.clone();
    }
    let mut scores = vec![0f32; n];
    let mut scored = vec![false; n];
    for (rank, m) in model["merges"].as_array().unwrap().iter().enumerate() {
        let merged = match m {
            Json::Array(p) => format!("{}{}", p[0].as_str().unwrap(), p[1].as_str().unwrap()),
            Json::String(s) => s.replacen(' ', "", 1),
            _ => panic!("merge {m}"),
        };
        if let Some(id) = vocab.get(&merged).and_then(|v| v.as_u64()) {
            let id = id as usize;
            if !scored[id] {
                scores[id] = -(rank as f32) - 1.0;
                scored[id] = true;
            }
        }
    }
    let mut types: Vec<i32> =
        tokens.iter().map(|t| if t.len() == 6 && t.starts_with("<0x") && t.ends_with('>') { 6 } else { 1 }).collect();
    // The one added token past the model's vocabulary (`<image_soft_token>`, 262 144) is not a
    // row of the embedding table: the GGUF has 262 144 tokens.
    for a in tj["added_tokens"].as_array().unwrap().iter().filter(|a| a["id"].as_u64().unwrap() < n as u64) {
        let id = a["id"].as_u64().unwrap() as usize;
        let text = a["content"].as_str().unwrap();
        let looks_special = ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(&text)
            || (text.starts_with("<|") && text.ends_with("|>"))
            || (text.starts_with("<unused") && text.ends_with('>'));
        types[id] = if text == "<unk>" {
            2
        } else if a["special"].as_bool() == Some(true) || looks_special {
            3
        } else {
            tokens[id] = text.replace('▁', " ");
            4
        };
        scores[id] = -1000.0;
    }
    let mut md = Metadata::default();
    md.insert("general.architecture", Value::String("gemma3".into()));
    md.insert("tokenizer.ggml.model", Value::String("llama".into()));
    md.insert("tokenizer.ggml.pre", Value::String("default".into()));
    md.insert("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)));
    md.insert("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
    md.insert("tokenizer.ggml.token_type", Value::Array(Array::I32(types)));
    md.insert("tokenizer.ggml.bos_token_id", Value::U32(2));
    md.insert("tokenizer.ggml.eos_token_id", Value::U32(1));
    md.insert("tokenizer.ggml.unknown_token_id", Value::U32(3));
    md.insert("tokenizer.ggml.padding_token_id", Value::U32(0));
    md.insert("tokenizer.ggml.add_bos_token", Value::Bool(true));
    md.insert("tokenizer.ggml.add_space_prefix", Value::Bool(false));
    md
}
