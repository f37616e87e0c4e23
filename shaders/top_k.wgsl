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
// Long rows (Gemma's 262 144 logits) go in two dispatches of this kernel, so that no single
// workgroup walks the whole row five times:
//   from_cand = 0: workgroup c selects the k best of its chunk x[c * chunk ..][..chunk] into
//                  out[2k * c ..] (slots past a chunk's length hold (0xffffffff, -inf), which
//                  loses to any value); one workgroup with chunk >= len is the one-pass kernel;
//   from_cand = 1: workgroup 0 selects the k best of the len candidate pairs in `cand` (the
//                  first dispatch's out) into out. Within each chunk the pairs of any one key
//                  are in index order and the chunks are in index order, so "the first of
//                  those equal to t" is still the lowest indices: the same set as one pass.
//
// Bindings (group 0):
//   0  x     storage, read        array<f32>  the row (from_cand = 0; else a dummy)
//   1  out   storage, read_write  array<u32>  2 * k values per workgroup
//   2  p     uniform              Params
//   3  cand  storage, read        array<u32>  candidate (index, logit bits) pairs (from_cand = 1;
//                                              else a dummy)
// Knobs: WG = 256 invocations per workgroup (WebGPU's default maximum); 3 KiB of workgroup
//   memory. Five passes over the workgroup's values (four histograms, one gather).
// Dispatch: ceil(len / chunk) workgroups (1-D); with from_cand = 1 all but workgroup 0 return.

struct Params {
    offset: u32,
    len: u32,
    k: u32,
    chunk: u32,
    from_cand: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> cand: array<u32>;

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
fn key(bits: u32) -> u32 {
    var b = bits;
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        b = 0xff800000u; // NaN -> -inf
    } else if (b == 0x7f800000u) {
        b = 0x7f7fffffu; // +inf -> f32::MAX
    } else if (b == 0x80000000u) {
        b = 0u; // -0 -> 0
    }
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

// First value of this workgroup's run (from_cand = 0).
var<private> base: u32;

// The raw bits and index of value i of this workgroup's run.
fn bits_at(i: u32) -> u32 {
    if (p.from_cand != 0u) {
        return cand[2u * i + 1u];
    }
    return bitcast<u32>(x[p.offset + base + i]);
}

fn index_at(i: u32) -> u32 {
    if (p.from_cand != 0u) {
        return cand[2u * i];
    }
    return base + i;
}

fn key_at(i: u32) -> u32 {
    return key(bits_at(i));
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
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    var n = p.len;
    var ob = 0u; // where this workgroup's pairs go in out
    if (p.from_cand != 0u) {
        if (wid.x != 0u) {
            return; // whole workgroup
        }
    } else {
        // From a uniform value: barriers follow, and a private variable is never uniform.
        let first = wid.x * p.chunk;
        if (first >= p.len) {
            return;
        }
        base = first;
        n = min(p.chunk, p.len - first);
        ob = 2u * p.k * wid.x;
        // Slots this chunk cannot fill lose to every value (a -inf key, the highest index).
        for (var j = n + lid; j < p.k; j += WG) {
            out[ob + 2u * j] = 0xffffffffu;
            out[ob + 2u * j + 1u] = 0xff800000u;
        }
    }
    let k = min(p.k, n);
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
        for (var i = lid; i < n; i += WG) {
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
    let run = (n + WG - 1u) / WG;
    let lo = min(lid * run, n);
    let hi = min(lo + run, n);
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
            out[ob + 2u * slot] = index_at(i);
            out[ob + 2u * slot + 1u] = bits_at(i);
        }
    }
}
