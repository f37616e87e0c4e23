//! The GPU backend's command list. Backend ops only record: the first call of an op on given
//! buffers prepares it (pipeline, uniforms, bind groups) and every later call finds it by its
//! [`OpKey`]; a step's ops are encoded into one command encoder and go in one submit, ending
//! with the copy of what `read`/`argmax` asked for. Nothing is allocated per step once the
//! first step has prepared its ops (the command list keeps its capacity).

use super::matvec::MatvecOp;
use super::ops::GpuOp;
use super::{GpuContext, GpuError, Readback};
use crate::backend::{Activation, Counters};
use std::collections::HashMap;

/// What identifies a prepared op: its kind and the ids of the buffers and weights it binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum OpKey {
    Embed { table: u32, out: u32 },
    RmsNorm { x: u32, w: u32, out: u32, eps: u32, accumulate: bool },
    Matmul { w: u32, x: u32, out: u32, accumulate: bool },
    MatmulQkv { w: u32, bias: Option<u32>, x: u32, q: u32, k: u32, v: u32 },
    MatmulGlu { w: u32, x: u32, out: u32, act: Activation },
    AddBias { x: u32, b: u32 },
    Glu { gate: u32, up: u32, width: u32, act: Activation },
    Softcap { x: u32, width: u32, cap: u32 },
    RopeStore { q: u32, k: u32, v: u32, cache: u32, layer: u32, norms: Option<(u32, u32)> },
    Attention { q: u32, cache: u32, layer: u32, out: u32 },
    Argmax { x: u32, offset: u32, len: u32 },
    TopK { x: u32, offset: u32, len: u32, k: u32 },
}

pub(super) enum Prepared {
    Op(GpuOp),
    Matmul(MatvecOp),
}

impl Prepared {
    fn encode(&self, pass: &mut wgpu::ComputePass<'_>, n_tokens: usize) -> usize {
        match self {
            Prepared::Op(op) => {
                op.encode(pass, n_tokens);
                op.dispatches()
            }
            Prepared::Matmul(op) => {
                op.encode(pass, n_tokens);
                op.dispatches()
            }
        }
    }
}

enum Cmd {
    Run { op: usize, n_tokens: usize },
    Copy { src: wgpu::Buffer, src_offset: u64, dst: wgpu::Buffer, dst_offset: u64, size: u64 },
}

/// Prepared ops by key, the commands recorded since the last submit, the first error met
/// while recording (reported by the next read) and the counters.
#[derive(Default)]
pub(super) struct Recorder {
    ops: Vec<Prepared>,
    index: HashMap<OpKey, usize>,
    pending: Vec<Cmd>,
    pub(super) error: Option<GpuError>,
    pub(super) counters: Counters,
}

impl Recorder {
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Records op `key` for `n_tokens`, preparing it with `prepare` the first time.
    pub(super) fn run(&mut self, key: OpKey, n_tokens: usize, prepare: impl FnOnce() -> Result<Prepared, GpuError>) {
        if self.error.is_some() {
            return;
        }
        let op = match self.index.get(&key) {
            Some(&i) => i,
            None => match prepare() {
                Ok(p) => {
                    self.counters.prepared += 1;
                    self.ops.push(p);
                    self.index.insert(key, self.ops.len() - 1);
                    self.ops.len() - 1
                }
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            },
        };
        self.pending.push(Cmd::Run { op, n_tokens });
    }

    /// Forgets what was recorded; returns the first error met while recording it.
    pub(super) fn discard(&mut self) -> Result<(), GpuError> {
        self.pending.clear();
        self.error.take().map_or(Ok(()), Err)
    }

    /// Records a copy of `len` f32 values between buffers.
    pub(super) fn copy(&mut self, src: &wgpu::Buffer, src_off: usize, dst: &wgpu::Buffer, dst_off: usize, len: usize) {
        self.pending.push(Cmd::Copy {
            src: src.clone(),
            src_offset: 4 * src_off as u64,
            dst: dst.clone(),
            dst_offset: 4 * dst_off as u64,
            size: 4 * len as u64,
        });
    }

    /// Encodes and submits what was recorded; `then` may append to the encoder (a readback
    /// copy). Consecutive dispatches share one compute pass.
    pub(super) fn submit(
        &mut self,
        ctx: &GpuContext,
        then: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<(), GpuError>,
    ) -> Result<(), GpuError> {
        if let Some(e) = self.error.take() {
            self.pending.clear();
            return Err(e);
        }
        let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        let mut pending = std::mem::take(&mut self.pending);
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        for cmd in &pending {
            match cmd {
                Cmd::Run { op, n_tokens } => {
                    let p = pass.get_or_insert_with(|| {
                        encoder
                            .begin_compute_pass(&wgpu::ComputePassDescriptor {
                                label: Some("step"),
                                timestamp_writes: None,
                            })
                            .forget_lifetime()
                    });
                    self.counters.dispatches += self.ops[*op].encode(p, *n_tokens) as u64;
                }
                Cmd::Copy { src, src_offset, dst, dst_offset, size } => {
                    pass = None;
                    encoder.copy_buffer_to_buffer(src, *src_offset, dst, *dst_offset, *size);
                }
            }
        }
        drop(pass);
        pending.clear();
        self.pending = pending;
        then(&mut encoder)?;
        ctx.submit(encoder);
        self.counters.submits += 1;
        ctx.check()
    }

    /// Submits what was recorded with a copy of `out.len()` values of `src[offset..]` at the end,
    /// then maps them back.
    pub(super) async fn read_f32(
        &mut self,
        ctx: &GpuContext,
        staging: &Readback,
        src: &super::GpuBuffer,
        offset: usize,
        out: &mut [f32],
    ) -> Result<(), GpuError> {
        self.submit(ctx, |enc| staging.encode_copy(enc, src, offset, out.len()))?;
        staging.map_read(ctx, out).await?;
        self.counters.bytes_read += 4 * out.len() as u64;
        Ok(())
    }

    /// [`Recorder::read_f32`] for one u32 (argmax's token id).
    pub(super) async fn read_u32(
        &mut self,
        ctx: &GpuContext,
        staging: &Readback,
        src: &super::GpuBuffer,
    ) -> Result<u32, GpuError> {
        let mut id = [0u32];
        self.read_words(ctx, staging, src, &mut id).await?;
        Ok(id[0])
    }

    /// Runs what was recorded, then reads the first `out.len()` 4-byte words of `src`.
    pub(super) async fn read_words(
        &mut self,
        ctx: &GpuContext,
        staging: &Readback,
        src: &super::GpuBuffer,
        out: &mut [u32],
    ) -> Result<(), GpuError> {
        self.submit(ctx, |enc| staging.encode_copy(enc, src, 0, out.len()))?;
        staging.map_read_u32(ctx, out).await?;
        self.counters.bytes_read += 4 * out.len() as u64;
        Ok(())
    }
}
