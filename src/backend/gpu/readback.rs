//! Reading results back: a mappable staging buffer made once and reused, read with the
//! future-based pattern that also works in the browser (`map_async` callback → oneshot; only
//! natively is the device polled, the browser resolves the mapping on its own).

use super::weights::GpuBuffer;
use super::{GpuContext, GpuError};

/// A `MAP_READ` staging buffer of fixed capacity.
pub struct Readback {
    buffer: wgpu::Buffer,
}

impl Readback {
    pub fn new(ctx: &GpuContext, label: &str, capacity_values: usize) -> Result<Self, GpuError> {
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (4 * capacity_values.max(1)) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.check()?;
        Ok(Readback { buffer })
    }

    pub fn capacity(&self) -> usize {
        (self.buffer.size() / 4) as usize
    }

    /// Records a copy of `len` values from `src[offset..]` into the staging buffer, to be read
    /// by [`Readback::map_read`] after the encoder is submitted (so a decode step can end its
    /// one submit with the copy of its result).
    pub fn encode_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &GpuBuffer,
        offset: usize,
        len: usize,
    ) -> Result<(), GpuError> {
        src.expect_f32("readback")?;
        if offset + len > src.len() || len > self.capacity() {
            return Err(GpuError::Invalid(format!(
                "read of {len} values at {offset} from a buffer of {} through a readback of {}",
                src.len(),
                self.capacity()
            )));
        }
        encoder.copy_buffer_to_buffer(&src.buffer, (4 * offset) as u64, &self.buffer, 0, (4 * len) as u64);
        Ok(())
    }

    /// Maps the staging buffer once the submitted copy has run and copies its first
    /// `out.len()` values out.
    pub async fn map_read(&self, ctx: &GpuContext, out: &mut [f32]) -> Result<(), GpuError> {
        self.map_read_values(ctx, out).await
    }

    /// [`Readback::map_read`] for u32 results (argmax's token id: 4 bytes per decode step).
    pub async fn map_read_u32(&self, ctx: &GpuContext, out: &mut [u32]) -> Result<(), GpuError> {
        self.map_read_values(ctx, out).await
    }

    /// `T` is a 4-byte value (f32, u32): capacities count 4-byte values.
    async fn map_read_values<T: bytemuck::Pod>(&self, ctx: &GpuContext, out: &mut [T]) -> Result<(), GpuError> {
        if out.is_empty() {
            return Ok(());
        }
        if out.len() > self.capacity() {
            return Err(GpuError::Invalid(format!(
                "read of {} values from a readback of {}",
                out.len(),
                self.capacity()
            )));
        }
        let slice = self.buffer.slice(0..(4 * out.len()) as u64);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::DeviceLost(e.to_string()))?;
        let mapped = rx.await.map_err(|_| GpuError::Readback("the mapping callback was dropped".into()))?;
        ctx.check()?;
        mapped.map_err(|e| GpuError::Readback(e.to_string()))?;
        {
            let view = slice.get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            out.copy_from_slice(bytemuck::cast_slice(&view));
        }
        self.buffer.unmap();
        Ok(())
    }

    /// Copies `out.len()` values from `src[offset..]` into `out`: one copy in its own submit,
    /// then [`Readback::map_read`].
    pub async fn read_f32(
        &self,
        ctx: &GpuContext,
        src: &GpuBuffer,
        offset: usize,
        out: &mut [f32],
    ) -> Result<(), GpuError> {
        if out.is_empty() {
            return Ok(());
        }
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        self.encode_copy(&mut encoder, src, offset, out.len())?;
        ctx.submit(encoder);
        self.map_read(ctx, out).await
    }

    /// [`Readback::read_f32`] driven to completion on this thread (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_f32_blocking(
        &self,
        ctx: &GpuContext,
        src: &GpuBuffer,
        offset: usize,
        out: &mut [f32],
    ) -> Result<(), GpuError> {
        pollster::block_on(self.read_f32(ctx, src, offset, out))
    }
}
