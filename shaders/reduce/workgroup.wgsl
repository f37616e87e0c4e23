// reduce/workgroup.wgsl: the row sums of a Base workgroup (TPR invocations per row), by a tree
// over workgroup memory: log2(TPR) barrier steps. Leaves sum k (token t of the tile, k = t, or
// TT + t for the paired up rows) of the row of invocation lid in partial[k * WG + lid] for the
// row's lane 0. Needs no optional feature. See reduce/subgroup.wgsl for the fast variant.

fn reduce(acc: Acc, up: Acc, lid: u32, lane: u32) {
    for (var t = 0u; t < TT; t++) {
        partial[t * WG + lid] = tok(acc, t);
        if (PAIRED) {
            partial[(TT + t) * WG + lid] = tok(up, t);
        }
    }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            for (var k = 0u; k < TT * DOTS; k++) {
                partial[k * WG + lid] += partial[k * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
}
