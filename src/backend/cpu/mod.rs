//! The CPU backend: the reference every other backend is tested against.

mod kernels;
mod kv_cache;
mod matmul;

pub use kernels::{RopeTable, dot_f32, gelu_f16_table, gelu_tanh, rms_norm, softmax_scaled};
pub use kv_cache::{CpuKvCache, store_kv};

use super::{Activation, AttnShape, Backend, KvType};
use crate::model::config::RopeConfig;
use crate::quant::{GgmlType, dequantize_row};
use crate::{Error, Result};
use matmul::QuantizedActs;

pub struct CpuWeight {
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    pub bytes: Vec<u8>,
    /// Small tensors (norms, biases) are kept dequantized.
    pub f32: Option<Vec<f32>>,
}

/// A weight whose bytes are arriving: the buffer it will own, zeroed, and how much is filled.
pub struct CpuUpload {
    name: String,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    bytes: Vec<u8>,
    written: usize,
}

pub struct CpuBackend {
    /// `None` for one thread: no pool at all, which also keeps the single-threaded build free of
    /// thread spawning (there are no threads in a plain wasm32 module).
    pool: Option<rayon::ThreadPool>,
    ropes: Vec<RopeTable>,
    acts: QuantizedActs,
    angles: Vec<(f32, f32)>,
    scores: Vec<f32>,
    /// Scratch for one normalised head and for a transposed matmul result; grown, never shrunk.
    head: Vec<f32>,
    matmul_tmp: Vec<f32>,
    /// The whole output of a fused projection (q|k|v or gate|up rows) before it is split.
    fused: Vec<f32>,
}

/// A zeroed buffer, or a typed error when memory runs out (an oversized context must not abort
/// the process).
fn zeroed(name: &str, len: usize) -> Result<Vec<f32>> {
    zeroed_vec(name, len, 0.0)
}

fn zeroed_vec<T: Clone>(name: &str, len: usize, zero: T) -> Result<Vec<T>> {
    let mut v = Vec::new();
    let mib = (len as u64 * std::mem::size_of::<T>() as u64) >> 20;
    v.try_reserve_exact(len).map_err(|_| Error::OutOfMemory(format!("{name}: {mib} MiB")))?;
    v.resize(len, zero);
    Ok(v)
}

/// Tensors up to this many values are also kept as f32 (norm weights, biases).
const KEEP_F32_MAX: usize = 1 << 16;

impl CpuBackend {
    /// `threads` = 0 uses every available core.
    pub fn new(threads: usize) -> Result<Self> {
        let pool = match threads {
            1 => None,
            _ => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| Error::InvalidArgument(format!("cannot start {threads} threads: {e}")))?,
            ),
        };
        Ok(CpuBackend {
            pool,
            ropes: Vec::new(),
            acts: QuantizedActs { bytes: Vec::new(), row_bytes: 0 },
            angles: Vec::new(),
            scores: Vec::new(),
            head: Vec::new(),
            matmul_tmp: Vec::new(),
            fused: Vec::new(),
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }

    /// `self.fused[t * w.rows + r]` = w[r]·x[t] for t < n_tokens.
    fn matmul_fused(&mut self, w: &CpuWeight, x: &[f32], n_tokens: usize) {
        matmul::quantize_acts(w.ty, x, n_tokens, w.cols, &mut self.acts);
        self.fused.resize(n_tokens * w.rows, 0.0);
        matmul::matmul(self.pool.as_ref(), w, &self.acts, n_tokens, &mut self.matmul_tmp, &mut self.fused);
    }

    /// Normalises every `w.len()`-wide head of the first `n_rows` heads of `x` in place.
    pub fn head_norm(&mut self, x: &mut [f32], w: &CpuWeight, n_rows: usize, eps: f32) {
        let w = w.f32.as_ref().expect("norm weights are small");
        let d = w.len();
        self.head.resize(d, 0.0);
        for head in x[..n_rows * d].chunks_exact_mut(d) {
            rms_norm(head, w, eps, &mut self.head);
            head.copy_from_slice(&self.head);
        }
    }

    /// Rotates every head of tokens at positions pos0.. in place with rope 0.
    pub fn rope(&mut self, x: &mut [f32], n_tokens: usize, n_heads: usize, head_dim: usize, pos0: usize) {
        self.rope_with(0, x, n_tokens, n_heads, head_dim, pos0)
    }

    /// Rotates every head of tokens at positions pos0.. in place with rope `which`.
    pub fn rope_with(
        &mut self,
        which: usize,
        x: &mut [f32],
        n_tokens: usize,
        n_heads: usize,
        head_dim: usize,
        pos0: usize,
    ) {
        let rope = &self.ropes[which];
        let width = n_heads * head_dim;
        for t in 0..n_tokens {
            rope.angles(pos0 + t, &mut self.angles);
            for head in x[t * width..(t + 1) * width].chunks_exact_mut(head_dim) {
                rope.apply(head, &self.angles);
            }
        }
    }
}

/// gate = act(gate) * up.
fn glu(gate: &mut [f32], up: &[f32], act: Activation) {
    match act {
        Activation::Silu => kernels::swiglu(gate, up),
        Activation::GeluTanh => kernels::geglu(gate, up),
    }
}

fn add_rows(x: &mut [f32], b: &[f32], n_tokens: usize) {
    for row in x[..n_tokens * b.len()].chunks_exact_mut(b.len()) {
        row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
    }
}

impl Backend for CpuBackend {
    type Weight = CpuWeight;
    type Buffer = Vec<f32>;
    type KvCache = CpuKvCache;
    type Upload = CpuUpload;

    fn name(&self) -> &'static str {
        "cpu"
    }

    fn max_fused_bytes(&self) -> usize {
        usize::MAX
    }

    fn upload_weight(&mut self, name: &str, ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) -> Result<CpuWeight> {
        let mut up = self.begin_weight(name, ty, rows, cols)?;
        if bytes.len() != up.bytes.len() {
            return Err(Error::InvalidModel(format!("{name}: {} bytes for {rows}x{cols} {ty}", bytes.len())));
        }
        up.bytes.copy_from_slice(bytes);
        up.written = bytes.len();
        self.finish_weight(up)
    }

    fn begin_weight(&mut self, name: &str, ty: GgmlType, rows: usize, cols: usize) -> Result<CpuUpload> {
        let row_bytes = ty
            .row_bytes(cols)
            .ok_or_else(|| Error::InvalidModel(format!("{name}: {cols} columns are not whole {ty} blocks")))?;
        let len = row_bytes
            .checked_mul(rows)
            .ok_or_else(|| Error::InvalidModel(format!("{name}: {rows}x{cols} {ty} overflows")))?;
        let mut bytes = Vec::new();
        bytes.try_reserve_exact(len).map_err(|_| Error::OutOfMemory(format!("{name}: {} MiB", len >> 20)))?;
        bytes.resize(len, 0);
        Ok(CpuUpload { name: name.to_string(), ty, rows, cols, bytes, written: 0 })
    }

    fn write_weight(&mut self, up: &mut CpuUpload, offset: usize, bytes: &[u8]) -> Result<()> {
        let dst = up.bytes.get_mut(offset..offset + bytes.len()).ok_or_else(|| {
            Error::InvalidModel(format!("{}: bytes {offset}..{} past its end", up.name, offset + bytes.len()))
        })?;
        dst.copy_from_slice(bytes);
        up.written += bytes.len();
        Ok(())
    }

    fn finish_weight(&mut self, up: CpuUpload) -> Result<CpuWeight> {
        let CpuUpload { name, ty, rows, cols, bytes, written } = up;
        if written != bytes.len() {
            return Err(Error::InvalidModel(format!("{name}: {written} of {} bytes arrived", bytes.len())));
        }
        let f32 = if rows * cols <= KEEP_F32_MAX {
            let row_bytes = bytes.len() / rows.max(1);
            let mut v = vec![0f32; rows * cols];
            for r in 0..rows {
                dequantize_row(ty, &bytes[r * row_bytes..(r + 1) * row_bytes], &mut v[r * cols..(r + 1) * cols])?;
            }
            Some(v)
        } else {
            None
        };
        Ok(CpuWeight { ty, rows, cols, bytes, f32 })
    }

    fn alloc(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        zeroed(name, len)
    }

    fn alloc_kv(&mut self, positions: &[usize], k_width: usize, v_width: usize, ty: KvType) -> Result<CpuKvCache> {
        CpuKvCache::new(positions, k_width, v_width, ty)
    }

    fn set_ropes(&mut self, ropes: &[RopeConfig]) -> Result<()> {
        for rope in ropes {
            if let Some(f) = &rope.freq_factors
                && f.len() < rope.n_rot / 2
            {
                return Err(Error::InvalidModel(format!(
                    "rope factors: {} values, {} needed",
                    f.len(),
                    rope.n_rot / 2
                )));
            }
        }
        self.ropes = ropes.iter().map(RopeTable::new).collect();
        Ok(())
    }

    fn begin_step(&mut self, _n_tokens: usize, _pos0: usize) {}

    fn embed(&mut self, table: &CpuWeight, tokens: &[u32], scale: f32, out: &mut Vec<f32>) {
        let cols = table.cols;
        let row_bytes = table.bytes.len() / table.rows;
        for (t, &id) in tokens.iter().enumerate() {
            let src = &table.bytes[id as usize * row_bytes..(id as usize + 1) * row_bytes];
            let row = &mut out[t * cols..(t + 1) * cols];
            dequantize_row(table.ty, src, row).expect("row length checked at upload");
            if scale != 1.0 {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
    }

    fn rms_norm(&mut self, x: &Vec<f32>, w: &CpuWeight, n_tokens: usize, eps: f32, out: &mut Vec<f32>) {
        let w = w.f32.as_ref().expect("norm weights are small");
        let d = w.len();
        for t in 0..n_tokens {
            rms_norm(&x[t * d..(t + 1) * d], w, eps, &mut out[t * d..(t + 1) * d]);
        }
    }

    fn rms_norm_add(&mut self, y: &Vec<f32>, w: &CpuWeight, n_tokens: usize, eps: f32, x: &mut Vec<f32>) {
        let w = w.f32.as_ref().expect("norm weights are small");
        let d = w.len();
        self.head.resize(d, 0.0);
        for t in 0..n_tokens {
            rms_norm(&y[t * d..(t + 1) * d], w, eps, &mut self.head);
            x[t * d..(t + 1) * d].iter_mut().zip(&self.head).for_each(|(a, b)| *a += b);
        }
    }

    fn matmul(&mut self, w: &CpuWeight, x: &Vec<f32>, n_tokens: usize, out: &mut Vec<f32>) {
        matmul::quantize_acts(w.ty, x, n_tokens, w.cols, &mut self.acts);
        matmul::matmul(self.pool.as_ref(), w, &self.acts, n_tokens, &mut self.matmul_tmp, out);
    }

    fn matmul_add(&mut self, w: &CpuWeight, x: &Vec<f32>, n_tokens: usize, out: &mut Vec<f32>) {
        self.matmul_fused(w, x, n_tokens);
        let len = n_tokens * w.rows;
        out[..len].iter_mut().zip(&self.fused[..len]).for_each(|(a, b)| *a += b);
    }

    fn matmul_qkv(
        &mut self,
        w: &CpuWeight,
        bias: Option<&CpuWeight>,
        x: &Vec<f32>,
        n_tokens: usize,
        s: AttnShape,
        q: &mut Vec<f32>,
        k: &mut Vec<f32>,
        v: &mut Vec<f32>,
    ) {
        self.matmul_fused(w, x, n_tokens);
        if let Some(b) = bias {
            add_rows(&mut self.fused, b.f32.as_ref().expect("biases are small"), n_tokens);
        }
        let [qw, kw, vw] = s.qkv_widths();
        for (t, row) in self.fused.chunks_exact(w.rows).take(n_tokens).enumerate() {
            q[t * qw..(t + 1) * qw].copy_from_slice(&row[..qw]);
            k[t * kw..(t + 1) * kw].copy_from_slice(&row[qw..qw + kw]);
            v[t * vw..(t + 1) * vw].copy_from_slice(&row[qw + kw..]);
        }
    }

    fn matmul_glu(&mut self, w: &CpuWeight, x: &Vec<f32>, n_tokens: usize, act: Activation, out: &mut Vec<f32>) {
        self.matmul_fused(w, x, n_tokens);
        let h = w.rows / 2;
        for (t, row) in self.fused.chunks_exact_mut(w.rows).take(n_tokens).enumerate() {
            let (gate, up) = row.split_at_mut(h);
            glu(gate, up, act);
            out[t * h..(t + 1) * h].copy_from_slice(gate);
        }
    }

    fn add_bias(&mut self, x: &mut Vec<f32>, b: &CpuWeight, n_tokens: usize) {
        add_rows(x, b.f32.as_ref().expect("biases are small"), n_tokens);
    }

    fn glu(&mut self, gate: &mut Vec<f32>, up: &Vec<f32>, len: usize, act: Activation) {
        glu(&mut gate[..len], &up[..len], act);
    }

    fn softcap(&mut self, x: &mut Vec<f32>, len: usize, cap: f32) {
        kernels::softcap(&mut x[..len], cap);
    }

    fn rope_store(
        &mut self,
        q: &mut Vec<f32>,
        k: &mut Vec<f32>,
        v: &Vec<f32>,
        qk_norm: Option<[&CpuWeight; 2]>,
        eps: f32,
        cache: &mut CpuKvCache,
        layer: usize,
        s: AttnShape,
        n_tokens: usize,
        pos0: usize,
    ) {
        if let Some([qn, kn]) = qk_norm {
            self.head_norm(q, qn, n_tokens * s.n_head, eps);
            self.head_norm(k, kn, n_tokens * s.n_head_kv, eps);
        }
        self.rope_with(s.rope, q, n_tokens, s.n_head, s.head_dim, pos0);
        self.rope_with(s.rope, k, n_tokens, s.n_head_kv, s.head_dim, pos0);
        store_kv(k, v, cache, layer, n_tokens, pos0);
    }

    fn attention(
        &mut self,
        q: &Vec<f32>,
        cache: &CpuKvCache,
        layer: usize,
        s: AttnShape,
        n_tokens: usize,
        pos0: usize,
        out: &mut Vec<f32>,
    ) {
        let group = s.n_head / s.n_head_kv;
        let (qw, ow) = (s.n_head * s.head_dim, s.n_head * s.head_dim_v);
        let (scores, row) = (&mut self.scores, &mut self.head);
        for t in 0..n_tokens {
            let keys = s.first_key(pos0 + t)..pos0 + t + 1;
            for h in 0..s.n_head {
                let g = h / group;
                let qh = &q[t * qw + h * s.head_dim..t * qw + (h + 1) * s.head_dim];
                scores.clear();
                for j in keys.clone() {
                    scores.push(dot_f32(qh, cache.key(layer, j, g, s.head_dim, row)));
                }
                match s.softcap {
                    Some(cap) => {
                        // ggml: (q·k) · scale, then cap · tanh(· / cap), then the softmax.
                        scores.iter_mut().for_each(|x| *x *= s.scale);
                        kernels::softcap(scores, cap);
                        softmax_scaled(scores, 1.0);
                    }
                    None => softmax_scaled(scores, s.scale),
                }
                let oh = &mut out[t * ow + h * s.head_dim_v..t * ow + (h + 1) * s.head_dim_v];
                oh.fill(0.0);
                for (j, &p) in keys.clone().zip(scores.iter()) {
                    let vj = cache.value(layer, j, g, s.head_dim_v, row);
                    oh.iter_mut().zip(vj).for_each(|(o, &x)| *o += p * x);
                }
            }
        }
    }

    fn copy(&mut self, src: &Vec<f32>, src_off: usize, dst: &mut Vec<f32>, dst_off: usize, len: usize) {
        dst[dst_off..dst_off + len].copy_from_slice(&src[src_off..src_off + len]);
    }

    async fn read(&mut self, x: &Vec<f32>, offset: usize, len: usize, out: &mut [f32]) -> Result<()> {
        out[..len].copy_from_slice(&x[offset..offset + len]);
        Ok(())
    }

    async fn argmax(&mut self, x: &Vec<f32>, offset: usize, len: usize) -> Result<u32> {
        Ok(crate::sampler::argmax(&x[offset..offset + len]))
    }
}
