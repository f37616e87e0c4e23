// rope.wgsl: rotary position embedding in place, x[t][h * head_dim + ...] for tokens t <
// n_tokens at positions pos0 + t (pos0 from the per-step uniform). Pair i < n_rot / 2 of a head
// is (2i, 2i + 1) (Normal, llama) or (i, i + n_rot / 2) (Neox, the others); dimensions >= n_rot
// stay (partial rotary, Phi-4-mini). The rotation of a pair is rope_angle.wgsl's (prepended):
// plain, linear, YaRN, with per-pair factors (llama3's rope_freqs, LongRoPE's) when has_ff.
//
// Bindings (group 0):
//   0  x     storage, read_write  array<f32>  [n_tokens][n_heads * head_dim]
//   1  ff    storage, read        array<f32>  frequency factors (>= n_rot / 2 values when has_ff)
//   2  p     uniform              Params
//   3  step  uniform              Step (n_tokens, pos0)
// Knobs: WG = 64 invocations, one pair each.
// Dispatch: ceil(n_tokens * n_heads * n_rot / 2 / 64) workgroups on a 2-D grid (x <= 65535).

struct Params {
    rope: RopeAngle,
    n_heads: u32,
    head_dim: u32,
    n_rot: u32,
    neox: u32,
    has_ff: u32,
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
    var f = 1.0;
    if (p.has_ff != 0u) {
        f = ff[i];
    }
    let cs = rope_cos_sin(p.rope, step.pos0 + t, i, f);
    let base = th * p.head_dim;
    var i0 = base + 2u * i;
    var i1 = i0 + 1u;
    if (p.neox != 0u) {
        i0 = base + i;
        i1 = i0 + half;
    }
    let x0 = x[i0];
    let x1 = x[i1];
    x[i0] = x0 * cs.x - x1 * cs.y;
    x[i1] = x0 * cs.y + x1 * cs.x;
}
