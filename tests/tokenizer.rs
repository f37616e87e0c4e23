//! Tokenizer conformance against llama.cpp's own outputs (`../shared/fixtures/tokenizer/`),
//! round trips, streaming detokenization and the stories260K model.

mod common;

use pocketllm::gguf::{Gguf, Metadata};
use pocketllm::tokenizer::{StreamDecoder, Tokenizer, TokenizerError};

const VOCABS: &[&str] = &[
    "llama-spm",
    "phi-3",
    "llama-bpe",
    "qwen2",
    "qwen35",
    "gpt-2",
    "mpt",
    "starcoder",
    "refact",
    "falcon",
    "deepseek-llm",
    "deepseek-coder",
    "bert-bge",
];
const SPM: &[&str] = &["llama-spm", "phi-3"];

fn metadata(name: &str) -> Option<Metadata> {
    let bytes = common::read_fixture(&format!("tokenizer/ggml-vocab/ggml-vocab-{name}.gguf.gz"))?;
    Some(Gguf::parse(&bytes).unwrap().metadata)
}

fn fixture_text(rel: &str) -> String {
    let path = common::fixtures().unwrap().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// llama.cpp's test-tokenizer-0 cases: (input, expected ids).
fn inp_out(name: &str) -> Vec<(String, Vec<u32>)> {
    let inp = fixture_text(&format!("tokenizer/ggml-vocab/ggml-vocab-{name}.gguf.inp"));
    let out = fixture_text(&format!("tokenizer/ggml-vocab/ggml-vocab-{name}.gguf.out"));
    let mut inputs: Vec<String> = inp.split("\n__ggml_vocab_test__\n").map(String::from).collect();
    assert_eq!(inputs.pop().as_deref(), Some(""), "{name}.inp must end with the separator");
    let outs: Vec<Vec<u32>> = out.lines().map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect()).collect();
    assert_eq!(inputs.len(), outs.len(), "{name}: .inp and .out disagree on the case count");
    inputs.into_iter().zip(outs).collect()
}

struct Tricky {
    text: String,
    ids: Vec<u32>,
    ids_add_special: Vec<u32>,
    ids_parse_special: Vec<u32>,
}

fn tricky(name: &str) -> Vec<Tricky> {
    let j: serde_json::Value =
        serde_json::from_str(&fixture_text(&format!("tokenizer/ggml-vocab/ggml-vocab-{name}.tricky.json"))).unwrap();
    let ids = |c: &serde_json::Value, k: &str| -> Vec<u32> {
        c[k].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
    };
    j["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Tricky {
            text: c["text"].as_str().unwrap().to_string(),
            ids: ids(c, "ids"),
            ids_add_special: ids(c, "ids_add_special"),
            ids_parse_special: ids(c, "ids_parse_special"),
        })
        .collect()
}

fn short(s: &str) -> String {
    let t: String = s.chars().take(40).collect();
    format!("{t:?}")
}

#[test]
fn ggml_vocab_conformance() {
    if common::fixtures().is_none() {
        return;
    }
    let mut report = Vec::new();
    let mut failed = false;
    for &name in VOCABS {
        let md = metadata(name).unwrap();
        let tok = Tokenizer::from_metadata(&md).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut first_fail = None;
        let cases = inp_out(name);
        let mut pass_inp = 0;
        for (text, want) in &cases {
            let got = tok.encode(text, false, false);
            if &got == want {
                pass_inp += 1;
            } else if first_fail.is_none() {
                first_fail = Some(format!("inp {}: got {got:?} want {want:?}", short(text)));
            }
        }
        let tr = tricky(name);
        let mut pass = [0; 3];
        for c in &tr {
            for (k, (want, add, parse)) in
                [(&c.ids, false, false), (&c.ids_add_special, true, false), (&c.ids_parse_special, false, true)]
                    .into_iter()
                    .enumerate()
            {
                let got = tok.encode(&c.text, add, parse);
                if &got == want {
                    pass[k] += 1;
                } else if first_fail.is_none() {
                    first_fail =
                        Some(format!("tricky {} (add={add} parse={parse}): got {got:?} want {want:?}", short(&c.text)));
                }
            }
        }
        let n = tr.len();
        let ok = pass_inp == cases.len() && pass.iter().all(|&p| p == n);
        failed |= !ok;
        report.push(format!(
            "{name}: inp {pass_inp}/{}, tricky ids {}/{n}, add_special {}/{n}, parse_special {}/{n}{}",
            cases.len(),
            pass[0],
            pass[1],
            pass[2],
            first_fail.map(|f| format!("\n    first failure: {f}")).unwrap_or_default()
        ));
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(!failed, "tokenizer conformance:\n{report}");
}

/// User-defined token texts: with parse_special = false llama.cpp still cuts these out, and the
/// decoder prints them back raw, so text around them may change (space prefix, strip attributes).
fn user_defined_texts(md: &Metadata) -> Vec<String> {
    let toks = md.get_str_array("tokenizer.ggml.tokens").unwrap();
    let types = md.get_array("tokenizer.ggml.token_type").and_then(|a| a.to_i64_vec()).unwrap_or_default();
    toks.iter().zip(types).filter(|(_, t)| *t == 4).map(|(s, _)| s.clone()).collect()
}

/// Where llama.cpp's own round trip does not hold: its `clean_spaces` pass (most BPE vocabs)
/// rewrites " ?", " !", " .", " ,", " ' " and " 's", " 'm", " 're", " 've"; and SentencePiece adds
/// a space after a special token that the decoder keeps.
fn round_trip_expected(tok_cleans: bool, user_defined: &[String], s: &str) -> bool {
    let cleaned = [" ?", " !", " .", " ,", " ' ", " 's", " 'm", " 're", " 've"];
    if tok_cleans && cleaned.iter().any(|p| s.contains(p)) {
        return false;
    }
    !user_defined.iter().any(|u| s.contains(u.as_str()))
}

#[test]
fn round_trip() {
    if common::fixtures().is_none() {
        return;
    }
    let mut report = Vec::new();
    let mut failed = false;
    // WordPiece lowercases and strips accents, so it has no round trip to check
    for &name in VOCABS.iter().filter(|&&n| n != "bert-bge") {
        let md = metadata(name).unwrap();
        let tok = Tokenizer::from_metadata(&md).unwrap();
        let cleans = !SPM.contains(&name)
            && !matches!(
                md.get_str("tokenizer.ggml.pre"),
                Some("qwen2" | "qwen35" | "deepseek-llm" | "deepseek-coder")
            );
        let ud = user_defined_texts(&md);
        let (mut checked, mut ok) = (0, 0);
        for c in tricky(name) {
            if !round_trip_expected(cleans, &ud, &c.text) {
                continue;
            }
            checked += 1;
            let back = tok.decode(&tok.encode(&c.text, false, false), false);
            if back == c.text {
                ok += 1;
            } else {
                failed = true;
                report.push(format!("{name}: {} came back as {}", short(&c.text), short(&back)));
            }
        }
        assert!(checked >= 20, "{name}: only {checked} strings round-trip-checked");
        report.push(format!("{name}: {ok}/{checked} round trips"));
    }
    let report = report.join("\n");
    eprintln!("{report}");
    assert!(!failed, "round trips:\n{report}");
}

/// Feeds ids one at a time and checks the pieces concatenate to `decode` and each is whole text.
fn check_stream(tok: &Tokenizer, ids: &[u32], special: bool) {
    let mut d = StreamDecoder::with_special(special);
    let mut all = String::new();
    for &id in ids {
        let piece = d.push(tok, id);
        assert!(!piece.contains('\u{FFFD}') || tok.decode(ids, special).contains('\u{FFFD}'));
        all.push_str(&piece);
        assert!(tok.decode(ids, special).starts_with(&all), "stream emitted text decode() does not have: {all:?}");
    }
    all.push_str(&d.finish());
    assert_eq!(all, tok.decode(ids, special));
}

#[test]
fn stream_decoder_matches_decode() {
    if common::fixtures().is_none() {
        return;
    }
    for &name in &["llama-spm", "llama-bpe", "gpt-2", "qwen2"] {
        let md = metadata(name).unwrap();
        let tok = Tokenizer::from_metadata(&md).unwrap();
        // emoji and CJK become several byte tokens, split mid-character
        let text = "🚀 你好，世界 🦙🦙 👨‍👩‍👧‍👦 naïve ? Hello , it 's ' quoted ' ok";
        let ids = tok.encode(text, true, false);
        let pieces: Vec<Vec<u8>> = ids.iter().map(|&i| tok.token_to_piece(i, false)).collect();
        assert!(
            pieces.iter().any(|p| std::str::from_utf8(p).is_err()),
            "{name}: want at least one token that is a partial UTF-8 character"
        );
        check_stream(&tok, &ids, false);
        check_stream(&tok, &ids, true);
        for c in tricky(name) {
            check_stream(&tok, &tok.encode(&c.text, true, true), false);
        }
        // a lone lead byte followed by ASCII: U+FFFD once proven invalid, never before
        let lead = (0..tok.n_vocab() as u32).find(|&i| tok.token_to_piece(i, false) == [0xF0]);
        assert!(lead.is_some(), "{name}: no token for the byte 0xF0");
        if let Some(lead) = lead {
            let a = tok.encode("a", false, false);
            let mut d = StreamDecoder::new();
            assert_eq!(d.push(&tok, lead), "");
            let s = d.push(&tok, a[0]);
            assert!(s.starts_with('\u{FFFD}'), "{name}: {s:?}");
        }
    }
}

#[test]
fn stories260k_once_upon_a_time() {
    let Some(bytes) = common::read_fixture("models/stories260k/stories260K-F32.gguf") else { return };
    let md = Gguf::parse(&bytes).unwrap().metadata;
    let tok = Tokenizer::from_metadata(&md).unwrap();
    assert_eq!(tok.encode("Once upon a time", true, false), [1, 403, 407, 261, 378]);
    // llama.cpp removes the SentencePiece leading space only from the first token's piece, so a
    // leading BOS (which renders as nothing) keeps it
    assert_eq!(tok.decode(&[403, 407, 261, 378], false), "Once upon a time");
    assert_eq!(tok.decode(&[1, 403, 407, 261, 378], false), " Once upon a time");
    assert_eq!(tok.bos(), Some(1));
    assert!(tok.is_eog(2));
}

#[test]
fn special_tokens_and_eog() {
    let Some(md) = metadata("llama-bpe") else { return };
    let tok = Tokenizer::from_metadata(&md).unwrap();
    assert_eq!(tok.n_vocab(), 128256);
    assert_eq!(tok.bos(), Some(128000));
    assert!(tok.add_bos() && !tok.add_eos());
    let eot = tok.encode("<|eot_id|>", false, true);
    assert_eq!(eot.len(), 1);
    assert!(tok.is_eog(eot[0]));
    assert_eq!(tok.token_text(eot[0]), Some("<|eot_id|>"));
    assert!(tok.token_to_piece(eot[0], false).is_empty());
    assert_eq!(tok.token_to_piece(eot[0], true), b"<|eot_id|>");
    assert!(tok.encode("<|eot_id|>", false, false).len() > 1);

    let Some(md) = metadata("qwen2") else { return };
    let tok = Tokenizer::from_metadata(&md).unwrap();
    for t in ["<|im_end|>", "<|endoftext|>"] {
        let ids = tok.encode(t, false, true);
        assert!(ids.len() == 1 && tok.is_eog(ids[0]), "{t}");
    }

    // Phi-3's turns end at <|end|> (Gemma's <end_of_turn>: tests/gemma_vocab.rs); <|assistant|>
    // is a control token that does not end generation.
    let Some(md) = metadata("phi-3") else { return };
    let tok = Tokenizer::from_metadata(&md).unwrap();
    let end = tok.encode("<|end|>", false, true);
    assert!(end.len() == 1 && tok.is_eog(end[0]), "<|end|> ends a Phi-3 turn");
    let assistant = tok.encode("<|assistant|>", false, true);
    assert!(assistant.len() == 1 && !tok.is_eog(assistant[0]));
}

#[test]
fn unknown_model_is_an_error() {
    let mut md = Metadata::default();
    md.insert("tokenizer.ggml.model", pocketllm::gguf::Value::String("rwkv".into()));
    assert!(matches!(Tokenizer::from_metadata(&md), Err(TokenizerError::UnsupportedModel(_))));
}

/// Not a timing test: long and degenerate texts must finish (the BPE merge loop and the
/// pre-tokenizers are linear-ish; a quadratic implementation takes minutes here). Times are printed.
#[test]
fn long_text_encodes() {
    if common::fixtures().is_none() {
        return;
    }
    let base = "The quick brown fox jumps over the lazy dog. 12345 ünïcödé 你好 🚀\n";
    let texts = [
        base.repeat(10_000 / base.len() + 1),
        " ".repeat(10_000),
        "a".repeat(10_000),
        "7".repeat(10_000),
        "你".repeat(10_000),
    ];
    for name in ["llama-bpe", "qwen2", "deepseek-llm", "llama-spm"] {
        let tok = Tokenizer::from_metadata(&metadata(name).unwrap()).unwrap();
        for text in &texts {
            let t0 = std::time::Instant::now();
            let ids = tok.encode(text, false, false);
            eprintln!("{name}: {} chars -> {} ids in {:?}", text.chars().count(), ids.len(), t0.elapsed());
            assert!(!ids.is_empty());
            let back = tok.decode(&ids, false);
            assert_eq!(back.len(), text.len(), "{name}");
        }
    }
}
