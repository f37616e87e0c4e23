//! Device buffers: f32 activations, f16 KV caches and weights in their GGUF block layout.

use super::{GpuContext, GpuError};
use crate::backend::KvType;
use crate::quant::GgmlType;

/// A buffer of values on the device: f32 (activations, outputs), or f16 (a KV cache on a
/// device with `shader-f16`).
pub struct GpuBuffer {
    pub(crate) buffer: wgpu::Buffer,
    len: usize,
    elem: KvType,
}

impl GpuBuffer {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The value type (only KV caches are ever f16).
    pub fn elem(&self) -> KvType {
        self.elem
    }

    /// Errs unless the buffer holds f32 values (what copies, reads and writes move).
    pub(crate) fn expect_f32(&self, what: &str) -> Result<(), GpuError> {
        match self.elem {
            KvType::F32 => Ok(()),
            e => Err(GpuError::Invalid(format!("{what} of a buffer of {} values", e.name()))),
        }
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
        self.alloc_values(name, len, KvType::F32)
    }

    /// A zeroed buffer of `len` values of `elem` (f16 needs the device's `shader-f16`, which
    /// the kernels reading it enable), its size rounded up to 16 bytes.
    pub fn alloc_values(&self, name: &str, len: usize, elem: KvType) -> Result<GpuBuffer, GpuError> {
        if elem == KvType::F16 && !self.features().contains(wgpu::Features::SHADER_F16) {
            return Err(GpuError::Invalid(format!("{name}: f16 values need a device with shader-f16")));
        }
        let bytes = len
            .max(1)
            .checked_mul(elem.bytes())
            .ok_or_else(|| GpuError::OutOfMemory(format!("{name}: {len} values")))?;
        let size = bytes.div_ceil(16) as u64 * 16;
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
        Ok(GpuBuffer { buffer, len, elem })
    }

    /// Writes `data` at value offset `offset` (queued; takes effect before the next submit).
    pub fn write_f32(&self, dst: &GpuBuffer, offset: usize, data: &[f32]) -> Result<(), GpuError> {
        dst.expect_f32("write_f32")?;
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
        Ok(WeightUpload { weight, written: 0, cursor: 0, partial: Vec::new() })
    }
}

/// A weight tensor being filled chunk by chunk ([`GpuContext::begin_weight`]): in order with
/// [`WeightUpload::write`], or at any byte offset with [`WeightUpload::write_at`] (the parts of a
/// fused weight arrive in the file's order, not the rows'). Chunks may have any length and cross
/// row and buffer boundaries; `write_buffer` works in 4-byte words, so the bytes of a word that
/// one write does not cover wait in `partial` until the rest arrive (or `finish` pads them).
pub struct WeightUpload {
    weight: GpuWeight,
    /// Tensor bytes received so far (each byte is written once).
    written: usize,
    /// Where the next [`WeightUpload::write`] goes.
    cursor: usize,
    /// Words of a piece received in part: (piece, byte offset of the word, bytes, mask of bytes set).
    partial: Vec<(usize, usize, [u8; 4], u8)>,
}

impl WeightUpload {
    pub fn total_bytes(&self) -> usize {
        self.weight.rows * self.weight.row_bytes
    }

    pub fn written(&self) -> usize {
        self.written
    }

    /// Queues the next `chunk` of the tensor's bytes (after the previous chunk).
    pub fn write(&mut self, ctx: &GpuContext, chunk: &[u8]) -> Result<(), GpuError> {
        self.write_at(ctx, self.cursor, chunk)?;
        self.cursor += chunk.len();
        Ok(())
    }

    /// Queues `chunk` as the tensor's bytes from byte `offset` on.
    pub fn write_at(&mut self, ctx: &GpuContext, offset: usize, mut chunk: &[u8]) -> Result<(), GpuError> {
        if offset + chunk.len() > self.total_bytes() {
            return Err(GpuError::Invalid(format!(
                "{}: bytes {offset}..{} written to a tensor of {}",
                self.weight.name,
                offset + chunk.len(),
                self.total_bytes()
            )));
        }
        let rb = self.weight.row_bytes;
        let mut at = offset;
        while !chunk.is_empty() {
            let piece = self.weight.pieces.iter().position(|p| at < (p.row0 + p.rows) * rb).unwrap_or(0);
            let p = &self.weight.pieces[piece];
            let (start, end) = (p.row0 * rb, (p.row0 + p.rows) * rb);
            let (now, rest) = chunk.split_at(chunk.len().min(end - at));
            self.write_piece(ctx, piece, at - start, now);
            self.written += now.len();
            at += now.len();
            chunk = rest;
        }
        Ok(())
    }

    /// Writes `data` from byte `local` of piece `piece`: whole words at once, the bytes of
    /// partly covered words through `partial`.
    fn write_piece(&mut self, ctx: &GpuContext, piece: usize, mut local: usize, mut data: &[u8]) {
        let head = ((4 - local % 4) % 4).min(data.len());
        self.merge(ctx, piece, local, &data[..head]);
        (local, data) = (local + head, &data[head..]);
        let whole = data.len() / 4 * 4;
        if whole > 0 {
            ctx.queue.write_buffer(&self.weight.pieces[piece].buffer, local as u64, &data[..whole]);
        }
        self.merge(ctx, piece, local + whole, &data[whole..]);
    }

    /// Adds `bytes` (within one word) at byte `local` of a piece; writes the word once complete.
    fn merge(&mut self, ctx: &GpuContext, piece: usize, local: usize, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let word = local / 4 * 4;
        let i = match self.partial.iter().position(|&(p, w, _, _)| p == piece && w == word) {
            Some(i) => i,
            None => {
                self.partial.push((piece, word, [0; 4], 0));
                self.partial.len() - 1
            }
        };
        let entry = &mut self.partial[i];
        for (k, &b) in bytes.iter().enumerate() {
            entry.2[local - word + k] = b;
            entry.3 |= 1 << (local - word + k);
        }
        if entry.3 == 0b1111 {
            ctx.queue.write_buffer(&self.weight.pieces[piece].buffer, word as u64, &entry.2);
            self.partial.swap_remove(i);
        }
    }

    /// The uploaded tensor, once every byte has been written. Words left partial are the ends
    /// of pieces: written zero-padded (each buffer is padded to 4).
    pub fn finish(self, ctx: &GpuContext) -> Result<GpuWeight, GpuError> {
        if self.written != self.total_bytes() {
            return Err(GpuError::Invalid(format!(
                "{}: {} of {} bytes written",
                self.weight.name,
                self.written,
                self.total_bytes()
            )));
        }
        for (piece, word, bytes, _) in &self.partial {
            ctx.queue.write_buffer(&self.weight.pieces[*piece].buffer, *word as u64, bytes);
        }
        ctx.check()?;
        Ok(self.weight)
    }
}
