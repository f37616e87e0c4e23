// quant/q6_k.wgsl: ggml block_q6_K, 210 bytes per 256 values: ql[128] @0 (low 4 bits), qh[64]
// @128 (high 2 bits), scales[16] i8 @192, d f16 @208.
// Value 128h + 32k + l (h < 2, k < 4, l < 32) = d * scales[8h + 2k + l / 16] * (q - 32),
// q = (k < 2 ? low : high) nibble of ql[64h + 32 (k % 2) + l] | ((qh[32h + l] >> 2k) & 3) << 4.
// Item: the 32 values of one (h, k).
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 210u * (i / 8u);
    let j = i % 8u;
    let h = j / 4u;
    let kk = j % 4u;
    let c = 32u * i;
    var s = Acc();
    for (var half = 0u; half < 2u; half++) {
        var sqx = Acc();
        for (var k = 0u; k < 4u; k++) {
            let l = 16u * half + 4u * k;
            let lq = w_u32(b + 64u * h + 32u * (kk % 2u) + l);
            var low: vec4<f32>;
            if (kk < 2u) {
                low = nib_lo(lq);
            } else {
                low = nib_hi(lq);
            }
            let q = low + 16.0 * crumbs(w_u32(b + 128u + 32u * h + l), 2u * kk) - 32.0;
            sqx += xdot(q, c + l);
        }
        let sc = f32(bitcast<i32>(w_u8(b + 192u + 8u * h + 2u * kk + half) << 24u) >> 24u);
        s += sc * sqx;
    }
    return w_f16(b + 208u) * s;
}
