//! The synthetic models (`pocketllm::synth`) and their committed llama.cpp goldens
//! (`tests/goldens/synth/`, made by `tools/make_goldens.py`) must never drift apart: every golden
//! names the sha256 of the model it was computed on, and the model is rebuilt here to check it.

use pocketllm::gguf::Gguf;
use pocketllm::quant::GgmlType;
use pocketllm::synth::{synth_model, try_synth_model, SynthArch, GOLDEN_SEED, SYNTH_TYPES};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn goldens_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/goldens/synth")
}

/// Every golden JSON (one per model), sorted.
fn goldens() -> Vec<(String, Json)> {
    let mut out: Vec<(String, Json)> = std::fs::read_dir(goldens_dir())
        .expect("tests/goldens/synth is committed")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.file_name().unwrap() != "summary.json")
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn ggml_type(name: &str) -> GgmlType {
    GgmlType::ALL.into_iter().find(|t| t.name() == name).unwrap_or_else(|| panic!("unknown type {name}"))
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_golden_matches_the_regenerated_model() {
    let goldens = goldens();
    assert!(!goldens.is_empty(), "no goldens in {}", goldens_dir().display());
    for (stem, g) in &goldens {
        let arch = SynthArch::from_name(g["architecture"].as_str().unwrap()).unwrap();
        let ty = ggml_type(g["type"].as_str().unwrap());
        let seed = g["seed"].as_u64().unwrap();
        assert_eq!(*stem, format!("{}-{}", arch.name(), ty.name()));
        let bytes = synth_model(arch, ty, seed);
        assert_eq!(bytes.len() as u64, g["model_bytes"].as_u64().unwrap(), "{stem}: size");
        assert_eq!(hex_sha256(&bytes), g["model_sha256"].as_str().unwrap(), "{stem}: the generator changed; regenerate the goldens (tests/goldens/synth/README.md)");

        let gguf = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(gguf.metadata.get_str("general.architecture"), Some(arch.name()));
        let want = g["tensor_types"].as_array().unwrap();
        assert_eq!(gguf.tensors.len(), want.len(), "{stem}");
        for (t, w) in gguf.tensors.iter().zip(want) {
            assert_eq!(t.name, w["name"].as_str().unwrap(), "{stem}");
            assert_eq!(t.ty.name(), w["type"].as_str().unwrap(), "{stem} {}", t.name);
            let dims: Vec<u64> = w["shape_ne"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
            assert_eq!(t.dims, dims, "{stem} {}", t.name);
        }

        // The logits files are there, whole, and are the ones the JSON describes.
        let rows = g["logits"]["rows"].as_u64().unwrap() as usize;
        let n_vocab = g["logits"]["n_vocab"].as_u64().unwrap() as usize;
        let seq_rows: usize = g["sequences"].as_array().unwrap().iter().map(|s| s["tokens"].as_array().unwrap().len()).sum();
        assert_eq!(rows, seq_rows, "{stem}");
        let logits = std::fs::read(goldens_dir().join(g["logits"]["file"].as_str().unwrap())).unwrap();
        assert_eq!(logits.len(), rows * n_vocab * 4, "{stem}");
        assert_eq!(hex_sha256(&logits), g["logits"]["sha256"].as_str().unwrap(), "{stem}");
        if let Some(d) = g.get("dequantized_f32_reference") {
            let deq = std::fs::read(goldens_dir().join(d["file"].as_str().unwrap())).unwrap();
            assert_eq!(deq.len(), logits.len(), "{stem}");
        }
    }
}

#[test]
fn every_writable_arch_and_type_has_a_golden() {
    let have: Vec<String> = goldens().into_iter().map(|(s, _)| s).collect();
    for arch in SynthArch::ALL {
        for ty in SYNTH_TYPES {
            let stem = format!("{}-{}", arch.name(), ty.name());
            if try_synth_model(arch, ty, GOLDEN_SEED).is_ok() && !refused_by_llama_cpp(&stem) {
                assert!(have.contains(&stem), "{stem}: no golden; regenerate (tests/goldens/synth/README.md)");
            }
        }
    }
}

/// Models llama.cpp would not run, as recorded by make_goldens.py in summary.json.
fn refused_by_llama_cpp(stem: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(goldens_dir().join("summary.json")) else { return false };
    let summary: Json = serde_json::from_str(&text).unwrap();
    summary["refused_by_llama_cpp"].as_array().is_some_and(|r| r.iter().any(|m| m["model"] == stem))
}

#[test]
fn generation_is_deterministic_and_seeded() {
    let a = synth_model(SynthArch::Qwen2, GgmlType::F32, 7);
    assert_eq!(a, synth_model(SynthArch::Qwen2, GgmlType::F32, 7));
    assert_ne!(a, synth_model(SynthArch::Qwen2, GgmlType::F32, 8));
}

#[test]
fn architectures_have_their_distinguishing_tensors() {
    let parse = |arch| {
        let bytes = synth_model(arch, GgmlType::F32, GOLDEN_SEED);
        Gguf::parse(&bytes).unwrap()
    };
    let llama = parse(SynthArch::Llama);
    assert!(llama.tensor("output.weight").is_some() && llama.tensor("blk.0.attn_q.bias").is_none());
    let qwen2 = parse(SynthArch::Qwen2);
    assert!(qwen2.tensor("output.weight").is_none(), "tied");
    for b in ["attn_q.bias", "attn_k.bias", "attn_v.bias"] {
        assert_eq!(qwen2.tensor(&format!("blk.1.{b}")).unwrap().ty, GgmlType::F32);
    }
    let qwen3 = parse(SynthArch::Qwen3);
    assert!(qwen3.tensor("output.weight").is_none(), "tied");
    assert_eq!(qwen3.tensor("blk.0.attn_q_norm.weight").unwrap().dims, vec![128]);
    assert_eq!(qwen3.tensor("blk.0.attn_q.weight").unwrap().dims, vec![256, 512], "q width != hidden");
    assert_eq!(qwen3.tensor("blk.0.attn_output.weight").unwrap().dims, vec![512, 256]);
    for g in [&llama, &qwen2, &qwen3] {
        let tokens = g.metadata.get_str_array("tokenizer.ggml.tokens").unwrap();
        assert_eq!(tokens.len(), 512);
        assert_eq!(&tokens[..3], ["<unk>", "<s>", "</s>"]);
        assert_eq!(tokens[3 + 0x0A], "<0x0A>");
        let unique: std::collections::BTreeSet<_> = tokens.iter().collect();
        assert_eq!(unique.len(), 512, "tokens must be unique");
    }
}

#[test]
fn the_weights_do_not_depend_on_the_storage_type() {
    // An F16 model is the F32 model rounded to f16, tensor by tensor; norms stay F32.
    let f32_bytes = synth_model(SynthArch::Llama, GgmlType::F32, 3);
    let f16_bytes = synth_model(SynthArch::Llama, GgmlType::F16, 3);
    let (a, b) = (Gguf::parse(&f32_bytes).unwrap(), Gguf::parse(&f16_bytes).unwrap());
    for (ta, tb) in a.tensors.iter().zip(&b.tensors) {
        let (da, db) = (a.tensor_bytes(&f32_bytes, ta), b.tensor_bytes(&f16_bytes, tb));
        if ta.dims.len() == 1 {
            assert_eq!((tb.ty, da), (GgmlType::F32, db), "{}", ta.name);
            continue;
        }
        assert_eq!(tb.ty, GgmlType::F16, "{}", ta.name);
        for (x, h) in da.chunks_exact(4).zip(db.chunks_exact(2)) {
            let x = f32::from_le_bytes(x.try_into().unwrap());
            assert_eq!(half::f16::from_f32(x).to_le_bytes(), [h[0], h[1]], "{}", ta.name);
        }
    }
}
