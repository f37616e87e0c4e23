//! The architectures this engine runs and what each does differently from Llama, read from the
//! GGUF as llama.cpp's per-architecture loaders read it. One function per family; the forward
//! pass reads only the resulting [`Block`] and per-layer attention.

use super::rope::RopeStyle;
use crate::gguf::Metadata;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
    Gemma2,
    Gemma3,
    Phi3,
}

const ALL: [Arch; 6] = [Arch::Llama, Arch::Qwen2, Arch::Qwen3, Arch::Gemma2, Arch::Gemma3, Arch::Phi3];

impl Arch {
    pub fn from_name(name: &str) -> Result<Self> {
        ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
            let names: Vec<_> = ALL.iter().map(|a| a.name()).collect();
            Error::UnsupportedModel(format!("architecture {name:?} is not supported (supported: {})", names.join(", ")))
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Gemma2 => "gemma2",
            Arch::Gemma3 => "gemma3",
            Arch::Phi3 => "phi3",
        }
    }

    /// How rope pairs dimensions: llama.cpp uses adjacent pairs ("normal") for Llama and the
    /// split-halves ("neox") convention for the others.
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Normal,
            _ => RopeStyle::Neox,
        }
    }
}

/// The feed-forward gate's activation: out = act(gate) * up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Activation {
    /// silu(g) = g / (1 + e^-g) (SwiGLU: Llama, Qwen, Phi-3).
    Silu,
    /// GELU, tanh approximation (GeGLU: Gemma), rounded through f16 as ggml's CPU table does.
    GeluTanh,
}

/// What a family's transformer block does beyond the Llama block (pre-norm attention and
/// SwiGLU feed-forward, each added to the residual).
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    /// Q/K/V biases (Qwen2).
    pub qkv_bias: bool,
    /// Per-head RMS norms of q and k before rope (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// RMS norms of the attention and feed-forward outputs before the residual add
    /// (`post_attention_norm`, `post_ffw_norm`: Gemma).
    pub post_norms: bool,
    pub activation: Activation,
    /// Multiplies the token embeddings (Gemma: sqrt(n_embd)).
    pub embed_scale: f32,
    /// Multiplies q·k before the softmax.
    pub attn_scale: f32,
    /// Attention logits become cap·tanh(s / cap) (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// The output logits become cap·tanh(l / cap) (Gemma 2, some Gemma 3 files).
    pub final_softcap: Option<f32>,
    /// Per-pair rope factors from `rope_freqs` or LongRoPE's long/short tensors apply (the
    /// families whose llama.cpp builders pass them to rope: Llama, Phi-3).
    pub rope_factors: bool,
}

/// Sliding-window attention: which layers are local, their window and their own rope.
pub struct Swa {
    pub window: usize,
    pub is_local: Vec<bool>,
    pub local_rope: LocalRope,
}

/// The rope of local layers: `None` fields keep the model's base or linear scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LocalRope {
    pub freq_base: Option<f32>,
    pub freq_scale: Option<f32>,
}

pub struct Family {
    pub block: Block,
    pub swa: Option<Swa>,
}

/// The shared hyper-parameters a family's reader needs.
pub struct Shape {
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub head_dim: usize,
    pub n_ctx_train: usize,
}

impl Family {
    pub fn read(arch: Arch, md: &Metadata, s: &Shape) -> Result<Family> {
        let llama = Block {
            qkv_bias: false,
            qk_norm: false,
            post_norms: false,
            activation: Activation::Silu,
            embed_scale: 1.0,
            attn_scale: 1.0 / (s.head_dim as f32).sqrt(),
            attn_softcap: None,
            final_softcap: None,
            rope_factors: false,
        };
        let k = |name: &str| format!("{}.{name}", arch.name());
        Ok(match arch {
            Arch::Llama => Family { block: Block { rope_factors: true, ..llama }, swa: None },
            Arch::Qwen2 => Family { block: Block { qkv_bias: true, ..llama }, swa: None },
            Arch::Qwen3 => Family { block: Block { qk_norm: true, ..llama }, swa: None },
            // llama.cpp disables Phi-3's sliding window (its PR 13676: the converters do not
            // give the pattern), so every layer is global, as there.
            Arch::Phi3 => Family { block: Block { rope_factors: true, ..llama }, swa: None },
            Arch::Gemma2 => {
                let block = Block {
                    post_norms: true,
                    activation: Activation::GeluTanh,
                    embed_scale: (s.n_embd as f32).sqrt(),
                    attn_scale: gemma_attn_scale(arch, md, s),
                    attn_softcap: Some(softcap(md, &k("attn_logit_softcapping"), 50.0)?),
                    final_softcap: Some(softcap(md, &k("final_logit_softcapping"), 30.0)?),
                    ..llama
                };
                let window = window(md, &k("attention.sliding_window"), Some(4096), s)?;
                // Local layers keep the model's rope unless the file gives them a base.
                let local_rope = LocalRope { freq_base: md.get_f32(&k("rope.freq_base_swa")), freq_scale: None };
                let swa = window.map(|window| Swa {
                    window,
                    is_local: local_layers(md, &k("attention.sliding_window_pattern"), 2, s.n_layer),
                    local_rope,
                });
                Family { block, swa }
            }
            Arch::Gemma3 => {
                let final_cap = match md.get(&k("final_logit_softcapping")) {
                    None => None,
                    Some(_) => Some(softcap(md, &k("final_logit_softcapping"), 0.0)?),
                };
                let block = Block {
                    qk_norm: true,
                    post_norms: true,
                    activation: Activation::GeluTanh,
                    embed_scale: (s.n_embd as f32).sqrt(),
                    attn_scale: gemma_attn_scale(arch, md, s),
                    final_softcap: final_cap,
                    ..llama
                };
                // Local layers: base 10 000 (or the file's) and no linear scaling.
                let base = md.get_f32(&k("rope.freq_base_swa")).unwrap_or(10000.0);
                let swa = window(md, &k("attention.sliding_window"), None, s)?.map(|window| Swa {
                    window,
                    is_local: local_layers(md, &k("attention.sliding_window_pattern"), 6, s.n_layer),
                    local_rope: LocalRope { freq_base: Some(base), freq_scale: Some(1.0) },
                });
                Family { block, swa }
            }
        })
    }
}

/// Gemma's query scale: 1/sqrt(query_pre_attn_scalar). GGUF has no key for it; llama.cpp uses
/// the head width, except for the 27B models (recognised by their layer count, 46 for Gemma 2
/// and 62 for Gemma 3), whose query_pre_attn_scalar is n_embd / n_head. A file that does carry
/// `attention.query_pre_attn_scalar` gets its value.
fn gemma_attn_scale(arch: Arch, md: &Metadata, s: &Shape) -> f32 {
    let key = format!("{}.attention.query_pre_attn_scalar", arch.name());
    let is_27b = matches!((arch, s.n_layer), (Arch::Gemma2, 46) | (Arch::Gemma3, 62));
    let scalar = match md.get_f32(&key) {
        Some(v) if v > 0.0 => v,
        _ if is_27b => (s.n_embd / s.n_head) as f32,
        _ => s.head_dim as f32,
    };
    1.0 / scalar.sqrt()
}

/// A soft-capping value: `default` when the key is absent; zero, negative or not finite is an
/// error naming the key (the cap divides the logits).
fn softcap(md: &Metadata, key: &str, default: f32) -> Result<f32> {
    let v = match md.get(key) {
        None => default,
        Some(v) => v.as_f64().map(|v| v as f32).ok_or_else(|| Error::InvalidModel(format!("{key} is not a number")))?,
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(Error::InvalidModel(format!("{key} is {v}: a soft cap must be a positive number")));
    }
    Ok(v)
}

/// The sliding window, or `None` (no local layers) when the key is absent without a default
/// or 0. A file's window longer than the training context is an error naming the key (the
/// family's default is what llama.cpp assumes, and acts as global attention on short models).
fn window(md: &Metadata, key: &str, default: Option<usize>, s: &Shape) -> Result<Option<usize>> {
    let Some(v) = md.get(key) else { return Ok(default) };
    let w = v
        .as_i64()
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| Error::InvalidModel(format!("{key} is not a non-negative integer")))?;
    match w {
        0 => Ok(None),
        w if w > s.n_ctx_train => Err(Error::InvalidModel(format!(
            "{key} is {w}, longer than the {} positions the model was trained for",
            s.n_ctx_train
        ))),
        w => Ok(Some(w)),
    }
}

/// Which layers are local: the file's `sliding_window_pattern` (one bool per layer, or a
/// period), else the family's period `n`: every layer but each n-th (as llama.cpp's
/// set_swa_pattern: layer l is local when l % n < n - 1).
fn local_layers(md: &Metadata, key: &str, n: usize, n_layer: usize) -> Vec<bool> {
    if let Some(flags) = md.get_array(key).and_then(|a| a.to_i64_vec()).filter(|f| f.len() == n_layer) {
        return flags.into_iter().map(|f| f != 0).collect();
    }
    let n = md.get_usize(key).filter(|&p| p > 0).unwrap_or(n);
    (0..n_layer).map(|l| l % n < n - 1).collect()
}
