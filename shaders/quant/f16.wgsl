// quant/f16.wgsl: F16 rows (2 bytes per value; a row may start at a 2-byte offset). Item: 4
// values (8 bytes); the last item of a row may be partial.
const ITEM: u32 = 4u;

fn n_items(n: u32) -> u32 {
    return (n + 3u) / 4u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let c = 4u * i;
    let b = rb + 2u * c;
    if (c + 4u <= n) {
        return xdot(vec4<f32>(unpack2x16float(w_u32(b)), unpack2x16float(w_u32(b + 4u))), c);
    }
    var s = Acc();
    for (var k = c; k < n; k++) {
        s += xmul(w_f16(rb + 2u * k), k);
    }
    return s;
}
