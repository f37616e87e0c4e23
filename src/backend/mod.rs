//! The fixed op set every backend implements. `model::forward` is written once against this
//! trait; the CPU backend is the reference, the GPU backend (WebGPU) mirrors it op for op.
//!
//! Ops only record work (the CPU does it at once, the GPU records a command list); `read` and
//! `argmax` are the only places results come back, and they are async so the browser's WebGPU
//! (whose buffer mapping is a promise) implements the same trait. Projections that read the same
//! input come fused (`matmul_qkv`, `matmul_swiglu`, `matmul_add`) so the GPU runs them as one
//! dispatch; the loader concatenates their weights when `max_fused_bytes` allows.
//!
//! Activations are row-major `[n_tokens][width]` f32 buffers allocated once per model load;
//! every op takes the number of tokens it should touch, so one buffer serves a whole prompt
//! batch and a single decode step.

pub mod cpu;
pub mod gpu;

use crate::Result;
pub use crate::model::config::Activation;
use crate::model::config::RopeConfig;
use crate::quant::GgmlType;

/// The attention of one layer: its shape, scaling and masking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnShape {
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub head_dim_v: usize,
    /// Multiplies q·k before the softmax (1/sqrt(head_dim) for most families).
    pub scale: f32,
    /// Scores s become cap·tanh(s / cap) before the softmax (Gemma 2).
    pub softcap: Option<f32>,
    /// A sliding window: a token at position p sees keys at p - window + 1 ..= p only.
    pub window: Option<usize>,
    /// Which of the ropes given to [`Backend::set_ropes`] rotates this layer's q and k.
    pub rope: usize,
}

impl AttnShape {
    /// Plain causal attention over every cached position, rope 0, scale 1/sqrt(head_dim).
    pub fn new(n_head: usize, n_head_kv: usize, head_dim: usize, head_dim_v: usize) -> Self {
        AttnShape {
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            scale: 1.0 / (head_dim as f32).sqrt(),
            softcap: None,
            window: None,
            rope: 0,
        }
    }

    /// The first position a token at `pos` attends to.
    pub fn first_key(&self, pos: usize) -> usize {
        match self.window {
            Some(w) => (pos + 1).saturating_sub(w),
            None => 0,
        }
    }

    /// Values per token of q, k and v.
    pub fn qkv_widths(&self) -> [usize; 3] {
        [self.n_head * self.head_dim, self.n_head_kv * self.head_dim, self.n_head_kv * self.head_dim_v]
    }
}

/// Element type of the KV cache. f16 halves the cache (the largest allocation after the weights
/// at long contexts) and the bytes attention reads per position; llama.cpp keeps f16 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvType {
    F32,
    F16,
}

impl KvType {
    pub fn bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
        }
    }

    /// `f32` or `f16` (the CLI's `--kv-cache`, the package's `kvCache`).
    pub fn parse(s: &str) -> Option<KvType> {
        match s {
            "f32" => Some(KvType::F32),
            "f16" => Some(KvType::F16),
            _ => None,
        }
    }
}

// `async fn` in a trait used only through generics (never `dyn`): no Send bound needed.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// A weight tensor in its GGUF block layout.
    type Weight;
    /// An f32 activation buffer.
    type Buffer;
    /// Keys and values of every layer for `n_ctx` positions.
    type KvCache;
    /// A weight being filled as its bytes arrive ([`Backend::begin_weight`]).
    type Upload;

    fn name(&self) -> &'static str;

    /// The largest weight, in bytes, the loader may build by concatenating projections that
    /// read the same input (q/k/v, gate/up) so one fused op computes them.
    fn max_fused_bytes(&self) -> usize;

    /// Takes a tensor of `rows` rows of `cols` values in GGUF layout.
    fn upload_weight(
        &mut self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self::Weight>;
    /// Starts a tensor whose GGUF bytes will arrive in pieces (a streamed download): written
    /// at their byte offsets by [`Backend::write_weight`], in any order, each byte once.
    fn begin_weight(&mut self, name: &str, ty: GgmlType, rows: usize, cols: usize) -> Result<Self::Upload>;
    fn write_weight(&mut self, upload: &mut Self::Upload, offset: usize, bytes: &[u8]) -> Result<()>;
    /// The weight, once all its bytes were written.
    fn finish_weight(&mut self, upload: Self::Upload) -> Result<Self::Weight>;
    fn alloc(&mut self, name: &str, len: usize) -> Result<Self::Buffer>;
    /// The KV cache type used when the model options leave it open: the smallest the backend
    /// stores natively.
    fn default_kv_type(&self) -> KvType {
        KvType::F32
    }
    /// The caches of one layer per entry of `positions`, each holding that many positions
    /// (position p in row p % positions: a sliding-window layer's ring), in `ty`; a type the
    /// backend cannot store (f16 on a GPU without `shader-f16`) is `Error::InvalidArgument`.
    fn alloc_kv(&mut self, positions: &[usize], k_width: usize, v_width: usize, ty: KvType) -> Result<Self::KvCache>;
    /// The model's ropes, fixed per model: set once at load; [`AttnShape::rope`] indexes them.
    fn set_ropes(&mut self, ropes: &[RopeConfig]) -> Result<()>;

    /// The ops that follow, until the next call, process `n_tokens` rows at positions `pos0..`
    /// (the GPU keeps both in one uniform; every op's `n_tokens` equals this one).
    fn begin_step(&mut self, n_tokens: usize, pos0: usize);
    /// out[t] = row `tokens[t]` of `table`, dequantized, times `scale` (Gemma's sqrt(n_embd)).
    fn embed(&mut self, table: &Self::Weight, tokens: &[u32], scale: f32, out: &mut Self::Buffer);
    /// out[t] = x[t] / rms(x[t]) * w, over rows of w's length.
    fn rms_norm(&mut self, x: &Self::Buffer, w: &Self::Weight, n_tokens: usize, eps: f32, out: &mut Self::Buffer);
    /// x[t] += y[t] / rms(y[t]) * w: a norm of a block's output before its residual add
    /// (Gemma's post-norms), as one op.
    fn rms_norm_add(&mut self, y: &Self::Buffer, w: &Self::Weight, n_tokens: usize, eps: f32, x: &mut Self::Buffer);
    /// out[t][r] = Σ_c w[r][c]·x[t][c].
    fn matmul(&mut self, w: &Self::Weight, x: &Self::Buffer, n_tokens: usize, out: &mut Self::Buffer);
    /// out[t][r] += Σ_c w[r][c]·x[t][c]: the residual add fused into the output projections.
    fn matmul_add(&mut self, w: &Self::Weight, x: &Self::Buffer, n_tokens: usize, out: &mut Self::Buffer);
    /// `w` is attn_q, attn_k and attn_v concatenated by rows (`shape.qkv_widths()` rows each):
    /// q[t], k[t], v[t] are their rows times x[t], plus `bias` (the three biases concatenated, Qwen2) when given.
    #[allow(clippy::too_many_arguments)]
    fn matmul_qkv(
        &mut self,
        w: &Self::Weight,
        bias: Option<&Self::Weight>,
        x: &Self::Buffer,
        n_tokens: usize,
        shape: AttnShape,
        q: &mut Self::Buffer,
        k: &mut Self::Buffer,
        v: &mut Self::Buffer,
    );
    /// `w` is ffn_gate and ffn_up concatenated by rows (2h rows):
    /// out[t][r] = act(gate[r]·x[t]) * (up[r]·x[t]), r < h.
    fn matmul_glu(
        &mut self,
        w: &Self::Weight,
        x: &Self::Buffer,
        n_tokens: usize,
        act: Activation,
        out: &mut Self::Buffer,
    );
    /// x[t] += b.
    fn add_bias(&mut self, x: &mut Self::Buffer, b: &Self::Weight, n_tokens: usize);
    /// gate = act(gate) * up over `len` values.
    fn glu(&mut self, gate: &mut Self::Buffer, up: &Self::Buffer, len: usize, act: Activation);
    /// x = cap · tanh(x / cap) over `len` values (Gemma's final logit soft-capping).
    fn softcap(&mut self, x: &mut Self::Buffer, len: usize, cap: f32);
    /// What sits between the projections and attention for tokens at positions pos0..: each q
    /// and k head normalised by `qk_norm` (Qwen3, Gemma 3) when given, rotated (by rope
    /// `shape.rope`), then k and v stored at positions pos0.. of `layer`'s cache. q is rotated
    /// in place; k may be.
    #[allow(clippy::too_many_arguments)]
    fn rope_store(
        &mut self,
        q: &mut Self::Buffer,
        k: &mut Self::Buffer,
        v: &Self::Buffer,
        qk_norm: Option<[&Self::Weight; 2]>,
        eps: f32,
        cache: &mut Self::KvCache,
        layer: usize,
        shape: AttnShape,
        n_tokens: usize,
        pos0: usize,
    );
    /// out[t] = causal softmax(q[t]·kᵀ·scale, soft-capped when `shape.softcap`)·v over positions
    /// `shape.first_key(pos0 + t)..=pos0 + t` of `layer`'s cache.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &mut self,
        q: &Self::Buffer,
        cache: &Self::KvCache,
        layer: usize,
        shape: AttnShape,
        n_tokens: usize,
        pos0: usize,
        out: &mut Self::Buffer,
    );
    /// dst[dst_off..dst_off+len] = src[src_off..src_off+len].
    fn copy(&mut self, src: &Self::Buffer, src_off: usize, dst: &mut Self::Buffer, dst_off: usize, len: usize);
    /// Runs what was recorded and copies `len` values starting at `offset` out.
    async fn read(&mut self, x: &Self::Buffer, offset: usize, len: usize, out: &mut [f32]) -> Result<()>;
    /// Runs what was recorded and returns the index of the largest of x[offset..offset + len]
    /// (lowest on ties, NaNs skipped, as `sampler::argmax`): greedy decoding reads back one id.
    async fn argmax(&mut self, x: &Self::Buffer, offset: usize, len: usize) -> Result<u32>;
    /// Runs what was recorded and returns at least the `k` most likely entries of
    /// x[offset..offset + len] as `(index, logit)` (`sampler::top_candidates`' ranking, any
    /// order): sampling with a top-k reads back those instead of the row. This default reads
    /// the row and selects on the host.
    async fn top_candidates(
        &mut self,
        x: &Self::Buffer,
        offset: usize,
        len: usize,
        k: usize,
    ) -> Result<Vec<(u32, f32)>> {
        read_top_candidates(self, x, offset, len, k).await
    }
    /// Whether ops only record work (the GPU): the model then records one step at load, so
    /// every kernel is compiled and bound before the first token, and drops it with
    /// [`Backend::discard`].
    fn records(&self) -> bool {
        false
    }
    /// Makes, at load, what reading `len` values of `x` and its argmax will need (the GPU's
    /// staging buffers and argmax kernel), so the first token allocates nothing.
    fn prepare_reads(&mut self, _x: &Self::Buffer, _len: usize) -> Result<()> {
        Ok(())
    }
    /// Drops recorded work that has not run, reporting any error met while recording it.
    fn discard(&mut self) -> Result<()> {
        Ok(())
    }
    /// Work done so far (the GPU counts dispatches, submits and bytes; the CPU counts nothing).
    fn counters(&self) -> Counters {
        Counters::default()
    }
}

/// Running totals of the work a backend sent to its device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub dispatches: u64,
    pub submits: u64,
    /// Bytes written from the host per step (uniforms, token ids), not counting weight uploads.
    pub bytes_written: u64,
    pub bytes_read: u64,
    /// Ops prepared (pipelines bound, uniforms and bind groups made): all at load.
    pub prepared: u64,
}

impl Counters {
    /// The work between two snapshots.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            dispatches: self.dispatches - earlier.dispatches,
            submits: self.submits - earlier.submits,
            bytes_written: self.bytes_written - earlier.bytes_written,
            bytes_read: self.bytes_read - earlier.bytes_read,
            prepared: self.prepared - earlier.prepared,
        }
    }
}

/// Reads a row of logits back and selects its `k` most likely entries on the host
/// ([`Backend::top_candidates`]' default, and the GPU's for `k` past its prepared sizes).
pub(crate) async fn read_top_candidates<B: Backend + ?Sized>(
    backend: &mut B,
    x: &B::Buffer,
    offset: usize,
    len: usize,
    k: usize,
) -> Result<Vec<(u32, f32)>> {
    let mut row = vec![0f32; len];
    backend.read(x, offset, len, &mut row).await?;
    Ok(crate::sampler::top_candidates(&row, k))
}
