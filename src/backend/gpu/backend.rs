//! [`GpuBackend`]: the `Backend` trait on WebGPU. Ops record into a [`Recorder`]; each is
//! prepared once (first call on its buffers) and reads the step's token count and first
//! position from one [`StepUniform`], written once per step. A decode step is one submit:
//! embed, the layers, the head and argmax, then a 4-byte readback.

use super::attention::{HeadNorms, RopeAngles};
use super::matvec::MatmulOut;
use super::recorder::{OpKey, Prepared, Recorder};
use super::{GpuBuffer, GpuContext, GpuError, GpuOptions, GpuWeight, Readback, StepUniform};
use crate::backend::{Activation, AttnShape, Backend, Counters, KvType};
use crate::model::config::RopeConfig;
use crate::quant::{GgmlType, dequantize_row};
use crate::sampler::MAX_CANDIDATES;
use crate::{Error, Result};

/// An f32 activation buffer with the id prepared ops are keyed by.
pub struct GpuTensor {
    id: u32,
    buf: GpuBuffer,
}

/// A weight on the device with its id.
pub struct GpuTensorWeight {
    id: u32,
    w: GpuWeight,
}

impl GpuTensorWeight {
    pub fn weight(&self) -> &GpuWeight {
        &self.w
    }
}

/// A weight whose bytes are arriving: on the device, or (a vector the element-wise kernels
/// read as f32) on the host until it can be dequantized.
pub enum GpuUpload {
    Device(super::WeightUpload),
    Host { name: String, ty: GgmlType, cols: usize, bytes: Vec<u8>, written: usize },
}

/// One key and one value buffer per layer.
pub struct GpuKvCache {
    id: u32,
    k: Vec<GpuBuffer>,
    v: Vec<GpuBuffer>,
}

pub struct GpuBackend {
    ctx: GpuContext,
    step: StepUniform,
    /// (n_tokens, pos0) the step uniform holds (or will, at the next submit).
    step_now: Option<(usize, usize)>,
    /// The model's ropes with their frequency factors on the device.
    ropes: Vec<(RopeConfig, Option<GpuBuffer>)>,
    /// Token ids of a step, made at the first embed for the batch its output buffer holds.
    ids: Option<GpuBuffer>,
    argmax_out: Option<GpuBuffer>,
    /// (index, logit bits) pairs of the top-k kernel, for up to `MAX_CANDIDATES`.
    top_k_out: Option<GpuBuffer>,
    /// The candidates' words as read back, reused token after token.
    top_k_words: Vec<u32>,
    staging: Option<Readback>,
    id_staging: Option<Readback>,
    top_k_staging: Option<Readback>,
    next_id: u32,
    rec: Recorder,
}

/// The candidate counts the top-k kernel is prepared for: sampling asks for top_k plus the
/// tokens its penalties may push out (40 + up to 64 by default), rounded up to one of these.
const TOP_K_SIZES: [usize; 5] = [64, 128, 256, 512, MAX_CANDIDATES];

/// Maps a device error to the crate's: running out of memory is `model_too_large`.
fn gpu_err(e: GpuError) -> Error {
    match e {
        GpuError::OutOfMemory(m) => Error::OutOfMemory(m),
        e => Error::Gpu(e),
    }
}

impl GpuBackend {
    pub async fn new(opts: &GpuOptions) -> Result<Self> {
        Self::with_context(GpuContext::new(opts).await.map_err(gpu_err)?)
    }

    /// [`GpuBackend::new`] driven to completion on this thread (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(opts: &GpuOptions) -> Result<Self> {
        pollster::block_on(Self::new(opts))
    }

    pub fn with_context(ctx: GpuContext) -> Result<Self> {
        let step = ctx.alloc_step("step").map_err(gpu_err)?;
        Ok(GpuBackend {
            ctx,
            step,
            step_now: None,
            ropes: Vec::new(),
            ids: None,
            argmax_out: None,
            top_k_out: None,
            top_k_words: Vec::with_capacity(2 * MAX_CANDIDATES),
            staging: None,
            id_staging: None,
            top_k_staging: None,
            next_id: 0,
            rec: Recorder::default(),
        })
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The adapter, as `name (backend, device type)`.
    pub fn adapter_name(&self) -> String {
        let info = self.ctx.adapter_info();
        // Browsers may hide the name (Chromium gives SwiftShader's as "").
        let name = if info.name.is_empty() { "unnamed adapter" } else { info.name.as_str() };
        format!("{name} ({:?}, {:?})", info.backend, info.device_type)
    }

    /// Whether the adapter is a software renderer (lavapipe, SwiftShader, WARP): correct but
    /// slower than the CPU backend.
    pub fn is_software(&self) -> bool {
        self.ctx.adapter_info().device_type == wgpu::DeviceType::Cpu
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn n_now(&self) -> usize {
        self.step_now.map_or(0, |(n, _)| n)
    }

    /// Makes a helper buffer once, or notes the error for the next read.
    fn helper_buffer(&mut self, which: fn(&mut Self) -> &mut Option<GpuBuffer>, name: &str, len: usize) -> bool {
        if which(self).as_ref().is_some_and(|b| b.len() >= len) {
            return true;
        }
        if which(self).is_some() {
            self.rec.error = Some(GpuError::Invalid(format!("{name}: {len} values, more than at the first step")));
            return false;
        }
        match self.ctx.alloc_f32(name, len) {
            Ok(b) => {
                *which(self) = Some(b);
                true
            }
            Err(e) => {
                self.rec.error = Some(e);
                false
            }
        }
    }

    fn matmul_out(&mut self, key: OpKey, w: &GpuTensorWeight, x: &GpuTensor, out: MatmulOut<'_>, max_tokens: usize) {
        let (ctx, step, n) = (&self.ctx, &self.step, self.step_now.map_or(0, |(n, _)| n));
        self.rec.run(key, n, || ctx.prepare_matmul(&w.w, &x.buf, out, max_tokens, step).map(Prepared::Matmul));
    }

    /// Makes the top-k kernel's output and staging buffers, and records its op for the first
    /// `k` of a row: the caller runs or discards it.
    fn record_top_k(&mut self, x: &GpuTensor, offset: usize, len: usize, k: usize) -> Result<()> {
        if !self.helper_buffer(|s| &mut s.top_k_out, "top_k", 2 * MAX_CANDIDATES) {
            return Err(gpu_err(self.rec.error.take().expect("set by helper_buffer")));
        }
        Self::staging(&mut self.top_k_staging, &self.ctx, "top_k_readback", 2 * MAX_CANDIDATES)?;
        let out = self.top_k_out.as_ref().expect("made above");
        let key = OpKey::TopK { x: x.id, offset: offset as u32, len: len as u32, k: k as u32 };
        let ctx = &self.ctx;
        self.rec.run(key, 1, || ctx.prepare_top_k(&x.buf, offset, len, k, out).map(Prepared::Op));
        Ok(())
    }

    /// A staging buffer of at least `len` values (grown at most once per larger read).
    fn staging(slot: &mut Option<Readback>, ctx: &GpuContext, label: &str, len: usize) -> Result<()> {
        if slot.as_ref().is_none_or(|s| s.capacity() < len) {
            *slot = Some(Readback::new(ctx, label, len).map_err(gpu_err)?);
        }
        Ok(())
    }
}

impl Backend for GpuBackend {
    type Weight = GpuTensorWeight;
    type Buffer = GpuTensor;
    type KvCache = GpuKvCache;
    type Upload = GpuUpload;

    fn name(&self) -> &'static str {
        "gpu"
    }

    /// A fused projection must fit one binding: the fused kernels read one weight buffer.
    fn max_fused_bytes(&self) -> usize {
        usize::try_from(self.ctx.binding_limit()).unwrap_or(usize::MAX).saturating_sub(16)
    }

    fn upload_weight(
        &mut self,
        name: &str,
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Result<Self::Weight> {
        let mut up = self.begin_weight(name, ty, rows, cols)?;
        self.write_weight(&mut up, 0, bytes)?;
        self.finish_weight(up)
    }

    fn begin_weight(&mut self, name: &str, ty: GgmlType, rows: usize, cols: usize) -> Result<GpuUpload> {
        if rows == 1 && ty != GgmlType::F32 {
            // Vectors (norms, biases) are read as f32 by the element-wise kernels.
            let len =
                ty.row_bytes(cols).ok_or_else(|| Error::InvalidModel(format!("{name}: {cols} values of {ty}")))?;
            return Ok(GpuUpload::Host { name: name.into(), ty, cols, bytes: vec![0; len], written: 0 });
        }
        if !super::matvec_types().contains(&ty) {
            return Err(Error::UnsupportedModel(format!("{name}: no GPU kernel reads {ty}")));
        }
        Ok(GpuUpload::Device(self.ctx.begin_weight(name, ty, rows, cols).map_err(gpu_err)?))
    }

    fn write_weight(&mut self, up: &mut GpuUpload, offset: usize, data: &[u8]) -> Result<()> {
        match up {
            GpuUpload::Device(u) => u.write_at(&self.ctx, offset, data).map_err(gpu_err),
            GpuUpload::Host { name, bytes, written, .. } => {
                let dst = bytes.get_mut(offset..offset + data.len()).ok_or_else(|| {
                    Error::InvalidModel(format!("{name}: bytes {offset}..{} past its end", offset + data.len()))
                })?;
                dst.copy_from_slice(data);
                *written += data.len();
                Ok(())
            }
        }
    }

    fn finish_weight(&mut self, up: GpuUpload) -> Result<Self::Weight> {
        let w = match up {
            GpuUpload::Device(u) => u.finish(&self.ctx).map_err(gpu_err)?,
            GpuUpload::Host { name, ty, cols, bytes, written } => {
                if written != bytes.len() {
                    return Err(Error::InvalidModel(format!("{name}: {written} of {} bytes arrived", bytes.len())));
                }
                let mut v = vec![0f32; cols];
                dequantize_row(ty, &bytes, &mut v)?;
                self.ctx.upload_weight(&name, GgmlType::F32, 1, cols, bytemuck::cast_slice(&v)).map_err(gpu_err)?
            }
        };
        Ok(GpuTensorWeight { id: self.id(), w })
    }

    fn alloc(&mut self, name: &str, len: usize) -> Result<Self::Buffer> {
        let buf = self.ctx.alloc_f32(name, len).map_err(gpu_err)?;
        Ok(GpuTensor { id: self.id(), buf })
    }

    /// f16 where the device has `shader-f16` (the kernels that touch the cache are then
    /// compiled with `enable f16`), else f32.
    fn default_kv_type(&self) -> KvType {
        if self.ctx.features().contains(wgpu::Features::SHADER_F16) { KvType::F16 } else { KvType::F32 }
    }

    fn alloc_kv(&mut self, positions: &[usize], k_width: usize, v_width: usize, ty: KvType) -> Result<Self::KvCache> {
        if ty == KvType::F16 && !self.ctx.features().contains(wgpu::Features::SHADER_F16) {
            return Err(Error::InvalidArgument(format!(
                "an f16 KV cache needs shader-f16, which {} does not offer",
                self.adapter_name()
            )));
        }
        let layers = |width: usize, what: &str| {
            (positions.iter().enumerate())
                .map(|(l, &n)| {
                    let len = n
                        .checked_mul(width)
                        .filter(|_| n > 0)
                        .ok_or_else(|| Error::OutOfMemory(format!("{what}.{l} of {n} positions")))?;
                    self.ctx.alloc_values(&format!("{what}.{l}"), len, ty).map_err(gpu_err)
                })
                .collect::<Result<Vec<_>>>()
        };
        let (k, v) = (layers(k_width, "k_cache")?, layers(v_width, "v_cache")?);
        Ok(GpuKvCache { id: self.id(), k, v })
    }

    fn set_ropes(&mut self, ropes: &[RopeConfig]) -> Result<()> {
        self.ropes.clear();
        for (i, rope) in ropes.iter().enumerate() {
            let ff = match &rope.freq_factors {
                Some(f) => {
                    let b = self.ctx.alloc_f32(&format!("rope_factors.{i}"), f.len()).map_err(gpu_err)?;
                    self.ctx.write_f32(&b, 0, f).map_err(gpu_err)?;
                    Some(b)
                }
                None => None,
            };
            self.ropes.push((rope.clone(), ff));
        }
        Ok(())
    }

    fn begin_step(&mut self, n_tokens: usize, pos0: usize) {
        if self.step_now == Some((n_tokens, pos0)) {
            return;
        }
        // The uniform is written ahead of the next submit: work recorded for the old step goes first.
        if self.rec.has_pending()
            && let Err(e) = self.rec.submit(&self.ctx, |_| Ok(()))
        {
            self.rec.error = Some(e);
        }
        if let Err(e) = self.step.set(&self.ctx, n_tokens, pos0) {
            self.rec.error = Some(e);
        }
        self.rec.counters.bytes_written += 16;
        self.step_now = Some((n_tokens, pos0));
    }

    fn embed(&mut self, table: &Self::Weight, tokens: &[u32], scale: f32, out: &mut Self::Buffer) {
        let max_tokens = out.buf.len() / table.w.cols();
        if !self.helper_buffer(|s| &mut s.ids, "token_ids", max_tokens) {
            return;
        }
        if self.rec.has_pending()
            && let Err(e) = self.rec.submit(&self.ctx, |_| Ok(()))
        {
            self.rec.error = Some(e);
        }
        let ids = self.ids.as_ref().expect("made above");
        if let Err(e) = self.ctx.write_u32(ids, 0, tokens) {
            self.rec.error = Some(e);
        }
        self.rec.counters.bytes_written += 4 * tokens.len() as u64;
        let key = OpKey::Embed { table: table.id, out: out.id };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec.run(key, tokens.len(), || {
            ctx.prepare_embed(&table.w, ids, scale, &out.buf, 0, max_tokens, step).map(Prepared::Op)
        });
    }

    fn rms_norm(&mut self, x: &Self::Buffer, w: &Self::Weight, n_tokens: usize, eps: f32, out: &mut Self::Buffer) {
        let d = w.w.rows() * w.w.cols();
        let max_tokens = x.buf.len().min(out.buf.len()) / d;
        let key = OpKey::RmsNorm { x: x.id, w: w.id, out: out.id, eps: eps.to_bits(), accumulate: false };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec.run(key, n_tokens, || {
            ctx.prepare_rms_norm(&x.buf, 0, &w.w, &out.buf, 0, max_tokens, eps, step).map(Prepared::Op)
        });
    }

    fn rms_norm_add(&mut self, y: &Self::Buffer, w: &Self::Weight, n_tokens: usize, eps: f32, x: &mut Self::Buffer) {
        let d = w.w.rows() * w.w.cols();
        let max_tokens = x.buf.len().min(y.buf.len()) / d;
        let key = OpKey::RmsNorm { x: y.id, w: w.id, out: x.id, eps: eps.to_bits(), accumulate: true };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec.run(key, n_tokens, || {
            ctx.prepare_rms_norm_add(&y.buf, 0, &w.w, &x.buf, 0, max_tokens, eps, step).map(Prepared::Op)
        });
    }

    fn matmul(&mut self, w: &Self::Weight, x: &Self::Buffer, _n_tokens: usize, out: &mut Self::Buffer) {
        let max_tokens = (x.buf.len() / w.w.cols()).min(out.buf.len() / w.w.rows());
        let key = OpKey::Matmul { w: w.id, x: x.id, out: out.id, accumulate: false };
        self.matmul_out(key, w, x, MatmulOut::Store(&out.buf), max_tokens);
    }

    fn matmul_add(&mut self, w: &Self::Weight, x: &Self::Buffer, _n_tokens: usize, out: &mut Self::Buffer) {
        let max_tokens = (x.buf.len() / w.w.cols()).min(out.buf.len() / w.w.rows());
        let key = OpKey::Matmul { w: w.id, x: x.id, out: out.id, accumulate: true };
        self.matmul_out(key, w, x, MatmulOut::Accumulate(&out.buf), max_tokens);
    }

    fn matmul_qkv(
        &mut self,
        w: &Self::Weight,
        bias: Option<&Self::Weight>,
        x: &Self::Buffer,
        _n_tokens: usize,
        shape: AttnShape,
        q: &mut Self::Buffer,
        k: &mut Self::Buffer,
        v: &mut Self::Buffer,
    ) {
        let widths = shape.qkv_widths();
        let max_tokens =
            [x.buf.len() / w.w.cols(), q.buf.len() / widths[0], k.buf.len() / widths[1], v.buf.len() / widths[2]]
                .into_iter()
                .min()
                .unwrap_or(0);
        let key = OpKey::MatmulQkv { w: w.id, bias: bias.map(|b| b.id), x: x.id, q: q.id, k: k.id, v: v.id };
        let out = MatmulOut::Split3 { outs: [&q.buf, &k.buf, &v.buf], widths, bias: bias.map(|b| &b.w) };
        self.matmul_out(key, w, x, out, max_tokens);
    }

    fn matmul_glu(&mut self, w: &Self::Weight, x: &Self::Buffer, _n: usize, act: Activation, out: &mut Self::Buffer) {
        let max_tokens = (x.buf.len() / w.w.cols()).min(out.buf.len() / (w.w.rows() / 2).max(1));
        let key = OpKey::MatmulGlu { w: w.id, x: x.id, out: out.id, act };
        let epilogue = match act {
            Activation::Silu => MatmulOut::SwiGlu(&out.buf),
            Activation::GeluTanh => MatmulOut::GeGlu(&out.buf),
        };
        self.matmul_out(key, w, x, epilogue, max_tokens);
    }

    fn add_bias(&mut self, x: &mut Self::Buffer, b: &Self::Weight, n_tokens: usize) {
        let max_tokens = x.buf.len() / (b.w.rows() * b.w.cols());
        let key = OpKey::AddBias { x: x.id, b: b.id };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec.run(key, n_tokens, || ctx.prepare_add_bias(&x.buf, 0, &b.w, max_tokens, step).map(Prepared::Op));
    }

    fn glu(&mut self, gate: &mut Self::Buffer, up: &Self::Buffer, len: usize, act: Activation) {
        let n = self.n_now().max(1);
        let width = len / n;
        let max_tokens = gate.buf.len().min(up.buf.len()) / width.max(1);
        let key = OpKey::Glu { gate: gate.id, up: up.id, width: width as u32, act };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec
            .run(key, n, || ctx.prepare_glu(act, &gate.buf, 0, &up.buf, 0, width, max_tokens, step).map(Prepared::Op));
    }

    fn softcap(&mut self, x: &mut Self::Buffer, len: usize, cap: f32) {
        let n = self.n_now().max(1);
        let width = len / n;
        let max_tokens = x.buf.len() / width.max(1);
        let key = OpKey::Softcap { x: x.id, width: width as u32, cap: cap.to_bits() };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec.run(key, n, || ctx.prepare_softcap(&x.buf, 0, width, cap, max_tokens, step).map(Prepared::Op));
    }

    fn rope_store(
        &mut self,
        q: &mut Self::Buffer,
        k: &mut Self::Buffer,
        v: &Self::Buffer,
        qk_norm: Option<[&Self::Weight; 2]>,
        eps: f32,
        cache: &mut Self::KvCache,
        layer: usize,
        shape: AttnShape,
        n_tokens: usize,
        _pos0: usize,
    ) {
        let [qw, kw, vw] = shape.qkv_widths();
        let max_tokens = (q.buf.len() / qw).min(k.buf.len() / kw).min(v.buf.len() / vw);
        let key = OpKey::RopeStore {
            q: q.id,
            k: k.id,
            v: v.id,
            cache: cache.id,
            layer: layer as u32,
            norms: qk_norm.map(|[a, b]| (a.id, b.id)),
        };
        let (ctx, step) = (&self.ctx, &self.step);
        let Some((rope, ff)) = self.ropes.get(shape.rope) else {
            self.rec.error = Some(GpuError::Invalid(format!("rope {} used before set_ropes", shape.rope)));
            return;
        };
        self.rec.run(key, n_tokens, || {
            let norms = qk_norm.map(|[qn, kn]| HeadNorms { q_norm: &qn.w, k_norm: &kn.w, eps });
            ctx.prepare_qk_rope_store(
                (&q.buf, &k.buf, &v.buf),
                (&cache.k[layer], &cache.v[layer]),
                shape,
                rope,
                ff.as_ref(),
                RopeAngles::Product,
                norms,
                max_tokens,
                step,
            )
            .map(Prepared::Op)
        });
    }

    fn attention(
        &mut self,
        q: &Self::Buffer,
        cache: &Self::KvCache,
        layer: usize,
        shape: AttnShape,
        n_tokens: usize,
        _pos0: usize,
        out: &mut Self::Buffer,
    ) {
        let max_tokens =
            (q.buf.len() / (shape.n_head * shape.head_dim)).min(out.buf.len() / (shape.n_head * shape.head_dim_v));
        let key = OpKey::Attention { q: q.id, cache: cache.id, layer: layer as u32, out: out.id };
        let (ctx, step) = (&self.ctx, &self.step);
        self.rec.run(key, n_tokens, || {
            ctx.prepare_attention(&q.buf, &cache.k[layer], &cache.v[layer], &out.buf, shape, max_tokens, step)
                .map(Prepared::Op)
        });
    }

    fn copy(&mut self, src: &Self::Buffer, src_off: usize, dst: &mut Self::Buffer, dst_off: usize, len: usize) {
        if src_off + len > src.buf.len() || dst_off + len > dst.buf.len() {
            self.rec.error = Some(GpuError::Invalid(format!("copy of {len} values out of bounds")));
            return;
        }
        self.rec.copy(&src.buf.buffer, src_off, &dst.buf.buffer, dst_off, len);
    }

    async fn read(&mut self, x: &Self::Buffer, offset: usize, len: usize, out: &mut [f32]) -> Result<()> {
        Self::staging(&mut self.staging, &self.ctx, "readback", len)?;
        let staging = self.staging.as_ref().expect("made above");
        self.rec.read_f32(&self.ctx, staging, &x.buf, offset, &mut out[..len]).await.map_err(gpu_err)
    }

    async fn argmax(&mut self, x: &Self::Buffer, offset: usize, len: usize) -> Result<u32> {
        if !self.helper_buffer(|s| &mut s.argmax_out, "argmax", 1) {
            return Err(gpu_err(self.rec.error.take().expect("set by helper_buffer")));
        }
        Self::staging(&mut self.id_staging, &self.ctx, "argmax_readback", 1)?;
        let out = self.argmax_out.as_ref().expect("made above");
        let key = OpKey::Argmax { x: x.id, offset: offset as u32, len: len as u32 };
        let ctx = &self.ctx;
        self.rec.run(key, 1, || ctx.prepare_argmax(&x.buf, offset, len, out).map(Prepared::Op));
        let staging = self.id_staging.as_ref().expect("made above");
        self.rec.read_u32(&self.ctx, staging, out).await.map_err(gpu_err)
    }

    /// The top-k kernel for the smallest of a few fixed sizes that covers `k` (each prepared
    /// at load, so sampling prepares nothing), then 8 bytes per candidate read back. Beyond
    /// `MAX_CANDIDATES`, the row is read and selected on the host.
    async fn top_candidates(
        &mut self,
        x: &Self::Buffer,
        offset: usize,
        len: usize,
        k: usize,
    ) -> Result<Vec<(u32, f32)>> {
        let Some(&size) = TOP_K_SIZES.iter().find(|&&s| s >= k) else {
            return crate::backend::read_top_candidates(self, x, offset, len, k).await;
        };
        self.record_top_k(x, offset, len, size)?;
        let words = &mut self.top_k_words;
        words.resize(2 * size.min(len), 0);
        let (out, staging) = (self.top_k_out.as_ref().expect("made"), self.top_k_staging.as_ref().expect("made"));
        self.rec.read_words(&self.ctx, staging, out, words).await.map_err(gpu_err)?;
        Ok(words.chunks_exact(2).map(|w| (w[0], f32::from_bits(w[1]))).collect())
    }

    fn records(&self) -> bool {
        true
    }

    fn prepare_reads(&mut self, x: &Self::Buffer, len: usize) -> Result<()> {
        Self::staging(&mut self.staging, &self.ctx, "readback", len)?;
        Self::staging(&mut self.id_staging, &self.ctx, "argmax_readback", 1)?;
        if !self.helper_buffer(|s| &mut s.argmax_out, "argmax", 1) {
            return Err(gpu_err(self.rec.error.take().expect("set by helper_buffer")));
        }
        // Recorded and dropped with the load's warm-up step: only the preparation stays.
        let out = self.argmax_out.as_ref().expect("made above");
        let key = OpKey::Argmax { x: x.id, offset: 0, len: len as u32 };
        let ctx = &self.ctx;
        self.rec.run(key, 1, || ctx.prepare_argmax(&x.buf, 0, len, out).map(Prepared::Op));
        for size in TOP_K_SIZES {
            self.record_top_k(x, 0, len, size)?;
        }
        Ok(())
    }

    fn discard(&mut self) -> Result<()> {
        self.rec.discard().map_err(gpu_err)?;
        self.ctx.check().map_err(gpu_err)
    }

    fn counters(&self) -> Counters {
        self.rec.counters
    }
}
