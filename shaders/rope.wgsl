// rope.wgsl: rotary position embedding in place, x[t][h * head_dim + ...] for tokens t <
// n_tokens at positions pos0 + t (pos0 from the per-step uniform). Pair i < n_rot / 2 of a head
// is (2i, 2i + 1) (Normal, llama) or (i, i + n_rot / 2) (Neox, Qwen); dimensions >= n_rot stay.
//   angle = freq_scale * (theta_i / ff[i]),   theta_i = pos * freq_base^(-2i / n_rot)
// (ff: llama3's rope_freqs, or 1). theta_i is computed one of two ways (`product`):
//   1: as ggml's CPU does, pos * theta_scale^i by i repeated f32 products (theta_scale =
//      freq_base^(-2 / n_rot) rounded to f32 on the host, as the CPU rounds it): the same f32
//      angle as the CPU backend, at the cost of i multiplications (i < n_rot / 2);
//   0: pos * exp2(i * exp_step), exp_step = -2 log2(freq_base) / n_rot: one exp2, a few ulp
//      from the CPU's angle (tests/gpu_ops.rs, rope_angle_ulps).
// The angle is reduced to [-pi, pi] with a two-part 2*pi before cos/sin, whose accuracy WGSL only
// bounds on that interval.
//
// Bindings (group 0):
//   0  x     storage, read_write  array<f32>  [n_tokens][n_heads * head_dim]
//   1  ff    storage, read        array<f32>  frequency factors (>= n_rot / 2 values when has_ff)
//   2  p     uniform              Params
//   3  step  uniform              Step (n_tokens, pos0)
// Knobs: WG = 64 invocations, one pair each.
// Dispatch: ceil(n_tokens * n_heads * n_rot / 2 / 64) workgroups on a 2-D grid (x <= 65535).

struct Params {
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    has_ff: u32,
    exp_step: f32,
    freq_scale: f32,
    product: u32,
    theta_scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> ff: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> step: Step;

// 2*pi = TWO_PI_HI + TWO_PI_LO; TWO_PI_HI = 201/32 has 8 significant bits, so k * TWO_PI_HI is
// exact for |k| < 2^16 (angles up to ~4e5 rad).
const TWO_PI_HI: f32 = 6.28125;
const TWO_PI_LO: f32 = 0.0019353071795864769;
const INV_TWO_PI: f32 = 0.15915494309189535;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let half = p.n_rot / 2u;
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (idx >= step.n_tokens * p.n_heads * half) {
        return;
    }
    let i = idx % half;
    let th = idx / half; // t * n_heads + h
    let t = th / p.n_heads;
    var theta = f32(step.pos0 + t);
    if (p.product != 0u) {
        for (var k = 0u; k < i; k++) {
            theta *= p.theta_scale;
        }
    } else {
        theta *= exp2(f32(i) * p.exp_step);
    }
    if (p.has_ff != 0u) {
        theta = theta / ff[i];
    }
    let a = p.freq_scale * theta;
    let k = round(a * INV_TWO_PI);
    let r = (a - k * TWO_PI_HI) - k * TWO_PI_LO;
    let c = cos(r);
    let s = sin(r);
    let base = th * p.head_dim;
    var i0 = base + 2u * i;
    var i1 = i0 + 1u;
    if (p.neox != 0u) {
        i0 = base + i;
        i1 = i0 + half;
    }
    let x0 = x[i0];
    let x1 = x[i1];
    x[i0] = x0 * c - x1 * s;
    x[i1] = x0 * s + x1 * c;
}
