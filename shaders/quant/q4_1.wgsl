// quant/q4_1.wgsl: ggml block_q4_1, 20 bytes per 32 values: d f16 @0, m f16 @2, qs[16] @4.
// Value j = d * (qs[j] & 15) + m, value j + 16 = d * (qs[j] >> 4) + m. Item: one block.
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, x0: u32, n: u32) -> f32 {
    let b = rb + 20u * i;
    let xb = x0 + 32u * i;
    var s = 0.0;
    var sx = 0.0;
    for (var k = 0u; k < 4u; k++) {
        let q = w_u32(b + 4u + 4u * k);
        let xl = x4(xb + 4u * k);
        let xh = x4(xb + 16u + 4u * k);
        s += dot(nib_lo(q), xl) + dot(nib_hi(q), xh);
        sx += dot(xl + xh, vec4<f32>(1.0));
    }
    return w_f16(b) * s + w_f16(b + 2u) * sx;
}
