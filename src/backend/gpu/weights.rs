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
        let mut upload = self.begin_weight(name, ty, rows, cols)?;
        if bytes.len() != upload.total_bytes() {
            return Err(GpuError::Invalid(format!(
                "{name}: {} bytes for {rows} rows of {} bytes",
                bytes.len(),
                upload.weight.row_bytes
            )));
        }
        upload.write(self, bytes)?;
        upload.finish(self)
    }

    /// Creates the buffers of a `rows` x `cols` tensor of `ty`, to be filled in order by
    /// [`WeightUpload::write`] as its bytes arrive (from a file or the network), so the whole
    /// tensor never has to sit in host memory.
    pub fn begin_weight(&self, name: &str, ty: GgmlType, rows: usize, cols: usize) -> Result<WeightUpload, GpuError> {
        let row_bytes = ty
            .row_bytes(cols)
            .ok_or_else(|| GpuError::Invalid(format!("{name}: {cols} values is not a whole number of {ty} blocks")))?;
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
            let label = if rows <= rows_per_piece { name.to_string() } else { format!("{name}[{row0}..{}]", row0 + n) };
            let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(&label),
                // One spare zero word: the shaders' unaligned fetch reads the word after.
                size: (pad4(n * row_bytes) + 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            self.check()?;
            pieces.push(WeightPiece { buffer, row0, rows: n });
            row0 += n;
        }
        let weight = GpuWeight { name: name.to_string(), ty, rows, cols, row_bytes, pieces };
        Ok(WeightUpload { weight, written: 0, piece: 0, carry: [0; 4], carry_len: 0 })
    }
}

/// A weight tensor being filled chunk by chunk, in order ([`GpuContext::begin_weight`]).
/// Chunks may have any length and cross row and buffer boundaries; bytes that do not complete
/// a 4-byte word (the unit of `write_buffer`) wait in `carry` for the next chunk.
pub struct WeightUpload {
    weight: GpuWeight,
    /// Tensor bytes received so far.
    written: usize,
    /// The piece `written` falls in.
    piece: usize,
    /// Received bytes not yet written; they start at a word boundary of the current piece.
    carry: [u8; 4],
    carry_len: usize,
}

impl WeightUpload {
    pub fn total_bytes(&self) -> usize {
        self.weight.rows * self.weight.row_bytes
    }

    pub fn written(&self) -> usize {
        self.written
    }

    /// Queues the next `chunk` of the tensor's bytes.
    pub fn write(&mut self, ctx: &GpuContext, mut chunk: &[u8]) -> Result<(), GpuError> {
        if self.written + chunk.len() > self.total_bytes() {
            return Err(GpuError::Invalid(format!(
                "{}: {} bytes written to a tensor of {}",
                self.weight.name,
                self.written + chunk.len(),
                self.total_bytes()
            )));
        }
        let rb = self.weight.row_bytes;
        while !chunk.is_empty() {
            let p = &self.weight.pieces[self.piece];
            let (start, end) = (p.row0 * rb, (p.row0 + p.rows) * rb);
            let take = chunk.len().min(end - self.written);
            let (now, rest) = chunk.split_at(take);
            self.write_piece(ctx, self.written - start, now);
            self.written += take;
            chunk = rest;
            if self.written == end {
                if self.carry_len > 0 {
                    // The piece's last partial word, zero-padded (the buffer is padded to 4).
                    self.carry[self.carry_len..].fill(0);
                    let off = end - start - self.carry_len;
                    ctx.queue.write_buffer(&self.weight.pieces[self.piece].buffer, off as u64, &self.carry);
                    self.carry_len = 0;
                }
                self.piece = (self.piece + 1).min(self.weight.pieces.len() - 1);
            }
        }
        Ok(())
    }

    /// Writes `data`, which starts at byte `local` of the current piece.
    fn write_piece(&mut self, ctx: &GpuContext, mut local: usize, mut data: &[u8]) {
        let buffer = &self.weight.pieces[self.piece].buffer;
        if self.carry_len > 0 {
            let need = (4 - self.carry_len).min(data.len());
            self.carry[self.carry_len..self.carry_len + need].copy_from_slice(&data[..need]);
            self.carry_len += need;
            data = &data[need..];
            local += need;
            if self.carry_len < 4 {
                return;
            }
            ctx.queue.write_buffer(buffer, (local - 4) as u64, &self.carry);
            self.carry_len = 0;
        }
        let whole = data.len() / 4 * 4;
        if whole > 0 {
            ctx.queue.write_buffer(buffer, local as u64, &data[..whole]);
        }
        self.carry_len = data.len() - whole;
        self.carry[..self.carry_len].copy_from_slice(&data[whole..]);
    }

    /// The uploaded tensor, once every byte has been written.
    pub fn finish(self, ctx: &GpuContext) -> Result<GpuWeight, GpuError> {
        if self.written != self.total_bytes() {
            return Err(GpuError::Invalid(format!(
                "{}: {} of {} bytes written",
                self.weight.name,
                self.written,
                self.total_bytes()
            )));
        }
        ctx.check()?;
        Ok(self.weight)
    }
}
