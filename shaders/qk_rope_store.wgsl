// qk_rope_store.wgsl: one dispatch for what sits between the q/k/v projections and attention:
// for token t (position pos0 + t) and head slot s < n_head + n_head_kv,
//   s <  n_head: q head s     <- rope(norm(q head s))                    (in place)
//   s >= n_head: kc[pos][g]   <- rope(norm(k head g)),  vc[pos][g] <- v head g,  g = s - n_head
// norm is the per-head RMS norm of Qwen3 and Gemma 3 (optional, q_norm / k_norm weights), with the
// same arithmetic as rms_norm.wgsl; rope as rope.wgsl (rope_angle.wgsl, prepended, for both).
// pos = pos0 + t lives in cache row pos % n_ctx: a sliding-window layer's cache is a ring of
// n_ctx positions (kv_store.wgsl does the same). Replaces head_norm q, head_norm k, rope q, rope k
// and kv_store: 5 dispatches (3 without the norm) -> 1.
//
// Bindings (group 0):
//   0  q     storage, read_write  array<f32>  [n_tokens][n_head * head_dim]
//   1  k     storage, read        array<f32>  [n_tokens][n_head_kv * head_dim]
//   2  v     storage, read        array<f32>  [n_tokens][n_head_kv * head_dim_v]
//   3  kc    storage, read_write  array<KV>   [n_ctx][n_head_kv * head_dim], row = position % n_ctx
//   4  vc    storage, read_write  array<KV>   [n_ctx][n_head_kv * head_dim_v]
//   5  ff    storage, read        array<f32>  rope frequency factors (when has_ff)
//   6  qn    storage, read        array<f32>  q_norm weight, head_dim values (when has_norm)
//   7  kn    storage, read        array<f32>  k_norm weight (when has_norm)
//   8  p     uniform              Params
//   9  step  uniform              Step (n_tokens, pos0)
// KV is the cache's value type, prepended: f32, or f16 on devices with shader-f16 (values are
//   rounded to f16 as they are stored).
// Knobs: WG = 64 invocations per (token, head slot); head_dim, head_dim_v <= 256; 8 storage
//   buffers (WebGPU's default maximum); 1.25 KiB of workgroup memory.
// Dispatch: n_tokens * (n_head + n_head_kv) workgroups on a 2-D grid (x <= 65535).

struct Params {
    rope: RopeAngle,
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
    _pad0: u32,
    _pad1: u32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> kc: array<KV>;
@group(0) @binding(4) var<storage, read_write> vc: array<KV>;
@group(0) @binding(5) var<storage, read> ff: array<f32>;
@group(0) @binding(6) var<storage, read> qn: array<f32>;
@group(0) @binding(7) var<storage, read> kn: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
@group(0) @binding(9) var<uniform> step: Step;

const WG: u32 = 64u;

var<workgroup> vals: array<f32, 256>;
var<workgroup> partial: array<f32, 64>;

// Writes the finished value of dimension d of this head.
fn put(is_q: bool, dst: u32, d: u32, x: f32) {
    if (is_q) {
        q[dst + d] = x;
    } else {
        kc[dst + d] = KV(x);
    }
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let slots = p.n_head + p.n_head_kv;
    let g = wid.x + wid.y * nwg.x;
    let t = g / slots;
    let s = g % slots;
    let pos = step.pos0 + t;
    if (t >= step.n_tokens) {
        return; // whole workgroup
    }
    let row = pos % p.n_ctx;
    let hd = p.head_dim;
    let is_q = s < p.n_head;
    var src: u32;
    var dst: u32;
    if (is_q) {
        src = t * p.n_head * hd + s * hd;
        dst = src;
    } else {
        let kh = s - p.n_head;
        let kw = p.n_head_kv * hd;
        src = t * kw + kh * hd;
        dst = row * kw + kh * hd;
        let vw = p.n_head_kv * p.head_dim_v;
        for (var d = lid; d < p.head_dim_v; d += WG) {
            vc[row * vw + kh * p.head_dim_v + d] = KV(v[t * vw + kh * p.head_dim_v + d]);
        }
    }
    var ss = 0.0;
    for (var d = lid; d < hd; d += WG) {
        var x: f32;
        if (is_q) {
            x = q[src + d];
        } else {
            x = k[src + d];
        }
        vals[d] = x;
        ss += x * x;
    }
    partial[lid] = ss;
    workgroupBarrier();
    if (p.has_norm != 0u) {
        for (var r = WG / 2u; r > 0u; r >>= 1u) {
            if (lid < r) {
                partial[lid] += partial[lid + r];
            }
            workgroupBarrier();
        }
        let scale = 1.0 / sqrt(partial[0] / f32(hd) + p.eps);
        for (var d = lid; d < hd; d += WG) {
            var w: f32;
            if (is_q) {
                w = qn[d];
            } else {
                w = kn[d];
            }
            vals[d] = vals[d] * scale * w;
        }
        workgroupBarrier();
    }
    let half = p.n_rot / 2u;
    for (var i = lid; i < half; i += WG) {
        var f = 1.0;
        if (p.has_ff != 0u) {
            f = ff[i];
        }
        let cs = rope_cos_sin(p.rope, pos, i, f);
        let c = cs.x;
        let sn = cs.y;
        var i0 = 2u * i;
        var i1 = i0 + 1u;
        if (p.neox != 0u) {
            i0 = i;
            i1 = i + half;
        }
        let x0 = vals[i0];
        let x1 = vals[i1];
        put(is_q, dst, i0, x0 * c - x1 * sn);
        put(is_q, dst, i1, x0 * sn + x1 * c);
    }
    for (var d = p.n_rot + lid; d < hd; d += WG) {
        put(is_q, dst, d, vals[d]);
    }
}
