// kv_store.wgsl: writes this step's keys and values into one layer's KV cache,
//   kc[row * k_width + c] = k[t * k_width + c]   (c < k_width)
//   vc[row * v_width + c] = v[t * v_width + c]   (c < v_width)
// for t < n_tokens, row = (pos0 + t) % n_ctx (pos0, n_tokens from the per-step uniform): a
// sliding-window layer's cache is a ring of n_ctx positions; a global layer's holds them all.
//
// Bindings (group 0):
//   0  k     storage, read        array<f32>
//   1  v     storage, read        array<f32>
//   2  kc    storage, read_write  array<KV>   [n_ctx][k_width]
//   3  vc    storage, read_write  array<KV>   [n_ctx][v_width]
//   4  p     uniform              Params
//   5  step  uniform              Step (n_tokens, pos0)
// KV is the cache's value type, prepended: f32, or f16 on devices with shader-f16.
// Knobs: WG = 64 invocations, one column c < max(k_width, v_width) of one token each.
// Dispatch: ceil(n_tokens * max(k_width, v_width) / 64) workgroups on a 2-D grid.

struct Params {
    k_width: u32,
    v_width: u32,
    n_ctx: u32,
    _pad: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read_write> kc: array<KV>;
@group(0) @binding(3) var<storage, read_write> vc: array<KV>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let width = max(p.k_width, p.v_width);
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    let t = idx / width;
    let c = idx % width;
    if (t >= step.n_tokens) {
        return;
    }
    let row = (step.pos0 + t) % p.n_ctx;
    if (c < p.k_width) {
        kc[row * p.k_width + c] = KV(k[t * p.k_width + c]);
    }
    if (c < p.v_width) {
        vc[row * p.v_width + c] = KV(v[t * p.v_width + c]);
    }
}
