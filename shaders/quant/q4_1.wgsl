// quant/q4_1.wgsl: ggml block_q4_1, 20 bytes per 32 values: d f16 @0, m f16 @2, qs[16] @4.
// Value j = d * (qs[j] & 15) + m, value j + 16 = d * (qs[j] >> 4) + m. Item: one block.
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 20u * i;
    let c = 32u * i;
    var s = Acc();
    var sx = Acc();
    for (var k = 0u; k < 4u; k++) {
        let q = w_u32(b + 4u + 4u * k);
        s += xdot(nib_lo(q), c + 4u * k) + xdot(nib_hi(q), c + 16u + 4u * k);
        sx += xsum(c + 4u * k) + xsum(c + 16u + 4u * k);
    }
    return w_f16(b) * s + w_f16(b + 2u) * sx;
}
