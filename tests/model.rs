//! Loading and running models: bad models and bad calls give typed errors, and the model stays
//! usable after an error.

use pocketllm::Error;
use pocketllm::backend::cpu::CpuBackend;
use pocketllm::gguf::{Gguf, GgufWriter, Value};
use pocketllm::model::{Logits, Model, ModelOptions};
use pocketllm::quant::GgmlType;
use pocketllm::synth::{SynthArch, synth_model};

/// Rebuilds a GGUF with edited metadata and tensors.
fn rewrite(
    bytes: &[u8],
    edit_meta: impl Fn(&str, &Value) -> Option<Value>,
    edit_tensor: impl Fn(&str, &[u64]) -> Option<Vec<u64>>,
) -> Vec<u8> {
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata.entries {
        if let Some(v) = edit_meta(k, v) {
            w.set(k, v);
        }
    }
    for t in &g.tensors {
        if let Some(dims) = edit_tensor(&t.name, &t.dims) {
            let data = g.tensor_bytes(bytes, t).to_vec();
            w.add_tensor(&t.name, &dims, t.ty, data);
        }
    }
    w.to_bytes()
}

fn load(bytes: &[u8]) -> Result<Model<CpuBackend>, Error> {
    let g = Gguf::parse(bytes)?;
    Model::load(
        &g,
        bytes,
        CpuBackend::new(1)?,
        &ModelOptions { context_length: 32, batch_size: 8, ..Default::default() },
    )
}

fn keep_meta(_: &str, v: &Value) -> Option<Value> {
    Some(v.clone())
}

fn keep_tensor(_: &str, d: &[u64]) -> Option<Vec<u64>> {
    Some(d.to_vec())
}

fn err_text(r: Result<Model<CpuBackend>, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_models_are_refused_with_the_reason() {
    let base = synth_model(SynthArch::Qwen2, GgmlType::Q8_0, 7);
    assert!(load(&base).is_ok());

    let unknown_arch = rewrite(
        &base,
        |k, v| Some(if k == "general.architecture" { Value::String("mamba".into()) } else { v.clone() }),
        keep_tensor,
    );
    let e = load(&unknown_arch).err().unwrap();
    assert!(matches!(e, Error::UnsupportedModel(_)) && e.to_string().contains("mamba"), "{e}");

    let no_layers = rewrite(&base, |k, v| (k != "qwen2.block_count").then(|| v.clone()), keep_tensor);
    assert!(err_text(load(&no_layers)).contains("qwen2.block_count"));

    let bad_heads = rewrite(
        &base,
        |k, v| Some(if k == "qwen2.attention.head_count_kv" { Value::U32(3) } else { v.clone() }),
        keep_tensor,
    );
    assert!(err_text(load(&bad_heads)).contains("KV heads"));

    let missing = rewrite(&base, keep_meta, |n, d| (n != "blk.1.attn_k.bias").then(|| d.to_vec()));
    assert!(err_text(load(&missing)).contains("blk.1.attn_k.bias is missing"));

    let reshaped = rewrite(&base, keep_meta, |n, d| {
        Some(if n == "blk.0.ffn_up.weight" { vec![d[0] * 2, d[1] / 2] } else { d.to_vec() })
    });
    assert!(err_text(load(&reshaped)).contains("blk.0.ffn_up.weight has shape"));

    let yarn = rewrite(&base, keep_meta, keep_tensor);
    let mut w = GgufWriter::new();
    let g = Gguf::parse(&yarn).unwrap();
    for (k, v) in &g.metadata.entries {
        w.set(k, v.clone());
    }
    w.set("qwen2.rope.scaling.type", Value::String("dynamic".into()));
    for t in &g.tensors {
        w.add_tensor(&t.name, &t.dims, t.ty, g.tensor_bytes(&yarn, t).to_vec());
    }
    let e = load(&w.to_bytes()).err().unwrap();
    assert!(matches!(e, Error::UnsupportedModel(_)) && e.to_string().contains("dynamic"), "{e}");
}

#[test]
fn every_truncation_of_a_model_fails_cleanly() {
    let base = synth_model(SynthArch::Llama, GgmlType::Q4_K, 3);
    for cut in (0..base.len()).step_by(base.len() / 97) {
        assert!(load(&base[..cut]).is_err(), "cut at {cut} loaded");
    }
}

#[test]
fn bad_calls_are_errors_and_the_model_stays_usable() {
    let mut m = load(&synth_model(SynthArch::Qwen3, GgmlType::Q8_0, 5)).unwrap();
    let tokens = [1u32, 20, 300, 7];
    let reference = m.forward(&tokens, 0, Logits::All).unwrap();

    assert!(matches!(m.forward(&[1, 512], 0, Logits::Last), Err(Error::TokenOutOfRange { id: 512, .. })));
    let e = m.forward(&[5; 20], 20, Logits::Last).unwrap_err();
    assert!(matches!(e, Error::ContextFull { needed: 40, context: 32 }), "{e}");
    assert!(matches!(m.forward(&[], 0, Logits::Last), Err(Error::InvalidArgument(_))));

    // Same logits as before the failed calls; batches of 8 split a longer prompt the same way.
    assert_eq!(m.forward(&tokens, 0, Logits::All).unwrap(), reference);
    let long: Vec<u32> = (0..30).map(|i| (i * 37 % 512) as u32).collect();
    let whole = m.forward(&long, 0, Logits::All).unwrap();
    let mut stepwise = m.forward(&long[..13], 0, Logits::All).unwrap();
    for (i, &t) in long[13..].iter().enumerate() {
        stepwise.extend(m.forward(&[t], 13 + i, Logits::All).unwrap());
    }
    let worst = whole.iter().zip(&stepwise).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    // Batched and one-at-a-time runs differ by summation order only.
    assert!(worst < 1e-4, "batched vs stepwise: {worst}");
}

/// What multi-turn KV reuse relies on: processing a prompt's tail on top of its cached head
/// gives exactly the logits of processing the whole prompt at once (each position's arithmetic
/// does not depend on how the prompt was split into batches).
#[test]
fn cached_prefix_plus_tail_equals_whole_prompt_bit_for_bit() {
    for ty in [GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_K] {
        let mut m = load(&synth_model(SynthArch::Llama3, ty, 4)).unwrap();
        let prompt: Vec<u32> = (0..29).map(|i| (i * 53 % 500 + 3) as u32).collect();
        let whole = m.forward(&prompt, 0, Logits::Last).unwrap();
        let _ = m.forward(&prompt[..17], 0, Logits::Last).unwrap();
        let reused = m.forward(&prompt[17..], 17, Logits::Last).unwrap();
        assert_eq!(whole, reused, "{ty}");
    }
}

/// A context no machine can hold is a typed `model_too_large` error, not an abort.
#[test]
fn an_impossible_context_is_an_error() {
    let bytes = synth_model(SynthArch::Llama, GgmlType::Q8_0, 1);
    let g = Gguf::parse(&bytes).unwrap();
    for ctx in [1usize << 40, usize::MAX / 2] {
        let opts = ModelOptions { context_length: ctx, batch_size: 8, ..Default::default() };
        let err = Model::load(&g, &bytes, CpuBackend::new(1).unwrap(), &opts).err().unwrap();
        assert_eq!(err.code(), "model_too_large", "{err}");
    }
}

/// The new families' keys checked as llama.cpp would need them: a typed `bad_gguf` error that
/// names the key or tensor, never a panic or NaN logits.
#[test]
fn inconsistent_family_keys_are_errors_naming_the_key() {
    let set = |arch: SynthArch, key: &'static str, v: Value| {
        rewrite(
            &synth_model(arch, GgmlType::Q8_0, 3),
            |k, old| Some(if k == key { v.clone() } else { old.clone() }),
            keep_tensor,
        )
    };
    for (bytes, key) in [
        (set(SynthArch::Gemma2, "gemma2.attn_logit_softcapping", Value::F32(0.0)), "gemma2.attn_logit_softcapping"),
        (
            set(SynthArch::Gemma2, "gemma2.final_logit_softcapping", Value::F32(f32::NAN)),
            "gemma2.final_logit_softcapping",
        ),
        (
            set(SynthArch::Gemma3, "gemma3.attention.sliding_window", Value::U32(100_000)),
            "gemma3.attention.sliding_window",
        ),
        (set(SynthArch::Gemma2, "gemma2.attention.sliding_window", Value::I32(-4)), "gemma2.attention.sliding_window"),
        (set(SynthArch::Qwen2Yarn, "qwen2.rope.scaling.factor", Value::F32(-2.0)), "qwen2.rope.scaling.factor"),
        (set(SynthArch::Phi3, "phi3.rope.scaling.attn_factor", Value::F32(0.0)), "phi3.rope.scaling.attn_factor"),
        (set(SynthArch::Phi4, "phi3.rope.dimension_count", Value::U32(47)), "phi3.rope.dimension_count"),
    ] {
        let e = load(&bytes).err().unwrap_or_else(|| panic!("{key}: loaded"));
        assert_eq!(e.code(), "bad_gguf", "{key}: {e}");
        assert!(e.to_string().contains(key), "{key}: {e}");
    }

    // LongRoPE factors of the wrong length: one value short.
    let base = synth_model(SynthArch::Phi3, GgmlType::Q8_0, 3);
    let g = Gguf::parse(&base).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata.entries {
        w.set(k, v.clone());
    }
    for t in &g.tensors {
        let mut data = g.tensor_bytes(&base, t).to_vec();
        let mut dims = t.dims.clone();
        if t.name == "rope_factors_short.weight" {
            data.truncate(data.len() - 4);
            dims[0] -= 1;
        }
        w.add_tensor(&t.name, &dims, t.ty, data);
    }
    let e = load(&w.to_bytes()).err().unwrap();
    assert!(e.code() == "bad_gguf" && e.to_string().contains("rope_factors_short.weight"), "{e}");
}

/// A sliding-window layer keeps a ring of window + batch - 1 positions: a pass may resume at a
/// position whose window is still in the ring, and gets the logits of a whole-prompt pass; one
/// further back is a typed error (the engine then starts over from 0), and the model stays
/// usable.
#[test]
fn sliding_window_rings_resume_only_where_they_hold_the_window() {
    let bytes = synth_model(SynthArch::Gemma2, GgmlType::F32, 2);
    let g = Gguf::parse(&bytes).unwrap();
    let opts = ModelOptions { context_length: 64, batch_size: 3, ..Default::default() };
    let mut m = Model::load(&g, &bytes, CpuBackend::new(1).unwrap(), &opts).unwrap();
    let prompt: Vec<u32> = (0..20).map(|i| (i * 37 % 500 + 3) as u32).collect();
    let whole = m.forward(&prompt, 0, Logits::Last).unwrap();
    // Window 4, ring 4 + 3 - 1 = 6: after 20 positions the ring holds 14..20.
    assert!(m.can_resume_at(17) && !m.can_resume_at(16) && m.can_resume_at(0));
    let resumed = m.forward(&prompt[17..], 17, Logits::Last).unwrap();
    assert_eq!(resumed, whole, "resuming within the ring");
    let e = m.forward(&prompt[10..], 10, Logits::Last).unwrap_err();
    assert_eq!(e.code(), "invalid_argument", "{e}");
    assert_eq!(m.forward(&prompt, 0, Logits::Last).unwrap(), whole, "from 0 again");
    // The ring is 6 of 64 positions on the local layer: the cache is ~55% of a full one.
    let full = 2 * 64 * 2 * 128 * 4;
    assert_eq!(m.kv_cache_bytes(), (64 + 6) * 2 * 128 * 4);
    assert!(m.kv_cache_bytes() < full);
}
