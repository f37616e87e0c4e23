//! Rotary position embeddings as a GGUF describes them and ggml computes them: the pairing
//! convention, the rotated width, the base, and the scaling kinds (linear, YaRN; Llama 3's and
//! LongRoPE's per-pair factors come from tensors, see [`Model`](super::Model)'s loader).

use crate::gguf::Metadata;
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Rotate (x[2i], x[2i+1]).
    Normal,
    /// Rotate (x[i], x[i + n_rot/2]).
    Neox,
}

/// One rope: every layer that shares it rotates q and k the same way at a position.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeConfig {
    pub style: RopeStyle,
    /// Leading dimensions of each head that are rotated (`rope.dimension_count`; Phi-4-mini
    /// rotates 96 of 128).
    pub n_rot: usize,
    pub freq_base: f32,
    /// 1 / linear scaling factor.
    pub freq_scale: f32,
    /// YaRN's extrapolation mix (0 = off: plain interpolation by `freq_scale`), with the pair
    /// range `corr_dims` over which it ramps from extrapolation to interpolation.
    pub ext_factor: f32,
    pub corr_dims: [f32; 2],
    /// Multiplies cos and sin (YaRN's and LongRoPE's attention factor); 1 for plain rope.
    pub mscale: f32,
    /// One divisor per rotated pair of every angle: Llama 3's `rope_freqs`, LongRoPE's long or
    /// short factors.
    pub freq_factors: Option<Vec<f32>>,
}

impl RopeConfig {
    /// A rope without scaling.
    pub fn plain(style: RopeStyle, n_rot: usize, freq_base: f32) -> Self {
        RopeConfig {
            style,
            n_rot,
            freq_base,
            freq_scale: 1.0,
            ext_factor: 0.0,
            corr_dims: [0.0, 0.0],
            mscale: 1.0,
            freq_factors: None,
        }
    }

    /// ggml's per-position rotation base: pos · theta_scale^i for pair i.
    pub fn theta_scale(&self) -> f32 {
        self.freq_base.powf(-2.0 / self.n_rot as f32)
    }
}

/// The scaling a GGUF asks for (`{arch}.rope.scaling.*`), resolved the way llama.cpp resolves
/// it into the parameters of `ggml_rope_ext`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RopeScaling {
    pub freq_scale: f32,
    pub ext_factor: f32,
    /// llama.cpp's `yarn_attn_factor` after its corrections (multiplied by ggml's own YaRN
    /// magnitude term when `ext_factor` is not 0).
    pub attn_factor: f32,
    /// `rope.scaling.original_context_length` (YaRN's correction dims, LongRoPE's long/short
    /// choice); the training context when absent.
    pub n_ctx_orig: usize,
}

/// YaRN's fixed band (llama.cpp reads no GGUF key for them).
const YARN_BETA_FAST: f32 = 32.0;
const YARN_BETA_SLOW: f32 = 1.0;

impl RopeScaling {
    /// Reads the scaling keys of `arch`; an unknown `rope.scaling.type` is `unsupported_model`
    /// naming it.
    pub fn from_metadata(md: &Metadata, arch: &str, n_ctx_train: usize) -> Result<Self> {
        let key = |k: &str| format!("{arch}.{k}");
        // As llama.cpp: no type means linear (with no factor, no scaling).
        let kind = md.get_str(&key("rope.scaling.type")).unwrap_or("linear");
        let factor =
            md.get_f32(&key("rope.scaling.factor")).or_else(|| md.get_f32(&key("rope.scale_linear"))).unwrap_or(0.0);
        if !factor.is_finite() || factor < 0.0 {
            return Err(Error::InvalidModel(format!("{} is {factor}", key("rope.scaling.factor"))));
        }
        let mut freq_scale = if factor == 0.0 { 1.0 } else { 1.0 / factor };
        let rope_attn_factor = md.get_f32(&key("rope.scaling.attn_factor")).unwrap_or(1.0);
        if !(rope_attn_factor.is_finite() && rope_attn_factor > 0.0) {
            return Err(Error::InvalidModel(format!("{} is {rope_attn_factor}", key("rope.scaling.attn_factor"))));
        }
        let n_ctx_orig = match md.get_usize(&key("rope.scaling.original_context_length")) {
            Some(0) | None => n_ctx_train,
            Some(n) => n,
        };
        let ext_factor = match kind {
            "none" => {
                freq_scale = 1.0;
                0.0
            }
            "linear" | "longrope" => 0.0,
            "yarn" => 1.0,
            other => {
                return Err(Error::UnsupportedModel(format!(
                    "{} {other:?} is not supported (supported: none, linear, yarn, longrope)",
                    key("rope.scaling.type")
                )));
            }
        };
        let mut attn_factor = 1.0f32;
        if ext_factor != 0.0 {
            // llama.cpp sets YaRN's magnitude term here and cancels the one ggml multiplies
            // in, leaving the attention factor; kept in the same f32 steps.
            let factor = 1.0 / freq_scale;
            attn_factor = if factor <= 1.0 { 1.0 } else { 0.1 * factor.ln() + 1.0 };
            attn_factor *= 1.0 / (1.0 + 0.1 * factor.ln());
        }
        attn_factor *= rope_attn_factor;
        Ok(RopeScaling { freq_scale, ext_factor, attn_factor, n_ctx_orig })
    }

    /// The rope of `n_rot` dimensions with base `freq_base` under this scaling.
    pub fn rope(&self, style: RopeStyle, n_rot: usize, freq_base: f32, freq_scale: f32) -> RopeConfig {
        let mut mscale = self.attn_factor;
        if self.ext_factor != 0.0 {
            // ggml_rope's YaRN magnitude correction.
            mscale *= 1.0 + 0.1 * (1.0 / freq_scale).ln();
        }
        RopeConfig {
            style,
            n_rot,
            freq_base,
            freq_scale,
            ext_factor: self.ext_factor,
            corr_dims: yarn_corr_dims(n_rot, self.n_ctx_orig, freq_base),
            mscale,
            freq_factors: None,
        }
    }
}

/// The pair range over which YaRN ramps (ggml_rope_yarn_corr_dims): the dimension whose
/// wavelength fits `beta` times into the original context, for the fast and slow betas.
fn yarn_corr_dims(n_rot: usize, n_ctx_orig: usize, base: f32) -> [f32; 2] {
    let corr =
        |beta: f32| n_rot as f32 * (n_ctx_orig as f32 / (beta * 2.0 * std::f32::consts::PI)).ln() / (2.0 * base.ln());
    let start = corr(YARN_BETA_FAST).floor();
    let end = corr(YARN_BETA_SLOW).ceil();
    [start.max(0.0), end.min(n_rot as f32 - 1.0)]
}

/// YaRN's weight of extrapolation for pair `i` (ggml's rope_yarn_ramp): 1 below the band,
/// 0 above it, linear in between.
pub fn yarn_ramp(corr_dims: [f32; 2], i: usize) -> f32 {
    let y = (i as f32 - corr_dims[0]) / 0.001f32.max(corr_dims[1] - corr_dims[0]);
    1.0 - y.clamp(0.0, 1.0)
}
