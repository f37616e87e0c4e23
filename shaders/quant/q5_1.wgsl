// quant/q5_1.wgsl: ggml block_q5_1, 24 bytes per 32 values: d f16 @0, m f16 @2, qh u32 @4,
// qs[16] @8. Value j = d * (qs[j] & 15 | bit j of qh << 4) + m, value j + 16 the high nibble
// with bit j + 16. Item: one block.
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 24u * i;
    let c = 32u * i;
    let qh = w_u32(b + 4u);
    var s = Acc();
    var sx = Acc();
    for (var k = 0u; k < 4u; k++) {
        let q = w_u32(b + 8u + 4u * k);
        let lo = nib_lo(q) + 16.0 * nibble_bits(qh, k);
        let hi = nib_hi(q) + 16.0 * nibble_bits(qh, k + 4u);
        s += xdot(lo, c + 4u * k) + xdot(hi, c + 16u + 4u * k);
        sx += xsum(c + 4u * k) + xsum(c + 16u + 4u * k);
    }
    return w_f16(b) * s + w_f16(b + 2u) * sx;
}
