//! A loaded model: configuration, weights on a backend, the KV cache and the activation
//! buffers, and the one forward pass every architecture shares.

pub mod arch;
pub mod config;
mod forward;
pub mod rope;
pub mod weights;

use crate::backend::{Backend, KvType};
use crate::gguf::Gguf;
use crate::{Error, Result};
use config::Config;
use weights::{Loader, TensorSource, Weights};

/// Which positions' logits a forward pass returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Logits {
    /// Only the last token's (prompt processing before sampling, decoding).
    Last,
    /// Every token's, `[n_tokens][n_vocab]` (the `logits` command, parity tests).
    All,
}

#[derive(Clone, Debug)]
pub struct ModelOptions {
    /// KV cache length; 0 means min(the model's training context, 4096).
    pub context_length: usize,
    /// Most tokens processed in one batch during prompt processing.
    pub batch_size: usize,
    /// Concatenate q/k/v and gate/up weights so one fused op computes each group (see
    /// [`weights::Qkv`]); off only to test the separate path.
    pub fuse_projections: bool,
    /// The KV cache's element type; `None`: the backend's [`Backend::default_kv_type`] (f16 on
    /// GPUs with `shader-f16`, else f32).
    pub kv_type: Option<KvType>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { context_length: 0, batch_size: 256, fuse_projections: true, kv_type: None }
    }
}

impl ModelOptions {
    /// The KV cache length these options give a model of `c`.
    fn n_ctx(&self, c: &Config) -> usize {
        match self.context_length {
            0 => c.n_ctx_train.min(4096),
            n => n,
        }
    }
}

/// Bytes of the KV cache of a model of `c` (each layer's positions, see
/// [`Config::cache_positions`]), saturating rather than wrapping on absurd sizes.
fn kv_cache_bytes(c: &Config, n_ctx: usize, n_batch: usize, ty: KvType) -> u64 {
    let per_position = (ty.bytes() * (c.kv_dim() + c.v_dim())) as u64;
    (0..c.n_layer)
        .map(|l| (c.cache_positions(l, n_ctx, n_batch) as u64).saturating_mul(per_position))
        .fold(0u64, u64::saturating_add)
}

/// Logit rows computed per output matmul when every position's logits are wanted; bounds the
/// logits buffer to LOGIT_ROWS × n_vocab whatever the batch size.
const LOGIT_ROWS: usize = 16;

/// Activation buffers, allocated once per load. Sizes are for `n_batch` tokens.
struct RunState<Buf> {
    x: Buf,
    xb: Buf,
    q: Buf,
    k: Buf,
    v: Buf,
    attn: Buf,
    hb: Buf,
    /// Only when some layer's gate and up projections are separate.
    hb2: Option<Buf>,
    out_rows: Buf,
    logits: Buf,
}

/// What loading a model takes from the host, by the CPU path's peak (the loader's copy of the
/// weights and the backend's, the KV cache, the activations): what to compare with a memory
/// budget once the header has arrived, before the weights are downloaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryNeeds {
    pub weights: u64,
    pub kv_cache: u64,
    pub activations: u64,
}

impl MemoryNeeds {
    /// The GGUF's tensors, and a KV cache of `context_length` positions (0: as [`ModelOptions`]),
    /// of f32 values unless the options ask for f16 (the backend may choose f16 later: the
    /// budget errs on the safe side).
    pub fn of(gguf: &Gguf, opts: &ModelOptions) -> Result<MemoryNeeds> {
        let c = Config::from_metadata(&gguf.metadata, weights::vocab_size(gguf)?)?;
        let n_ctx = opts.n_ctx(&c);
        let n_batch = opts.batch_size.clamp(1, n_ctx.max(1)) as u64;
        let per_token =
            3 * c.n_embd.max(c.q_dim()) + c.q_dim() + c.kv_dim() + c.v_dim() + c.n_head * c.head_dim_v + 2 * c.n_ff;
        let kv_type = opts.kv_type.unwrap_or(KvType::F32);
        Ok(MemoryNeeds {
            weights: gguf.tensors.iter().map(|t| t.n_bytes).sum(),
            kv_cache: kv_cache_bytes(&c, n_ctx, n_batch as usize, kv_type),
            activations: 4 * (n_batch * per_token as u64 + (LOGIT_ROWS * (c.n_embd + c.n_vocab)) as u64),
        })
    }

    /// Peak bytes: while loading, the weights are held twice (as read, and by the backend).
    pub fn peak(&self) -> u64 {
        2 * self.weights + self.kv_cache + self.activations
    }
}

pub struct Model<B: Backend> {
    pub config: Config,
    pub backend: B,
    weights: Weights<B::Weight>,
    state: RunState<B::Buffer>,
    cache: B::KvCache,
    kv_type: KvType,
    n_ctx: usize,
    n_batch: usize,
    /// The oldest position whose keys every sliding-window layer still holds (their rings
    /// overwrite older ones): a pass may start at `pos0` only if its window's keys are there.
    oldest_kept: usize,
}

impl<B: Backend> Model<B> {
    /// Loads a model from a whole GGUF file in memory.
    pub fn load(gguf: &Gguf, file: &[u8], backend: B, opts: &ModelOptions) -> Result<Self> {
        Self::load_from(gguf, TensorSource::File(file), backend, opts)
    }

    /// Loads a model whose tensor bytes come from `source`.
    pub fn load_from(gguf: &Gguf, source: TensorSource, backend: B, opts: &ModelOptions) -> Result<Self> {
        Self::load_with_progress(gguf, source, backend, opts, &mut |_, _| {})
    }

    /// `load_from`, calling `on_upload(tensors done, tensors in the file)` after each tensor.
    pub fn load_with_progress(
        gguf: &Gguf,
        source: TensorSource,
        backend: B,
        opts: &ModelOptions,
        on_upload: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        Self::load_prebuilt(gguf, source, std::collections::HashMap::new(), backend, opts, on_upload)
    }

    /// `load_with_progress` where the weights in `prebuilt` (by name, as
    /// [`weights::upload_plan`] names them) are already on the backend.
    pub fn load_prebuilt(
        gguf: &Gguf,
        source: TensorSource,
        prebuilt: std::collections::HashMap<String, B::Weight>,
        mut backend: B,
        opts: &ModelOptions,
        on_upload: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let n_vocab = weights::vocab_size(gguf)?;
        let mut config = Config::from_metadata(&gguf.metadata, n_vocab)?;
        let n_ctx = opts.n_ctx(&config);
        let n_batch = opts.batch_size.clamp(1, n_ctx);
        let mut loader = Loader {
            gguf,
            source,
            backend: &mut backend,
            uploaded: 0,
            on_upload,
            fuse: opts.fuse_projections,
            prebuilt,
        };
        let weights = loader.load(&config)?;
        let factors = loader.rope_factors(&config, n_ctx)?;
        if config.block.rope_factors {
            for rope in &mut config.ropes {
                rope.freq_factors = factors.clone();
            }
        }
        backend.set_ropes(&config.ropes)?;
        let c = &config;
        let separate_gate_up = weights.layers.iter().any(|l| matches!(l.gate_up, weights::GateUp::Separate { .. }));
        let mut buf = |name: &str, len: usize| backend.alloc(name, len);
        let state = RunState {
            x: buf("x", n_batch * c.n_embd)?,
            xb: buf("xb", n_batch * c.n_embd.max(c.q_dim()))?,
            q: buf("q", n_batch * c.q_dim())?,
            k: buf("k", n_batch * c.kv_dim())?,
            v: buf("v", n_batch * c.v_dim())?,
            attn: buf("attn", n_batch * c.n_head * c.head_dim_v)?,
            hb: buf("hb", n_batch * c.n_ff)?,
            hb2: if separate_gate_up { Some(buf("hb2", n_batch * c.n_ff)?) } else { None },
            out_rows: buf("out_rows", LOGIT_ROWS * c.n_embd)?,
            logits: buf("logits", LOGIT_ROWS * c.n_vocab)?,
        };
        let kv_type = opts.kv_type.unwrap_or_else(|| backend.default_kv_type());
        let positions: Vec<usize> = (0..c.n_layer).map(|l| c.cache_positions(l, n_ctx, n_batch)).collect();
        let cache = backend.alloc_kv(&positions, c.kv_dim(), c.v_dim(), kv_type)?;
        let mut model = Model { config, backend, weights, state, cache, kv_type, n_ctx, n_batch, oldest_kept: 0 };
        if model.backend.records() {
            // Record (never run) one step so a recording backend prepares every op now: a kernel
            // the device cannot build fails the load, not the first token.
            model.forward_batch(&[0], 0);
            model.logits_head(0, 1, 0);
            let n_vocab = model.config.n_vocab;
            model.backend.prepare_reads(&model.state.logits, n_vocab)?;
            model.backend.discard()?;
        }
        Ok(model)
    }

    pub fn n_ctx(&self) -> usize {
        self.n_ctx
    }

    /// The element type the KV cache holds.
    pub fn kv_type(&self) -> KvType {
        self.kv_type
    }

    /// Bytes the KV cache takes on its backend.
    pub fn kv_cache_bytes(&self) -> u64 {
        kv_cache_bytes(&self.config, self.n_ctx, self.n_batch, self.kv_type)
    }

    /// Whether a pass may start at `pos0` on what the cache holds: always for a model without
    /// sliding-window layers (and at 0); otherwise only while their rings still hold the
    /// window before `pos0` (rewinding far back, as a new conversation sharing an old prefix
    /// would, needs the prompt processed again from 0).
    pub fn can_resume_at(&self, pos0: usize) -> bool {
        pos0 == 0 || self.max_window().is_none_or(|w| (pos0 + 1).saturating_sub(w) >= self.oldest_kept)
    }

    fn max_window(&self) -> Option<usize> {
        self.config.layers.iter().filter_map(|l| l.window).max()
    }

    /// Notes that positions `pos0..end` were written: the rings now hold at least the last
    /// `ring` positions before `end`, and nothing from before `oldest_kept`.
    fn note_written(&mut self, pos0: usize, end: usize) {
        if pos0 == 0 {
            self.oldest_kept = 0;
        }
        let c = &self.config;
        let ring = (0..c.n_layer)
            .filter(|&l| c.layers[l].window.is_some())
            .map(|l| c.cache_positions(l, self.n_ctx, self.n_batch))
            .min();
        if let Some(ring) = ring {
            self.oldest_kept = self.oldest_kept.max(end.saturating_sub(ring));
        }
    }

    pub fn n_vocab(&self) -> usize {
        self.config.n_vocab
    }

    /// Runs `tokens` at positions `pos0..`, writing their keys and values into the cache, and
    /// returns logits as `which` asks. Positions at and after `pos0` are overwritten, so
    /// rewinding is just calling again with a smaller `pos0`. Native callers that are not async
    /// use [`Model::forward`].
    pub async fn forward_async(&mut self, tokens: &[u32], pos0: usize, which: Logits) -> Result<Vec<f32>> {
        self.check_batch(tokens, pos0)?;
        let n_vocab = self.config.n_vocab;
        let mut out = Vec::with_capacity(n_vocab * if which == Logits::All { tokens.len() } else { 1 });
        for (i, batch) in tokens.chunks(self.n_batch).enumerate() {
            let pos = pos0 + i * self.n_batch;
            self.forward_batch(batch, pos);
            let is_last = pos + batch.len() == pos0 + tokens.len();
            match which {
                Logits::All => self.logits_rows(0, batch.len(), pos, &mut out).await?,
                Logits::Last if is_last => self.logits_rows(batch.len() - 1, 1, pos, &mut out).await?,
                Logits::Last => {}
            }
        }
        Ok(out)
    }

    /// [`Model::forward_async`] driven to completion on this thread.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&mut self, tokens: &[u32], pos0: usize, which: Logits) -> Result<Vec<f32>> {
        pollster::block_on(self.forward_async(tokens, pos0, which))
    }

    /// Runs `tokens` like [`Model::forward_async`] and returns the most likely next token (the
    /// argmax of the last logits, as the greedy sampler picks it) without reading the logits back.
    pub async fn forward_greedy(&mut self, tokens: &[u32], pos0: usize) -> Result<u32> {
        let (row, pos) = self.forward_batches(tokens, pos0)?;
        self.argmax_row(row, pos).await
    }

    /// Records `tokens` at `pos0` in batches; returns the last token's row in the last batch
    /// and that batch's first position, for the head.
    fn forward_batches(&mut self, tokens: &[u32], pos0: usize) -> Result<(usize, usize)> {
        self.check_batch(tokens, pos0)?;
        let mut last = (0, 0);
        for (i, batch) in tokens.chunks(self.n_batch).enumerate() {
            let pos = pos0 + i * self.n_batch;
            self.forward_batch(batch, pos);
            last = (batch.len() - 1, pos);
        }
        Ok(last)
    }

    /// Runs `tokens` as `forward_greedy` does, and returns at least the `k` most likely next
    /// tokens as `(id, logit)` (see `Backend::top_candidates`): what sampling with a top-k
    /// needs, read back instead of the whole row.
    pub async fn forward_top_candidates(&mut self, tokens: &[u32], pos0: usize, k: usize) -> Result<Vec<(u32, f32)>> {
        let (row, pos) = self.forward_batches(tokens, pos0)?;
        self.logits_head(row, 1, pos);
        self.backend.top_candidates(&self.state.logits, 0, self.config.n_vocab, k).await
    }

    /// Checks a pass of `tokens` at `pos0` and notes the positions it will write.
    fn check_batch(&mut self, tokens: &[u32], pos0: usize) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::InvalidArgument("no tokens to process".into()));
        }
        if pos0 + tokens.len() > self.n_ctx {
            return Err(Error::ContextFull { needed: pos0 + tokens.len(), context: self.n_ctx });
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= self.config.n_vocab) {
            return Err(Error::TokenOutOfRange { id, n_vocab: self.config.n_vocab });
        }
        if !self.can_resume_at(pos0) {
            return Err(Error::InvalidArgument(format!(
                "cannot resume at position {pos0}: the sliding-window caches no longer hold the keys before it \
                 (oldest kept: {}); process the tokens from 0",
                self.oldest_kept
            )));
        }
        self.note_written(pos0, pos0 + tokens.len());
        Ok(())
    }
}
