//! The synthetic models (`pocketllm::synth`) and their committed llama.cpp goldens
//! (`tests/goldens/synth/`, made by `tools/make_goldens.py`) must never drift apart: every golden
//! names the sha256 of the model it was computed on, and the model is rebuilt here to check it.

use pocketllm::backend::cpu::CpuBackend;
use pocketllm::gguf::Gguf;
use pocketllm::model::{Logits, Model, ModelOptions};
use pocketllm::quant::{GgmlType, QuantError};
use pocketllm::synth::{
    GOLDEN_SEED, LLAMA3_ROPE, SYNTH_TYPES, SynthArch, SynthConfig, synth_model, synth_model_with, try_synth_model,
};
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

/// The generator variant a golden was made from: `variant` where it differs from the GGUF
/// architecture (`llama3` files are `llama`), else `architecture`.
fn variant(g: &Json) -> SynthArch {
    let name = g.get("variant").unwrap_or(&g["architecture"]).as_str().unwrap();
    SynthArch::from_name(name).unwrap_or_else(|| panic!("unknown synthetic variant {name}"))
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
        let arch = variant(g);
        let ty = ggml_type(g["type"].as_str().unwrap());
        let seed = g["seed"].as_u64().unwrap();
        assert_eq!(*stem, format!("{}-{}", arch.name(), ty.name()));
        assert_eq!(g["architecture"].as_str(), Some(arch.gguf_arch()), "{stem}");
        let bytes = synth_model(arch, ty, seed);
        assert_eq!(bytes.len() as u64, g["model_bytes"].as_u64().unwrap(), "{stem}: size");
        assert_eq!(
            hex_sha256(&bytes),
            g["model_sha256"].as_str().unwrap(),
            "{stem}: the generator changed; regenerate the goldens (tests/goldens/synth/README.md)"
        );

        let gguf = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(gguf.metadata.get_str("general.architecture"), Some(arch.gguf_arch()));
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
        let seq_rows: usize =
            g["sequences"].as_array().unwrap().iter().map(|s| s["tokens"].as_array().unwrap().len()).sum();
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

fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

/// Every position's logits for `tokens`, on the CPU.
fn logits(bytes: &[u8], tokens: &[u32]) -> Vec<f32> {
    let gguf = Gguf::parse(bytes).unwrap();
    let mut model = Model::load(&gguf, bytes, CpuBackend::new(2).unwrap(), &ModelOptions::default()).unwrap();
    model.forward(tokens, 0, Logits::All).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn llama3_is_a_llama_file_with_rope_freqs() {
    let bytes = synth_model(SynthArch::Llama3, GgmlType::Q4_K, GOLDEN_SEED);
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.metadata.get_str("general.architecture"), Some("llama"));
    assert_eq!(
        g.metadata.get_str("llama.rope.scaling.type"),
        None,
        "llama.cpp's converter writes no scaling keys for llama3"
    );
    assert!(g.tensor("output.weight").is_some(), "untied");
    assert_eq!(g.metadata.get_usize("llama.attention.head_count"), Some(8));
    assert_eq!(g.metadata.get_usize("llama.attention.head_count_kv"), Some(2), "GQA");
    // The converter writes rope_freqs first, as F32 whatever the model's type.
    let t = &g.tensors[0];
    assert_eq!((t.name.as_str(), t.ty, t.dims.as_slice()), ("rope_freqs.weight", GgmlType::F32, &[32u64][..]));
    let factors = f32s(g.tensor_bytes(&bytes, t));
    assert_eq!(factors, LLAMA3_ROPE.freq_factors(64, 500000.0));
    // Pair 0 unscaled, pairs 1-3 smoothed, the rest divided by 8: all three regimes are there.
    assert_eq!(factors[0], 1.0);
    assert!(factors[1..4].iter().all(|&f| f > 1.0 && f < 8.0), "{factors:?}");
    assert!(factors[4..].iter().all(|&f| f == 8.0), "{factors:?}");
}

#[test]
fn llama3_rope_freqs_change_the_logits() {
    // The same weights without rope_freqs.weight (tensor streams are seeded by name).
    let with = synth_model(SynthArch::Llama3, GgmlType::F32, GOLDEN_SEED);
    let config = SynthConfig { llama3_rope: None, ..SynthArch::Llama3.config() };
    let without = synth_model_with(SynthArch::Llama3, &config, GgmlType::F32, GOLDEN_SEED).unwrap();
    assert!(Gguf::parse(&without).unwrap().tensor("rope_freqs.weight").is_none());

    // The goldens' second sequence: 8 positions, one batch.
    let tokens = [354, 288, 77, 319, 359, 500, 354, 12];
    let (a, b) = (logits(&with, &tokens), logits(&without, &tokens));
    let n_vocab = 512;
    assert!(max_abs_diff(&a[..n_vocab], &b[..n_vocab]) == 0.0, "position 0 has angle 0 either way");
    let d = max_abs_diff(&a, &b);
    assert!(d > 0.1, "rope_freqs moves the logits by only {d}: the test model does not exercise it");

    // llama.cpp's golden rows for these positions match the model with the factors, and are as
    // far from the one without: the goldens themselves prove llama.cpp applied them.
    let golden = std::fs::read(goldens_dir().join("llama3-F32.logits.f32.bin")).expect("llama3-F32 golden");
    let rows = &f32s(&golden)[n_vocab..];
    let (d_with, d_without) = (max_abs_diff(&a, rows), max_abs_diff(&b, rows));
    eprintln!("llama3-F32: max |Δlogit| to llama.cpp {d_with:.1e} with rope_freqs, {d_without:.3} without");
    assert!(d_with < 1e-3 && d_without > 0.1, "with {d_with}, without {d_without}");
}

#[test]
fn synth_model_with_the_arch_config_is_synth_model() {
    for arch in SynthArch::ALL {
        let with = synth_model_with(arch, &arch.config(), GgmlType::Q8_0, 5).unwrap();
        assert_eq!(with, synth_model(arch, GgmlType::Q8_0, 5), "{arch:?}");
    }
}

#[test]
fn smollm2_135m_shape() {
    let c = SynthConfig::smollm2_135m();
    let bytes = synth_model_with(SynthArch::Llama, &c, GgmlType::Q8_0, GOLDEN_SEED).unwrap();
    let g = Gguf::parse(&bytes).unwrap();
    let md = &g.metadata;
    assert_eq!(md.get_str("general.architecture"), Some("llama"));
    for (key, want) in [
        ("embedding_length", 576),
        ("block_count", 30),
        ("attention.head_count", 9),
        ("attention.head_count_kv", 3),
        ("attention.key_length", 64),
        ("feed_forward_length", 1536),
        ("context_length", 2048),
    ] {
        assert_eq!(md.get_usize(&format!("llama.{key}")), Some(want), "{key}");
    }
    assert_eq!(md.get_f32("llama.rope.freq_base"), Some(100000.0));
    assert_eq!(md.get_f32("llama.attention.layer_norm_rms_epsilon"), Some(1e-5));
    assert!(g.tensor("output.weight").is_none(), "tied");
    assert!(g.tensor("rope_freqs.weight").is_none());
    assert_eq!(g.tensor("token_embd.weight").unwrap().dims, vec![576, 49152]);
    assert_eq!(g.tensor("blk.29.attn_k.weight").unwrap().dims, vec![576, 192]);
    assert_eq!(g.tensor("blk.29.ffn_down.weight").unwrap().dims, vec![1536, 576]);
    let params: u64 = g.tensors.iter().map(|t| t.dims.iter().product::<u64>()).sum();
    assert!((134_000_000..136_000_000).contains(&params), "{params} parameters");

    let tokens = md.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49152);
    assert_eq!(&tokens[..3], ["<unk>", "<s>", "</s>"]);
    assert_eq!(tokens[3 + 0xFF], "<0xFF>");
    let unique: std::collections::HashSet<_> = tokens.iter().collect();
    assert_eq!(unique.len(), tokens.len(), "tokens must be unique");
    // The 512-token vocabulary is a prefix of the big one.
    let small_bytes = synth_model(SynthArch::Llama, GgmlType::F32, GOLDEN_SEED);
    let small = Gguf::parse(&small_bytes).unwrap();
    assert_eq!(small.metadata.get_str_array("tokenizer.ggml.tokens").unwrap()[..], tokens[..512]);

    // It runs: two positions through 30 layers, finite logits over the whole vocabulary.
    let l = logits(&bytes, &[1, 400]);
    assert_eq!(l.len(), 2 * 49152);
    assert!(l.iter().all(|x| x.is_finite()));
}

#[test]
fn a_type_whose_blocks_do_not_fit_a_row_is_an_error_or_falls_back_as_llama_quantize_does() {
    let c = SynthConfig { kquant_fallback: false, ..SynthConfig::smollm2_135m() };
    for ty in [GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K] {
        let e = synth_model_with(SynthArch::Llama, &c, ty, GOLDEN_SEED).unwrap_err();
        assert!(matches!(e, QuantError::PartialBlock { n: 576, block: 256, .. }), "{ty}: {e}");
        assert!(e.to_string().contains("576"), "{e}");
    }
    // With the fallback (SmolLM2's default): 576-wide rows take llama-quantize's type, ffn_down
    // (1536 = 6 x 256 wide) stays a K-quant; Q2_K/Q3_K fall back to IQ4_NL there, which this
    // crate does not write, so they stay errors.
    let c = SynthConfig { n_layer: 1, vocab: 1024, ..SynthConfig::smollm2_135m() };
    for (ty, fallback) in
        [(GgmlType::Q4_K, GgmlType::Q5_0), (GgmlType::Q5_K, GgmlType::Q5_1), (GgmlType::Q6_K, GgmlType::Q8_0)]
    {
        let bytes = synth_model_with(SynthArch::Llama, &c, ty, 1).unwrap();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.tensor("blk.0.ffn_down.weight").unwrap().ty, ty);
        assert_eq!(g.tensor("blk.0.attn_q.weight").unwrap().ty, fallback);
        assert_eq!(g.tensor("token_embd.weight").unwrap().ty, fallback);
    }
    for ty in [GgmlType::Q2_K, GgmlType::Q3_K] {
        assert!(synth_model_with(SynthArch::Llama, &c, ty, 1).is_err(), "{ty}");
    }
    for ty in [GgmlType::Q8_1, GgmlType::Q8_K] {
        assert!(matches!(synth_model_with(SynthArch::Llama, &c, ty, 1), Err(QuantError::NotApplicable(_))), "{ty}");
    }
}

/// The golden rows of the goldens' second sequence (8 positions) of a variant's F32 model.
fn golden_rows(arch: SynthArch) -> Vec<f32> {
    let golden = std::fs::read(goldens_dir().join(format!("{}-F32.logits.f32.bin", arch.name()))).unwrap();
    f32s(&golden)[512..].to_vec()
}

/// Each feature a variant exists for shows in llama.cpp's logits: the golden matches the model
/// with the feature and is far from the same weights without it. So llama.cpp applied it when
/// the goldens were made, and the parity tests would catch an engine that does not.
#[test]
fn each_variant_feature_shows_in_its_golden() {
    type Without = fn(&mut SynthConfig);
    let cases: [(SynthArch, &str, Without); 7] = [
        (SynthArch::Qwen2Yarn, "YaRN", |c| c.metadata.clear()),
        (SynthArch::Gemma2, "the sliding window", |c| {
            c.metadata.retain(|(k, _)| *k != "attention.sliding_window");
            c.metadata.push(("attention.sliding_window", pocketllm::gguf::Value::U32(64)));
        }),
        (SynthArch::Gemma2, "the soft caps", |c| {
            c.metadata.retain(|(k, _)| !k.ends_with("softcapping"));
            c.metadata.push(("attn_logit_softcapping", pocketllm::gguf::Value::F32(1e4)));
            c.metadata.push(("final_logit_softcapping", pocketllm::gguf::Value::F32(1e4)));
        }),
        (SynthArch::Gemma3, "the local layers' own rope", |c| {
            c.metadata.retain(|(k, _)| !k.starts_with("rope.scaling"));
            c.rope_base = 10000.0;
        }),
        (SynthArch::Gemma3, "the window pattern", |c| {
            c.metadata.retain(|(k, _)| *k != "attention.sliding_window_pattern")
        }),
        (SynthArch::Phi3, "LongRoPE", |c| c.long_rope = false),
        (SynthArch::Phi4, "partial rotary", |c| c.n_rot = None),
    ];
    let tokens = [354, 288, 77, 319, 359, 500, 354, 12];
    for (arch, feature, without) in cases {
        let rows = golden_rows(arch);
        let with = logits(&synth_model(arch, GgmlType::F32, GOLDEN_SEED), &tokens);
        let mut config = arch.config();
        without(&mut config);
        let bytes = synth_model_with(arch, &config, GgmlType::F32, GOLDEN_SEED).unwrap();
        let (d_with, d_without) = (max_abs_diff(&with, &rows), max_abs_diff(&logits(&bytes, &tokens), &rows));
        eprintln!("{}: max |Δlogit| to llama.cpp {d_with:.1e} with {feature}, {d_without:.3} without", arch.name());
        assert!(d_with < 1e-3 && d_without > 0.05, "{}: {feature}: with {d_with}, without {d_without}", arch.name());
    }
}
