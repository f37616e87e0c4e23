//! The project's own deterministic test models: tiny Llama / Qwen2 / Qwen3 / Llama 3 GGUF files
//! with seeded random weights, in any storage type, byte-identical on every platform.
//!
//! They exist so that parity tests can cover every (architecture, quant type) pair against
//! llama.cpp without committing model files: `tools/make_goldens.py` runs llama.cpp on them once
//! and commits small goldens (logits, greedy tokens, and each file's sha256); tests rebuild the
//! bytes in-process with [`synth_model`] and check the sha256 before comparing logits.
//!
//! Determinism: weights come from the sampler's integer xoshiro256** generator; a "normal" value
//! is a sum of four 16-bit uniforms (Irwin–Hall), scaled with basic IEEE arithmetic only (no
//! `ln`/`cos`/`exp`, whose rounding differs between libms; the Llama 3 rope factors too, see
//! [`Llama3Rope::freq_factors`]). Each tensor has its own stream, seeded from `seed` and the
//! tensor's name, so the f32 weights of one (arch, seed) are the same whatever `ty` they are
//! stored in: a Q4_K model is the quantized F32 model.
//!
//! The golden models keep every matrix row a multiple of 256 (the K-quant super-block) and use
//! a complete 512-token SentencePiece vocabulary that llama.cpp loads (see [`vocab`]).
//! [`synth_model_with`] builds any [`SynthConfig`], such as the benchmark-sized
//! [`SynthConfig::smollm2_135m`], whose 576-wide rows K-quants store as llama-quantize does.

mod arch;
mod rope;
pub mod vocab;

pub use arch::{LLAMA3_ROPE, SynthArch};
pub use rope::Llama3Rope;

use crate::gguf::{GgufWriter, Value};
use crate::quant::{GgmlType, QuantError};
use crate::sampler::Rng;

/// Hyper-parameters of a synthetic model.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    pub hidden: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub ffn: usize,
    /// Tokens in the vocabulary: more than 259 (3 specials and 256 byte tokens).
    pub vocab: usize,
    pub context: usize,
    pub rope_base: f32,
    pub rms_eps: f32,
    pub qkv_bias: bool,
    pub qk_norm: bool,
    pub tied_output: bool,
    /// Llama 3 rope scaling, written as a `rope_freqs.weight` tensor (the first tensor, as
    /// llama.cpp's converter writes it).
    pub llama3_rope: Option<Llama3Rope>,
    /// Store matrices whose rows are not whole K-quant super-blocks in llama-quantize's
    /// fallback type (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0), as real K-quant files of
    /// narrow models are; otherwise such a type is an error.
    pub kquant_fallback: bool,
    /// Norms of the attention and feed-forward outputs (Gemma's `post_attention_norm`,
    /// `post_ffw_norm`).
    pub post_norms: bool,
    /// q/k/v stored as one `attn_qkv` and gate/up as one `ffn_up` of twice the rows (Phi-3).
    pub fused_projections: bool,
    /// Rotated dimensions per head (`rope.dimension_count`); `None`: all of them.
    pub n_rot: Option<usize>,
    /// LongRoPE's `rope_factors_long` / `rope_factors_short` tensors (Phi-3).
    pub long_rope: bool,
    /// More `{arch}.*` keys (soft caps, windows, rope scaling), without the arch prefix.
    pub metadata: Vec<(&'static str, Value)>,
}

impl SynthConfig {
    /// SmolLM2-135M's shape (Llama architecture): 576 wide, 30 layers, 9 heads × 64 on 3 KV
    /// heads, FFN 1536, 49152 tokens, context 2048, theta 1e5, eps 1e-5, tied embeddings; use
    /// with [`SynthArch::Llama`]. For benchmarks: about 135M parameters of random weights.
    /// Rows of 576 are not whole K-quant super-blocks: as with the real model's K-quant files,
    /// those matrices fall back to a 32-value block type (`kquant_fallback`).
    /// The benchmark shapes by name (`synth-models --shape`), with the variant they are written
    /// as: `smollm2-135m`, `gemma3-270m`, `phi3.5-mini`.
    pub fn shape(name: &str) -> Option<(SynthArch, SynthConfig)> {
        Some(match name {
            "smollm2-135m" => (SynthArch::Llama, Self::smollm2_135m()),
            "gemma3-270m" => (SynthArch::Gemma3, Self::gemma3_270m()),
            "phi3.5-mini" => (SynthArch::Phi3, Self::phi35_mini()),
            _ => return None,
        })
    }

    /// The shape names [`SynthConfig::shape`] knows.
    pub const SHAPES: [&'static str; 3] = ["smollm2-135m", "gemma3-270m", "phi3.5-mini"];

    /// Gemma 3 270M's shape: 640 wide, 18 layers, 4 heads × 256 on 1 KV head, FFN 2048, the
    /// 262 144-token vocabulary (tied), context 32 768, sliding window 512 on five of every six
    /// layers (rope base 1e4 there, 1e6 on global layers). Rows of 640 fall back from K-quants
    /// as llama-quantize does.
    pub fn gemma3_270m() -> SynthConfig {
        SynthConfig {
            hidden: 640,
            n_layer: 18,
            n_head: 4,
            n_head_kv: 1,
            head_dim: 256,
            ffn: 2048,
            vocab: 262_144,
            context: 32_768,
            rope_base: 1e6,
            rms_eps: 1e-6,
            qk_norm: true,
            tied_output: true,
            post_norms: true,
            kquant_fallback: true,
            metadata: vec![("attention.sliding_window", Value::U32(512))],
            ..Self::smollm2_135m()
        }
    }

    /// Phi-3.5-mini's shape: 3072 wide, 32 layers, 32 heads × 96 (no GQA), FFN 8192, 32 064
    /// tokens, untied, fused qkv and gate/up, LongRoPE from an original context of 4096 (so
    /// the default 4096-token context takes the short factors), context 131 072. About 3.8B
    /// parameters of random weights.
    pub fn phi35_mini() -> SynthConfig {
        SynthConfig {
            hidden: 3072,
            n_layer: 32,
            n_head: 32,
            n_head_kv: 32,
            head_dim: 96,
            ffn: 8192,
            vocab: 32_064,
            context: 131_072,
            rope_base: 10000.0,
            rms_eps: 1e-5,
            tied_output: false,
            fused_projections: true,
            long_rope: true,
            kquant_fallback: true,
            metadata: vec![
                ("rope.scaling.original_context_length", Value::U32(4096)),
                ("rope.scaling.attn_factor", Value::F32(1.1902381)),
            ],
            ..Self::smollm2_135m()
        }
    }

    pub fn smollm2_135m() -> SynthConfig {
        SynthConfig {
            hidden: 576,
            n_layer: 30,
            n_head: 9,
            n_head_kv: 3,
            head_dim: 64,
            ffn: 1536,
            vocab: 49152,
            context: 2048,
            rope_base: 100000.0,
            rms_eps: 1e-5,
            qkv_bias: false,
            qk_norm: false,
            tied_output: true,
            llama3_rope: None,
            kquant_fallback: true,
            post_norms: false,
            fused_projections: false,
            n_rot: None,
            long_rope: false,
            metadata: Vec::new(),
        }
    }
}

/// Every storage type a synthetic model can be written in (if `quant::quantize_row` supports
/// it). Q8_1 and Q8_K are activation-only types in ggml and are not storage types.
pub const SYNTH_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// The seed the committed goldens use.
pub const GOLDEN_SEED: u64 = 1;

/// `synth_model` for types that may not be supported: the error says which type failed.
pub fn try_synth_model(arch: SynthArch, ty: GgmlType, seed: u64) -> Result<Vec<u8>, QuantError> {
    synth_model_with(arch, &arch.config(), ty, seed)
}

/// A model of any shape: `arch` gives the GGUF architecture and the file's name, `config` the
/// shape. Weights are seeded by `seed` and the tensor's name, so a tensor shared by two configs
/// of the same shape has the same values.
///
/// Errors (before generating anything) if `ty` cannot store a matrix row of the config: its
/// block size does not divide the row (K-quants need multiples of 256), or it is not a storage
/// type (Q8_1, Q8_K). Panics if the config itself is inconsistent (a vocabulary of 259 tokens or
/// fewer, heads that do not share KV heads evenly): a programming error, not input.
pub fn synth_model_with(arch: SynthArch, c: &SynthConfig, ty: GgmlType, seed: u64) -> Result<Vec<u8>, QuantError> {
    assert!(
        c.n_head_kv > 0 && c.n_head.is_multiple_of(c.n_head_kv),
        "{} heads cannot share {} KV heads",
        c.n_head,
        c.n_head_kv
    );
    let a = arch.gguf_arch();
    let mut w = GgufWriter::new();
    let u32v = |x: usize| Value::U32(x as u32);
    w.set("general.architecture", Value::String(a.into()))
        .set("general.name", Value::String(format!("pocketllm-synth-{}", arch.name())))
        .set("general.file_type", Value::U32(file_type(ty)))
        .set("general.quantization_version", Value::U32(2))
        .set(&format!("{a}.context_length"), u32v(c.context))
        .set(&format!("{a}.embedding_length"), u32v(c.hidden))
        .set(&format!("{a}.block_count"), u32v(c.n_layer))
        .set(&format!("{a}.feed_forward_length"), u32v(c.ffn))
        .set(&format!("{a}.attention.head_count"), u32v(c.n_head))
        .set(&format!("{a}.attention.head_count_kv"), u32v(c.n_head_kv))
        .set(&format!("{a}.attention.key_length"), u32v(c.head_dim))
        .set(&format!("{a}.attention.value_length"), u32v(c.head_dim))
        .set(&format!("{a}.rope.dimension_count"), u32v(c.n_rot.unwrap_or(c.head_dim)))
        .set(&format!("{a}.rope.freq_base"), Value::F32(c.rope_base))
        .set(&format!("{a}.attention.layer_norm_rms_epsilon"), Value::F32(c.rms_eps))
        .set(&format!("{a}.vocab_size"), u32v(c.vocab));
    for (k, v) in &c.metadata {
        w.set(&format!("{a}.{k}"), v.clone());
    }
    vocab::add_vocab(&mut w, c.vocab);

    let (h, q, kv, ffn, nv) = (c.hidden, c.n_head * c.head_dim, c.n_head_kv * c.head_dim, c.ffn, c.vocab);
    // Matrices: dims in GGUF order, [row length (input), rows (output)].
    let mut tensors: Vec<(String, Vec<u64>, Init)> = Vec::new();
    if let Some(rope) = c.llama3_rope {
        let factors = rope.freq_factors(c.head_dim, c.rope_base);
        tensors.push(("rope_freqs.weight".into(), vec![factors.len() as u64], Init::Given(factors)));
    }
    if c.long_rope {
        // Shaped like Phi-3.5's: long factors growing to ~12, short ones barely above 1.
        let pairs = c.n_rot.unwrap_or(c.head_dim) / 2;
        let long = (0..pairs).map(|i| 1.0 + 0.5 * i as f32).collect();
        let short = (0..pairs).map(|i| 1.0 + 0.0625 * (i % 4) as f32).collect();
        tensors.push(("rope_factors_long.weight".into(), vec![pairs as u64], Init::Given(long)));
        tensors.push(("rope_factors_short.weight".into(), vec![pairs as u64], Init::Given(short)));
    }
    tensors.push(("token_embd.weight".into(), dims(h, nv), Init::Matrix));
    for l in 0..c.n_layer {
        let b = |n: &str| format!("blk.{l}.{n}");
        tensors.push((b("attn_norm.weight"), vec![h as u64], Init::Norm));
        if c.fused_projections {
            tensors.push((b("attn_qkv.weight"), dims(h, q + 2 * kv), Init::Matrix));
        } else {
            tensors.push((b("attn_q.weight"), dims(h, q), Init::Matrix));
            tensors.push((b("attn_k.weight"), dims(h, kv), Init::Matrix));
            tensors.push((b("attn_v.weight"), dims(h, kv), Init::Matrix));
        }
        if c.qkv_bias {
            tensors.push((b("attn_q.bias"), vec![q as u64], Init::Bias));
            tensors.push((b("attn_k.bias"), vec![kv as u64], Init::Bias));
            tensors.push((b("attn_v.bias"), vec![kv as u64], Init::Bias));
        }
        if c.qk_norm {
            tensors.push((b("attn_q_norm.weight"), vec![c.head_dim as u64], Init::Norm));
            tensors.push((b("attn_k_norm.weight"), vec![c.head_dim as u64], Init::Norm));
        }
        tensors.push((b("attn_output.weight"), dims(q, h), Init::Matrix));
        if c.post_norms {
            tensors.push((b("post_attention_norm.weight"), vec![h as u64], Init::Norm));
        }
        tensors.push((b("ffn_norm.weight"), vec![h as u64], Init::Norm));
        if c.fused_projections {
            tensors.push((b("ffn_up.weight"), dims(h, 2 * ffn), Init::Matrix));
        } else {
            tensors.push((b("ffn_gate.weight"), dims(h, ffn), Init::Matrix));
            tensors.push((b("ffn_up.weight"), dims(h, ffn), Init::Matrix));
        }
        tensors.push((b("ffn_down.weight"), dims(ffn, h), Init::Matrix));
        if c.post_norms {
            tensors.push((b("post_ffw_norm.weight"), vec![h as u64], Init::Norm));
        }
    }
    tensors.push(("output_norm.weight".into(), vec![h as u64], Init::Norm));
    if !c.tied_output {
        tensors.push(("output.weight".into(), dims(h, nv), Init::Matrix));
    }

    // The type of each matrix, refusing one that cannot store some row before spending time on
    // the values.
    let matrix_type = |row_len: usize| match check_row_type(ty, row_len) {
        Err(QuantError::PartialBlock { .. }) if c.kquant_fallback && kquant_fallback(ty).is_some() => {
            kquant_fallback(ty).ok_or(QuantError::NotApplicable(ty))
        }
        Err(e) => Err(e),
        Ok(_) => Ok(ty),
    };
    for (_, shape, init) in &tensors {
        if matches!(init, Init::Matrix) {
            check_row_type(matrix_type(shape[0] as usize)?, shape[0] as usize)?;
        }
    }

    for (name, shape, init) in tensors {
        let values = init.values(seed, &name, shape.iter().product::<u64>() as usize);
        let (t, data) = match init {
            Init::Matrix => {
                let t = matrix_type(shape[0] as usize)?;
                (t, store_rows(t, &values, shape[0] as usize)?)
            }
            // 1-D tensors (norms, biases, rope factors) stay F32, as llama.cpp's quantizer leaves them.
            _ => (GgmlType::F32, f32_bytes(&values)),
        };
        w.add_tensor(&name, &shape, t, data);
    }
    Ok(w.to_bytes())
}

/// The complete GGUF bytes of a synthetic model.
///
/// Panics if `ty` cannot be written (see [`SYNTH_TYPES`] and [`try_synth_model`]); this is a
/// test and tooling helper, never fed user input.
pub fn synth_model(arch: SynthArch, ty: GgmlType, seed: u64) -> Vec<u8> {
    try_synth_model(arch, ty, seed).unwrap_or_else(|e| panic!("synth_model({arch:?}, {ty}): {e}"))
}

fn dims(row_len: usize, rows: usize) -> Vec<u64> {
    vec![row_len as u64, rows as u64]
}

enum Init {
    /// N(0, 0.05²), with one value in 64 four times larger (real weights have outliers, and
    /// they exercise the quantizers' scale search).
    Matrix,
    /// 1 + N(0, 0.1²).
    Norm,
    /// N(0, 0.05²).
    Bias,
    /// Computed values (rope frequency factors), stored as F32.
    Given(Vec<f32>),
}

impl Init {
    fn values(&self, seed: u64, name: &str, n: usize) -> Vec<f32> {
        let draw = |f: fn(&mut Rng) -> f32| {
            let mut rng = Rng::new(seed ^ fnv1a(name.as_bytes()));
            (0..n).map(|_| f(&mut rng)).collect()
        };
        match self {
            Init::Matrix => draw(|rng| {
                let x = normalish(rng);
                let outlier = rng.next_u64().is_multiple_of(64);
                (x * if outlier { 0.2 } else { 0.05 }) as f32
            }),
            Init::Norm => draw(|rng| (1.0 + 0.1 * normalish(rng)) as f32),
            Init::Bias => draw(|rng| (0.05 * normalish(rng)) as f32),
            Init::Given(v) => v.clone(),
        }
    }
}

/// Mean 0, variance 1, bounded by ±2√3: the sum of four independent 16-bit uniforms, centred
/// and scaled. Integer sums, one exact conversion and one multiplication: identical everywhere.
fn normalish(rng: &mut Rng) -> f64 {
    let r = rng.next_u64();
    let s: u64 = (0..4).map(|i| (r >> (16 * i)) & 0xFFFF).sum();
    // Each 16-bit uniform has variance (65536² − 1)/12 ≈ 65536²/12; four of them ≈ 65536²/3.
    const INV_STD: f64 = 1.732_050_807_568_877_2 / 65536.0;
    (s as f64 - 2.0 * 65535.0) * INV_STD
}

/// FNV-1a, to give every tensor its own generator stream.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xCBF2_9CE4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01B3))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// llama-quantize's type for rows a K-quant cannot store (`llama_tensor_get_type`).
fn kquant_fallback(ty: GgmlType) -> Option<GgmlType> {
    match ty {
        GgmlType::Q4_K => Some(GgmlType::Q5_0),
        GgmlType::Q5_K => Some(GgmlType::Q5_1),
        GgmlType::Q6_K => Some(GgmlType::Q8_0),
        _ => None,
    }
}

/// Stores a row-major matrix (`row_len` values per row) in `ty`, row by row as llama.cpp does.
fn store_rows(ty: GgmlType, values: &[f32], row_len: usize) -> Result<Vec<u8>, QuantError> {
    let row_bytes = check_row_type(ty, row_len)?;
    let mut out = vec![0u8; values.len() / row_len * row_bytes];
    for (src, dst) in values.chunks_exact(row_len).zip(out.chunks_exact_mut(row_bytes)) {
        store_row(ty, src, dst)?;
    }
    Ok(out)
}

/// The bytes of a `row_len`-value row in `ty`, or why `ty` cannot store it.
fn check_row_type(ty: GgmlType, row_len: usize) -> Result<usize, QuantError> {
    if matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
        return Err(QuantError::NotApplicable(ty));
    }
    ty.row_bytes(row_len).ok_or(QuantError::PartialBlock { ty, n: row_len, block: ty.block_size() })
}

/// One row in `ty`, through `quant::quantize_row` (ggml's reference quantizers, no importance
/// matrix: what `llama-quantize` does without `--imatrix`). Q8_1 and Q8_K are refused: ggml
/// only uses them for activations.
fn store_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) -> Result<(), QuantError> {
    if matches!(ty, GgmlType::Q8_1 | GgmlType::Q8_K) {
        return Err(QuantError::NotApplicable(ty));
    }
    crate::quant::quantize_row(ty, src, dst)
}

/// llama.cpp's `general.file_type` (enum llama_ftype) for a model whose matrices are all `ty`;
/// K-quants map to their "_S" mixes, the closest named ones.
fn file_type(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        GgmlType::Q5_0 => 8,
        GgmlType::Q5_1 => 9,
        GgmlType::Q2_K => 10,
        GgmlType::Q3_K => 11,
        GgmlType::Q4_K => 14,
        GgmlType::Q5_K => 16,
        GgmlType::Q6_K => 18,
        GgmlType::BF16 => 32,
        GgmlType::Q8_1 | GgmlType::Q8_K => 1024, // LLAMA_FTYPE_GUESSED: not storage types
    }
}
