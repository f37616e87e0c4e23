// reduce/subgroup.wgsl: the same row sums as reduce/workgroup.wgsl (same result slots) with
// subgroup operations: each subgroup adds its invocations' sums in registers (subgroupAdd),
// its first invocation writes one partial per subgroup, and after one barrier the row's lane 0
// adds the WG / sg_size partials. One barrier instead of log2(TPR).
// Needs the `subgroups` feature (SUBGROUP), TPR = WG (one row per workgroup), a subgroup size
// that divides WG, and subgroups made of consecutive local invocation indices (what 1-D
// workgroups get on Vulkan, Metal and D3D12); the variant is only chosen when the adapter's
// largest subgroup is at most WG. `sg_lane` and `sg_size` are set by main from the builtins.

var<private> sg_lane: u32;
var<private> sg_size: u32;

fn reduce(acc: Acc, up: Acc, lid: u32, lane: u32) {
    let sg = lid / sg_size;
    for (var t = 0u; t < TT; t++) {
        let a = subgroupAdd(tok(acc, t));
        if (sg_lane == 0u) {
            partial[t * WG + sg] = a;
        }
        if (PAIRED) {
            let u = subgroupAdd(tok(up, t));
            if (sg_lane == 0u) {
                partial[(TT + t) * WG + sg] = u;
            }
        }
    }
    workgroupBarrier();
    if (lane == 0u) {
        for (var k = 0u; k < TT * DOTS; k++) {
            var s = 0.0;
            for (var j = 0u; j < WG / sg_size; j++) {
                s += partial[k * WG + j];
            }
            partial[k * WG + lid] = s;
        }
    }
}
