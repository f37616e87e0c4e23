//! Model hyper-parameters read from GGUF metadata (`{arch}.*` keys), as llama.cpp reads them.

use crate::gguf::Metadata;
use crate::{Error, Result};

/// Architectures this engine runs; each is a set of flags on the one `forward()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "llama" => Ok(Arch::Llama),
            "qwen2" => Ok(Arch::Qwen2),
            "qwen3" => Ok(Arch::Qwen3),
            other => Err(Error::UnsupportedModel(format!(
                "architecture {other:?} is not supported (supported: llama, qwen2, qwen3)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }

    /// How rope pairs dimensions: llama.cpp uses adjacent pairs ("normal") for Llama and the
    /// split-halves ("neox") convention for Qwen.
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Arch::Llama => RopeStyle::Normal,
            Arch::Qwen2 | Arch::Qwen3 => RopeStyle::Neox,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Rotate (x[2i], x[2i+1]).
    Normal,
    /// Rotate (x[i], x[i + n_rot/2]).
    Neox,
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
    pub rope: RopeConfig,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RopeConfig {
    pub style: RopeStyle,
    /// Leading dimensions of each head that are rotated.
    pub n_rot: usize,
    pub freq_base: f32,
    /// 1 / linear scaling factor.
    pub freq_scale: f32,
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
        let n_head_kv = md.get_usize(&key("attention.head_count_kv")).unwrap_or(n_head);
        if n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(Error::InvalidModel(format!("{n_head} heads cannot share {n_head_kv} KV heads")));
        }
        let head_dim = md.get_usize(&key("attention.key_length")).unwrap_or(n_embd / n_head);
        let head_dim_v = md.get_usize(&key("attention.value_length")).unwrap_or(head_dim);
        let n_rot = md.get_usize(&key("rope.dimension_count")).unwrap_or(head_dim);
        if head_dim == 0 || n_rot > head_dim || !n_rot.is_multiple_of(2) || head_dim_v == 0 {
            return Err(Error::InvalidModel(format!("bad head geometry: head_dim {head_dim}, rope dims {n_rot}")));
        }
        let scaling_type = md.get_str(&key("rope.scaling.type")).unwrap_or("none");
        let freq_scale = match scaling_type {
            "none" => 1.0,
            "linear" => {
                let factor = md.get_f32(&key("rope.scaling.factor")).unwrap_or(1.0);
                if factor > 0.0 { 1.0 / factor } else { 1.0 }
            }
            other => {
                return Err(Error::UnsupportedModel(format!("rope scaling {other:?} is not supported yet")));
            }
        };
        let rms_eps = md.get_f32(&key("attention.layer_norm_rms_epsilon")).unwrap_or(1e-5);
        Ok(Config {
            arch,
            n_embd,
            n_layer: req("block_count")?,
            n_head,
            n_head_kv,
            head_dim,
            head_dim_v,
            n_ff: req("feed_forward_length")?,
            n_vocab,
            n_ctx_train: md.get_usize(&key("context_length")).unwrap_or(2048),
            rms_eps,
            rope: RopeConfig {
                style: arch.rope_style(),
                n_rot,
                freq_base: md.get_f32(&key("rope.freq_base")).unwrap_or(10000.0),
                freq_scale,
            },
        })
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
}
