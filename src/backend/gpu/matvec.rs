//! The decode matrix-vector product: `out[out_offset + r] = Σ_c W[r][c] · x[x_offset + c]`,
//! f32 activations in, f32 out, weights dequantized in the shader (`shaders/matvec.wgsl`).

use super::kernels::KernelKey;
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

/// `matvec.wgsl`'s `Params`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n_rows: u32,
    n_cols: u32,
    row_bytes: u32,
    x_offset: u32,
    out_offset: u32,
    accumulate: u32,
    _pad: [u32; 2],
}

struct Part {
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
    _params: wgpu::Buffer,
}

/// One matrix-vector product bound to its weight, input and output buffers: pipeline, bind
/// groups and uniforms are made once by [`GpuContext::prepare_matvec`]; [`MatvecOp::encode`]
/// only records dispatches (one per weight piece).
pub struct MatvecOp {
    label: String,
    pipeline: wgpu::ComputePipeline,
    parts: Vec<Part>,
}

impl MatvecOp {
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Dispatches [`MatvecOp::encode`] records.
    pub fn dispatches(&self) -> usize {
        self.parts.len()
    }

    pub fn encode(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        for p in &self.parts {
            pass.set_bind_group(0, &p.bind_group, &[]);
            pass.dispatch_workgroups(p.groups.0, p.groups.1, 1);
        }
    }

    /// Records this product in its own compute pass of `encoder`.
    pub fn encode_pass(&self, encoder: &mut wgpu::CommandEncoder) {
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(&self.label), timestamp_writes: None });
        self.encode(&mut pass);
    }
}

/// Workgroup grid for `groups` workgroups under the per-dimension limit.
pub(crate) fn grid(groups: usize, max_dim: u32) -> (u32, u32) {
    let max_dim = max_dim.max(1) as usize;
    let x = groups.clamp(1, max_dim);
    (x as u32, groups.div_ceil(x).max(1) as u32)
}

impl GpuContext {
    /// Binds `w` · `x[x_offset..x_offset + w.cols()]` → `out[out_offset..out_offset + w.rows()]`.
    /// `x_offset` must be a multiple of 4 (the kernel reads activations as `vec4<f32>`).
    pub fn prepare_matvec(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        x_offset: usize,
        out: &GpuBuffer,
        out_offset: usize,
    ) -> Result<MatvecOp, GpuError> {
        self.matvec_op(w, x, x_offset, out, out_offset, false)
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
        self.matvec_op(w, x, x_offset, out, out_offset, true)
    }

    fn matvec_op(
        &self,
        w: &GpuWeight,
        x: &GpuBuffer,
        x_offset: usize,
        out: &GpuBuffer,
        out_offset: usize,
        accumulate: bool,
    ) -> Result<MatvecOp, GpuError> {
        let key = KernelKey::matvec(w.ty(), self.matvec_variant());
        let label = format!("{}:{}", key.label(), w.name());
        if x_offset + w.cols() > x.len() || out_offset + w.rows() > out.len() {
            return Err(GpuError::Invalid(format!(
                "{label}: {}x{} weight needs x[{x_offset}..{}] of {} and out[{out_offset}..{}] of {}",
                w.rows(),
                w.cols(),
                x_offset + w.cols(),
                x.len(),
                out_offset + w.rows(),
                out.len()
            )));
        }
        if !x_offset.is_multiple_of(4) {
            return Err(GpuError::Invalid(format!(
                "{label}: x_offset {x_offset} is not a multiple of 4 (activations are read as vec4)"
            )));
        }
        if x.buffer == out.buffer {
            return Err(GpuError::Invalid(format!("{label}: input and output must be different buffers")));
        }
        let too_big = |v: usize| u32::try_from(v).map_err(|_| GpuError::Invalid(format!("{label}: {v} exceeds u32")));
        let pipeline = self.pipeline(key)?;
        let layout = pipeline.get_bind_group_layout(0);
        let max_dim = self.limits().max_compute_workgroups_per_dimension;
        let mut parts = Vec::with_capacity(w.pieces.len());
        for piece in &w.pieces {
            let params = Params {
                n_rows: too_big(piece.rows)?,
                n_cols: too_big(w.cols())?,
                row_bytes: too_big(w.row_bytes())?,
                x_offset: too_big(x_offset)?,
                out_offset: too_big(out_offset + piece.row0)?,
                accumulate: accumulate as u32,
                _pad: [0; 2],
            };
            let pbuf = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&label),
                size: std::mem::size_of::<Params>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.queue.write_buffer(&pbuf, 0, bytemuck::bytes_of(&params));
            let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&label),
                layout: &layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: piece.buffer.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 1, resource: x.buffer.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 2, resource: out.buffer.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: pbuf.as_entire_binding() },
                ],
            });
            let rows_per_group = MATVEC_WORKGROUP_SIZE / key.variant.threads_per_row();
            let groups = grid(piece.rows.div_ceil(rows_per_group), max_dim);
            parts.push(Part { bind_group, groups, _params: pbuf });
        }
        self.check()?;
        Ok(MatvecOp { label, pipeline, parts })
    }
}
