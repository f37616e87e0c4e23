// argmax.wgsl: out[0] = the index of the largest of x[offset .. offset + len] (a row of logits),
// ties to the lowest index, NaNs skipped; 0 when every value is NaN (as sampler::argmax).
// A decode step then reads back 4 bytes.
//
// Bindings (group 0):
//   0  x    storage, read        array<f32>
//   1  out  storage, read_write  array<u32>
//   2  p    uniform              Params
// Knobs: WG = 256 invocations in one workgroup: each scans a stride of 256 (keeping its first
//   maximum), then a tree reduction over (value, index) in 2 KiB of workgroup memory.
// Dispatch: 1 workgroup.

struct Params {
    offset: u32,
    len: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

// NaN by its bits: compilers may fold `v != v` away.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// Whether candidate (bv, bi) beats (av, ai).
fn beats(bv: f32, bi: u32, av: f32, ai: u32) -> bool {
    return bi != NONE && (ai == NONE || bv > av || (bv == av && bi < ai));
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var bv = 0.0;
    var bi = NONE;
    for (var i = lid; i < p.len; i += WG) {
        let v = x[p.offset + i];
        if (!is_nan(v) && (bi == NONE || v > bv)) {
            bv = v;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k >>= 1u) {
        if (lid < k && beats(best_v[lid + k], best_i[lid + k], best_v[lid], best_i[lid])) {
            best_v[lid] = best_v[lid + k];
            best_i[lid] = best_i[lid + k];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[0] = select(best_i[0], 0u, best_i[0] == NONE);
    }
}
