//! Tokenizer load time and encoding speed on real vocabularies, side by side in one run:
//! Gemma 3's 262 144-token SentencePiece vocabulary (from the Hub's tokenizer.json, as
//! llama.cpp's converter stores it), Llama 3's 128 256-token and Qwen2's 151 936-token byte-level
//! BPE (llama.cpp's vocab GGUFs in ../shared/fixtures):
//! `cargo run --release --example tokenizer_bench [-- GEMMA3_TOKENIZER_JSON]`
//! (default: target/test-data/gemma3/package/models/tokenizer.json, which .ci/run fetches).
//!
//! Load: `Tokenizer::from_metadata` on metadata already parsed (what an engine load adds), the
//! best of 5. Encode: the fixtures' tricky strings and the first 64 KiB of this repository's
//! README, special tokens parsed, the best of 5 passes; tokens/s counts output tokens.

#[path = "../tests/common/hf_vocab.rs"]
mod hf_vocab;

use pocketllm::gguf::{Gguf, Metadata};
use pocketllm::tokenizer::Tokenizer;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn best_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn ggml_vocab(fixtures: &Path, name: &str) -> Option<Metadata> {
    let gz = std::fs::read(fixtures.join(format!("tokenizer/ggml-vocab/ggml-vocab-{name}.gguf.gz"))).ok()?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut bytes).ok()?;
    Some(Gguf::parse(&bytes).ok()?.metadata)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fixtures = root.join("../shared/fixtures");
    let gemma = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/test-data/gemma3/package/models/tokenizer.json"));
    let tricky: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures.join("tokenizer/tricky_strings.json")).expect("fixtures"))
            .unwrap();
    let mut text: String =
        tricky.as_array().expect("a list of strings").iter().filter_map(|s| s.as_str()).collect::<Vec<_>>().join("\n");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let end = (0..=readme.len().min(65536)).rev().find(|&i| readme.is_char_boundary(i)).unwrap_or(0);
    text.push_str(&readme[..end]);

    let mut vocabs: Vec<(String, Metadata)> = Vec::new();
    match std::fs::read(&gemma) {
        Ok(raw) => {
            vocabs.push(("gemma3 (SPM, 262144)".into(), hf_vocab::gguf_vocab(&serde_json::from_slice(&raw).unwrap())))
        }
        Err(e) => eprintln!("skipping Gemma 3 ({}: {e})", gemma.display()),
    }
    for (name, label) in [("llama-bpe", "llama3 (BPE, 128256)"), ("qwen2", "qwen2 (BPE, 151936)")] {
        if let Some(md) = ggml_vocab(&fixtures, name) {
            vocabs.push((label.into(), md));
        }
    }
    println!("text: {} bytes (tricky strings + README head); best of 5\n", text.len());
    println!("| vocabulary | load ms | tokens | encode ms | tokens/s | MB/s |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (label, md) in &vocabs {
        let load = best_ms(5, || drop(Tokenizer::from_metadata(md).unwrap()));
        let tok = Tokenizer::from_metadata(md).unwrap();
        let n = tok.encode(&text, false, true).len();
        let enc = best_ms(5, || drop(tok.encode(&text, false, true)));
        println!(
            "| {label} | {load:.0} | {n} | {enc:.1} | {:.0} | {:.2} |",
            n as f64 / enc * 1e3,
            text.len() as f64 / enc / 1e3
        );
    }
}
