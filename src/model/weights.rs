//! Weights by GGUF tensor name, handed to the backend with their shapes checked.

use super::config::{Arch, Config};
use crate::backend::Backend;
use crate::gguf::{Gguf, TensorInfo};
use crate::quant::{GgmlType, dequantize_row};
use crate::{Error, Result};

pub struct LayerWeights<W> {
    pub attn_norm: W,
    pub wq: W,
    pub wk: W,
    pub wv: W,
    pub wo: W,
    /// Qwen2's q/k/v biases.
    pub bias: Option<[W; 3]>,
    /// Qwen3's per-head q and k RMS norms.
    pub qk_norm: Option<[W; 2]>,
    pub ffn_norm: W,
    pub w_gate: W,
    pub w_up: W,
    pub w_down: W,
}

pub struct Weights<W> {
    pub tok_embd: W,
    pub layers: Vec<LayerWeights<W>>,
    pub output_norm: W,
    /// `None` when the output head is tied to the embedding table.
    pub output: Option<W>,
}

/// Where tensor bytes come from: a whole file in memory, or one buffer per tensor (in the
/// order of `Gguf::tensors`) as a streamed load collects them.
#[derive(Clone, Copy)]
pub enum TensorSource<'a> {
    File(&'a [u8]),
    PerTensor(&'a [Vec<u8>]),
}

impl TensorSource<'_> {
    /// Bytes of tensor `index` of `gguf`.
    fn bytes(&self, gguf: &Gguf, index: usize) -> &[u8] {
        match self {
            TensorSource::File(file) => gguf.tensor_bytes(file, &gguf.tensors[index]),
            TensorSource::PerTensor(buffers) => &buffers[index],
        }
    }
}

fn find<'g>(gguf: &'g Gguf, name: &str) -> Option<(usize, &'g TensorInfo)> {
    gguf.tensors.iter().enumerate().find(|(_, t)| t.name == name)
}

/// Reads tensors out of a GGUF and uploads them, checking each shape; `on_upload(done, total)`
/// follows the progress.
pub struct Loader<'a, B: Backend> {
    pub gguf: &'a Gguf,
    pub source: TensorSource<'a>,
    pub backend: &'a mut B,
    pub uploaded: usize,
    pub on_upload: &'a mut dyn FnMut(usize, usize),
}

impl<B: Backend> Loader<'_, B> {
    fn tensor(&mut self, name: &str, rows: usize, cols: usize) -> Result<B::Weight> {
        self.optional(name, rows, cols)?.ok_or_else(|| Error::InvalidModel(format!("tensor {name} is missing")))
    }

    fn optional(&mut self, name: &str, rows: usize, cols: usize) -> Result<Option<B::Weight>> {
        let Some((index, t)) = find(self.gguf, name) else { return Ok(None) };
        let (r, c) = t.rows_cols();
        if (r, c) != (rows, cols) || t.dims.len() > 2 {
            return Err(Error::InvalidModel(format!(
                "tensor {name} has shape {:?}, expected [{cols}, {rows}]",
                t.dims
            )));
        }
        let bytes = self.source.bytes(self.gguf, index);
        let weight = self.backend.upload_weight(name, t.ty, rows, cols, bytes)?;
        self.uploaded += 1;
        (self.on_upload)(self.uploaded, self.gguf.tensors.len());
        Ok(Some(weight))
    }

    /// A 1-D tensor dequantized to f32 on the host (rope frequency factors).
    pub fn host_vector(&self, name: &str) -> Result<Option<Vec<f32>>> {
        let Some((index, t)) = find(self.gguf, name) else { return Ok(None) };
        let n = t.n_elements() as usize;
        let mut out = vec![0f32; n];
        dequantize_row(t.ty, self.source.bytes(self.gguf, index), &mut out)?;
        Ok(Some(out))
    }

    pub fn load(&mut self, c: &Config) -> Result<Weights<B::Weight>> {
        let tok_embd = self.tensor("token_embd.weight", c.n_vocab, c.n_embd)?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let name = |s: &str| format!("blk.{i}.{s}");
            let bias = match c.arch {
                Arch::Qwen2 => Some([
                    self.tensor(&name("attn_q.bias"), 1, c.q_dim())?,
                    self.tensor(&name("attn_k.bias"), 1, c.kv_dim())?,
                    self.tensor(&name("attn_v.bias"), 1, c.v_dim())?,
                ]),
                _ => None,
            };
            let qk_norm = match c.arch {
                Arch::Qwen3 => Some([
                    self.tensor(&name("attn_q_norm.weight"), 1, c.head_dim)?,
                    self.tensor(&name("attn_k_norm.weight"), 1, c.head_dim)?,
                ]),
                _ => None,
            };
            layers.push(LayerWeights {
                attn_norm: self.tensor(&name("attn_norm.weight"), 1, c.n_embd)?,
                wq: self.tensor(&name("attn_q.weight"), c.q_dim(), c.n_embd)?,
                wk: self.tensor(&name("attn_k.weight"), c.kv_dim(), c.n_embd)?,
                wv: self.tensor(&name("attn_v.weight"), c.v_dim(), c.n_embd)?,
                wo: self.tensor(&name("attn_output.weight"), c.n_embd, c.n_head * c.head_dim_v)?,
                bias,
                qk_norm,
                ffn_norm: self.tensor(&name("ffn_norm.weight"), 1, c.n_embd)?,
                w_gate: self.tensor(&name("ffn_gate.weight"), c.n_ff, c.n_embd)?,
                w_up: self.tensor(&name("ffn_up.weight"), c.n_ff, c.n_embd)?,
                w_down: self.tensor(&name("ffn_down.weight"), c.n_embd, c.n_ff)?,
            });
        }
        Ok(Weights {
            tok_embd,
            layers,
            output_norm: self.tensor("output_norm.weight", 1, c.n_embd)?,
            output: self.optional("output.weight", c.n_vocab, c.n_embd)?,
        })
    }
}

/// Number of vocabulary rows, from the embedding table.
pub fn vocab_size(gguf: &Gguf) -> Result<usize> {
    let t = gguf
        .tensor("token_embd.weight")
        .ok_or_else(|| Error::InvalidModel("tensor token_embd.weight is missing".into()))?;
    if t.dims.len() != 2 {
        return Err(Error::InvalidModel(format!("token_embd.weight has shape {:?}", t.dims)));
    }
    Ok(t.dims[1] as usize)
}

/// Parameter count and tensors per type, for `info`.
pub fn tensor_summary(gguf: &Gguf) -> (u64, std::collections::BTreeMap<GgmlType, usize>) {
    let mut by_type = std::collections::BTreeMap::new();
    let mut params = 0;
    for t in &gguf.tensors {
        params += t.n_elements();
        *by_type.entry(t.ty).or_insert(0) += 1;
    }
    (params, by_type)
}
