//! Scalar CPU kernels with ggml's arithmetic: sums of squares and softmax denominators in f64,
//! rope angles built by repeated multiplication in f32, exactly as ggml's CPU backend does.

use crate::model::config::{RopeConfig, RopeStyle};

/// x / sqrt(mean(x²) + eps) * w (ggml_rms_norm + mul).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// Per-position cos/sin of every rotated pair, as ggml_rope_cache_init computes them.
pub struct RopeTable {
    style: RopeStyle,
    n_rot: usize,
    freq_base: f32,
    freq_scale: f32,
    freq_factors: Option<Vec<f32>>,
}

impl RopeTable {
    pub fn new(cfg: &RopeConfig, freq_factors: Option<&[f32]>) -> Self {
        RopeTable {
            style: cfg.style,
            n_rot: cfg.n_rot,
            freq_base: cfg.freq_base,
            freq_scale: cfg.freq_scale,
            freq_factors: freq_factors.map(|f| f.to_vec()),
        }
    }

    /// Fills `cache` with (cos, sin) for each pair at position `pos`.
    pub fn angles(&self, pos: usize, cache: &mut Vec<(f32, f32)>) {
        cache.clear();
        let theta_scale = self.freq_base.powf(-2.0 / self.n_rot as f32);
        let mut theta = pos as f32;
        for i in 0..self.n_rot / 2 {
            let ff = self.freq_factors.as_ref().map_or(1.0, |f| f[i]);
            let t = self.freq_scale * (theta / ff);
            cache.push((t.cos(), t.sin()));
            theta *= theta_scale;
        }
    }

    /// Rotates one head in place.
    pub fn apply(&self, head: &mut [f32], cache: &[(f32, f32)]) {
        let half = self.n_rot / 2;
        for (i, &(c, s)) in cache.iter().enumerate() {
            let (a, b) = match self.style {
                RopeStyle::Normal => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + half),
            };
            let (x0, x1) = (head[a], head[b]);
            head[a] = x0 * c - x1 * s;
            head[b] = x0 * s + x1 * c;
        }
    }
}

/// In-place softmax of `x * scale` (ggml_soft_max_ext without mask: callers pass only the
/// positions the causal mask lets through).
pub fn softmax_scaled(x: &mut [f32], scale: f32) {
    let mut max = f32::NEG_INFINITY;
    for v in x.iter_mut() {
        *v *= scale;
        max = max.max(*v);
    }
    let mut sum = 0f64;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v as f64;
    }
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise; the order differs from a
    // straight sum by rounding only, as ggml's SIMD dot does.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        let (x, y) = (&a[c * 8..c * 8 + 8], &b[c * 8..c * 8 + 8]);
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

/// silu(g) * u, with ggml's silu x / (1 + e^-x).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}
