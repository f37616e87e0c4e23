//! The fixed op set every backend implements. `model::forward` is written once against this
//! trait; the CPU backend is the reference, the GPU backend (WebGPU) will mirror it op for op.
//!
//! Activations are row-major `[n_tokens][width]` f32 buffers allocated once per model load;
//! every op takes the number of tokens it should touch, so one buffer serves a whole prompt
//! batch and a single decode step.

pub mod cpu;
pub mod gpu;

use crate::Result;
use crate::model::config::RopeConfig;
use crate::quant::GgmlType;

/// Shape of the attention for one layer.
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    /// Multiplies q·k before the softmax (1/sqrt(head_dim)).
    pub scale: f32,
}

pub trait Backend {
    /// A weight tensor in its GGUF block layout.
    type Weight;
    /// An f32 activation buffer.
    type Buffer;
    /// Keys and values of every layer for `n_ctx` positions.
    type KvCache;

    fn name(&self) -> &'static str;

    /// Takes a tensor of `rows` rows of `cols` values in GGUF layout.
    fn upload_weight(
        &mut self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self::Weight>;
    fn alloc(&mut self, name: &str, len: usize) -> Result<Self::Buffer>;
    fn alloc_kv(&mut self, n_layer: usize, n_ctx: usize, k_width: usize, v_width: usize) -> Result<Self::KvCache>;
    /// Rope tables are fixed per model: set once at load. `freq_factors` is llama3's `rope_freqs`.
    fn set_rope(&mut self, rope: &RopeConfig, freq_factors: Option<&[f32]>) -> Result<()>;

    /// out[t] = row `tokens[t]` of `table`, dequantized.
    fn embed(&mut self, table: &Self::Weight, tokens: &[u32], out: &mut Self::Buffer);
    /// out[t] = x[t] / rms(x[t]) * w, over rows of w's length.
    fn rms_norm(&mut self, x: &Self::Buffer, w: &Self::Weight, n_tokens: usize, eps: f32, out: &mut Self::Buffer);
    /// The same normalisation applied in place to every `w.len()`-wide head of each row (Qwen3's q/k norm).
    fn head_norm(&mut self, x: &mut Self::Buffer, w: &Self::Weight, n_rows: usize, eps: f32);
    /// out[t][r] = Σ_c w[r][c]·x[t][c].
    fn matmul(&mut self, w: &Self::Weight, x: &Self::Buffer, n_tokens: usize, out: &mut Self::Buffer);
    /// x[t] += b.
    fn add_bias(&mut self, x: &mut Self::Buffer, b: &Self::Weight, n_tokens: usize);
    /// Rotates every head of tokens at positions pos0.. in place.
    fn rope(&mut self, x: &mut Self::Buffer, n_tokens: usize, n_heads: usize, head_dim: usize, pos0: usize);
    /// Stores k and v at positions pos0.. of `layer`, then out = causal softmax(q·kᵀ·scale)·v.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &mut self,
        q: &Self::Buffer,
        k: &Self::Buffer,
        v: &Self::Buffer,
        cache: &mut Self::KvCache,
        layer: usize,
        shape: AttnShape,
        n_tokens: usize,
        pos0: usize,
        out: &mut Self::Buffer,
    );
    /// gate = silu(gate) * up over `len` values.
    fn swiglu(&mut self, gate: &mut Self::Buffer, up: &Self::Buffer, len: usize);
    /// x += y over `len` values.
    fn add(&mut self, x: &mut Self::Buffer, y: &Self::Buffer, len: usize);
    /// dst[dst_off..dst_off+len] = src[src_off..src_off+len].
    fn copy(&mut self, src: &Self::Buffer, src_off: usize, dst: &mut Self::Buffer, dst_off: usize, len: usize);
    /// Copies `len` values starting at `offset` out.
    fn read(&mut self, x: &Self::Buffer, offset: usize, len: usize, out: &mut [f32]);
}
