// rope_angle.wgsl: the rotation of pair i of a head at position pos, shared by rope.wgsl and
// qk_rope_store.wgsl so that both rotate bit for bit alike. Declares no bindings. As ggml's
// rope_yarn (and the CPU backend's RopeTable):
//   theta  = pos * freq_base^(-2i / n_rot), one of two ways (`product`):
//            1: pos * theta_scale^i by i repeated f32 products (theta_scale = freq_base^(-2 / n_rot)
//               rounded on the host as the CPU rounds it): the CPU's f32 angle, for i products;
//            0: pos * exp2(i * exp_step), exp_step = -2 log2(freq_base) / n_rot: one exp2, a few
//               ulp from the CPU's angle (tests/gpu_ops.rs, rope_angle_ulps);
//   extrap = theta / ff                 (ff: llama3's rope_freqs or LongRoPE's factor, else 1)
//   angle  = freq_scale * extrap, and when ext_factor != 0 (YaRN) mixed back towards extrap by
//            ramp(i) * ext_factor, ramp = 1 - clamp((i - corr_lo) / max(0.001, corr_hi - corr_lo), 0, 1)
//   (cos, sin) of the angle, times mscale (YaRN's / LongRoPE's attention factor, else 1).
// The angle is reduced to [-pi, pi] with a two-part 2*pi before cos/sin, whose accuracy WGSL only
// bounds on that interval.

struct RopeAngle {
    theta_scale: f32,
    exp_step: f32,
    product: u32,
    freq_scale: f32,
    ext_factor: f32,
    corr_lo: f32,
    corr_hi: f32,
    mscale: f32,
}

// 2*pi = TWO_PI_HI + TWO_PI_LO; TWO_PI_HI = 201/32 has 8 significant bits, so k * TWO_PI_HI is
// exact for |k| < 2^16 (angles up to ~4e5 rad).
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

// (cos, sin) * mscale of pair i at position pos, with the pair's factor ff (1 without factors).
fn rope_cos_sin(r: RopeAngle, pos: u32, i: u32, ff: f32) -> vec2<f32> {
    var theta = f32(pos);
    if (r.product != 0u) {
        for (var j = 0u; j < i; j++) {
            theta *= r.theta_scale;
        }
    } else {
        theta *= exp2(f32(i) * r.exp_step);
    }
    let extrap = theta / ff;
    var a = r.freq_scale * extrap;
    if (r.ext_factor != 0.0) {
        let y = (f32(i) - r.corr_lo) / max(0.001, r.corr_hi - r.corr_lo);
        let mix = (1.0 - clamp(y, 0.0, 1.0)) * r.ext_factor;
        a = a * (1.0 - mix) + extrap * mix;
    }
    let k = round(a * INV_TWO_PI);
    let red = (a - k * TWO_PI_HI) - k * TWO_PI_LO;
    return vec2<f32>(cos(red), sin(red)) * r.mscale;
}
