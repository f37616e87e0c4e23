//! Matrix products on quantized weights, dequantized in the shader (`shaders/matvec.wgsl`): the
//! decode matrix-vector product and the prefill matrix-matrix product (a tile of tokens per
//! workgroup, each weight block read once per tile), with the output stage fused in
//! ([`MatmulOut`]: store, residual add, SwiGLU, q/k/v split with bias).

use super::kernels::{Epilogue, KernelKey};
use super::ops::StepUniform;
use super::weights::{GpuBuffer, GpuWeight};
use super::{GpuContext, GpuError};
use crate::quant::GgmlType;

/// Invocations per workgroup of `matvec.wgsl` (its `WG`).
pub const MATVEC_WORKGROUP_SIZE: usize = 64;

/// Weight types with a GPU matvec kernel: every type the CPU backend runs models in.
pub fn matvec_types() -> &'static [GgmlType] {
    use GgmlType::*;
    &[F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K]
}

/// Where [`GpuContext::prepare_matmul`] puts `W · x[t]` (all buffers from offset 0).
pub enum MatmulOut<'a> {
    /// out[t * w.rows() + r] = W[r] · x[t]
    Store(&'a GpuBuffer),
    /// out[t * w.rows() + r] += W[r] · x[t]   (residual add fused in)
    Accumulate(&'a GpuBuffer),
    /// w holds 2h rows, gate rows then up rows (GGUF ffn_gate and ffn_up concatenated):
    /// out[t * h + r] = silu(W[r] · x[t]) * (W[h + r] · x[t]),  r < h   (silu(a) = a / (1 + exp(-a)))
    SwiGlu(&'a GpuBuffer),
    /// As `SwiGlu` with gelu (Gemma; common.wgsl's gelu_f16_table) in place of silu.
    GeGlu(&'a GpuBuffer),
    /// w holds widths[0] + widths[1] + widths[2] rows (attn_q, attn_k, attn_v concatenated):
    /// row r of part i goes to outs[i][t * widths[i] + r], plus bias[row] when bias is given
    /// (bias: an F32 weight with rows*cols == total rows, i.e. the three biases concatenated).
    Split3 { outs: [&'a GpuBuffer; 3], widths: [usize; 3], bias: Option<&'a GpuWeight> },
}

impl MatmulOut<'_> {
    fn epilogue(&self) -> Epilogue {
        match self {
            MatmulOut::Store(_) => Epilogue::Store,
            MatmulOut::Accumulate(_) => Epilogue::Accumulate,
            MatmulOut::SwiGlu(_) => Epilogue::SwiGlu,
            MatmulOut::GeGlu(_) => Epilogue::GeGlu,
            MatmulOut::Split3 { .. } => Epilogue::Split3,
        }
    }
}

/// `matvec.wgsl`'s `Params`.
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    x_offset: u32,
    x_stride: u32,
    out_offset: u32,
    out_stride: u32,
    max_tokens: u32,
    width0: u32,
    width1: u32,
    has_bias: u32,
    _pad: u32,
}

/// One compiled kernel of an op with its bind groups, one per weight piece.
struct Kernel {
    pipeline: wgpu::ComputePipeline,
    bind_groups: Vec<wgpu::BindGroup>,
    /// Tokens per workgroup (the kernel's `TT`).
    tile: usize,
}

/// One matrix product bound to its weight, input and output buffers: pipelines, bind groups and
/// uniforms are made once by [`GpuContext::prepare_matmul`] (or `prepare_matvec*`);
/// [`MatvecOp::encode`] only records dispatches (one per weight piece). A one-token step runs
/// the decode kernel (`matvec_*`, one token per workgroup), a longer one the tiled prefill
/// kernel (`matmul_*`), built only when the op may see more than one token.
pub struct MatvecOp {
    label: String,
    decode: Kernel,
    tiled: Option<Kernel>,
    /// Workgroups over the rows of each piece, as (x, y).
    grids: Vec<(u32, u32)>,
    max_tokens: usize,
    /// The uniform and any buffer the op made for itself (a fixed one-token step, a dummy bias).
    _own: Vec<wgpu::Buffer>,
}

impl MatvecOp {
    /// `matmul_q4_k_swiglu:blk.0.ffn_gate_up`: the kernel variant (the prefill one when the op
    /// may see more than one token) and the weight.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Dispatches [`MatvecOp::encode`] records.
    pub fn dispatches(&self) -> usize {
        self.grids.len()
    }

    /// The most tokens the op was prepared for; [`MatvecOp::encode`] clamps to it.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Records the product for a step of `n_tokens` tokens; the [`StepUniform`] it was prepared
    /// with must hold the same count when the work is submitted.
    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: usize) {
        let n = n_tokens.min(self.max_tokens);
        if n == 0 {
            return;
        }
        let k = match &self.tiled {
            Some(k) if n > 1 => k,
            _ => &self.decode,
        };
        let z = n.div_ceil(k.tile) as u32;
        pass.set_pipeline(&k.pipeline);
        for (bg, &(x, y)) in k.bind_groups.iter().zip(&self.grids) {
            pass.set_bind_group(0, bg, &[]);
            pass.dispatch_workgroups(x, y, z);
        }
    }

    /// Records this product in its own compute pass of `encoder`.
    pub fn encode_pass(&self, encoder: &mut wgpu::CommandEncoder, n_tokens: usize) {
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&self.label), timestamp_writes: None });
        self.encode(&mut pass, n_tokens);
    }
}

/// Workgroup grid for `groups` workgroups under the per-dimension limit.
pub(crate) fn grid(groups: usize, max_dim: u32) -> (u32, u32) {
    let max_dim = max_dim.max(1) as usize;
    let x = groups.clamp(1, max_dim);
    (x as u32, groups.div_ceil(x).max(1) as u32)
}

/// The buffers of a product's epilogue with their bindings: those it writes, then Split3's bias.
struct Outputs {
    writes: Vec<(u32, wgpu::Buffer)>,
    bias: Option<wgpu::Buffer>,
    /// Output rows of the whole op (w.rows(), or half for SwiGLU).
    rows: usize,
}

impl GpuContext {
    /// Binds W · x[t] for t < n_tokens (read from `step` at run time), x = [n_tokens][w.cols()]
    /// from offset 0, into `out` (see [`MatmulOut`]). `max_tokens`: the most tokens the op will
    /// be encoded for (checked against buffer lengths). With more than one token, `w.cols()`
    /// must be a multiple of 4 (activations are read as vec4; true of every block type).
    pub fn prepare_matmul(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        out: MatmulOut<'_>,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<MatvecOp, GpuError> {
        self.product_op(w, x, 0, out, 0, max_tokens, &step.buffer, Vec::new())
    }

    /// Binds `w` · `x[x_offset..x_offset + w.cols()]` → `out[out_offset..out_offset + w.rows()]`,
    /// one vector with no step uniform (the op holds its own, fixed at one token): encode it
    /// with `n_tokens` 1. `x_offset` must be a multiple of 4 (the kernel reads vec4s).
    pub fn prepare_matvec(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        x_offset: usize,
        out: &GpuBuffer,
        out_offset: usize,
    ) -> Result<MatvecOp, GpuError> {
        self.single_vector(w, x, x_offset, MatmulOut::Store(out), out_offset)
    }

    /// [`GpuContext::prepare_matvec`] adding the product to `out` instead of overwriting it:
    /// the residual add fused into the output projection (`x += W_o · attn`, `x += W_down · h`).
    pub fn prepare_matvec_add(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        x_offset: usize,
        out: &GpuBuffer,
        out_offset: usize,
    ) -> Result<MatvecOp, GpuError> {
        self.single_vector(w, x, x_offset, MatmulOut::Accumulate(out), out_offset)
    }

    fn single_vector(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        x_offset: usize,
        out: MatmulOut<'_>,
        out_offset: usize,
    ) -> Result<MatvecOp, GpuError> {
        let step = self.alloc_step("matvec:one_token")?;
        step.set(self, 1, 0)?;
        let buffer = step.buffer.clone();
        self.product_op(w, x, x_offset, out, out_offset, 1, &buffer, vec![buffer.clone()])
    }

    #[allow(clippy::too_many_arguments)]
    fn product_op(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        x_offset: usize,
        out: MatmulOut<'_>,
        out_offset: usize,
        max_tokens: usize,
        step: &wgpu::Buffer,
        mut own: Vec<wgpu::Buffer>,
    ) -> Result<MatvecOp, GpuError> {
        let variant = self.matvec_variant();
        let epilogue = out.epilogue();
        let keys = [false, true].map(|tiled| KernelKey::product(w.ty(), variant, epilogue, tiled));
        let label = format!("{}:{}", keys[(max_tokens > 1) as usize].label(), w.name());
        let invalid = |m: String| GpuError::Invalid(format!("{label}: {m}"));
        let u32_of = |v: usize| u32::try_from(v).map_err(|_| invalid(format!("{v} exceeds u32")));
        let cols = w.cols();
        if max_tokens == 0 {
            return Err(invalid("max_tokens is 0".into()));
        }
        let need = max_tokens.saturating_mul(cols).saturating_add(x_offset);
        if need > x.len() {
            return Err(invalid(format!(
                "{max_tokens} tokens of {cols} values from x[{x_offset}] need {need} values, x has {}",
                x.len()
            )));
        }
        if !x_offset.is_multiple_of(4) {
            return Err(invalid(format!("x_offset {x_offset} is not a multiple of 4 (activations are read as vec4)")));
        }
        if max_tokens > 1 && !cols.is_multiple_of(4) {
            return Err(invalid(format!(
                "rows of {cols} values: more than one token needs a multiple of 4 (activations are read as vec4)"
            )));
        }
        let max_dim = self.limits().max_compute_workgroups_per_dimension;
        if max_tokens.div_ceil(variant.tile_tokens()) > max_dim as usize {
            return Err(invalid(format!("{max_tokens} tokens exceed the grid's {max_dim} tiles")));
        }
        let mut params = Params {
            n_cols: u32_of(cols)?,
            row_bytes: u32_of(w.row_bytes())?,
            x_offset: u32_of(x_offset)?,
            x_stride: u32_of(cols)?,
            max_tokens: u32_of(max_tokens)?,
            ..Default::default()
        };
        let outputs = self.outputs(w, &out, out_offset, max_tokens, &mut params, &invalid)?;
        for (_, b) in &outputs.writes {
            if b == &x.buffer {
                return Err(invalid("input and output must be different buffers".into()));
            }
        }
        params.out_stride = u32_of(outputs.rows)?;

        // One Params per piece, at aligned offsets of one uniform buffer.
        let size = std::mem::size_of::<Params>();
        let stride = size.next_multiple_of(self.limits().min_uniform_buffer_offset_alignment.max(16) as usize);
        let pbuf = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(&label),
            size: (stride * w.pieces.len()) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let rows_per_group = MATVEC_WORKGROUP_SIZE / variant.threads_per_row();
        let mut grids = Vec::with_capacity(w.pieces.len());
        for (i, piece) in w.pieces.iter().enumerate() {
            let mut p = params;
            if epilogue == Epilogue::Store || epilogue == Epilogue::Accumulate {
                p.n_rows = u32_of(piece.rows)?;
                p.out_offset = u32_of(out_offset + piece.row0)?;
            }
            self.queue.write_buffer(&pbuf, (i * stride) as u64, bytemuck::bytes_of(&p));
            grids.push(grid((p.n_rows as usize).div_ceil(rows_per_group), max_dim));
        }
        let kernel = |key: KernelKey| -> Result<Kernel, GpuError> {
            let pipeline = self.pipeline(key)?;
            let layout = pipeline.get_bind_group_layout(0);
            let bind_groups = w
                .pieces
                .iter()
                .enumerate()
                .map(|(i, piece)| {
                    let mut entries = vec![
                        wgpu::BindGroupEntry { binding: 0, resource: piece.buffer.as_entire_binding() },
                        wgpu::BindGroupEntry { binding: 1, resource: x.buffer.as_entire_binding() },
                        wgpu::BindGroupEntry {
                            binding: 3,
                            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                                buffer: &pbuf,
                                offset: (i * stride) as u64,
                                size: std::num::NonZeroU64::new(size as u64),
                            }),
                        },
                        wgpu::BindGroupEntry { binding: 4, resource: step.as_entire_binding() },
                    ];
                    entries.extend(outputs.writes.iter().map(|(binding, b)| wgpu::BindGroupEntry {
                        binding: *binding,
                        resource: b.as_entire_binding(),
                    }));
                    if let Some(b) = &outputs.bias {
                        entries.push(wgpu::BindGroupEntry { binding: 7, resource: b.as_entire_binding() });
                    }
                    self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(&label),
                        layout: &layout,
                        entries: &entries,
                    })
                })
                .collect();
            Ok(Kernel { pipeline, bind_groups, tile: key.tile_tokens() })
        };
        let decode = kernel(keys[0])?;
        let tiled = if max_tokens > 1 { Some(kernel(keys[1])?) } else { None };
        self.check()?;
        own.push(pbuf);
        own.extend(outputs.bias);
        Ok(MatvecOp { label, decode, tiled, grids, max_tokens, _own: own })
    }

    /// Checks the output buffers of `out` and fills the epilogue's fields of `params`.
    #[allow(clippy::too_many_arguments)]
    fn outputs(
        &self,
        w: &GpuWeight,
        out: &MatmulOut<'_>,
        out_offset: usize,
        max_tokens: usize,
        params: &mut Params,
        invalid: &dyn Fn(String) -> GpuError,
    ) -> Result<Outputs, GpuError> {
        let rows = w.rows();
        let check = |what: &str, b: &GpuBuffer, width: usize, offset: usize| {
            let need = max_tokens.saturating_mul(width).saturating_add(offset);
            if need > b.len() {
                return Err(invalid(format!("{what} needs {need} values for {max_tokens} tokens, it has {}", b.len())));
            }
            Ok(())
        };
        let one_piece = |what: &str| {
            if w.n_pieces() != 1 {
                return Err(invalid(format!(
                    "{what} needs the weight in one buffer, {} is split into {} (over the binding limit of {} \
                     bytes): prepare its parts as separate products",
                    w.name(),
                    w.n_pieces(),
                    self.binding_limit()
                )));
            }
            Ok(())
        };
        let as_u32 = |v: usize| u32::try_from(v).map_err(|_| invalid(format!("{v} exceeds u32")));
        Ok(match *out {
            MatmulOut::Store(o) | MatmulOut::Accumulate(o) => {
                check("out", o, rows, out_offset)?;
                Outputs { writes: vec![(2, o.buffer.clone())], bias: None, rows }
            }
            MatmulOut::SwiGlu(o) | MatmulOut::GeGlu(o) => {
                one_piece("a gated product")?;
                if !rows.is_multiple_of(2) {
                    return Err(invalid(format!("a gated product needs gate and up rows, {rows} rows is odd")));
                }
                check("out", o, rows / 2, out_offset)?;
                params.n_rows = as_u32(rows / 2)?;
                params.out_offset = as_u32(out_offset)?;
                Outputs { writes: vec![(2, o.buffer.clone())], bias: None, rows: rows / 2 }
            }
            MatmulOut::Split3 { outs, widths, bias } => {
                one_piece("Split3")?;
                if widths.iter().sum::<usize>() != rows {
                    return Err(invalid(format!("Split3 widths {widths:?} do not add up to the {rows} rows")));
                }
                for (i, (o, &width)) in outs.iter().zip(&widths).enumerate() {
                    check(&format!("outs[{i}]"), o, width, 0)?;
                    if outs[..i].iter().any(|p| p.buffer == o.buffer) {
                        return Err(invalid(format!("Split3 outs[{i}] is bound twice")));
                    }
                }
                let bias_buffer = match bias {
                    Some(b) => {
                        if b.ty() != GgmlType::F32 || b.n_pieces() != 1 || b.rows() * b.cols() != rows {
                            return Err(invalid(format!(
                                "bias {} must be one F32 buffer of {rows} values (is {} x {} {} in {} pieces)",
                                b.name(),
                                b.rows(),
                                b.cols(),
                                b.ty(),
                                b.n_pieces()
                            )));
                        }
                        b.pieces[0].buffer.clone()
                    }
                    // Without a bias the binding still needs a buffer: one value never read.
                    None => self.alloc_f32("matmul:no_bias", 1)?.buffer,
                };
                params.n_rows = as_u32(rows)?;
                params.width0 = as_u32(widths[0])?;
                params.width1 = as_u32(widths[1])?;
                params.has_bias = bias.is_some() as u32;
                let [o0, o1, o2] = outs.map(|o| o.buffer.clone());
                Outputs { writes: vec![(2, o0), (5, o1), (6, o2)], bias: Some(bias_buffer), rows }
            }
        })
    }
}
