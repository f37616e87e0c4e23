//! Weights by GGUF tensor name, handed to the backend with their shapes checked.

use super::config::{Arch, Config};
use crate::backend::Backend;
use crate::gguf::{Gguf, TensorInfo};
use crate::quant::{GgmlType, dequantize_row};
use crate::{Error, Result};

pub struct LayerWeights<W> {
    pub attn_norm: W,
    pub qkv: Qkv<W>,
    pub wo: W,
    /// Qwen3's per-head q and k RMS norms.
    pub qk_norm: Option<[W; 2]>,
    pub ffn_norm: W,
    pub gate_up: GateUp<W>,
    pub w_down: W,
}

/// The q, k and v projections (and Qwen2's biases): one weight, their rows concatenated, when
/// the three share a type and the result fits the backend's `max_fused_bytes`, so one fused
/// op computes them; else three.
pub enum Qkv<W> {
    Fused { w: W, bias: Option<W> },
    Separate { q: W, k: W, v: W, bias: Option<[W; 3]> },
}

/// The gate and up projections of the feed-forward block, fused the same way.
pub enum GateUp<W> {
    Fused(W),
    Separate { gate: W, up: W },
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
    /// Concatenate projections for fused ops where possible (see [`Qkv`]).
    pub fuse: bool,
}

impl<B: Backend> Loader<'_, B> {
    fn tensor(&mut self, name: &str, rows: usize, cols: usize) -> Result<B::Weight> {
        self.optional(name, rows, cols)?.ok_or_else(|| Error::InvalidModel(format!("tensor {name} is missing")))
    }

    /// Checks tensor `name` exists with `rows` rows of `cols` values.
    fn check_shape(&self, name: &str, rows: usize, cols: usize) -> Result<()> {
        let (_, t) = find(self.gguf, name).ok_or_else(|| Error::InvalidModel(format!("tensor {name} is missing")))?;
        if t.rows_cols() != (rows, cols) || t.dims.len() > 2 {
            return Err(Error::InvalidModel(format!(
                "tensor {name} has shape {:?}, expected [{cols}, {rows}]",
                t.dims
            )));
        }
        Ok(())
    }

    fn optional(&mut self, name: &str, rows: usize, cols: usize) -> Result<Option<B::Weight>> {
        let Some((index, t)) = find(self.gguf, name) else { return Ok(None) };
        self.check_shape(name, rows, cols)?;
        let bytes = self.source.bytes(self.gguf, index);
        let weight = self.backend.upload_weight(name, t.ty, rows, cols, bytes)?;
        self.uploaded += 1;
        (self.on_upload)(self.uploaded, self.gguf.tensors.len());
        Ok(Some(weight))
    }

    /// Tensors `names` (each `[cols]` x rows[i]) as one weight of their rows concatenated, or
    /// `None` when they differ in type or the result would exceed the backend's fused limit.
    fn concatenated(
        &mut self,
        fused_name: &str,
        names: &[String],
        rows: &[usize],
        cols: usize,
    ) -> Result<Option<B::Weight>> {
        if !self.fuse {
            return Ok(None);
        }
        let mut parts = Vec::with_capacity(names.len());
        for (name, &r) in names.iter().zip(rows) {
            let Some((index, t)) = find(self.gguf, name) else { return Ok(None) };
            if t.rows_cols() != (r, cols) || t.dims.len() > 2 {
                return Ok(None); // `tensor` reports the shape error when loaded separately
            }
            parts.push((index, t.ty));
        }
        let ty = parts[0].1;
        let total: usize = parts.iter().map(|&(i, _)| self.source.bytes(self.gguf, i).len()).sum();
        if parts.iter().any(|&(_, t)| t != ty) || total > self.backend.max_fused_bytes() {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(total).map_err(|_| Error::OutOfMemory(format!("{fused_name}: {} MiB", total >> 20)))?;
        for &(index, _) in &parts {
            bytes.extend_from_slice(self.source.bytes(self.gguf, index));
        }
        let weight = self.backend.upload_weight(fused_name, ty, rows.iter().sum(), cols, &bytes)?;
        self.uploaded += parts.len();
        (self.on_upload)(self.uploaded, self.gguf.tensors.len());
        Ok(Some(weight))
    }

    /// Biases `names` dequantized and concatenated into one F32 vector weight.
    fn concatenated_bias(&mut self, fused_name: &str, names: &[String]) -> Result<B::Weight> {
        let mut values = Vec::new();
        for name in names {
            let v = self.host_vector(name)?.ok_or_else(|| Error::InvalidModel(format!("tensor {name} is missing")))?;
            values.extend(v);
        }
        self.backend.upload_weight(fused_name, GgmlType::F32, 1, values.len(), bytemuck::cast_slice(&values))
    }

    fn qkv(&mut self, c: &Config, i: usize) -> Result<Qkv<B::Weight>> {
        let name = |s: &str| format!("blk.{i}.{s}");
        let weights = [name("attn_q.weight"), name("attn_k.weight"), name("attn_v.weight")];
        let widths = [c.q_dim(), c.kv_dim(), c.v_dim()];
        let biases = [name("attn_q.bias"), name("attn_k.bias"), name("attn_v.bias")];
        let has_bias = c.arch == Arch::Qwen2;
        if let Some(w) = self.concatenated(&name("attn_qkv.weight"), &weights, &widths, c.n_embd)? {
            for (b, &width) in biases.iter().zip(&widths).filter(|_| has_bias) {
                self.check_shape(b, 1, width)?;
            }
            let bias = if has_bias { Some(self.concatenated_bias(&name("attn_qkv.bias"), &biases)?) } else { None };
            return Ok(Qkv::Fused { w, bias });
        }
        let bias = match has_bias {
            true => Some([
                self.tensor(&biases[0], 1, widths[0])?,
                self.tensor(&biases[1], 1, widths[1])?,
                self.tensor(&biases[2], 1, widths[2])?,
            ]),
            false => None,
        };
        Ok(Qkv::Separate {
            q: self.tensor(&weights[0], widths[0], c.n_embd)?,
            k: self.tensor(&weights[1], widths[1], c.n_embd)?,
            v: self.tensor(&weights[2], widths[2], c.n_embd)?,
            bias,
        })
    }

    fn gate_up(&mut self, c: &Config, i: usize) -> Result<GateUp<B::Weight>> {
        let names = [format!("blk.{i}.ffn_gate.weight"), format!("blk.{i}.ffn_up.weight")];
        if let Some(w) =
            self.concatenated(&format!("blk.{i}.ffn_gate_up.weight"), &names, &[c.n_ff, c.n_ff], c.n_embd)?
        {
            return Ok(GateUp::Fused(w));
        }
        Ok(GateUp::Separate {
            gate: self.tensor(&names[0], c.n_ff, c.n_embd)?,
            up: self.tensor(&names[1], c.n_ff, c.n_embd)?,
        })
    }

    /// A 1-D tensor dequantized to f32 on the host (rope frequency factors, fused biases);
    /// counted as loaded.
    pub fn host_vector(&mut self, name: &str) -> Result<Option<Vec<f32>>> {
        let Some((index, t)) = find(self.gguf, name) else { return Ok(None) };
        let n = t.n_elements() as usize;
        let mut out = vec![0f32; n];
        dequantize_row(t.ty, self.source.bytes(self.gguf, index), &mut out)?;
        self.uploaded += 1;
        (self.on_upload)(self.uploaded, self.gguf.tensors.len());
        Ok(Some(out))
    }

    pub fn load(&mut self, c: &Config) -> Result<Weights<B::Weight>> {
        let tok_embd = self.tensor("token_embd.weight", c.n_vocab, c.n_embd)?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let name = |s: &str| format!("blk.{i}.{s}");
            let qk_norm = match c.arch {
                Arch::Qwen3 => Some([
                    self.tensor(&name("attn_q_norm.weight"), 1, c.head_dim)?,
                    self.tensor(&name("attn_k_norm.weight"), 1, c.head_dim)?,
                ]),
                _ => None,
            };
            layers.push(LayerWeights {
                attn_norm: self.tensor(&name("attn_norm.weight"), 1, c.n_embd)?,
                qkv: self.qkv(c, i)?,
                wo: self.tensor(&name("attn_output.weight"), c.n_embd, c.n_head * c.head_dim_v)?,
                qk_norm,
                ffn_norm: self.tensor(&name("ffn_norm.weight"), 1, c.n_embd)?,
                gate_up: self.gate_up(c, i)?,
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
