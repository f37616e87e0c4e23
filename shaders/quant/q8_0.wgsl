// quant/q8_0.wgsl: ggml block_q8_0, 34 bytes per 32 values: d f16 @0, qs[32] i8 @2.
// Value j = d * qs[j]. Item: one block.
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 34u * i;
    let c = 32u * i;
    var s = Acc();
    for (var k = 0u; k < 8u; k++) {
        s += xdot(bytes_i(w_u32(b + 2u + 4u * k)), c + 4u * k);
    }
    return w_f16(b) * s;
}
