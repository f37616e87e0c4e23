// quant/f32.wgsl: F32 rows (4 bytes per value, rows 4-byte aligned). Item: 4 values; the last
// item of a row may be partial (any row length).
const ITEM: u32 = 4u;

fn n_items(n: u32) -> u32 {
    return (n + 3u) / 4u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let c = 4u * i;
    let wi = rb / 4u + c;
    if (c + 4u <= n) {
        return xdot(bitcast<vec4<f32>>(vec4<u32>(w[wi], w[wi + 1u], w[wi + 2u], w[wi + 3u])), c);
    }
    var s = Acc();
    for (var k = c; k < n; k++) {
        s += xmul(bitcast<f32>(w[rb / 4u + k]), k);
    }
    return s;
}
