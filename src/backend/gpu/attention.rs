//! The position-dependent ops: rope, the KV-cache store and causal attention
//! (`shaders/rope.wgsl`, `shaders/kv_store.wgsl`, `shaders/attention.wgsl`). Like the other
//! [`GpuOp`]s they read `n_tokens` and `pos0` from the [`StepUniform`].

use super::kernels::{KernelFamily, KernelKey};
use super::ops::{ATTENTION_MAX_HEAD_DIM, GpuOp, StepUniform};
use super::weights::{GpuBuffer, GpuWeight};
use super::{GpuContext, GpuError};
use crate::backend::AttnShape;
use crate::model::config::{RopeConfig, RopeStyle};

/// `shaders/rope_angle.wgsl`'s `RopeAngle`: how a rope turns pair i at a position.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RopeAngleParams {
    theta_scale: f32,
    exp_step: f32,
    product: u32,
    freq_scale: f32,
    ext_factor: f32,
    corr_lo: f32,
    corr_hi: f32,
    mscale: f32,
}

impl RopeAngleParams {
    fn new(rope: &RopeConfig, angles: RopeAngles) -> Self {
        RopeAngleParams {
            // Exactly as `RopeTable::angles` rounds it.
            theta_scale: rope.theta_scale(),
            exp_step: (-2.0 * (rope.freq_base as f64).log2() / rope.n_rot as f64) as f32,
            product: (angles == RopeAngles::Product) as u32,
            freq_scale: rope.freq_scale,
            ext_factor: rope.ext_factor,
            corr_lo: rope.corr_dims[0],
            corr_hi: rope.corr_dims[1],
            mscale: rope.mscale,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct RopeParams {
    rope: RopeAngleParams,
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    has_ff: u32,
    _pad: [u32; 3],
}

/// How `rope.wgsl` computes the angle pos · freq_base^(-2i/n_rot) of pair i.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RopeAngles {
    /// As ggml's CPU backend (and this crate's): pos · theta_scale^i by i repeated f32
    /// products, so the angles equal the CPU's bit for bit (i < n_rot / 2 products each).
    #[default]
    Product,
    /// pos · exp2(i · exp_step): one exp2, within a few ulp of the CPU's angle (at pos 3000 that
    /// is ~1 ulp of a ~3000 rad angle, 2.4e-4 rad).
    Exp2,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct KvParams {
    k_width: u32,
    v_width: u32,
    n_ctx: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct AttnParams {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    head_dim_v: u32,
    scale: f32,
    n_ctx: u32,
    /// 0: every position.
    window: u32,
    /// 0: no soft-capping.
    softcap: f32,
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct QkParams {
    rope: RopeAngleParams,
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    head_dim_v: u32,
    n_rot: u32,
    neox: u32,
    has_ff: u32,
    has_norm: u32,
    eps: f32,
    n_ctx: u32,
    _pad: [u32; 2],
}

/// Qwen3's per-head q/k norm, for [`GpuContext::prepare_qk_rope_store`].
pub struct HeadNorms<'a> {
    pub q_norm: &'a GpuWeight,
    pub k_norm: &'a GpuWeight,
    pub eps: f32,
}

fn u32_of(label: &str, v: usize) -> Result<u32, GpuError> {
    u32::try_from(v).map_err(|_| GpuError::Invalid(format!("{label}: {v} exceeds u32")))
}

fn invalid(label: &str, msg: String) -> GpuError {
    GpuError::Invalid(format!("{label}: {msg}"))
}

impl GpuContext {
    /// Rotates every head of `x` ([n_tokens][n_heads * head_dim] from offset 0) in place for
    /// positions pos0.. (from the step uniform). `freq_factors`: llama3's `rope_freqs`
    /// (>= n_rot / 2 values), else none. `angles`: see [`RopeAngles`].
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_rope(
        &self,
        x: &GpuBuffer,
        n_heads: usize,
        head_dim: usize,
        rope: &RopeConfig,
        freq_factors: Option<&GpuBuffer>,
        angles: RopeAngles,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::Rope);
        let label = key.label();
        if rope.n_rot < 2 || !rope.n_rot.is_multiple_of(2) || rope.n_rot > head_dim {
            return Err(invalid(&label, format!("n_rot {} with head_dim {head_dim}", rope.n_rot)));
        }
        if max_tokens * n_heads * head_dim > x.len() {
            return Err(invalid(&label, format!("x has {} values, {max_tokens} tokens need more", x.len())));
        }
        if let Some(f) = freq_factors
            && f.len() < rope.n_rot / 2
        {
            return Err(invalid(&label, format!("{} frequency factors, {} needed", f.len(), rope.n_rot / 2)));
        }
        // Without factors the binding still needs a buffer: one value the shader never reads.
        let dummy = match freq_factors {
            Some(_) => None,
            None => Some(self.alloc_f32("rope:no_freq_factors", 1)?),
        };
        let ff = &freq_factors.or(dummy.as_ref()).ok_or_else(|| invalid(&label, "no factor buffer".into()))?.buffer;
        let params = RopeParams {
            rope: RopeAngleParams::new(rope, angles),
            n_heads: u32_of(&label, n_heads)?,
            head_dim: u32_of(&label, head_dim)?,
            n_rot: u32_of(&label, rope.n_rot)?,
            neox: (rope.style == RopeStyle::Neox) as u32,
            has_ff: freq_factors.is_some() as u32,
            _pad: [0; 3],
        };
        let buffers = vec![(0, &x.buffer), (1, ff), (3, &step.buffer)];
        let per_token = n_heads * rope.n_rot / 2;
        let mut op = self.build_op(key, label, 2, &[(params, buffers)], per_token_groups(per_token), max_tokens)?;
        if let Some(d) = dummy {
            op.keep(d.buffer);
        }
        Ok(op)
    }

    /// Copies the step's keys `k[t * k_width ..]` and values `v[t * v_width ..]` to rows pos0 + t
    /// of one layer's caches (`[n_ctx][width]` each), for t < n_tokens.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_kv_store(
        &self,
        k: &GpuBuffer,
        v: &GpuBuffer,
        k_cache: &GpuBuffer,
        v_cache: &GpuBuffer,
        k_width: usize,
        v_width: usize,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::KvStore(k_cache.elem()));
        let label = key.label();
        let n_ctx = kv_ctx(&label, k_cache, v_cache, k_width, v_width)?;
        if max_tokens * k_width > k.len() || max_tokens * v_width > v.len() {
            return Err(invalid(&label, format!("k/v hold fewer than {max_tokens} tokens")));
        }
        let all = [&k.buffer, &v.buffer, &k_cache.buffer, &v_cache.buffer];
        for i in 0..4 {
            for j in i + 1..4 {
                if all[i] == all[j] {
                    return Err(invalid(&label, "k, v and the two caches must be four buffers".into()));
                }
            }
        }
        let params = KvParams {
            k_width: u32_of(&label, k_width)?,
            v_width: u32_of(&label, v_width)?,
            n_ctx: u32_of(&label, n_ctx)?,
            _pad: 0,
        };
        let buffers =
            vec![(0, &k.buffer), (1, &v.buffer), (2, &k_cache.buffer), (3, &v_cache.buffer), (5, &step.buffer)];
        let groups = per_token_groups(k_width.max(v_width));
        self.build_op(key, label, 4, &[(params, buffers)], groups, max_tokens)
    }

    /// out[t][h * head_dim_v ..] = causal softmax(scale · q[t][h] · k[j]) · v[j] over the cached
    /// positions j <= pos0 + t of one layer (GQA: kv head h / (n_head / n_head_kv)). Run
    /// [`GpuContext::prepare_kv_store`]'s op first in the same encoder.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_attention(
        &self,
        q: &GpuBuffer,
        k_cache: &GpuBuffer,
        v_cache: &GpuBuffer,
        out: &GpuBuffer,
        shape: AttnShape,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::Attention(k_cache.elem()));
        let label = key.label();
        let s = shape;
        if s.n_head == 0 || s.n_head_kv == 0 || !s.n_head.is_multiple_of(s.n_head_kv) {
            return Err(invalid(&label, format!("{} heads over {} kv heads", s.n_head, s.n_head_kv)));
        }
        if s.head_dim == 0 || s.head_dim > ATTENTION_MAX_HEAD_DIM || s.head_dim_v > ATTENTION_MAX_HEAD_DIM {
            return Err(invalid(
                &label,
                format!("head dims {}/{} (1..={ATTENTION_MAX_HEAD_DIM})", s.head_dim, s.head_dim_v),
            ));
        }
        let n_ctx = kv_ctx(&label, k_cache, v_cache, s.n_head_kv * s.head_dim, s.n_head_kv * s.head_dim_v)?;
        if max_tokens * s.n_head * s.head_dim > q.len() || max_tokens * s.n_head * s.head_dim_v > out.len() {
            return Err(invalid(&label, format!("q or out holds fewer than {max_tokens} tokens")));
        }
        if out.buffer == q.buffer || out.buffer == k_cache.buffer || out.buffer == v_cache.buffer {
            return Err(invalid(&label, "out must not alias q or the caches".into()));
        }
        let params = AttnParams {
            n_head: u32_of(&label, s.n_head)?,
            n_head_kv: u32_of(&label, s.n_head_kv)?,
            head_dim: u32_of(&label, s.head_dim)?,
            head_dim_v: u32_of(&label, s.head_dim_v)?,
            scale: s.scale,
            n_ctx: u32_of(&label, n_ctx)?,
            window: u32_of(&label, s.window.unwrap_or(0))?,
            softcap: s.softcap.unwrap_or(0.0),
        };
        let buffers =
            vec![(0, &q.buffer), (1, &k_cache.buffer), (2, &v_cache.buffer), (3, &out.buffer), (5, &step.buffer)];
        self.build_op(key, label, 4, &[(params, buffers)], super::ops::one_group_per(s.n_head), max_tokens)
    }
}

fn per_token_groups(per_token: usize) -> super::ops::Groups {
    super::ops::Groups::PerToken { per_token, per_group: 64 }
}

/// Positions the caches hold, checked to agree (in length and value type).
fn kv_ctx(label: &str, kc: &GpuBuffer, vc: &GpuBuffer, kw: usize, vw: usize) -> Result<usize, GpuError> {
    if kw == 0 || vw == 0 {
        return Err(invalid(label, "zero-width KV cache".into()));
    }
    if kc.elem() != vc.elem() {
        return Err(invalid(label, format!("k cache of {} values, v cache of {}", kc.elem().name(), vc.elem().name())));
    }
    let n_ctx = kc.len() / kw;
    if n_ctx == 0 || vc.len() / vw < n_ctx || kc.buffer == vc.buffer {
        return Err(invalid(label, format!("caches of {} and {} values for widths {kw}/{vw}", kc.len(), vc.len())));
    }
    Ok(n_ctx)
}

impl GpuContext {
    /// One dispatch for what sits between the q/k/v projections and attention: each q head is
    /// normalised (when `norms` is given: Qwen3) and rotated in place, each k head normalised,
    /// rotated and written to row pos0 + t of `k_cache`, and each v head copied to `v_cache`.
    /// Same arithmetic as head norm + rope + kv_store (tests/gpu_ops.rs checks it bit for bit).
    #[allow(clippy::too_many_arguments)]
    pub fn prepare_qk_rope_store(
        &self,
        (q, k, v): (&GpuBuffer, &GpuBuffer, &GpuBuffer),
        (k_cache, v_cache): (&GpuBuffer, &GpuBuffer),
        shape: AttnShape,
        rope: &RopeConfig,
        freq_factors: Option<&GpuBuffer>,
        angles: RopeAngles,
        norms: Option<HeadNorms<'_>>,
        max_tokens: usize,
        step: &StepUniform,
    ) -> Result<GpuOp, GpuError> {
        let key = KernelKey::op(KernelFamily::QkRopeStore(k_cache.elem()));
        let label = key.label();
        let s = shape;
        if s.n_head == 0
            || s.n_head_kv == 0
            || s.head_dim > ATTENTION_MAX_HEAD_DIM
            || s.head_dim_v > ATTENTION_MAX_HEAD_DIM
        {
            return Err(invalid(
                &label,
                format!("{}/{} heads of {}/{}", s.n_head, s.n_head_kv, s.head_dim, s.head_dim_v),
            ));
        }
        if rope.n_rot < 2 || !rope.n_rot.is_multiple_of(2) || rope.n_rot > s.head_dim {
            return Err(invalid(&label, format!("n_rot {} with head_dim {}", rope.n_rot, s.head_dim)));
        }
        let (kw, vw) = (s.n_head_kv * s.head_dim, s.n_head_kv * s.head_dim_v);
        let n_ctx = kv_ctx(&label, k_cache, v_cache, kw, vw)?;
        if max_tokens * s.n_head * s.head_dim > q.len() || max_tokens * kw > k.len() || max_tokens * vw > v.len() {
            return Err(invalid(&label, format!("q, k or v holds fewer than {max_tokens} tokens")));
        }
        let all = [&q.buffer, &k.buffer, &v.buffer, &k_cache.buffer, &v_cache.buffer];
        for i in 0..all.len() {
            for j in i + 1..all.len() {
                if all[i] == all[j] {
                    return Err(invalid(&label, "q, k, v and the caches must be five buffers".into()));
                }
            }
        }
        if let Some(f) = freq_factors
            && f.len() < rope.n_rot / 2
        {
            return Err(invalid(&label, format!("{} frequency factors, {} needed", f.len(), rope.n_rot / 2)));
        }
        let norm_buf = |w: &GpuWeight| {
            if w.ty() != crate::quant::GgmlType::F32 || w.n_pieces() != 1 || w.rows() * w.cols() != s.head_dim {
                return Err(invalid(&label, format!("{}: need {} F32 values", w.name(), s.head_dim)));
            }
            Ok(w.pieces[0].buffer.clone())
        };
        // Absent inputs still need bound buffers: one value the shader never reads.
        let dummy = self.alloc_f32("qk_rope_store:unused", 1)?;
        let ff = freq_factors.map_or(&dummy.buffer, |f| &f.buffer).clone();
        let (qn, kn, eps) = match &norms {
            Some(n) => (norm_buf(n.q_norm)?, norm_buf(n.k_norm)?, n.eps),
            None => (dummy.buffer.clone(), dummy.buffer.clone(), 0.0),
        };
        let params = QkParams {
            rope: RopeAngleParams::new(rope, angles),
            n_head: u32_of(&label, s.n_head)?,
            n_head_kv: u32_of(&label, s.n_head_kv)?,
            head_dim: u32_of(&label, s.head_dim)?,
            head_dim_v: u32_of(&label, s.head_dim_v)?,
            n_rot: u32_of(&label, rope.n_rot)?,
            neox: (rope.style == RopeStyle::Neox) as u32,
            has_ff: freq_factors.is_some() as u32,
            has_norm: norms.is_some() as u32,
            eps,
            n_ctx: u32_of(&label, n_ctx)?,
            _pad: [0; 2],
        };
        let buffers = vec![
            (0, &q.buffer),
            (1, &k.buffer),
            (2, &v.buffer),
            (3, &k_cache.buffer),
            (4, &v_cache.buffer),
            (5, &ff),
            (6, &qn),
            (7, &kn),
            (9, &step.buffer),
        ];
        let groups = super::ops::one_group_per(s.n_head + s.n_head_kv);
        let mut op = self.build_op(key, label, 8, &[(params, buffers)], groups, max_tokens)?;
        op.keep(dummy.buffer);
        Ok(op)
    }
}
