// top_k.wgsl: the k most likely entries of x[offset .. offset + len] (a row of logits), ranked as
// the CPU sampler ranks them (sampler::top_candidates): by the sanitized logit (NaN as -inf, +inf
// as f32::MAX, -0 as 0), ties to the lower index. out[2j] = index, out[2j + 1] = the raw logit's
// bits, for j < min(k, len): those above the k-th largest in index order, then its ties (the
// sampler sorts them). A sampled decode step then
// reads back 8 bytes per candidate instead of the whole row.
//
// How: each value maps to a u32 key that orders like its sanitized float. A radix select over
// the key's four bytes, most significant first (a 256-bin histogram per pass in workgroup
// memory), finds the k-th largest key t and how many values with key t to take; a last pass
// writes every value above t and the first of those equal to t, each invocation owning a
// contiguous run of indices placed by a prefix sum, so the result does not depend on timing.
//
// Bindings (group 0):
//   0  x    storage, read        array<f32>
//   1  out  storage, read_write  array<u32>  2 * k values
//   2  p    uniform              Params
// Knobs: WG = 256 invocations in one workgroup (WebGPU's default maximum); 3 KiB of workgroup
//   memory. Five passes over the row (four histograms, one gather).
// Dispatch: 1 workgroup.

struct Params {
    offset: u32,
    len: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG: u32 = 256u;

var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> above_scan: array<u32, 256>;
var<workgroup> ties_scan: array<u32, 256>;
// The select's state, written by invocation 0 between passes: the key bits fixed so far
// (prefix under mask) and how many of the values matching them are still to be taken.
var<workgroup> prefix: u32;
var<workgroup> mask: u32;
var<workgroup> remaining: u32;

// A u32 that orders like the sanitized value: NaN (by its bits: compilers may fold v != v)
// and -inf share the lowest key of any value, +inf that of f32::MAX, -0 that of 0.
fn key(v: f32) -> u32 {
    var b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        b = 0xff800000u; // NaN -> -inf
    } else if (b == 0x7f800000u) {
        b = 0x7f7fffffu; // +inf -> f32::MAX
    } else if (b == 0x80000000u) {
        b = 0u; // -0 -> 0
    }
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn key_at(i: u32) -> u32 {
    return key(x[p.offset + i]);
}

// Exclusive prefix sums of above_scan and ties_scan over the workgroup (Hillis-Steele).
fn scan(lid: u32) {
    for (var d = 1u; d < WG; d <<= 1u) {
        workgroupBarrier();
        var a = 0u;
        var t = 0u;
        if (lid >= d) {
            a = above_scan[lid - d];
            t = ties_scan[lid - d];
        }
        workgroupBarrier();
        above_scan[lid] += a;
        ties_scan[lid] += t;
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    let k = min(p.k, p.len);
    if (lid == 0u) {
        prefix = 0u;
        mask = 0u;
        remaining = k;
    }
    for (var round = 0u; round < 4u; round++) {
        let shift = 24u - 8u * round;
        atomicStore(&hist[lid], 0u);
        workgroupBarrier();
        let pre = prefix;
        let m = mask;
        for (var i = lid; i < p.len; i += WG) {
            let kk = key_at(i);
            if ((kk & m) == pre) {
                atomicAdd(&hist[(kk >> shift) & 0xffu], 1u);
            }
        }
        workgroupBarrier();
        if (lid == 0u && remaining > 0u) {
            // The bin holding the remaining-th largest of the matching values, from the top.
            var above = 0u;
            var b = 255u;
            loop {
                let c = atomicLoad(&hist[b]);
                if (above + c >= remaining || b == 0u) {
                    break;
                }
                above += c;
                b -= 1u;
            }
            prefix |= b << shift;
            mask |= 0xffu << shift;
            remaining -= above;
        }
        workgroupBarrier();
    }
    // Now: keys above `prefix` are all taken (k - remaining of them), and the first `remaining`
    // indices whose key equals it.
    let t = prefix;
    let n_ties = remaining;
    let n_above = k - n_ties;
    let chunk = (p.len + WG - 1u) / WG;
    let lo = min(lid * chunk, p.len);
    let hi = min(lo + chunk, p.len);
    var a = 0u;
    var e = 0u;
    for (var i = lo; i < hi; i++) {
        let kk = key_at(i);
        a += select(0u, 1u, kk > t);
        e += select(0u, 1u, kk == t);
    }
    above_scan[lid] = a;
    ties_scan[lid] = e;
    scan(lid);
    var slot_above = above_scan[lid] - a;
    var tie_rank = ties_scan[lid] - e;
    if (k == 0u) {
        return;
    }
    for (var i = lo; i < hi; i++) {
        let kk = key_at(i);
        var slot = k;
        if (kk > t) {
            slot = slot_above;
            slot_above++;
        } else if (kk == t) {
            if (tie_rank < n_ties) {
                slot = n_above + tie_rank;
            }
            tie_rank++;
        }
        if (slot < k) {
            out[2u * slot] = i;
            out[2u * slot + 1u] = bitcast<u32>(x[p.offset + i]);
        }
    }
}
