// quant/q4_k.wgsl: ggml block_q4_K, 144 bytes per 256 values: d f16 @0, dmin f16 @2,
// scales[12] @4 (8 packed 6-bit scale/min pairs), qs[128] @16.
// Value 64c + 32u + l (c < 4, u < 2, l < 32) = d * sc * q - dmin * m, q = low (u = 0) or high
// (u = 1) nibble of qs[32c + l], (sc, m) = scale_min_k4(2c + u). Item: one sub-block of 32.
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 144u * (i / 8u);
    let j = i % 8u;
    let qb = b + 16u + 32u * (j / 2u);
    let c = 32u * i;
    var sqx = Acc();
    var sx = Acc();
    for (var k = 0u; k < 8u; k++) {
        let q = w_u32(qb + 4u * k);
        var qv: vec4<f32>;
        if (j % 2u == 0u) {
            qv = nib_lo(q);
        } else {
            qv = nib_hi(q);
        }
        sqx += xdot(qv, c + 4u * k);
        sx += xsum(c + 4u * k);
    }
    let sm = scale_min_k4(b + 4u, j);
    return w_f16(b) * sm.x * sqx - w_f16(b + 2u) * sm.y * sx;
}
