// attention.wgsl: causal attention over one layer's KV cache, decode (n_tokens = 1) and prefill.
// For token t (position pos = pos0 + t) and head h (kv head g = h / (n_head / n_head_kv), GQA):
//   out[t][h * head_dim_v + d] = sum_{first <= j <= pos} softmax_j(s_j) * vc[j % n_ctx][g][d]
//   s_j = scale * q[t][h] . kc[j % n_ctx][g], or softcap * tanh(that / softcap) when softcap > 0
//   (Gemma 2; the tanh argument clamped to +-10, where tanh is 1 in f32)
// first = pos + 1 - window for a sliding-window layer (window > 0) once pos >= window, else 0.
// Position j lives in cache row j % n_ctx: a sliding-window layer's cache is a ring of n_ctx >=
// window + n_tokens - 1 positions, so a step's keys never overwrite keys it still reads.
// The keys and values of this step must already be in the cache (kv_store.wgsl, same encoder).
// Softmax is computed online over tiles of 64 positions (flash-attention style): per tile each
// invocation scores one position, a workgroup max/sum reduction updates the running max m and
// sum l, the accumulators are rescaled by e^(m_old - m_new); every exponent is <= 0.
//
// Bindings (group 0):
//   0  q     storage, read        array<f32>  [n_tokens][n_head * head_dim]
//   1  kc    storage, read        array<KV>   [n_ctx][n_head_kv * head_dim]
//   2  vc    storage, read        array<KV>   [n_ctx][n_head_kv * head_dim_v]
//   3  out   storage, read_write  array<f32>  [n_tokens][n_head * head_dim_v]
//   4  p     uniform              Params
//   5  step  uniform              Step (n_tokens, pos0)
// KV is the cache's value type, prepended: f32, or f16 on devices with shader-f16 (half the
//   bytes read per position; every product and sum is still f32).
// Knobs: WG = 64 invocations per (token, head); head_dim, head_dim_v <= 256 (each invocation
//   owns output dims lid + 64 r, r < 4); workgroup memory 1 KiB (q) + 2 x 256 B.
// Dispatch: one workgroup per (token, head), n_tokens * n_head on a 2-D grid (x <= 65535).

struct Params {
    n_head: u32,
    n_head_kv: u32,
    head_dim: u32,
    head_dim_v: u32,
    scale: f32,
    n_ctx: u32,
    window: u32,
    softcap: f32,
}

struct Step {
    n_tokens: u32,
    pos0: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kc: array<KV>;
@group(0) @binding(2) var<storage, read> vc: array<KV>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> step: Step;

const WG: u32 = 64u;
const NEG_BIG: f32 = -3.0e38;

var<workgroup> qs: array<f32, 256>;
var<workgroup> probs: array<f32, 64>;
var<workgroup> red: array<f32, 64>;

// Tree reduction of red[] (max when is_max, else sum); every invocation gets the result.
fn reduce(lid: u32, is_max: bool) -> f32 {
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            if (is_max) {
                red[lid] = max(red[lid], red[lid + k]);
            } else {
                red[lid] += red[lid + k];
            }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = wid.x + wid.y * nwg.x;
    if (g >= step.n_tokens * p.n_head) {
        return; // whole workgroup
    }
    let h = g % p.n_head;
    let t = g / p.n_head;
    let kvh = h / (p.n_head / p.n_head_kv);
    let hd = p.head_dim;
    let hdv = p.head_dim_v;
    let kw = p.n_head_kv * hd;
    let vw = p.n_head_kv * hdv;
    let qb = t * p.n_head * hd + h * hd;
    for (var d = lid; d < hd; d += WG) {
        qs[d] = q[qb + d];
    }
    workgroupBarrier();

    let end = step.pos0 + t + 1u; // one past the last position seen
    var first = 0u;
    if (p.window > 0u && end > p.window) {
        first = end - p.window;
    }
    var m = NEG_BIG;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var j0 = first; j0 < end; j0 += WG) {
        let j = j0 + lid;
        var s = NEG_BIG;
        if (j < end) {
            let kb = (j % p.n_ctx) * kw + kvh * hd;
            var dotv = 0.0;
            for (var d = 0u; d < hd; d++) {
                dotv += qs[d] * f32(kc[kb + d]);
            }
            s = dotv * p.scale;
            if (p.softcap > 0.0) {
                s = soft_cap(s, p.softcap);
            }
        }
        red[lid] = s;
        let m_new = max(m, reduce(lid, true));
        var e = 0.0;
        if (j < end) {
            e = exp(s - m_new);
        }
        probs[lid] = e;
        red[lid] = e;
        let tile_sum = reduce(lid, false);
        let alpha = exp(m - m_new);
        l = l * alpha + tile_sum;
        let n_tile = min(WG, end - j0);
        let row0 = j0 % p.n_ctx;
        for (var r = 0u; r < 4u; r++) {
            let d = lid + WG * r;
            if (d < hdv) {
                var a = 0.0;
                let vb = kvh * hdv + d;
                for (var jj = 0u; jj < n_tile; jj++) {
                    var row = row0 + jj;
                    if (row >= p.n_ctx) {
                        row -= p.n_ctx; // the ring wraps at most once within a tile
                    }
                    a += probs[jj] * f32(vc[vb + row * vw]);
                }
                acc[r] = acc[r] * alpha + a;
            }
        }
        m = m_new;
        workgroupBarrier(); // probs is rewritten by the next tile
    }
    let ob = t * p.n_head * hdv + h * hdv;
    let inv = 1.0 / l;
    for (var r = 0u; r < 4u; r++) {
        let d = lid + WG * r;
        if (d < hdv) {
            out[ob + d] = acc[r] * inv;
        }
    }
}
