//! Device buffers: f32 activations and weights in their GGUF block layout.

use super::{GpuContext, GpuError};
use crate::quant::GgmlType;

/// An f32 buffer on the device (activations, outputs).
pub struct GpuBuffer {
    pub(crate) buffer: wgpu::Buffer,
    len: usize,
}

impl GpuBuffer {
    /// Number of f32 values.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

/// One buffer of a weight tensor: rows `row0..row0 + rows`, their bytes from offset 0.
pub(crate) struct WeightPiece {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) row0: usize,
    pub(crate) rows: usize,
}

/// A weight tensor of `rows` rows of `cols` values, bytes exactly as the GGUF stores them,
/// in one buffer or, when larger than [`GpuContext::binding_limit`], several by whole rows.
/// Each buffer holds its rows' bytes padded to 4 and one more zero word (see
/// `shaders/quant/weights.wgsl`).
pub struct GpuWeight {
    name: String,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    pub(crate) pieces: Vec<WeightPiece>,
}

impl GpuWeight {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }
    /// How many buffers hold the tensor (more than one when it was split).
    pub fn n_pieces(&self) -> usize {
        self.pieces.len()
    }
    /// Total device bytes (GGUF bytes plus padding to 4 per piece).
    pub fn device_bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.buffer.size()).sum()
    }
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

impl GpuContext {
    /// An f32 buffer of `len` values, zeroed, usable as kernel input and output and as a copy
    /// source and destination. Its size is rounded up to 16 bytes so kernels can read it as
    /// `array<vec4<f32>>`.
    pub fn alloc_f32(&self, name: &str, len: usize) -> Result<GpuBuffer, GpuError> {
        let size = (4 * len.max(1)).div_ceil(16) as u64 * 16;
        if size > self.limits().max_buffer_size || size > self.limits().max_storage_buffer_binding_size {
            return Err(GpuError::OutOfMemory(format!("{name}: {size} bytes exceed the adapter's buffer limits")));
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.check()?;
        Ok(GpuBuffer { buffer, len })
    }

    /// Writes `data` at value offset `offset` (queued; takes effect before the next submit).
    pub fn write_f32(&self, dst: &GpuBuffer, offset: usize, data: &[f32]) -> Result<(), GpuError> {
        if offset + data.len() > dst.len {
            return Err(GpuError::Invalid(format!(
                "write of {} values at {offset} into a buffer of {}",
                data.len(),
                dst.len
            )));
        }
        self.queue.write_buffer(&dst.buffer, (4 * offset) as u64, bytemuck::cast_slice(data));
        Ok(())
    }

    /// Uploads a tensor of `rows` x `cols` values of `ty`; `bytes` is its GGUF data, unchanged.
    pub fn upload_weight(
        &self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<GpuWeight, GpuError> {
        let row_bytes = ty
            .row_bytes(cols)
            .ok_or_else(|| GpuError::Invalid(format!("{name}: {cols} values is not a whole number of {ty} blocks")))?;
        if rows.checked_mul(row_bytes) != Some(bytes.len()) {
            return Err(GpuError::Invalid(format!(
                "{name}: {} bytes for {rows} rows of {row_bytes} bytes",
                bytes.len()
            )));
        }
        // Each piece is its bytes padded to 4 plus one spare word, within the binding limit.
        let rows_per_piece = (self.binding_limit() as usize).saturating_sub(4) / row_bytes.max(1);
        if rows_per_piece == 0 {
            return Err(GpuError::Invalid(format!(
                "{name}: one row is {row_bytes} bytes, more than the binding limit of {}",
                self.binding_limit()
            )));
        }
        let mut pieces = Vec::with_capacity(rows.div_ceil(rows_per_piece).max(1));
        let mut row0 = 0;
        while row0 < rows || pieces.is_empty() {
            let n = rows_per_piece.min(rows - row0);
            let src = &bytes[row0 * row_bytes..(row0 + n) * row_bytes];
            let label = if rows <= rows_per_piece { name.to_string() } else { format!("{name}[{row0}..{}]", row0 + n) };
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&label),
                // One spare zero word: the shaders' unaligned fetch reads the word after.
                size: (pad4(src.len()) + 4) as u64,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: true,
            });
            self.check()?;
            {
                let mut view = buffer
                    .slice(..)
                    .get_mapped_range_mut()
                    .map_err(|e| GpuError::OutOfMemory(format!("{label}: {e}")))?;
                // The padding after the data is zero: WebGPU zero-initializes new buffers.
                view.slice(..src.len()).copy_from_slice(src);
            }
            buffer.unmap();
            pieces.push(WeightPiece { buffer, row0, rows: n });
            row0 += n;
        }
        self.check()?;
        Ok(GpuWeight { name: name.to_string(), ty, rows, cols, row_bytes, pieces })
    }
}
