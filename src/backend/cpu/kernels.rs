//! Scalar CPU kernels with ggml's arithmetic: sums of squares and softmax denominators in f64,
//! rope angles built by repeated multiplication in f32, exactly as ggml's CPU backend does.

use crate::model::config::{RopeConfig, RopeStyle};
use crate::model::rope::yarn_ramp;
use half::f16;

/// x / sqrt(mean(x²) + eps) * w (ggml_rms_norm + mul).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|&v| (v as f64) * (v as f64)).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// Per-position cos/sin of every rotated pair, as ggml_rope_cache_init computes them
/// (`rope_yarn` included: YaRN's ramp between interpolated and extrapolated angles, and the
/// magnitude factor on cos and sin).
pub struct RopeTable {
    cfg: RopeConfig,
}

impl RopeTable {
    pub fn new(cfg: &RopeConfig) -> Self {
        RopeTable { cfg: cfg.clone() }
    }

    pub fn config(&self) -> &RopeConfig {
        &self.cfg
    }

    /// Fills `cache` with (cos, sin) for each pair at position `pos`.
    pub fn angles(&self, pos: usize, cache: &mut Vec<(f32, f32)>) {
        let c = &self.cfg;
        cache.clear();
        let theta_scale = c.theta_scale();
        let mut theta = pos as f32;
        for i in 0..c.n_rot / 2 {
            let ff = c.freq_factors.as_ref().map_or(1.0, |f| f[i]);
            let extrap = theta / ff;
            let mut t = c.freq_scale * extrap;
            if c.ext_factor != 0.0 {
                let mix = yarn_ramp(c.corr_dims, i) * c.ext_factor;
                t = t * (1.0 - mix) + extrap * mix;
            }
            cache.push((t.cos() * c.mscale, t.sin() * c.mscale));
            theta *= theta_scale;
        }
    }

    /// Rotates one head in place.
    pub fn apply(&self, head: &mut [f32], cache: &[(f32, f32)]) {
        let half = self.cfg.n_rot / 2;
        for (i, &(c, s)) in cache.iter().enumerate() {
            let (a, b) = match self.cfg.style {
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

/// gelu(g) * u with ggml's CPU GELU: the tanh approximation looked up in a table of f16 values
/// (GGML_GELU_FP16), i.e. g rounded to f16, gelu in f32, rounded to f16 again; 0 at or below
/// -10 and g itself at or above 10, as the table's callers clamp.
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = gelu_f16_table(*g) * u;
    }
}

/// ggml_gelu_f32 through the f16 table.
pub fn gelu_f16_table(x: f32) -> f32 {
    if x <= -10.0 {
        return 0.0;
    }
    if x >= 10.0 {
        return x;
    }
    let h = f16::from_f32(x).to_f32();
    f16::from_f32(gelu_tanh(h)).to_f32()
}

/// GELU, tanh approximation, in f32 as ggml writes it.
pub fn gelu_tanh(x: f32) -> f32 {
    #[allow(clippy::excessive_precision)]
    const SQRT_2_OVER_PI: f32 = 0.797_884_560_802_865_355_879_892_119_868_76;
    const COEF_A: f32 = 0.044715;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + COEF_A * x * x)).tanh())
}

/// x = cap · tanh(x / cap), as ggml's scale, tanh, scale.
pub fn softcap(x: &mut [f32], cap: f32) {
    let inv = 1.0 / cap;
    for v in x {
        *v = (*v * inv).tanh() * cap;
    }
}
