//! The CPU backend's KV cache: per layer, `[positions][width]` keys and values, kept as f32
//! (the default: attention reads them as they are) or f16 (half the memory, for the wasm heap
//! and phones; each row is widened to f32 before attention uses it, rounded as the GPU's f16
//! cache rounds, to nearest even). Position p lives in row p % positions: a layer that holds
//! fewer positions than the context (a sliding-window layer's ring) overwrites the oldest.

use super::zeroed_vec;
use crate::Result;
use crate::backend::KvType;
use half::f16;
// Slice conversions: F16C on x86 when the CPU has it (checked at run time), else software.
use half::slice::HalfFloatSliceExt;

pub struct CpuKvCache {
    /// Rows of each layer.
    pub(super) positions: Vec<usize>,
    pub(super) k_width: usize,
    pub(super) v_width: usize,
    k: Vec<Values>,
    v: Vec<Values>,
}

/// One layer's keys or values.
enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

impl Values {
    fn zeroed(len: usize, ty: KvType) -> Result<Values> {
        Ok(match ty {
            KvType::F32 => Values::F32(zeroed_vec("KV cache", len, 0.0)?),
            KvType::F16 => Values::F16(zeroed_vec("KV cache", len, f16::ZERO)?),
        })
    }

    fn write(&mut self, at: usize, x: &[f32]) {
        match self {
            Values::F32(v) => v[at..at + x.len()].copy_from_slice(x),
            Values::F16(v) => v[at..at + x.len()].convert_from_f32_slice(x),
        }
    }

    /// Values `at..at + n` as f32: the cache's own for f32, widened into `scratch` for f16.
    fn read<'a>(&'a self, at: usize, n: usize, scratch: &'a mut Vec<f32>) -> &'a [f32] {
        match self {
            Values::F32(v) => &v[at..at + n],
            Values::F16(v) => {
                scratch.resize(n, 0.0);
                v[at..at + n].convert_to_f32_slice(&mut scratch[..n]);
                &scratch[..n]
            }
        }
    }
}

impl CpuKvCache {
    pub(super) fn new(positions: &[usize], k_width: usize, v_width: usize, ty: KvType) -> Result<Self> {
        let layers = |width: usize| -> Result<Vec<Values>> {
            positions
                .iter()
                .map(|&n| {
                    let len = n.checked_mul(width).filter(|_| n > 0).ok_or_else(|| {
                        crate::Error::OutOfMemory(format!("KV cache of {n} positions of {width} values"))
                    })?;
                    Values::zeroed(len, ty)
                })
                .collect()
        };
        Ok(CpuKvCache { positions: positions.to_vec(), k_width, v_width, k: layers(k_width)?, v: layers(v_width)? })
    }

    /// Key at position `j` of kv head `g` (`head_dim` values) of `layer`.
    pub(super) fn key<'a>(
        &'a self,
        layer: usize,
        j: usize,
        g: usize,
        head_dim: usize,
        scratch: &'a mut Vec<f32>,
    ) -> &'a [f32] {
        let row = j % self.positions[layer];
        self.k[layer].read(row * self.k_width + g * head_dim, head_dim, scratch)
    }

    /// Value at position `j` of kv head `g` (`head_dim_v` values) of `layer`.
    pub(super) fn value<'a>(
        &'a self,
        layer: usize,
        j: usize,
        g: usize,
        head_dim_v: usize,
        scratch: &'a mut Vec<f32>,
    ) -> &'a [f32] {
        let row = j % self.positions[layer];
        self.v[layer].read(row * self.v_width + g * head_dim_v, head_dim_v, scratch)
    }
}

/// Copies the keys and values of `n_tokens` tokens to positions pos0.. of `layer`'s cache
/// (rows pos % positions, so a ring wraps around).
pub fn store_kv(k: &[f32], v: &[f32], cache: &mut CpuKvCache, layer: usize, n_tokens: usize, pos0: usize) {
    let (kw, vw, n) = (cache.k_width, cache.v_width, cache.positions[layer]);
    assert!(n_tokens <= n, "the model keeps batches within every layer's cache");
    for t in 0..n_tokens {
        let row = (pos0 + t) % n;
        cache.k[layer].write(row * kw, &k[t * kw..(t + 1) * kw]);
        cache.v[layer].write(row * vw, &v[t * vw..(t + 1) * vw]);
    }
}
