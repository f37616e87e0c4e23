//! The golden variants of the synthetic models: one per architecture and per feature worth a
//! llama.cpp golden of its own (Llama 3's rope factors, YaRN, LongRoPE, partial rotary, sliding
//! windows shorter than the test sequences).

use super::{Llama3Rope, SynthConfig};
use crate::gguf::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SynthArch {
    /// Untied `output.weight`, GQA, RoPE "normal" (adjacent pairs), theta 1e4, eps 1e-5.
    Llama,
    /// Q/K/V biases, tied embeddings, RoPE NeoX, theta 1e6, eps 1e-6.
    Qwen2,
    /// Per-head q_norm/k_norm, heads × head_dim (512) ≠ hidden (256), tied, theta 1e6.
    Qwen3,
    /// Llama 3 style: GGUF architecture `llama` with Llama 3.1's rope scaling baked into a
    /// `rope_freqs.weight` tensor, scaled down so that it matters within a few positions (an
    /// original context of 32, see [`LLAMA3_ROPE`]); untied output, 8 query heads on 2 KV heads
    /// (64 wide, so q is 512 wide on a 256-wide model), FFN 768, theta 5e5.
    Llama3,
    /// Qwen2 with YaRN (`rope.scaling.type = yarn`, factor 4) from an original context of 16
    /// positions, so the ramp and the magnitude factor matter at once, as Qwen2.5's long
    /// context files set it.
    Qwen2Yarn,
    /// Gemma 2: GeGLU, post-norms, embeddings × sqrt(256), soft caps small enough to bend
    /// (attention 1.5, final 3), layer 0 local with a window of 4 (shorter than the test
    /// sequences), layer 1 global; tied output.
    Gemma2,
    /// Gemma 3: Gemma 2's block without caps plus q/k norms, 3 layers with
    /// `sliding_window_pattern` 3 (layers 0, 1 local, window 5, rope base 1e4; layer 2 global,
    /// base 1e6 with linear scaling 2).
    Gemma3,
    /// Phi-3 (Phi-3.5-mini style): q/k/v stored as one `attn_qkv` and gate/up as one `ffn_up`,
    /// LongRoPE factor tensors with an attention factor and an original context of 64, so a
    /// 128-position context takes the long factors; untied.
    Phi3,
    /// Phi-4-mini style: Phi-3's layout with partial rotary (48 of 64 dimensions) and tied
    /// embeddings; LongRoPE with an original context of 256, so a 128-position context takes
    /// the short factors.
    Phi4,
}

/// The rope scaling of [`SynthArch::Llama3`]: Llama 3.1's, with an original context of 32
/// positions instead of 8192, so that with theta 5e5 and 64-wide heads pair 0 keeps factor 1,
/// pairs 1–3 are smoothed and pairs 4–31 get factor 8.
pub const LLAMA3_ROPE: Llama3Rope = Llama3Rope { original_context: 32, ..Llama3Rope::LLAMA_3_1 };

impl SynthArch {
    pub const ALL: [SynthArch; 9] = [
        SynthArch::Llama,
        SynthArch::Qwen2,
        SynthArch::Qwen3,
        SynthArch::Llama3,
        SynthArch::Qwen2Yarn,
        SynthArch::Gemma2,
        SynthArch::Gemma3,
        SynthArch::Phi3,
        SynthArch::Phi4,
    ];

    /// The variant's name: file stems (`{name}-{TYPE}.gguf`) and the goldens use it.
    /// Unique per variant; equal to [`Self::gguf_arch`] for the plain architectures. The
    /// file's `general.name` is `pocketllm-synth-{name}`.
    pub fn name(self) -> &'static str {
        match self {
            SynthArch::Llama => "llama",
            SynthArch::Qwen2 => "qwen2",
            SynthArch::Qwen3 => "qwen3",
            SynthArch::Llama3 => "llama3",
            SynthArch::Qwen2Yarn => "qwen2-yarn",
            SynthArch::Gemma2 => "gemma2",
            SynthArch::Gemma3 => "gemma3",
            // Not "phi3": llama.cpp gives files whose name holds it Phi-3's special-token
            // attributes, which need Phi-3's own vocabulary.
            SynthArch::Phi3 => "phi-longrope",
            SynthArch::Phi4 => "phi-partial-rotary",
        }
    }

    /// The GGUF `general.architecture` string (`llama` for Llama 3 too, as in real files).
    pub fn gguf_arch(self) -> &'static str {
        match self {
            SynthArch::Llama | SynthArch::Llama3 => "llama",
            SynthArch::Qwen2 | SynthArch::Qwen2Yarn => "qwen2",
            SynthArch::Qwen3 => "qwen3",
            SynthArch::Gemma2 => "gemma2",
            SynthArch::Gemma3 => "gemma3",
            SynthArch::Phi3 | SynthArch::Phi4 => "phi3",
        }
    }

    /// The variant called `name` (see [`Self::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn config(self) -> SynthConfig {
        let base = SynthConfig {
            hidden: 256,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            ffn: 512,
            vocab: 512,
            context: 256,
            rope_base: 10000.0,
            rms_eps: 1e-5,
            qkv_bias: false,
            qk_norm: false,
            tied_output: false,
            llama3_rope: None,
            kquant_fallback: false,
            post_norms: false,
            fused_projections: false,
            n_rot: None,
            long_rope: false,
            metadata: Vec::new(),
        };
        let f32v = Value::F32;
        let u32v = Value::U32;
        match self {
            SynthArch::Llama => base,
            SynthArch::Qwen2 => {
                SynthConfig { rope_base: 1e6, rms_eps: 1e-6, qkv_bias: true, tied_output: true, ..base }
            }
            SynthArch::Qwen3 => {
                SynthConfig { head_dim: 128, rope_base: 1e6, rms_eps: 1e-6, qk_norm: true, tied_output: true, ..base }
            }
            SynthArch::Llama3 => {
                SynthConfig { n_head: 8, ffn: 768, rope_base: 500000.0, llama3_rope: Some(LLAMA3_ROPE), ..base }
            }
            SynthArch::Qwen2Yarn => SynthConfig {
                metadata: vec![
                    ("rope.scaling.type", Value::String("yarn".into())),
                    ("rope.scaling.factor", f32v(4.0)),
                    ("rope.scaling.original_context_length", u32v(16)),
                ],
                ..SynthArch::Qwen2.config()
            },
            SynthArch::Gemma2 => SynthConfig {
                rms_eps: 1e-6,
                tied_output: true,
                post_norms: true,
                metadata: vec![
                    ("attention.sliding_window", u32v(4)),
                    ("attn_logit_softcapping", f32v(1.5)),
                    ("final_logit_softcapping", f32v(3.0)),
                ],
                ..base
            },
            SynthArch::Gemma3 => SynthConfig {
                n_layer: 3,
                rope_base: 1e6,
                rms_eps: 1e-6,
                qk_norm: true,
                tied_output: true,
                post_norms: true,
                metadata: vec![
                    ("attention.sliding_window", u32v(5)),
                    ("attention.sliding_window_pattern", u32v(3)),
                    ("rope.scaling.type", Value::String("linear".into())),
                    ("rope.scaling.factor", f32v(2.0)),
                ],
                ..base
            },
            SynthArch::Phi3 => SynthConfig {
                fused_projections: true,
                long_rope: true,
                metadata: vec![
                    ("rope.scaling.original_context_length", u32v(64)),
                    ("rope.scaling.attn_factor", f32v(1.1902381)),
                    ("attention.sliding_window", u32v(0)),
                ],
                ..base
            },
            SynthArch::Phi4 => SynthConfig {
                tied_output: true,
                n_rot: Some(48),
                metadata: vec![
                    ("rope.scaling.original_context_length", u32v(256)),
                    ("rope.scaling.attn_factor", f32v(1.1902381)),
                    ("attention.sliding_window", u32v(0)),
                ],
                ..SynthArch::Phi3.config()
            },
        }
    }
}
