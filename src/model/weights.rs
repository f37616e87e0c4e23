//! Weights by GGUF tensor name, handed to the backend with their shapes checked.

use super::config::Config;
use crate::backend::Backend;
use crate::gguf::{Gguf, TensorInfo};
use crate::quant::{GgmlType, dequantize_row};
use crate::{Error, Result};
use std::collections::HashMap;

pub struct LayerWeights<W> {
    pub attn_norm: W,
    pub qkv: Qkv<W>,
    pub wo: W,
    /// Per-head q and k RMS norms (Qwen3, Gemma 3).
    pub qk_norm: Option<[W; 2]>,
    /// Norms of the attention output before its residual add (Gemma's `post_attention_norm`).
    pub post_attn_norm: Option<W>,
    pub ffn_norm: W,
    pub gate_up: GateUp<W>,
    pub w_down: W,
    /// Norm of the feed-forward output before its residual add (Gemma's `post_ffw_norm`).
    pub post_ffn_norm: Option<W>,
}

/// The q, k and v projections (and Qwen2's biases): one weight, their rows concatenated, when
/// the three share a type and the result fits the backend's `max_fused_bytes`, so one fused
/// op computes them; else three. Files that store them fused (Phi-3's `attn_qkv`) load as
/// `Fused` as they are.
pub enum Qkv<W> {
    Fused { w: W, bias: Option<W> },
    Separate { q: W, k: W, v: W, bias: Option<[W; 3]> },
}

/// The gate and up projections of the feed-forward block, fused the same way (Phi-3 stores
/// them fused, gate rows then up rows, as `ffn_up` of twice the width).
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
    /// Weights already on the backend by name (streamed there as the file arrived, following
    /// [`upload_plan`]); the rest come from `source`.
    pub prebuilt: HashMap<String, B::Weight>,
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
        if let Some(w) = self.prebuilt.remove(name) {
            self.uploaded += 1;
            (self.on_upload)(self.uploaded, self.gguf.tensors.len());
            return Ok(Some(w));
        }
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
        if let Some(w) = self.prebuilt.remove(fused_name) {
            self.uploaded += names.len();
            (self.on_upload)(self.uploaded, self.gguf.tensors.len());
            return Ok(Some(w));
        }
        let max = if self.fuse { self.backend.max_fused_bytes() } else { 0 };
        let Some((ty, parts)) = fusable(self.gguf, names, rows, cols, max) else { return Ok(None) };
        let total: usize = parts.iter().map(|&i| self.source.bytes(self.gguf, i).len()).sum();
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(total).map_err(|_| Error::OutOfMemory(format!("{fused_name}: {} MiB", total >> 20)))?;
        for &index in &parts {
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
        let FusedGroup { name: fused, parts: weights, rows: widths } = qkv_group(c, i);
        let biases = [name("attn_q.bias"), name("attn_k.bias"), name("attn_v.bias")];
        let has_bias = c.block.qkv_bias;
        if find(self.gguf, &fused).is_some() && find(self.gguf, &weights[0]).is_none() {
            let w = self.tensor(&fused, widths.iter().sum(), c.n_embd)?;
            let bias = match self.optional_vector(&name("attn_qkv.bias"), widths.iter().sum())? {
                Some(b) => Some(b),
                None if has_bias => {
                    return Err(Error::InvalidModel(format!("tensor {} is missing", name("attn_qkv.bias"))));
                }
                None => None,
            };
            return Ok(Qkv::Fused { w, bias });
        }
        if let Some(w) = self.concatenated(&fused, &weights, &widths, c.n_embd)? {
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
        let FusedGroup { name: fused, parts: names, rows } = gate_up_group(c, i);
        if stores_gate_up_fused(self.gguf, i) {
            return Ok(GateUp::Fused(self.tensor(&names[1], 2 * c.n_ff, c.n_embd)?));
        }
        if let Some(w) = self.concatenated(&fused, &names, &rows, c.n_embd)? {
            return Ok(GateUp::Fused(w));
        }
        Ok(GateUp::Separate {
            gate: self.tensor(&names[0], c.n_ff, c.n_embd)?,
            up: self.tensor(&names[1], c.n_ff, c.n_embd)?,
        })
    }

    /// An optional vector of `len` values as a weight, its shape checked.
    fn optional_vector(&mut self, name: &str, len: usize) -> Result<Option<B::Weight>> {
        self.optional(name, 1, len)
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

    /// The per-pair rope divisors, chosen as llama.cpp's `get_rope_factors`: `rope_freqs`
    /// (Llama 3.1) when the file has it, else LongRoPE's (Phi-3) long factors when the context
    /// `n_ctx` exceeds the original one, else its short factors. Each one present must hold
    /// one value per rotated pair.
    pub fn rope_factors(&mut self, c: &Config, n_ctx: usize) -> Result<Option<Vec<f32>>> {
        let want = c.ropes[0].n_rot / 2;
        let read = |this: &mut Self, name: &str| -> Result<Option<Vec<f32>>> {
            let v = this.host_vector(name)?;
            if let Some(v) = &v
                && v.len() != want
            {
                return Err(Error::InvalidModel(format!("tensor {name} has {} values, {want} expected", v.len())));
            }
            Ok(v)
        };
        let freqs = read(self, "rope_freqs.weight")?;
        let long = read(self, "rope_factors_long.weight")?;
        let short = read(self, "rope_factors_short.weight")?;
        Ok(freqs.or(if n_ctx > c.n_ctx_orig { long } else { short }))
    }

    pub fn load(&mut self, c: &Config) -> Result<Weights<B::Weight>> {
        let tok_embd = self.tensor("token_embd.weight", c.n_vocab, c.n_embd)?;
        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            let name = |s: &str| format!("blk.{i}.{s}");
            let qk_norm = match c.block.qk_norm {
                true => Some([
                    self.tensor(&name("attn_q_norm.weight"), 1, c.head_dim)?,
                    self.tensor(&name("attn_k_norm.weight"), 1, c.head_dim)?,
                ]),
                false => None,
            };
            let post_norm = |this: &mut Self, n: &str| match c.block.post_norms {
                true => this.tensor(&name(n), 1, c.n_embd).map(Some),
                false => Ok(None),
            };
            layers.push(LayerWeights {
                attn_norm: self.tensor(&name("attn_norm.weight"), 1, c.n_embd)?,
                qkv: self.qkv(c, i)?,
                wo: self.tensor(&name("attn_output.weight"), c.n_embd, c.n_head * c.head_dim_v)?,
                qk_norm,
                post_attn_norm: post_norm(self, "post_attention_norm.weight")?,
                ffn_norm: self.tensor(&name("ffn_norm.weight"), 1, c.n_embd)?,
                gate_up: self.gate_up(c, i)?,
                w_down: self.tensor(&name("ffn_down.weight"), c.n_embd, c.n_ff)?,
                post_ffn_norm: post_norm(self, "post_ffw_norm.weight")?,
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

/// Projections that read the same input, loaded as one weight of their rows concatenated when
/// [`fusable`]: the name of the fused weight, its parts (GGUF names) and their row counts.
pub struct FusedGroup {
    pub name: String,
    pub parts: Vec<String>,
    pub rows: Vec<usize>,
}

fn qkv_group(c: &Config, i: usize) -> FusedGroup {
    let name = |s: &str| format!("blk.{i}.{s}");
    FusedGroup {
        name: name("attn_qkv.weight"),
        parts: vec![name("attn_q.weight"), name("attn_k.weight"), name("attn_v.weight")],
        rows: vec![c.q_dim(), c.kv_dim(), c.v_dim()],
    }
}

/// Whether layer `i` stores gate and up as one `ffn_up` of twice the rows (Phi-3): there is
/// no `ffn_gate`.
fn stores_gate_up_fused(gguf: &Gguf, i: usize) -> bool {
    find(gguf, &format!("blk.{i}.ffn_gate.weight")).is_none() && find(gguf, &format!("blk.{i}.ffn_up.weight")).is_some()
}

fn gate_up_group(c: &Config, i: usize) -> FusedGroup {
    FusedGroup {
        name: format!("blk.{i}.ffn_gate_up.weight"),
        parts: vec![format!("blk.{i}.ffn_gate.weight"), format!("blk.{i}.ffn_up.weight")],
        rows: vec![c.n_ff, c.n_ff],
    }
}

/// The parts' tensor indices and common type when they exist with the expected shapes, share
/// a type and together fit `max_bytes`; otherwise they load separately (where a wrong shape is
/// reported).
fn fusable(
    gguf: &Gguf,
    names: &[String],
    rows: &[usize],
    cols: usize,
    max_bytes: usize,
) -> Option<(GgmlType, Vec<usize>)> {
    let mut parts = Vec::with_capacity(names.len());
    let mut total = 0u64;
    let mut ty = None;
    for (name, &r) in names.iter().zip(rows) {
        let (index, t) = find(gguf, name)?;
        if t.rows_cols() != (r, cols) || t.dims.len() > 2 || ty.is_some_and(|ty| ty != t.ty) {
            return None;
        }
        ty = Some(t.ty);
        total += t.n_bytes;
        parts.push(index);
    }
    (total <= max_bytes as u64).then_some((ty?, parts))
}

/// One weight to create on the backend as the file streams in.
pub struct PlannedWeight {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub bytes: u64,
}

/// Where each tensor's bytes go when a file is streamed straight to the backend: every matrix
/// into a weight (fused groups into one, each part at its byte offset), vectors (norms,
/// biases, rope factors) kept on the host. The same fusing decisions as [`Loader`].
pub struct UploadPlan {
    pub weights: Vec<PlannedWeight>,
    /// Per GGUF tensor: (index in `weights`, byte offset in it), or `None` to keep on the host.
    pub of_tensor: Vec<Option<(usize, u64)>>,
}

pub fn upload_plan(gguf: &Gguf, max_fused_bytes: usize, fuse: bool) -> Result<UploadPlan> {
    let c = Config::from_metadata(&gguf.metadata, vocab_size(gguf)?)?;
    let mut plan = UploadPlan { weights: Vec::new(), of_tensor: vec![None; gguf.tensors.len()] };
    if fuse {
        for i in 0..c.n_layer {
            for g in [qkv_group(&c, i), gate_up_group(&c, i)] {
                let Some((ty, parts)) = fusable(gguf, &g.parts, &g.rows, c.n_embd, max_fused_bytes) else { continue };
                let mut offset = 0;
                for &index in &parts {
                    plan.of_tensor[index] = Some((plan.weights.len(), offset));
                    offset += gguf.tensors[index].n_bytes;
                }
                let rows = g.rows.iter().sum();
                plan.weights.push(PlannedWeight { name: g.name, ty, rows, cols: c.n_embd, bytes: offset });
            }
        }
    }
    for (index, t) in gguf.tensors.iter().enumerate() {
        if t.dims.len() == 2 && plan.of_tensor[index].is_none() {
            let (rows, cols) = t.rows_cols();
            plan.of_tensor[index] = Some((plan.weights.len(), 0));
            plan.weights.push(PlannedWeight { name: t.name.clone(), ty: t.ty, rows, cols, bytes: t.n_bytes });
        }
    }
    Ok(plan)
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
