// quant/bf16.wgsl: BF16 rows (2 bytes per value, the top half of an f32). Item: 4 values; the
// last item of a row may be partial.
const ITEM: u32 = 4u;

fn n_items(n: u32) -> u32 {
    return (n + 3u) / 4u;
}

fn bf16_pair(q: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(q << 16u), bitcast<f32>(q & 0xffff0000u));
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let c = 4u * i;
    let b = rb + 2u * c;
    if (c + 4u <= n) {
        return xdot(vec4<f32>(bf16_pair(w_u32(b)), bf16_pair(w_u32(b + 4u))), c);
    }
    var s = Acc();
    for (var k = c; k < n; k++) {
        s += xmul(bf16_bits(w_u16(rb + 2u * k)), k);
    }
    return s;
}
