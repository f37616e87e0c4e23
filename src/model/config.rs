//! Model hyper-parameters read from GGUF metadata (`{arch}.*` keys), as llama.cpp reads them:
//! the shape every family shares here, what each family does differently in [`super::arch`].

pub use super::arch::{Activation, Arch};
use super::arch::{Block, Family};
pub use super::rope::{RopeConfig, RopeScaling, RopeStyle};
use crate::gguf::Metadata;
use crate::{Error, Result};

/// The attention of one layer: whether it sees a sliding window of keys, and which rope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerAttn {
    /// Keys at positions pos - window + 1 ..= pos only (llama.cpp's standard SWA); `None`: all.
    pub window: Option<usize>,
    /// Index into [`Config::ropes`].
    pub rope: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head width of queries and keys (`attention.key_length`).
    pub head_dim: usize,
    /// Per-head width of values (`attention.value_length`).
    pub head_dim_v: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    /// Context the model was trained for.
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    /// What the family's blocks do beyond Llama's.
    pub block: Block,
    /// Per layer, in order.
    pub layers: Vec<LayerAttn>,
    /// The ropes layers use: the model's at index 0, local layers' own (Gemma 3) at 1. Their
    /// per-pair factors, which come from tensors, are filled in at load.
    pub ropes: Vec<RopeConfig>,
    /// The context YaRN and LongRoPE were trained from (`rope.scaling.original_context_length`).
    pub n_ctx_orig: usize,
}

impl Config {
    pub fn from_metadata(md: &Metadata, n_vocab: usize) -> Result<Self> {
        let arch_name = md
            .get_str("general.architecture")
            .ok_or_else(|| Error::InvalidModel("general.architecture is missing".into()))?;
        let arch = Arch::from_name(arch_name)?;
        let key = |k: &str| format!("{arch_name}.{k}");
        let req = |k: &str| -> Result<usize> {
            md.get_usize(&key(k))
                .filter(|&v| v > 0)
                .ok_or_else(|| Error::InvalidModel(format!("{} is missing or not a positive integer", key(k))))
        };
        let n_embd = req("embedding_length")?;
        let n_head = req("attention.head_count")?;
        let n_layer = req("block_count")?;
        let n_head_kv = md.get_usize(&key("attention.head_count_kv")).unwrap_or(n_head);
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::InvalidModel(format!("{n_head} heads cannot share {n_head_kv} KV heads")));
        }
        let head_dim = md.get_usize(&key("attention.key_length")).unwrap_or(n_embd / n_head);
        let head_dim_v = md.get_usize(&key("attention.value_length")).unwrap_or(head_dim);
        let n_rot = md.get_usize(&key("rope.dimension_count")).unwrap_or(head_dim);
        if head_dim == 0 || n_rot > head_dim || !n_rot.is_multiple_of(2) || head_dim_v == 0 {
            return Err(Error::InvalidModel(format!(
                "bad head geometry: head_dim {head_dim}, {} {n_rot}",
                key("rope.dimension_count")
            )));
        }
        let n_ctx_train = md.get_usize(&key("context_length")).unwrap_or(2048);
        let rms_eps = md.get_f32(&key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5);
        let scaling = RopeScaling::from_metadata(md, arch_name, n_ctx_train)?;
        let freq_base = md.get_f32(&key("rope.freq_base")).unwrap_or(10000.0);
        if !(freq_base.is_finite() && freq_base > 1.0) {
            return Err(Error::InvalidModel(format!("{} is {freq_base}", key("rope.freq_base"))));
        }
        let shape = super::arch::Shape { n_embd, n_layer, n_head, head_dim, n_ctx_train };
        let Family { block, swa } = Family::read(arch, md, &shape)?;
        let style = arch.rope_style();
        let mut ropes = vec![scaling.rope(style, n_rot, freq_base, scaling.freq_scale)];
        let layers = match swa {
            None => vec![LayerAttn { window: None, rope: 0 }; n_layer],
            Some(swa) => {
                let base = swa.local_rope.freq_base.unwrap_or(freq_base);
                if !(base.is_finite() && base > 1.0) {
                    return Err(Error::InvalidModel(format!("{} is {base}", key("rope.freq_base_swa"))));
                }
                let local_rope =
                    scaling.rope(style, n_rot, base, swa.local_rope.freq_scale.unwrap_or(scaling.freq_scale));
                let local = if local_rope == ropes[0] {
                    0
                } else {
                    ropes.push(local_rope);
                    1
                };
                swa.is_local
                    .iter()
                    .map(|&l| {
                        if l {
                            LayerAttn { window: Some(swa.window), rope: local }
                        } else {
                            LayerAttn { window: None, rope: 0 }
                        }
                    })
                    .collect()
            }
        };
        Ok(Config {
            arch,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_ff: req("feed_forward_length")?,
            n_vocab,
            n_ctx_train,
            rms_eps,
            block,
            layers,
            ropes,
            n_ctx_orig: scaling.n_ctx_orig,
        })
    }

    /// Layer `l`'s attention as the backend's ops take it.
    pub fn attn_shape(&self, l: usize) -> crate::backend::AttnShape {
        crate::backend::AttnShape {
            n_head: self.n_head,
            n_head_kv: self.n_head_kv,
            head_dim: self.head_dim,
            head_dim_v: self.head_dim_v,
            scale: self.block.attn_scale,
            softcap: self.block.attn_softcap,
            window: self.layers[l].window,
            rope: self.layers[l].rope,
        }
    }

    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }

    pub fn v_dim(&self) -> usize {
        self.n_head_kv * self.head_dim_v
    }

    /// Positions layer `l`'s cache holds for a context of `n_ctx` processed in batches of at
    /// most `n_batch`: every position for global layers; for a sliding-window layer a ring of
    /// window + n_batch - 1, enough for the last window of keys of every token of a batch
    /// (llama.cpp keeps window + n_ubatch cells with `swa_full` off).
    pub fn cache_positions(&self, l: usize, n_ctx: usize, n_batch: usize) -> usize {
        match self.layers[l].window {
            Some(w) => (w + n_batch.max(1) - 1).min(n_ctx),
            None => n_ctx,
        }
    }
}
