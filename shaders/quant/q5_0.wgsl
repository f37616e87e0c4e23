// quant/q5_0.wgsl: ggml block_q5_0, 22 bytes per 32 values: d f16 @0, qh u32 @2, qs[16] @6.
// Value j = d * ((qs[j] & 15 | bit j of qh << 4) - 16), value j + 16 the high nibble with bit
// j + 16. Item: one block. The offset 16 is taken off the small integers (exact).
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 22u * i;
    let c = 32u * i;
    let qh = w_u32(b + 2u);
    var s = Acc();
    for (var k = 0u; k < 4u; k++) {
        let q = w_u32(b + 6u + 4u * k);
        let lo = nib_lo(q) + 16.0 * nibble_bits(qh, k) - 16.0;
        let hi = nib_hi(q) + 16.0 * nibble_bits(qh, k + 4u) - 16.0;
        s += xdot(lo, c + 4u * k) + xdot(hi, c + 16u + 4u * k);
    }
    return w_f16(b) * s;
}
