//! The decode/prefill ops other than matvec, each a [`GpuOp`] bound once to its buffers:
//! embedding lookup, RMS norm (per row and per head), residual add, bias add, SwiGLU, rope,
//! KV-cache store, causal attention and argmax (`shaders/<family>.wgsl`).
//!
//! Like [`super::MatvecOp`], `prepare_*` builds the pipeline, uniforms and bind groups once and
//! [`GpuOp::encode`] only records dispatches. What changes per step (the number of tokens and the
//! first position) lives in one small [`StepUniform`] that every op binds: a step writes it once
//! (`StepUniform::set`, one `write_buffer`) and encodes the ops with the same `n_tokens`.

use super::kernels::{ElementwiseOp, KernelFamily, KernelKey, NormOut};
use super::weights::{GpuBuffer, GpuWeight};
use super::{GpuContext, GpuError};
use crate::quant::GgmlType;

/// Invocations per workgroup of every op family but argmax.
const WG: usize = 64;
/// Largest head_dim / head_dim_v of `attention.wgsl` (4 output dims per invocation, 1 KiB of q).
pub const ATTENTION_MAX_HEAD_DIM: usize = 256;

/// `Step` of the op shaders: the tokens of this step and the position of the first.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad: [u32; 2],
}

/// The per-step uniform every op reads `n_tokens` and `pos0` from.
pub struct StepUniform {
    pub(crate) buffer: wgpu::Buffer,
}

impl StepUniform {
    /// Queues the step's token count and first position (takes effect at the next submit).
    pub fn set(&self, ctx: &GpuContext, n_tokens: usize, pos0: usize) -> Result<(), GpuError> {
        let n_tokens = u32::try_from(n_tokens).map_err(|_| GpuError::Invalid(format!("{n_tokens} tokens")))?;
        let pos0 = u32::try_from(pos0).map_err(|_| GpuError::Invalid(format!("position {pos0}")))?;
        ctx.queue.write_buffer(&self.buffer, 0, bytemuck::bytes_of(&Step { n_tokens, pos0, _pad: [0; 2] }));
        Ok(())
    }
}

/// How many workgroups a dispatch needs for `n_tokens`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Groups {
    /// ceil(n_tokens * per_token / per_group).
    PerToken {
        per_token: usize,
        per_group: usize,
    },
    Fixed(usize),
}

/// One prepared op: pipeline, bind groups (one per weight piece) and its uniform.
pub struct GpuOp {
    label: String,
    pipeline: wgpu::ComputePipeline,
    bind_groups: Vec<wgpu::BindGroup>,
    groups: Groups,
    /// Largest `n_tokens` the op was bound for; [`GpuOp::encode`] clamps to it.
    max_tokens: usize,
    max_dim: u32,
    /// The uniform and any buffer the op made for itself (rope's absent frequency factors).
    _own: Vec<wgpu::Buffer>,
}

/// One workgroup for each of `per_token` items of every token (a norm row, an attention head).
pub(crate) fn one_group_per(per_token: usize) -> Groups {
    Groups::PerToken { per_token, per_group: 1 }
}

impl GpuOp {
    /// Keeps a buffer the op made for itself alive as long as the op.
    pub(crate) fn keep(&mut self, b: wgpu::Buffer) {
        self._own.push(b);
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// Dispatches [`GpuOp::encode`] records.
    pub fn dispatches(&self) -> usize {
        self.bind_groups.len()
    }

    /// Records the op for a step of `n_tokens` tokens; the [`StepUniform`] it was prepared with
    /// must hold the same count when the work is submitted.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: usize) {
        let n_tokens = n_tokens.min(self.max_tokens);
        let groups = match self.groups {
            Groups::PerToken { per_token, per_group } => (n_tokens * per_token).div_ceil(per_group),
            Groups::Fixed(n) => n,
        };
        if groups == 0 {
            return;
        }
        let (x, y) = super::matvec::grid(groups, self.max_dim);
        pass.set_pipeline(&self.pipeline);
        for bg in &self.bind_groups {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(x, y, 1);
        }
    }

    /// Records the op in its own compute pass of `encoder`.
    pub fn encode_pass(&self, encoder: &mut wgpu::CommandEncoder, n_tokens: usize) {
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&self.label), timestamp_writes: None });
        self.encode(&mut pass, n_tokens);
    }
}

fn u32_of(label: &str, v: usize) -> Result<u32, GpuError> {
    u32::try_from(v).map_err(|_| GpuError::Invalid(format!("{label}: {v} exceeds u32")))
}

fn check_len(label: &str, what: &str, buf: &GpuBuffer, need: usize) -> Result<(), GpuError> {
    if need > buf.len() {
        return Err(GpuError::Invalid(format!("{label}: {what} needs {need} values, the buffer has {}", buf.len())));
    }
    Ok(())
}

fn distinct(label: &str, a: &wgpu::Buffer, b: &wgpu::Buffer) -> Result<(), GpuError> {
    if a == b {
        return Err(GpuError::Invalid(format!("{label}: input and output must be different buffers")));
    }
    Ok(())
}

/// A small F32 weight (norm, bias) in one buffer, as bound by the ops.
fn small_f32<'a>(label: &str, w: &'a GpuWeight) -> Result<&'a wgpu::Buffer, GpuError> {
    if w.ty() != GgmlType::F32 || w.n_pieces() != 1 {
        return Err(GpuError::Invalid(format!(
            "{label}: {} must be one F32 buffer (is {} in {} pieces)",
            w.name(),
            w.ty(),
            w.n_pieces()
        )));
    }
    Ok(&w.pieces[0].buffer)
}

impl GpuContext {
    /// The per-step uniform ops read `n_tokens` and `pos0` from.
    pub fn alloc_step(&self, name: &str) -> Result<StepUniform, GpuError> {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size: std::mem::size_of::<Step>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.check()?;
        Ok(StepUniform { buffer })
    }

    /// Writes u32 values (token ids) into a buffer made by [`GpuContext::alloc_f32`].
    pub fn write_u32(&self, dst: &GpuBuffer, offset: usize, data: &[u32]) -> Result<(), GpuError> {
        if offset + data.len() > dst.len() {
            return Err(GpuError::Invalid(format!(
                "write of {} values at {offset} into a buffer of {}",
                data.len(),
                dst.len()
            )));
        }
        self.queue.write_buffer(&dst.buffer, (4 * offset) as u64, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Builds a [`GpuOp`] with one bind group per part: its uniform `params` at binding
    /// `params_binding` (parts share one uniform buffer at aligned offsets) and `buffers` bound whole.
    pub(crate) fn build_op<P: bytemuck::Pod>(
        &self,
        key: KernelKey,
        label: String,
        params_binding: u32,
        parts: &[(P, Vec<(u32, &wgpu::Buffer)>)],
        groups: Groups,
        max_tokens: usize,
    ) -> Result<GpuOp, GpuError> {
        let pipeline = self.pipeline(key)?;
        let layout = pipeline.get_bind_group_layout(0);
        let size = std::mem::size_of::<P>();
        let stride = size.next_multiple_of(self.limits().min_uniform_buffer_offset_alignment.max(16) as usize);
        let pbuf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&label),
            size: (stride * parts.len().max(1)) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut bind_groups = Vec::with_capacity(parts.len());
        for (i, (params, buffers)) in parts.iter().enumerate() {
            self.queue.write_buffer(&pbuf, (i * stride) as u64, bytemuck::bytes_of(params));
            let mut entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
                .iter()
                .map(|&(binding, b)| wgpu::BindGroupEntry { binding, resource: b.as_entire_binding() })
                .collect();
            entries.push(wgpu::BindGroupEntry {
                binding: params_binding,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &pbuf,
                    offset: (i * stride) as u64,
                    size: std::num::NonZeroU64::new(size as u64),
                }),
            });
            bind_groups.push(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&label),
                layout: &layout,
                entries: &entries,
            }));
        }
        self.check()?;
        Ok(GpuOp {
            label,
            pipeline,
            bind_groups,
            groups,
            max_tokens,
            max_dim: self.limits().max_compute_workgroups_per_dimension,
            _own: vec![pbuf],
        })
    }

    /// `out[out_offset + t * cols ..][..cols]` = row `ids[t]` of `table` (any weight type) times
    /// `scale`, for t < n_tokens <= `max_tokens`; ids are u32 values written with
    /// [`GpuContext::write_u32`]; an id past the table gives a zero row. One dispatch per piece.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_embed(
        &self,
        table: &GpuWeight,
        ids: &GpuBuffer,
        scale: f32,
        out: &GpuBuffer,
        out_offset: usize,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::embed(table.ty());
        let label = format!("{}:{}", key.label(), table.name());
        check_len(&label, "ids", ids, max_tokens)?;
        check_len(&label, "out", out, out_offset + max_tokens * table.cols())?;
        distinct(&label, &ids.buffer, &out.buffer)?;
        let mut parts = Vec::with_capacity(table.n_pieces());
        for (i, piece) in table.pieces.iter().enumerate() {
            let params = EmbedParams {
                n_rows: u32_of(&label, piece.rows)?,
                row0: u32_of(&label, piece.row0)?,
                n_cols: u32_of(&label, table.cols())?,
                row_bytes: u32_of(&label, table.row_bytes())?,
                out_offset: u32_of(&label, out_offset)?,
                total_rows: u32_of(&label, table.rows())?,
                first_piece: (i == 0) as u32,
                scale,
            };
            let buffers = vec![(0, &piece.buffer), (1, &ids.buffer), (2, &out.buffer), (4, &step.buffer)];
            parts.push((params, buffers));
        }
        let groups = Groups::PerToken { per_token: table.cols(), per_group: WG };
        self.build_op(key, label, 3, &parts, groups, max_tokens)
    }

    /// `out[out_offset + t * d ..]` = rms_norm(`x[x_offset + t * d ..]`) * w for t < n_tokens,
    /// d = the length of `w` (one F32 buffer).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_rms_norm(
        &self,
        x: &GpuBuffer,
        x_offset: usize,
        w: &GpuWeight,
        out: &GpuBuffer,
        out_offset: usize,
        max_tokens: usize,
        eps: f32,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        self.norm_op(NormOut::Store, x, x_offset, w, out, out_offset, max_tokens, eps, step)
    }

    /// `out[out_offset + t * d ..] += rms_norm(x[x_offset + t * d ..]) * w`: Gemma's post-norm
    /// and residual add in one dispatch.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_rms_norm_add(
        &self,
        x: &GpuBuffer,
        x_offset: usize,
        w: &GpuWeight,
        out: &GpuBuffer,
        out_offset: usize,
        max_tokens: usize,
        eps: f32,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        self.norm_op(NormOut::Accumulate, x, x_offset, w, out, out_offset, max_tokens, eps, step)
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_op(
        &self,
        variant: NormOut,
        x: &GpuBuffer,
        x_offset: usize,
        w: &GpuWeight,
        out: &GpuBuffer,
        out_offset: usize,
        max_tokens: usize,
        eps: f32,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::RmsNorm(variant));
        let label = format!("{}:{}", key.label(), w.name());
        let wb = small_f32(&label, w)?;
        let d = w.rows() * w.cols();
        check_len(&label, "x", x, x_offset + max_tokens * d)?;
        check_len(&label, "out", out, out_offset + max_tokens * d)?;
        distinct(&label, &x.buffer, &out.buffer)?;
        let params = NormParams::new(&label, d, 1, x_offset, out_offset, eps)?;
        let buffers = vec![(0, &out.buffer), (1, wb), (3, &step.buffer), (4, &x.buffer)];
        self.build_op(key, label, 2, &[(params, buffers)], Groups::PerToken { per_token: 1, per_group: 1 }, max_tokens)
    }

    /// The same norm in place over each `w.len()`-wide head of `x[offset + t * n_heads * d ..]`
    /// (Qwen3's q/k norm), for t < n_tokens.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_head_norm(
        &self,
        x: &GpuBuffer,
        offset: usize,
        w: &GpuWeight,
        n_heads: usize,
        max_tokens: usize,
        eps: f32,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::RmsNorm(NormOut::InPlace));
        let label = format!("{}:{}", key.label(), w.name());
        let wb = small_f32(&label, w)?;
        let d = w.rows() * w.cols();
        check_len(&label, "x", x, offset + max_tokens * n_heads * d)?;
        let params = NormParams::new(&label, d, n_heads, offset, offset, eps)?;
        let buffers = vec![(0, &x.buffer), (1, wb), (3, &step.buffer)];
        let groups = Groups::PerToken { per_token: n_heads, per_group: 1 };
        self.build_op(key, label, 2, &[(params, buffers)], groups, max_tokens)
    }

    /// `x[x_offset + i] += y[y_offset + i]` for i < n_tokens * width (the residual).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_add(
        &self,
        x: &GpuBuffer,
        x_offset: usize,
        y: &GpuBuffer,
        y_offset: usize,
        width: usize,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        self.elementwise(ElementwiseOp::Add, x, x_offset, &y.buffer, y_offset, width, max_tokens, 0.0, step)
    }

    /// `x[x_offset + t * d + c] += b[c]` for t < n_tokens, d = the length of `b` (one F32 buffer).
    pub fn prepare_add_bias(
        &self,
        x: &GpuBuffer,
        x_offset: usize,
        b: &GpuWeight,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let label = format!("add_bias:{}", b.name());
        let bb = small_f32(&label, b)?;
        self.elementwise(ElementwiseOp::AddBias, x, x_offset, bb, 0, b.rows() * b.cols(), max_tokens, 0.0, step)
    }

    /// `gate[g_offset + i] = silu(gate[..]) * up[up_offset + i]` for i < n_tokens * width.
    /// `gate[g_offset + i] = act(gate[..]) * up[up_offset + i]` for i < n_tokens * width
    /// (`Activation::Silu`: SwiGLU; `GeluTanh`: Gemma's GeGLU).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_glu(
        &self,
        act: crate::backend::Activation,
        gate: &GpuBuffer,
        g_offset: usize,
        up: &GpuBuffer,
        up_offset: usize,
        width: usize,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let op = match act {
            crate::backend::Activation::Silu => ElementwiseOp::Swiglu,
            crate::backend::Activation::GeluTanh => ElementwiseOp::Geglu,
        };
        self.elementwise(op, gate, g_offset, &up.buffer, up_offset, width, max_tokens, 0.0, step)
    }

    /// `gate[g_offset + i] = silu(gate[..]) * up[up_offset + i]` for i < n_tokens * width.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_swiglu(
        &self,
        gate: &GpuBuffer,
        g_offset: usize,
        up: &GpuBuffer,
        up_offset: usize,
        width: usize,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        self.prepare_glu(crate::backend::Activation::Silu, gate, g_offset, up, up_offset, width, max_tokens, step)
    }

    /// `x[x_offset + i] = cap * tanh(x[..] / cap)` for i < n_tokens * width (soft-capped logits).
    pub fn prepare_softcap(
        &self,
        x: &GpuBuffer,
        x_offset: usize,
        width: usize,
        cap: f32,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        if !(cap.is_finite() && cap > 0.0) {
            return Err(GpuError::Invalid(format!("softcap: cap {cap} must be a positive number")));
        }
        // The op reads no y; its binding still needs a buffer: one value never read.
        let dummy = self.alloc_f32("softcap:unused", 1)?;
        let mut op =
            self.elementwise(ElementwiseOp::Softcap, x, x_offset, &dummy.buffer, 0, width, max_tokens, cap, step)?;
        op.keep(dummy.buffer);
        Ok(op)
    }

    #[allow(clippy::too_many_arguments)]
    fn elementwise(
        &self,
        op: ElementwiseOp,
        x: &GpuBuffer,
        x_offset: usize,
        y: &wgpu::Buffer,
        y_offset: usize,
        width: usize,
        max_tokens: usize,
        param: f32,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::Elementwise(op));
        let label = key.label();
        check_len(&label, "x", x, x_offset + max_tokens * width)?;
        let reads_y_per_token = !matches!(op, ElementwiseOp::AddBias | ElementwiseOp::Softcap);
        if reads_y_per_token && (y.size() as usize) < 4 * (y_offset + max_tokens * width) {
            return Err(GpuError::Invalid(format!("{label}: y holds {} bytes, too few", y.size())));
        }
        distinct(&label, &x.buffer, y)?;
        let params = ElementwiseParams {
            width: u32_of(&label, width)?,
            x_offset: u32_of(&label, x_offset)?,
            y_offset: u32_of(&label, y_offset)?,
            param,
        };
        let buffers = vec![(0, &x.buffer), (1, y), (3, &step.buffer)];
        let groups = Groups::PerToken { per_token: width, per_group: WG };
        self.build_op(key, label, 2, &[(params, buffers)], groups, max_tokens)
    }

    /// `out[0]` (a u32) = the index of the largest of `x[offset..offset + len]`, ties to the
    /// lowest index, NaNs skipped (as `sampler::argmax`). Read it back as 4 bytes.
    pub fn prepare_argmax(&self, x: &GpuBuffer, offset: usize, len: usize, out: &GpuBuffer) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::Argmax);
        let label = key.label();
        check_len(&label, "x", x, offset + len)?;
        check_len(&label, "out", out, 1)?;
        distinct(&label, &x.buffer, &out.buffer)?;
        let params = ArgmaxParams { offset: u32_of(&label, offset)?, len: u32_of(&label, len)?, _pad: [0; 2] };
        let buffers = vec![(0, &x.buffer), (1, &out.buffer)];
        self.build_op(key, label, 2, &[(params, buffers)], Groups::Fixed(1), 1)
    }

    /// The `k` most likely of `x[offset .. offset + len]` as (index, logit bits) pairs in
    /// `out[..2 * min(k, len)]` (`shaders/top_k.wgsl`): what sampling reads back. A row longer
    /// than two chunks ([`top_k_chunk`]) is selected in two dispatches: the k best of each
    /// chunk in parallel workgroups, then the k best of those.
    pub fn prepare_top_k(
        &self,
        x: &GpuBuffer,
        offset: usize,
        len: usize,
        k: usize,
        out: &GpuBuffer,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::TopK);
        let label = key.label();
        check_len(&label, "x", x, offset + len)?;
        check_len(&label, "out", out, 2 * k)?;
        distinct(&label, &x.buffer, &out.buffer)?;
        let chunk = top_k_chunk(k);
        let chunks = len.div_ceil(chunk);
        let one_pass = chunks <= 2;
        let params = |len: usize, chunk: usize, from_cand: bool| -> Result<TopKParams, GpuError> {
            Ok(TopKParams {
                offset: u32_of(&label, if from_cand { 0 } else { offset })?,
                len: u32_of(&label, len)?,
                k: u32_of(&label, k)?,
                chunk: u32_of(&label, chunk)?,
                from_cand: from_cand as u32,
                _pad: [0; 3],
            })
        };
        // Inputs a dispatch does not read still need bound buffers: one value never read.
        let dummy = self.alloc_f32("top_k:unused", 1)?;
        if one_pass {
            let buffers = vec![(0, &x.buffer), (1, &out.buffer), (3, &dummy.buffer)];
            let mut op =
                self.build_op(key, label.clone(), 2, &[(params(len, len, false)?, buffers)], Groups::Fixed(1), 1)?;
            op.keep(dummy.buffer);
            return Ok(op);
        }
        let cand = self.alloc_f32("top_k:candidates", 2 * k * chunks)?;
        let parts = [
            (params(len, chunk, false)?, vec![(0, &x.buffer), (1, &cand.buffer), (3, &dummy.buffer)]),
            (params(k * chunks, 0, true)?, vec![(0, &dummy.buffer), (1, &out.buffer), (3, &cand.buffer)]),
        ];
        let mut op = self.build_op(key, label, 2, &parts, Groups::Fixed(chunks), 1)?;
        op.keep(dummy.buffer);
        op.keep(cand.buffer);
        Ok(op)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct EmbedParams {
    n_rows: u32,
    row0: u32,
    n_cols: u32,
    row_bytes: u32,
    out_offset: u32,
    total_rows: u32,
    first_piece: u32,
    scale: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NormParams {
    width: u32,
    rows_per_token: u32,
    x_offset: u32,
    out_offset: u32,
    eps: f32,
    _pad: [u32; 3],
}

impl NormParams {
    fn new(label: &str, width: usize, rows: usize, x_off: usize, out_off: usize, eps: f32) -> Result<Self, GpuError> {
        if width == 0 {
            return Err(GpuError::Invalid(format!("{label}: empty norm weight")));
        }
        Ok(NormParams {
            width: u32_of(label, width)?,
            rows_per_token: u32_of(label, rows)?,
            x_offset: u32_of(label, x_off)?,
            out_offset: u32_of(label, out_off)?,
            eps,
            _pad: [0; 3],
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ElementwiseParams {
    width: u32,
    x_offset: u32,
    y_offset: u32,
    param: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct ArgmaxParams {
    offset: u32,
    len: u32,
    _pad: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TopKParams {
    offset: u32,
    len: u32,
    k: u32,
    chunk: u32,
    from_cand: u32,
    _pad: [u32; 3],
}

/// Values per workgroup of the top-k kernel's first pass for `k` candidates: at least 4096 (a
/// workgroup of 256 then walks 16 values per pass) and 16 k, so the second pass has at most a
/// sixteenth of the row to select from. A 262 144-token row with k = 64 takes 64 workgroups.
pub fn top_k_chunk(k: usize) -> usize {
    (16 * k).max(4096)
}
