// quant/q4_0.wgsl: ggml block_q4_0, 18 bytes per 32 values: d f16 @0, qs[16] @2.
// Value j = d * ((qs[j] & 15) - 8), value j + 16 = d * ((qs[j] >> 4) - 8). Item: one block.
// The offset 8 is taken off the small integers (exact) before the dots.
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 18u * i;
    let c = 32u * i;
    var s = Acc();
    for (var k = 0u; k < 4u; k++) {
        let q = w_u32(b + 2u + 4u * k);
        s += xdot(nib_lo(q) - 8.0, c + 4u * k) + xdot(nib_hi(q) - 8.0, c + 16u + 4u * k);
    }
    return w_f16(b) * s;
}
