// quant/q2_k.wgsl: ggml block_q2_K, 84 bytes per 256 values: scales[16] @0 (low nibble scale,
// high nibble min), qs[64] @16 (2 bits per value), d f16 @80, dmin f16 @82.
// Value 128h + 32j + l (h < 2, j < 4, l < 32) = d * (sc & 15) * ((qs[32h + l] >> 2j) & 3)
//   - dmin * (sc >> 4), sc = scales[8h + 2j + l / 16]. Item: the 32 values of one (h, j).
const ITEM: u32 = 32u;

fn n_items(n: u32) -> u32 {
    return n / 32u;
}

fn item_dot(rb: u32, i: u32, n: u32) -> Acc {
    let b = rb + 84u * (i / 8u);
    let j = i % 8u;
    let h = j / 4u;
    let jj = j % 4u;
    let c = 32u * i;
    var sd = Acc();
    var sm = Acc();
    for (var half = 0u; half < 2u; half++) {
        var sqx = Acc();
        var sx = Acc();
        for (var k = 0u; k < 4u; k++) {
            let xc = c + 16u * half + 4u * k;
            sqx += xdot(crumbs(w_u32(b + 16u + 32u * h + 16u * half + 4u * k), 2u * jj), xc);
            sx += xsum(xc);
        }
        let sc = w_u8(b + 8u * h + 2u * jj + half);
        sd += f32(sc & 15u) * sqx;
        sm += f32(sc >> 4u) * sx;
    }
    return w_f16(b + 80u) * sd - w_f16(b + 82u) * sm;
}
